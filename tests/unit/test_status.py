"""`zfsrep status` from crafted state files: exact Nagios exit codes around each threshold,
per-target thresholds, --json, --prometheus."""

import json
import stat
import time
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from zfsrep import state
from zfsrep.cli import app

H = 3600


def snap_name(t):
    return "zfsrep_hourly_" + datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def lab(tmp_path):
    """A config (global warn 26h, crit 50h; target `fast` 1h/2h) and a writer for replication.json."""
    state_dir = tmp_path / "state"
    config = tmp_path / "config.toml"
    config.write_text(f'''state_dir = "{state_dir}"
[status]
warn = "26h"
crit = "50h"
[targets.offsite]
host = "backup.example.org"
dataset = "backup/web1"
[targets.fast]
host = "nas.example.org"
dataset = "nas/web1"
warn = "1h"
crit = "2h"
[[datasets]]
name = "tank/home"
targets = ["offsite"]
[[datasets]]
name = "tank/db"
targets = ["fast"]
''')

    def write(entries):
        """entries: {(target, dataset): dict}, times given as ages (seconds before now)."""
        now = time.time()
        data = {}
        for (target, dataset), e in entries.items():
            entry = {"status": e.get("status", "ok"), "bytes": 123, "seconds": 4.5,
                     "last_error": e.get("error")}
            if "success_age" in e:
                entry["last_success"] = now - e["success_age"]
            entry["last_attempt"] = now - e.get("attempt_age", e.get("success_age", 0))
            if "snapshot_age" in e:
                entry["newest_snapshot"] = snap_name(now - e["snapshot_age"])
            data.setdefault(target, {})[dataset] = entry
        state.write_json_atomic(state.replication_path(state_dir), data)

    return config, write


def status(config, *args):
    return CliRunner().invoke(app, ["status", "--config", str(config), *args])


@pytest.mark.parametrize("age, code, word", [
    (26 * H - 120, 0, "OK"),
    (26 * H + 120, 1, "WARNING"),
    (50 * H - 120, 1, "WARNING"),
    (50 * H + 120, 2, "CRITICAL"),
])
def test_exit_codes_around_the_global_thresholds(lab, age, code, word):
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": age, "snapshot_age": age},
           ("fast", "tank/db"): {"success_age": 60, "snapshot_age": 60}})
    result = status(config)
    assert result.exit_code == code, result.output
    assert result.stdout.startswith(f"ZFSREP {word} - ")


@pytest.mark.parametrize("age, code", [(H - 120, 0), (H + 120, 1), (2 * H - 120, 1), (2 * H + 120, 2)])
def test_a_target_s_own_thresholds_win(lab, age, code):
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": 60, "snapshot_age": 60},
           ("fast", "tank/db"): {"success_age": age}})  # no snapshot name: age since last success
    assert status(config).exit_code == code


@pytest.mark.parametrize("age, code", [(3 * H, 0), (5 * H, 1)])
def test_thresholds_from_the_command_line_win_over_the_config(lab, age, code):
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": age}, ("fast", "tank/db"): {"success_age": 60}})
    assert status(config, "--warn", "4h", "--crit", "6h", "--target", "offsite").exit_code == code


def test_a_replication_that_succeeds_with_stale_snapshots_is_still_stale(lab):
    """Snapshots stopped: replicate says "nothing to do" (a success), but the copy is 3 days old."""
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": 300, "snapshot_age": 72 * H},
           ("fast", "tank/db"): {"success_age": 60, "snapshot_age": 60}})
    result = status(config)
    assert result.exit_code == 2
    assert "CRITICAL: tank/home → offsite: newest copy zfsrep_hourly_" in result.stdout
    assert "is 3d old (warn 1d2h, crit 2d2h)" in result.stdout


def test_never_replicated_is_critical_and_a_missing_history_is_unknown(lab, tmp_path):
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": 60, "snapshot_age": 60}})
    result = status(config)
    assert result.exit_code == 2 and "CRITICAL: tank/db → fast: never replicated to fast" in result.stdout
    state.replication_path(tmp_path / "state").unlink()
    result = status(config)
    assert result.exit_code == 3 and result.stdout.startswith("ZFSREP UNKNOWN - 2 unknown")
    assert "has `zfsrep replicate` run on this host" in result.stdout


