"""On-demand targets against the lab's real `target` VM.

* SSH readiness from this host to the target's forwarded sshd: the right pinned key answers;
  a wrong pinned key (the *source* VM's key) and an unpinned key fail at once and clearly;
  a port where nothing listens times out cleanly.
* The scenario zfsrep runs in `source`: warmup (command type) → replicate → teardown, with the
  target's pool imported by warmup and exported at the end.
* A target without `host` (as an EC2 one): the command warmup prints an address that is not the
  target's name, the key is pinned only as `offsite <key>` (HostKeyAlias), and warmup, replicate
  (checksum on the target) and teardown all verify it; pinned by the address instead, warmup fails
  at once naming the alias.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import time

import pytest
import tomli_w

from zfsrep.config.model import TargetConfig
from zfsrep.targets.readiness import HostKeyError, SshTimeout, wait_for_ssh

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"


def _identity(lab) -> str:
    text = lab.ssh_config.read_text()
    return re.search(r"^\s*IdentityFile\s+(\S+)", text, re.M).group(1)


def _pinned_line(lab, vm: str) -> str:
    known = (lab.run / "known_hosts").read_text().splitlines()
    (line,) = [x for x in known if x.startswith(f"[127.0.0.1]:{lab.ports[vm]} ")]
    return line


def _target(lab, known_hosts, port=None) -> TargetConfig:
    return TargetConfig(name="lab-target", host="127.0.0.1", dataset="backup/x", port=port or lab.ports["target"],
                        identity_file=_identity(lab), known_hosts=str(known_hosts))


def test_ready_with_the_pinned_key(lab, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(_pinned_line(lab, "target") + "\n")
    ready = wait_for_ssh(_target(lab, known), "127.0.0.1", timeout=120)
    assert ready.attempts >= 1 and ready.host == "127.0.0.1"


def test_wrong_pinned_key_fails_at_once(lab, tmp_path):
    # pin the *source* VM's key for the target's address: sshd on target answers with another key
    source_key = _pinned_line(lab, "source").split(None, 1)[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{lab.ports['target']} {source_key}\n")
    started = time.monotonic()
    with pytest.raises(HostKeyError) as e:
        wait_for_ssh(_target(lab, known), "127.0.0.1", timeout=300)
    assert time.monotonic() - started < 60, "a key mismatch must not be retried until the timeout"
    assert "differs from the one pinned in" in str(e.value) and str(known) in str(e.value)


def test_unpinned_key_fails_at_once(lab, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    # the name ssh looks the key up by: [address]:port for a port other than 22 (no alias here)
    with pytest.raises(HostKeyError, match=rf"no host key for \[127\.0\.0\.1\]:{lab.ports['target']} is pinned"):
        wait_for_ssh(_target(lab, known), "127.0.0.1", timeout=300)


def test_nothing_listening_times_out_cleanly(lab, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    known = tmp_path / "known_hosts"
    known.write_text(_pinned_line(lab, "target") + "\n")
    started = time.monotonic()
    with pytest.raises(SshTimeout, match="did not answer within 5 s"):
        wait_for_ssh(_target(lab, known, port=port), "127.0.0.1", timeout=5)
    assert time.monotonic() - started < 30


# --- warmup (command) → replicate → teardown, zfsrep running in `source` ----------------------


def _zfsrep(lab, *args, timeout=900):
    proc = lab.run_zfsrep([*args, "--json"], check=False, timeout=timeout)
    data = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, data, proc.stderr


def _pool_imported(lab) -> bool:
    return lab.ssh("target", "zpool list -H -o name backup", check=False).returncode == 0


def test_warmup_replicate_teardown_exports_the_pool(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create tank/data && head -c 300000 /dev/urandom > /tank/data/f.bin")
    lab.ssh("source", "zfs snapshot tank/data@zfsrep_hourly_2026-01-01T00:00:00Z")
    lab.ssh("target", "zpool export backup")  # the target rests with its pool exported
    assert not _pool_imported(lab)
    doc = {
        "state_dir": "/var/lib/zfsrep",
        "lock_dir": "/run/zfsrep",
        "datasets": [{"name": "tank/data"}],
        "targets": {"backup": {
            "host": "target",
            "dataset": "backup/replica",
            "warmup": {
                "type": "command",
                # stands in for wake-on-LAN / `ssh archiver nixos-rebuild switch`
                "command": ["ssh", "target", "touch", "/run/zfsrep-woken"],
                "remote_command": ["test", "-e", "/run/zfsrep-woken"],
                "teardown_command": ["ssh", "target", "rm", "-f", "/run/zfsrep-woken"],
                "pool": "backup",
                "ssh_timeout": "2m",
            },
        }},
    }
    lab.ssh("source", f"mkdir -p /etc/zfsrep && rm -f /var/lib/zfsrep/warmup-backup.json && cat > {CONFIG}",
            input=tomli_w.dumps(doc))

    code, data, err = _zfsrep(lab, "warmup")
    assert code == 0, err
    steps = "\n".join(data["items"][0]["details"]["steps"])
    assert "answered with the pinned host key" in steps and "imported pool backup" in steps
    assert _pool_imported(lab)

    again, data2, err2 = _zfsrep(lab, "warmup")  # idempotent: the pool is only checked
    assert again == 0, err2
    assert "pool backup is imported" in "\n".join(data2["items"][0]["details"]["steps"])

    code, data, err = _zfsrep(lab, "replicate")
    assert code == 0, f"replicate: {err}"
    snaps = lab.ssh("target", "zfs list -H -t snapshot -o name -r backup/replica").stdout
    assert "backup/replica/tank/data@zfsrep_hourly_2026-01-01T00:00:00Z" in snaps

    code, data, err = _zfsrep(lab, "teardown")
    assert code == 0, err
    steps = "\n".join(data["items"][0]["details"]["steps"])
    assert "exported pool backup" in steps
    assert not _pool_imported(lab)
    assert lab.ssh("target", "test -e /run/zfsrep-woken", check=False).returncode == 1

    # teardown again (ExecStopPost after a second run): nothing to do, exit 0
    code, data, err = _zfsrep(lab, "teardown")
    assert code == 0 and data["items"][0]["status"] == "nothing-to-do", err
    lab.ssh("target", "zpool import -N backup")  # leave the lab as found


# --- a target without `host`: the command warmup prints its address, the key is pinned by name --

TARGET_ADDRESS = "10.77.0.2"  # the target VM on the private link, as an EC2 warmup would report it


def _hostless_doc(known_hosts: str) -> dict:
    return {
        "state_dir": "/var/lib/zfsrep",
        "lock_dir": "/run/zfsrep",
        "datasets": [{"name": "tank/data"}],
        "targets": {"offsite": {
            "dataset": "backup/replica",
            "known_hosts": known_hosts,
            "warmup": {
                "type": "command",
                # prints progress, then the address (last line), as a launch script would
                "command": ["sh", "-c", f"ssh target touch /run/zfsrep-woken && echo started && echo {TARGET_ADDRESS}"],
                "teardown_command": ["ssh", "target", "rm", "-f", "/run/zfsrep-woken"],
                "pool": "backup",
                "ssh_timeout": "2m",
            },
        }},
    }


def _target_host_key(lab) -> str:
    return lab.ssh("target", "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]


def _write_hostless(lab, known_line: str) -> None:
    lab.ssh("source", "mkdir -p /etc/zfsrep && rm -f /var/lib/zfsrep/warmup-offsite.json "
                      f"&& printf '%s\\n' {shlex.quote(known_line)} > /etc/zfsrep/offsite_known_hosts "
                      f"&& cat > {CONFIG}", input=tomli_w.dumps(_hostless_doc("/etc/zfsrep/offsite_known_hosts")))


def test_hostless_target_verifies_by_its_name_at_the_printed_address(clean_lab):
    lab = clean_lab
    lab.ssh("source", "zfs create tank/data && head -c 500000 /dev/urandom > /tank/data/f.bin "
                      "&& zfs snapshot tank/data@zfsrep_hourly_2026-01-01T00:00:00Z")
    lab.ssh("target", "zpool export backup")
    key = " ".join(_target_host_key(lab))
    _write_hostless(lab, f"offsite {key}")  # pinned under the target's name only, not the address

    code, data, err = _zfsrep(lab, "warmup")
    assert code == 0, err
    steps = "\n".join(data["items"][0]["details"]["steps"])
    assert "answered with the pinned host key" in steps and "imported pool backup" in steps, steps
    assert TARGET_ADDRESS in steps, steps

    code, data, err = _zfsrep(lab, "replicate")
    assert code == 0, f"replicate: {err}"
    snaps = lab.ssh("target", "zfs list -H -t snapshot -o name -r backup/replica").stdout.split()
    assert "backup/replica/tank/data@zfsrep_hourly_2026-01-01T00:00:00Z" in snaps
    lab.ssh("target", "zfs mount backup/replica/tank/data || true")
    source_sum = lab.ssh("source", "sha256sum < /tank/data/f.bin").stdout.split()[0]
    mountpoint = lab.ssh("target", "zfs get -H -o value mountpoint backup/replica/tank/data").stdout.strip()
    target_sum = lab.ssh("target", f"sha256sum < {shlex.quote(mountpoint)}/f.bin").stdout.split()[0]
    assert source_sum == target_sum

    code, data, err = _zfsrep(lab, "teardown")
    assert code == 0, err
    assert "exported pool backup" in "\n".join(data["items"][0]["details"]["steps"])
    assert not _pool_imported(lab)
    assert lab.ssh("target", "test -e /run/zfsrep-woken", check=False).returncode == 1
    lab.ssh("target", "zpool import -N backup")


def test_hostless_target_with_the_key_pinned_by_address_fails_naming_the_alias(clean_lab):
    lab = clean_lab
    lab.ssh("target", "zpool export backup")
    key = " ".join(_target_host_key(lab))
    _write_hostless(lab, f"{TARGET_ADDRESS} {key}")  # the pre-alias way: by the address
    try:
        started = time.monotonic()
        code, data, err = _zfsrep(lab, "warmup")
        assert code == 1, err
        assert time.monotonic() - started < 90, "an unpinned key must not be retried until ssh_timeout"
        error = data["items"][0]["error"]
        assert error.startswith("target offsite: no host key for offsite is pinned in /etc/zfsrep/offsite_known_hosts"), error
        assert "add the target's key there as `offsite <key type> <key>`" in error, error
        assert not _pool_imported(lab)
    finally:
        lab.ssh("source", "rm -f /var/lib/zfsrep/warmup-offsite.json")
        lab.ssh("target", "rm -f /run/zfsrep-woken; zpool list backup >/dev/null 2>&1 || zpool import -N backup")
