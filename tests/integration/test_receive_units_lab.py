"""The receiving side set up as docs/append-only.md says for a Debian target (the lab mirror of
checks/vm-append-only.nix and its role, services.zfsrep.receive), on real OpenZFS and systemd:
the user `zfsrep-recv` with `zfs allow` without destroy on its root, its `authorized_keys` line
forcing `/usr/local/bin/zfsrep serve --root ROOT`, a config with only `[receive]`, and the units
`zfsrep systemd render` writes from it (only zfs-prune-received), enabled. From `source`:
replicate through serve; the same key refused for `zfs destroy -r` with every snapshot still
there; the target's own prune service thins by its retention keeping the newest, and the next
incremental starts from what it kept."""

from __future__ import annotations

import json

import pytest
import tomli_w

from tests.integration.test_replicate_lab import assert_same, item, replicate_ok, snapshots, write_config, write_files

pytestmark = pytest.mark.lab

USER = "zfsrep-recv"
ROOT = "backup/hosts/source"
KEY = "/root/.ssh/recv_ed25519"
DS = "tank/data"
COPY = f"{ROOT}/{DS}"
UNIT_DIR = "/etc/systemd/system"
CONFIG = "/etc/zfsrep/config.toml"
ZERO = {"frequent": 0, "hourly": 0, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0}


def hourly(hour):
    return f"zfsrep_hourly_2026-01-01T{hour:02d}:00:00Z"


def take(lab, *hours):
    for hour in hours:
        write_files(lab, f"/{DS}", 2, 100_000, hour + 1)
        lab.ssh("source", f"zfs snapshot {DS}@{hourly(hour)}")


def set_up_target(lab):
    """The target's side, step by step as docs/append-only.md "On the target" gives it."""
    lab.ssh("source", f"test -f {KEY} || ssh-keygen -q -t ed25519 -N '' -C zfsrep-recv -f {KEY}")
    pub = lab.ssh("source", f"cat {KEY}.pub").stdout.strip()
    lab.ssh("target", ["sh", "-c", """
set -e
id -u "$1" >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/zfsrep-recv --shell /bin/sh "$1"
zfs create -p -o canmount=off "$2"
zfs allow -u "$1" create,receive,mount,hold,release,canmount "$2"
mkdir -p /var/lib/zfsrep-recv/.ssh
printf 'restrict,command="/usr/local/bin/zfsrep serve --root %s" %s\\n' "$2" "$3" > /var/lib/zfsrep-recv/.ssh/authorized_keys
chown -R "$1:" /var/lib/zfsrep-recv/.ssh; chmod 700 /var/lib/zfsrep-recv/.ssh; chmod 600 /var/lib/zfsrep-recv/.ssh/authorized_keys
rm -rf /var/lib/zfsrep
""", "setup", USER, ROOT, pub])
    doc = {"state_dir": "/var/lib/zfsrep", "lock_dir": "/run/zfsrep", "retention": ZERO,
           "receive": {"sources": {"source": {"root": ROOT, "retention": {"hourly": 2}}}}}
    lab.ssh("target", f"mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))
    lab.run_zfsrep(["config", "check", "--config", CONFIG], host="target")
    out = lab.run_zfsrep(["systemd", "render", "--config", CONFIG, "--out", UNIT_DIR], host="target").stdout
    written = sorted(line.split()[-1] for line in out.splitlines() if line.startswith("wrote "))
    assert written == [f"{UNIT_DIR}/zfs-prune-received.service", f"{UNIT_DIR}/zfs-prune-received.timer"], out
    verified = lab.ssh("target", f"cd {UNIT_DIR} && systemd-analyze verify zfs-prune-received.service "
                                 "zfs-prune-received.timer", check=False)
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
    lab.ssh("target", "systemctl daemon-reload && systemctl enable --now zfs-prune-received.timer")


@pytest.fixture
def receiving_target(clean_lab):
    try:
        set_up_target(clean_lab)
        yield clean_lab
    finally:
        # leave the VM as found: no units, no user, no delegated permission, no target config
        clean_lab.ssh("target", f"""
            systemctl disable --now zfs-prune-received.timer 2>/dev/null; systemctl stop zfs-prune-received.service
            rm -f {UNIT_DIR}/zfs-prune-received.service {UNIT_DIR}/zfs-prune-received.timer {CONFIG}
            systemctl daemon-reload; systemctl reset-failed 2>/dev/null
            zfs unallow -u {USER} {ROOT} 2>/dev/null; userdel -r {USER} 2>/dev/null; rm -rf /var/lib/zfsrep; true""",
                      check=False)


def test_a_debian_target_set_up_as_documented_receives_refuses_destroy_and_prunes_itself(receiving_target):
    lab = receiving_target
    assert lab.ssh("target", "systemctl is-enabled zfs-prune-received.timer").stdout.strip() == "enabled"
    assert "destroy" not in lab.ssh("target", f"zfs allow {ROOT}").stdout

    lab.ssh("source", f"rm -rf /var/lib/zfsrep && zfs create {DS}")
    write_config(lab, [DS], target={"dataset": ROOT, "user": USER, "identity_file": KEY, "append_only": True})
    take(lab, 0, 1, 2, 3)
    replicate_ok(lab)
    names = [hourly(h) for h in range(4)]
    assert list(snapshots(lab, "target", COPY)) == names
    assert_same(lab, DS, names, parent=ROOT)

    # the source's key, by hand, as an attacker on the source would use it
    before = lab.ssh("target", "zfs list -H -p -t snapshot -o name,guid -s name -r backup").stdout
    attack = lab.ssh("source", ["ssh", "-i", KEY, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                f"{USER}@target", f"zfs destroy -r {ROOT}"], check=False)
    assert attack.returncode == 77 and "refused" in attack.stderr, (attack.returncode, attack.stderr)
    assert lab.ssh("target", "zfs list -H -p -t snapshot -o name,guid -s name -r backup").stdout == before

    # the target's own service (as root, the rendered unit): hourly = 2 keeps the two newest
    lab.ssh("target", "systemctl start zfs-prune-received.service", timeout=900)
    assert lab.ssh("target", "systemctl show -P User zfs-prune-received.service").stdout.strip() == ""
    assert list(snapshots(lab, "target", COPY)) == names[2:]
    last = json.loads(lab.ssh("target", "cat /var/lib/zfsrep/last-prune-received.json").stdout)
    assert last["verb"] == "prune-received" and last["exit_code"] == 0, last

    # the next incremental starts from the base the target kept
    take(lab, 4)
    it = item(replicate_ok(lab), DS)
    assert it["status"] == "ok" and it["from_snapshot"] == hourly(3) and it["to_snapshot"] == hourly(4)
    assert_same(lab, DS, [hourly(3), hourly(4)], parent=ROOT)
