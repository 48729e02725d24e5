"""`zfsrep systemd render` units under real systemd with real OpenZFS (the `source` VM, Debian 12,
systemd 252): the pip-install path of docs/systemd.md, and the scenarios of the NixOS checks
(checks/vm-replicate.nix, checks/vm-report.nix).

Render into /etc/systemd/system, `systemd-analyze verify`, `systemctl start` (oneshot: it waits
for ExecStopPost too), then assert real outcomes: the command warmup's marker, snapshot GUIDs and
file checksums on `target`, and the documents report-result posted to an HTTP sink on this host
(the guest reaches the host's 127.0.0.1 as 10.0.2.2). Secrets travel as systemd credentials
(ssh key, webhook and ping URLs), which also proves the stop phase can still read them.
"""

from __future__ import annotations

import json
import re

import pytest
import tomli_w

from tests.integration.test_replicate_lab import PARENT, assert_same

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"
SECRETS = "/etc/zfsrep/secrets"
UNIT_DIR = "/etc/systemd/system"
STATE = "/var/lib/zfsrep"
MARKER = f"{STATE}/warmed"
UNITS = ("zfs-snapshot", "zfs-replicate", "zfs-verify", "zfs-scrub-targets")
CREDENTIALS = {"ssh-key": "/root/.ssh/id_ed25519", "webhook-url": None, "ping-url": None}


@pytest.fixture
def sink(httpserver_ipv4):
    """The HTTP sink on this host: every request answered 200 and logged."""
    httpserver_ipv4.expect_request(re.compile(r"^/(hook|ping/.*)$")).respond_with_data("OK")
    return httpserver_ipv4


def webhook_events(sink, verb):
    return [json.loads(request.get_data()) for request, _ in sink.log
            if request.path == "/hook" and json.loads(request.get_data()).get("verb") == verb]


def pings(sink):
    return [request.path for request, _ in sink.log if request.path.startswith("/ping/")]


def config_doc(*, port=None, compress=None, mbuffer=None):
    target = {
        "host": "target",
        "dataset": PARENT,
        "identity_file": "%d/ssh-key",
        "known_hosts": "/etc/zfsrep/known_hosts",
        "warmup": {
            "type": "command",
            # runs in ExecStartPre, inside the unit's sandbox: the state dir is writable
            "command": ["/bin/sh", "-c", f'echo "$INVOCATION_ID" > {MARKER}'],
            "ssh_timeout": "10s",
        },
    }
    if port is not None:
        target["port"] = port
    # the stream stages then run under the units' syscall filter (checks/lib.nix sets the same)
    if compress is not None:
        target["compress"] = compress
    if mbuffer is not None:
        target["mbuffer"] = mbuffer
    return {
        "state_dir": STATE,
        "lock_dir": "/run/zfsrep",
        "datasets": [{"name": "tank/data"}],
        "targets": {"target": target},
        "report": {
            "retries": 1,
            "webhook": {"url_file": "%d/webhook-url"},
            "healthchecks": {"url_file": "%d/ping-url"},
        },
    }


def write_config(lab, doc):
    lab.ssh("source", f"cat > {CONFIG}", input=tomli_w.dumps(doc))


def prepare_source(lab, sink, user=None, **stages):
    """Data, secrets (0600 root, as docs/systemd.md says), config, and no state of earlier tests."""
    base = f"http://{lab.host_ip_from_guest}:{sink.port}"
    lab.ssh("target", ["zfs", "create", PARENT])
    lab.ssh("source", "zfs create tank/data && head -c 3000000 /dev/urandom > /tank/data/one && "
                      "mkdir -p /tank/data/sub && head -c 500000 /dev/urandom > /tank/data/sub/two")
    lab.ssh("source", f"""set -e
        rm -rf {STATE} /run/zfsrep {UNIT_DIR}/zfs-*.service.d
        mkdir -p {SECRETS} && chmod 700 {SECRETS}
        install -m 600 /root/.ssh/id_ed25519 {SECRETS}/ssh-key
        umask 077; echo {base}/hook > {SECRETS}/webhook-url; echo {base}/ping/0f1e2d > {SECRETS}/ping-url
        grep '^target' /root/.ssh/known_hosts > /etc/zfsrep/known_hosts; chmod 644 /etc/zfsrep/known_hosts
    """)
    write_config(lab, config_doc(**stages))


def render(lab, *options):
    args = ["systemd", "render", "--config", CONFIG, "--out", UNIT_DIR, "--verify", "--scrub",
            *(f"--credential={name}={SECRETS}/{name}" for name in CREDENTIALS), *options]
    out = lab.run_zfsrep(args).stdout
    files = [f"{u}.{kind}" for u in UNITS for kind in ("service", "timer")]
    assert all(f"wrote {UNIT_DIR}/{f}" in out for f in files), out
    verified = lab.ssh("source", f"cd {UNIT_DIR} && systemd-analyze verify {' '.join(files)}", check=False)
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
    lab.ssh("source", "systemctl daemon-reload")