def test_config_and_usage_problems_are_unknown_not_critical(lab, tmp_path):
    config, _ = lab
    assert status(tmp_path / "missing.toml").exit_code == 3
    assert status(config, "--warn", "soon").exit_code == 3
    assert status(config, "--target", "nope").exit_code == 3
    assert status(config, "--warn", "5h", "--crit", "1h").exit_code == 3


def test_the_last_error_is_shown_with_the_age(lab):
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": 2 * H, "attempt_age": 60, "status": "failed",
                                      "error": "target offsite: cannot ssh to root@backup:22: timed out"},
           ("fast", "tank/db"): {"success_age": 60}})
    result = status(config)
    assert result.exit_code == 0  # still within the thresholds …
    assert "last attempt failed: target offsite: cannot ssh to root@backup:22: timed out" in result.stdout


def test_json_gives_every_pair(lab):
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": 27 * H, "snapshot_age": 27 * H},
           ("fast", "tank/db"): {"success_age": 60}})
    data = json.loads(status(config, "--json").stdout)
    assert data["state"] == "WARNING" and data["exit_code"] == 1 and data["source"] == "state"
    home, = [i for i in data["items"] if i["dataset"] == "tank/home"]
    assert home["state"] == "WARNING" and home["age_basis"] == "snapshot"
    assert 27 * H - 5 < home["age"] < 27 * H + 60
    assert home["newest_target"].startswith("zfsrep_hourly_") and home["warn"] == 26 * H
    db, = [i for i in data["items"] if i["dataset"] == "tank/db"]
    assert db["state"] == "OK" and db["age_basis"] == "success" and db["warn"] == H


def test_prometheus_textfile_is_written_atomically_with_every_metric(lab, tmp_path):
    config, write = lab
    write({("offsite", "tank/home"): {"success_age": 27 * H, "snapshot_age": 27 * H},
           ("fast", "tank/db"): {"success_age": 60, "status": "failed", "error": "boom"}})
    out = tmp_path / "textfile" / "zfsrep.prom"
    out.parent.mkdir()
    result = status(config, "--prometheus", str(out))
    assert result.exit_code == 1
    assert [p.name for p in out.parent.iterdir()] == ["zfsrep.prom"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    samples = {}
    for line in out.read_text().splitlines():
        if not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    home = '{dataset="tank/home",target="offsite"}'
    db = '{dataset="tank/db",target="fast"}'
    assert samples["zfsrep_status" + home] == 1 and samples["zfsrep_status" + db] == 0
    assert samples["zfsrep_last_run_success" + home] == 1 and samples["zfsrep_last_run_success" + db] == 0
    assert samples["zfsrep_last_run_bytes" + home] == 123 and samples["zfsrep_last_run_seconds" + db] == 4.5
    assert abs(samples["zfsrep_last_success_timestamp_seconds" + home] - (time.time() - 27 * H)) < 60
    assert "zfsrep_newest_snapshot_timestamp_seconds" + home in samples
    assert "zfsrep_newest_snapshot_timestamp_seconds" + db not in samples  # unknown, so left out
    assert abs(samples["zfsrep_status_timestamp_seconds"] - time.time()) < 60


def test_prometheus_into_a_missing_directory_is_unknown(lab, tmp_path):
    config, write = lab
    write({})
    result = status(config, "--prometheus", str(tmp_path / "nope" / "zfsrep.prom"))
    assert result.exit_code == 3 and "cannot write" in result.stdout


def test_recursive_children_from_the_history_get_their_own_rows(tmp_path):
    state_dir = tmp_path / "state"
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{state_dir}"\n[targets.t]\nhost = "h"\ndataset = "b/w"\n'
                      '[[datasets]]\nname = "tank/vm"\nrecursive = true\nexclude = ["tank/vm/scratch"]\n')
    now = time.time()
    entry = {"status": "ok", "last_success": now - 60, "last_attempt": now - 60}
    state.write_json_atomic(state.replication_path(state_dir), {"t": {
        "tank/vm": entry, "tank/vm/a": entry, "tank/vm/scratch": entry, "tank/vmx": entry}})
    data = json.loads(status(config, "--json").stdout)
    assert [i["dataset"] for i in data["items"]] == ["tank/vm", "tank/vm/a"]
