"""`zfsrep status` against real OpenZFS after a real `zfsrep replicate` (source → target).

Asserts exit codes, the newest snapshot names and creation times as ZFS reports them on the
target, how far the target is behind, and the Prometheus textfile written in the VM.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import tomli_w

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"
PARENT = "backup/replica"


def write_config(lab):
    doc = {
        "state_dir": "/var/lib/zfsrep",
        "lock_dir": "/run/zfsrep",
        "status": {"warn": "26h", "crit": "50h"},
        "datasets": [{"name": "tank/st"}],
        "targets": {"backup": {"host": "target", "dataset": PARENT}},
    }
    put_config(lab, doc)


def put_config(lab, doc):
    """The config, and an empty state dir: nothing an earlier test recorded may count here."""
    lab.ssh("source", f"rm -rf /var/lib/zfsrep && mkdir -p /etc/zfsrep && cat > {CONFIG}",
            input=tomli_w.dumps(doc))


def snapshot_now(lab):
    """A zfsrep-named snapshot stamped by the VM's clock (as `zfsrep snapshot` would name it);
    returns (name, the time in its name)."""
    name = lab.ssh("source", 'n=zfsrep_hourly_$(date -u +%Y-%m-%dT%H:%M:%SZ) && '
                             'zfs snapshot "tank/st@$n" && echo "$n"').stdout.strip()
    time.sleep(1.1)  # the next name must differ
    return name, datetime.strptime(name, "zfsrep_hourly_%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def status(lab, *args):
    proc = lab.run_zfsrep(["status", "--json", *args], check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_live_status_after_a_real_replicate(clean_lab):
    lab = clean_lab
    write_config(lab)
    lab.ssh("source", "zfs create tank/st && head -c 2000000 /dev/urandom > /tank/st/data.bin")
    first, first_named = snapshot_now(lab)
    proc = lab.run_zfsrep(["replicate", "--json"], check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr

    code, data = status(lab, "--live")
    assert code == 0, data
    (row,) = data["items"]
    assert row["state"] == "OK" and data["source"] == "live"
    assert row["newest_target"] == first and row["newest_source"] == first and row["behind"] == 0
    created = int(lab.ssh("target", ["zfs", "get", "-H", "-p", "-o", "value", "creation",
                                     f"{PARENT}/tank/st@{first}"]).stdout)
    assert row["newest_target_time"] == created and row["age_basis"] == "snapshot"
    assert row["last_success"] is not None  # from the state replicate wrote

    second, _ = snapshot_now(lab)  # taken, not yet sent
    code, data = status(lab, "--live")
    (row,) = data["items"]
    assert code == 0 and row["newest_source"] == second and row["newest_target"] == first
    assert row["behind"] == 1

    # the copy is older than a 1-second warn threshold: WARNING, exit 1, in state and live mode
    assert status(lab, "--live", "--warn", "1s", "--crit", "1h")[0] == 1
    # from the state dir the copy's time is the one in its zfsrep name
    code, data = status(lab, "--warn", "1s", "--crit", "1h")
    (row,) = data["items"]
    assert code == 1 and data["source"] == "state" and row["state"] == "WARNING"
    assert row["newest_target"] == first and row["newest_target_time"] == first_named

    # the textfile carries what ZFS reports on the target
    proc = lab.run_zfsrep(["status", "--live", "--prometheus", "/tmp/zfsrep.prom"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prom = lab.ssh("source", ["cat", "/tmp/zfsrep.prom"]).stdout
    assert f'zfsrep_newest_snapshot_timestamp_seconds{{dataset="tank/st",target="backup"}} {created}' in prom
    assert 'zfsrep_status{dataset="tank/st",target="backup"} 0' in prom
    assert 'zfsrep_last_run_success{dataset="tank/st",target="backup"} 1' in prom


def test_live_status_with_the_target_unreachable_is_unknown(clean_lab):
    lab = clean_lab
    doc = {"state_dir": "/var/lib/zfsrep", "datasets": [{"name": "tank/st"}],
           "targets": {"gone": {"host": "10.77.0.99", "dataset": PARENT,
                                "ssh_options": ["ConnectTimeout=3"]}}}
    put_config(lab, doc)
    lab.ssh("source", "zfs create tank/st")
    code, data = status(lab, "--live")
    assert code == 3, data
    assert data["items"][0]["state"] == "UNKNOWN"
    assert "cannot check gone live" in data["items"][0]["reason"]