def start(lab, unit):
    """`systemctl start` (waits for the oneshot run, ExecStopPost included); (ok, journal of the run)."""
    proc = lab.ssh("source", f"systemctl start {unit}.service", check=False, timeout=1200)
    journal = lab.ssh("source", f"journalctl -u {unit}.service -o cat --no-pager -n 60").stdout
    return proc.returncode == 0, journal


def show(lab, unit, *props):
    out = lab.ssh("source", ["systemctl", "show", *(f"--property={p}" for p in props), f"{unit}.service"]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture
def units_installed(clean_lab):
    yield clean_lab
    # leave the VM as found: no units, no user, no delegated permission
    clean_lab.ssh("source", f"""
        systemctl stop {' '.join(u + '.timer' for u in UNITS)} {' '.join(u + '.service' for u in UNITS)} 2>/dev/null
        for u in {' '.join(UNITS)}; do rm -f {UNIT_DIR}/$u.service {UNIT_DIR}/$u.timer; done
        systemctl daemon-reload; systemctl reset-failed 2>/dev/null
        userdel zfsrep 2>/dev/null; rm -rf {STATE} /run/zfsrep; true""", check=False)


ROOT_STAGES = {"compress": "lz4", "mbuffer": "16M"}
USER_STAGES = {"compress": "zstd", "mbuffer": "16M"}  # as checks/vm-replicate.nix


def test_root_units_replicate_report_and_report_a_failed_run(units_installed, sink):
    lab = units_installed
    prepare_source(lab, sink, **ROOT_STAGES)
    render(lab)

    ok, journal = start(lab, "zfs-snapshot")
    assert ok, journal
    taken = lab.ssh("source", "zfs list -H -t snapshot -o name tank/data").stdout.split()
    assert len(taken) == 1 and taken[0].startswith("tank/data@zfsrep_"), taken
    (snapshot_event,) = webhook_events(sink, "snapshot")
    assert snapshot_event["success"] is True and snapshot_event["service_result"] == "success", snapshot_event

    # a good run: warmup marker, data on target, success reported to both sinks
    ok, journal = start(lab, "zfs-replicate")
    assert ok, journal
    (event,) = webhook_events(sink, "replicate")
    assert event["success"] is True, event
    assert event["service_result"] == "success" and event["exit_status"] == 0, event
    assert event["unit"] == "zfs-replicate.service", event
    assert lab.ssh("source", f"cat {MARKER}").stdout.strip() == event["invocation_id"], "warmup did not run in this run"
    assert_same(lab, "tank/data")
    assert [p for p in pings(sink) if not p.endswith("/start")] == ["/ping/0f1e2d"] * 2  # snapshot, replicate
    assert "kept 3 credential(s)" in journal and "removed /run/zfsrep/credentials/zfs-replicate" in journal, journal

    # verify and scrub timers' services, with the same warmup and report hooks
    for unit, verb in (("zfs-verify", "verify"), ("zfs-scrub-targets", "scrub")):
        lab.ssh("source", f"rm -f {MARKER}")
        ok, journal = start(lab, unit)
        assert ok, journal
        (event,) = webhook_events(sink, verb)
        assert event["success"] is True and event["service_result"] == "success", event
        assert lab.ssh("source", f"cat {MARKER}").stdout.strip() == event["invocation_id"], unit
    (verified,) = webhook_events(sink, "verify")[0]["items"]
    assert verified["status"] == "ok", verified
    (scrubbed,) = webhook_events(sink, "scrub")[0]["items"]
    assert scrubbed["status"] == "ok" and scrubbed["target"] == "target", scrubbed
    assert "scan: scrub repaired 0B" in lab.ssh("target", "zpool status backup").stdout

    # the target unreachable (nothing listens on port 2): the failure reaches the sinks
    write_config(lab, config_doc(port=2, **ROOT_STAGES))
    ok, journal = start(lab, "zfs-replicate")
    assert not ok, journal
    seen = show(lab, "zfs-replicate", "Result", "ExecMainStatus")
    assert seen["Result"] == "exit-code", seen
    failed = webhook_events(sink, "replicate")[-1]
    assert failed["success"] is False, failed
    assert failed["service_result"] == "exit-code", failed
    assert failed["exit_status"] == int(seen["ExecMainStatus"]) != 0, (failed, seen)
    assert any("target" in e for e in failed["errors"]), failed
    assert pings(sink)[-1] == "/ping/0f1e2d/fail", pings(sink)

    # reachable again: the next run catches up incrementally and reports success
    write_config(lab, config_doc(**ROOT_STAGES))
    lab.ssh("source", "head -c 700000 /dev/urandom > /tank/data/three && zfs snapshot tank/data@manual-later")
    ok, journal = start(lab, "zfs-replicate")
    assert ok, journal
    assert webhook_events(sink, "replicate")[-1]["success"] is True
    assert_same(lab, "tank/data")


def test_dedicated_user_units_get_zfs_allow_only_during_the_run(units_installed, sink):
    lab = units_installed
    prepare_source(lab, sink, **USER_STAGES)
    lab.ssh("source", f"useradd --system --home-dir {STATE} --shell /usr/sbin/nologin zfsrep")
    render(lab, "--user", "zfsrep")

    for unit in ("zfs-snapshot", "zfs-replicate", "zfs-verify", "zfs-scrub-targets"):
        ok, journal = start(lab, unit)
        assert ok, journal
        assert show(lab, unit, "User")["User"] == "zfsrep"
    events = [e for verb in ("snapshot", "replicate", "verify", "scrub") for e in webhook_events(sink, verb)]
    assert [e["success"] for e in events] == [True] * 4, events
    assert_same(lab, "tank/data")
    owner = lab.ssh("source", f"stat -c %U {STATE}/last-replicate.json {MARKER}").stdout.split()
    assert owner == ["zfsrep", "zfsrep"], owner
    allowed = lab.ssh("source", "zfs allow tank/data").stdout
    assert "zfsrep" not in allowed, f"permissions left behind:\n{allowed}"
    left = lab.ssh("source", "ls -A /run/zfsrep/credentials").stdout
    assert left.strip() == "", f"kept credentials left behind: {left}"


def test_a_switch_during_a_run_still_undoes_what_the_run_did(units_installed, sink):
    """As `nixos-rebuild switch` does mid-run: the config and the units are rewritten and systemd
    reloaded while zfs-replicate runs. systemd then takes the run's ExecStopPost= from the new unit,
    whose config names another dataset and no warmup; the run must still revoke the `zfs allow` it
    got on tank/data and tear down the target it warmed up (zfsrep/unit_run.py)."""
    lab = units_installed
    prepare_source(lab, sink)
    lab.ssh("source", f"useradd --system --home-dir {STATE} --shell /usr/sbin/nologin zfsrep "
                      "&& zfs create tank/other && zfs snapshot tank/data@zfsrep_hourly_2026-01-01T00:00:00Z")
    before = config_doc()
    target = before["targets"]["target"]
    target["rate_limit"] = "150k"  # ~3.5 MB in ~25 s: the run lasts long enough to switch during it
    target["warmup"]["teardown_command"] = ["/bin/sh", "-c", f'echo "$INVOCATION_ID" > {STATE}/torn-down']
    write_config(lab, before)
    render(lab, "--user", "zfsrep")

    lab.ssh("source", "systemctl start --no-block zfs-replicate.service")
    # the switch lands in ExecStart (replicate sending); one during an ExecStartPre= step whose line
    # the new unit lacks ends the run instead (systemd: "Current command vanished from the unit file")
    lab.ssh("source", "for i in $(seq 600); do [ \"$(systemctl show -P MainPID zfs-replicate.service)\" != 0 ] "
                      "&& pgrep -a -x zfs | grep -q ' send ' && exit 0; sleep 0.2; done; exit 1", timeout=200)
    assert "zfsrep" in lab.ssh("source", "zfs allow tank/data").stdout

    after = config_doc()
    after["datasets"] = [{"name": "tank/other"}]
    del after["targets"]["target"]["warmup"]
    write_config(lab, after)
    render(lab, "--user", "zfsrep")  # also `systemctl daemon-reload`
    stop_post = lab.ssh("source", "systemctl show -P ExecStopPost zfs-replicate.service").stdout
    assert "teardown" in stop_post and "--this-run" in stop_post, stop_post
    assert show(lab, "zfs-replicate", "ActiveState")["ActiveState"] == "activating", "the run ended before the switch"

    lab.ssh("source", "while systemctl show -P ActiveState zfs-replicate.service | grep -qx 'activating\\|deactivating'; "
                      "do sleep 1; done", timeout=900)  # the run, then its ExecStopPost
    journal = lab.ssh("source", "journalctl -u zfs-replicate.service -o cat --no-pager -n 80").stdout
    (event,) = webhook_events(sink, "replicate")
    assert event["success"] is True, (event, journal)
    assert_same(lab, "tank/data")  # the run replicated what it started with
    allowed = lab.ssh("source", "zfs allow tank/data; zfs allow tank/other").stdout
    assert "zfsrep" not in allowed, f"permissions left behind:\n{allowed}\n{journal}"
    torn = lab.ssh("source", f"cat {STATE}/torn-down", check=False).stdout.strip()
    assert torn and torn == event["invocation_id"], f"the run's target was not torn down:\n{journal}"
