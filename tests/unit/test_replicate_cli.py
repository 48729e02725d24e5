"""`zfsrep replicate` argument and config errors: fixed exit codes, one actionable line."""

from __future__ import annotations

import json
import subprocess
import sys

CONFIG = """
state_dir = "{state}"
lock_dir = "{state}/lock"
[[datasets]]
name = "tank/data"
[targets.backup]
host = "backup.example"
dataset = "backup/replica"
"""


def run(tmp_path, *args, config=CONFIG):
    path = tmp_path / "config.toml"
    path.write_text(config.format(state=tmp_path / "state"))
    return subprocess.run([sys.executable, "-m", "zfsrep", "replicate", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=120)


def test_unknown_target_is_a_usage_error(tmp_path):
    proc = run(tmp_path, "--target", "nope")
    assert proc.returncode == 2
    assert (f"no target named 'nope' in {tmp_path / 'config.toml'} (known: backup); check --target, "
            "or add [targets.nope] to the config") in proc.stderr


def test_unconfigured_dataset_is_a_usage_error(tmp_path):
    proc = run(tmp_path, "--dataset", "tank/other")
    assert proc.returncode == 2 and "tank/other is not configured" in proc.stderr


def test_no_targets_fails_with_json_and_writes_the_state(tmp_path):
    config = 'state_dir = "{state}"\nlock_dir = "{state}/lock"\n[[datasets]]\nname = "tank/data"\n'
    proc = run(tmp_path, "--json", config=config)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["verb"] == "replicate" and data["exit_code"] == 1
    assert "nothing to replicate" in data["errors"][0]
    # the interpreter, imports and the config, before the run began
    assert 0 < data["phases"]["startup"] < 120
    saved = json.loads((tmp_path / "state" / "last-replicate.json").read_text())
    assert saved["errors"] == data["errors"]
