"""A state dir that cannot be written is a warning on every verb: the run's exit code stands, one
stderr line names the state dir and the fix, and --json carries it under ``warnings``. The state
dir here is a regular file (tests run as root, so a mode-0555 directory would still be writable)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from tests.unit.fake_zfs import FakeZfs
from tests.unit.getting_back_fakes import MoreZfs, connect_to, copy_to, target_zfs
from tests.unit.test_pool_status import CLEAN
from zfsrep import state
from zfsrep.actions import replicate, restore, rollback, scrub, snapshot, verify
from zfsrep.cli import app
from zfsrep.core.result import OK, ItemResult, RunResult
from zfsrep.execute import CommandResult
from zfsrep.targets import progress
from zfsrep.targets.access import Session
from zfsrep.targets.readiness import Readiness
from zfsrep.targets.record import read_record

CONFIG = """
state_dir = "{state}"
lock_dir = "{lock}"
[retention]
hourly = 2
[[datasets]]
name = "tank/home"
[targets.offsite]
host = "backup.example.org"
dataset = "backup/h"
"""

WARMUP = """
[targets.cold]
host = "cold.example.org"
dataset = "backup/h"
[targets.cold.warmup]
type = "command"
command = ["true"]
teardown_command = ["true"]
"""


@pytest.fixture
def blocked(tmp_path):
    """A config whose state_dir is a regular file."""
    state_file = tmp_path / "state"
    state_file.write_text("not a directory\n")
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(state=state_file, lock=tmp_path / "lock") + WARMUP)
    return path, state_file


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def warning_lines(stderr: str, state_file) -> list[str]:
    return [line for line in stderr.splitlines()
            if line.startswith("zfsrep: warning: ") and f"state_dir {state_file}" in line]


def assert_warned(r, state_file, verb: str) -> None:
    lines = warning_lines(r.stderr, state_file)
    assert any(f"cannot write the {verb} result" in line for line in lines), r.stderr
    line = next(line for line in lines if f"the {verb} result" in line)
    assert f"{state_file} is a file, not a directory" in line and "set state_dir to a directory" in line
    assert "`zfsrep status` and report-result will not see this run" in line


def test_the_problem_line_names_the_fix_for_each_cause(tmp_path):
    import errno

    d = tmp_path / "s"
    denied = state.problem(d, PermissionError(errno.EACCES, "Permission denied"), doing="write x", consequence="c")
    assert f"state_dir {d}: permission denied for user" in denied and "StateDirectory=" in denied
    assert "install -d -o" in denied and denied.endswith("; c")
    ro = state.problem(d, OSError(errno.EROFS, "Read-only file system"), doing="write x", consequence="c")
    assert "read-only file system" in ro and f"ReadWritePaths={d}" in ro
    full = state.problem(d, OSError(errno.ENOSPC, "No space left on device"), doing="write x", consequence="c")
    assert "free some space" in full
    (tmp_path / "f").write_text("")
    under_file = state.problem(tmp_path / "f" / "s", NotADirectoryError(errno.ENOTDIR, "Not a directory"),
                               doing="write x", consequence="c")
    assert f"{tmp_path / 'f'} is a file, not a directory" in under_file


def test_save_run_returns_the_warning_and_writes_nothing_for_a_dry_run(tmp_path):
    result = RunResult(verb="verify", started_at=1.0, items=[ItemResult(dataset="tank/home", status=OK)])
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "cannot write the verify result in state_dir" in state.save_run(blocker, result)
    assert state.save_run(tmp_path / "ok", result) is None
    assert state.read_run_result(tmp_path / "ok", "verify").items[0].status == OK
    result.dry_run = True
    assert state.save_run(blocker, result) is None


def test_reading_a_state_dir_that_is_a_file_finds_nothing(blocked):
    _, state_file = blocked
    assert state.read_run_result(state_file, "replicate") is None
    assert state.read_replication(state_file) == {}
    assert read_record(state_file, "cold") is None


# --- verbs that end with cli.common.finish ---------------------------------------------------


def test_snapshot_succeeds_and_warns(blocked, monkeypatch):
    path, state_file = blocked
    fake = FakeZfs().add("tank", "tank/home")
    monkeypatch.setattr(snapshot, "Runner", lambda: fake)
    r = invoke("snapshot", "-c", str(path), "--json")
    assert r.exit_code == 0, r.output
    assert_warned(r, state_file, "snapshot")
    data = json.loads(r.stdout)
    assert data["status"] == "ok" and len(data["warnings"]) == 1 and "state_dir" in data["warnings"][0]
    assert len(fake.names("tank/home")) == 1  # the snapshot was taken all the same


def test_dry_run_does_not_touch_the_state_dir_so_no_warning(blocked, monkeypatch):
    path, state_file = blocked
    monkeypatch.setattr(snapshot, "Runner", lambda: FakeZfs().add("tank", "tank/home"))
    r = invoke("snapshot", "-c", str(path), "--dry-run", "--json")
    assert r.exit_code == 0 and warning_lines(r.stderr, state_file) == []
    assert "warnings" not in json.loads(r.stdout)


@pytest.fixture
def sides(monkeypatch):
    source = MoreZfs().add("tank", "tank/home")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home")
    source.clock = int(time.time()) - 60
    for name in ("s1", "s2"):
        copy_to(target, source.add_snapshot(f"tank/home@{name}"), "backup/h/tank/home")
    monkeypatch.setattr(verify, "Runner", lambda: source)
    monkeypatch.setattr(verify, "connector", lambda *a, **k: connect_to(target))
    monkeypatch.setattr(rollback, "Runner", lambda: source)
    return source, target


def test_verify_keeps_its_exit_code_ok_and_failed(blocked, sides):
    path, state_file = blocked
    source, target = sides
    r = invoke("verify", "-c", str(path), "-d", "tank/home", "-t", "offsite")
    assert r.exit_code == 0, r.output
    assert "verified at @s2" in r.stdout
    assert_warned(r, state_file, "verify")

    target.add_snapshot("backup/h/tank/home@written")
    r = invoke("verify", "-c", str(path), "-d", "tank/home", "-t", "offsite", "--json")
    assert r.exit_code == 1  # a failed verify stays failed, with the warning alongside
    assert json.loads(r.stdout)["status"] == "failed"
    assert_warned(r, state_file, "verify")


def test_rollback_succeeds_and_warns(blocked, sides):
    path, state_file = blocked
    source, _ = sides
    r = invoke("rollback", "-c", str(path), "tank/home@s1", "--yes")
    assert r.exit_code == 0, r.output
    assert source.names("tank/home") == ["s1"]
    assert_warned(r, state_file, "rollback")


class Zpool:
    """Just enough of a target's `zpool` for a clean scrub."""

    host = "backup.example.org"

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def run(self, argv, *, check: bool = True, **_):
        self.commands.append(list(argv))
        out = CLEAN if argv[:2] == ["zpool", "status"] else ""
        return CommandResult(tuple(argv), 0, out, "")


def test_scrub_succeeds_and_warns(blocked, monkeypatch):
    path, state_file = blocked
    pool = Zpool()

    def connector(*_a, **_k):
        @contextmanager
        def connect(target):
            yield Session(target, pool, [])
        return connect

    monkeypatch.setattr(scrub, "connector", connector)
    r = invoke("scrub", "-c", str(path), "-t", "offsite", "--wait")
    assert r.exit_code == 0, r.output
    assert ["zpool", "scrub", "backup"] in pool.commands and "no errors" in r.stdout
    assert_warned(r, state_file, "scrub")


def test_restore_result_that_cannot_be_stored_keeps_its_exit_code(blocked, monkeypatch):
    # restore's data path needs real ZFS (lab tests); here only its CLI ending is under test
    path, state_file = blocked

    def restored(*_a, **_k):
        return RunResult(verb="restore", started_at=1.0, finished_at=2.0,
                         items=[ItemResult(dataset="tank/home", target="offsite", status=OK)])

    monkeypatch.setattr(restore, "run", restored)
    r = invoke("restore", "-c", str(path), "tank/home@s1", "-t", "offsite", "--json")
    assert r.exit_code == 0, r.output
    assert_warned(r, state_file, "restore")
    assert "state_dir" in json.loads(r.stdout)["warnings"][0]


# --- warmup / teardown --------------------------------------------------------------------------


def test_warmup_brings_the_target_up_and_warns_about_its_record_and_result(blocked, monkeypatch):
    path, state_file = blocked
    monkeypatch.setattr(progress, "wait_for_ssh", lambda *a, **k: Readiness(host="cold.example.org", attempts=1, seconds=0.0))
    r = invoke("warmup", "-c", str(path), "-t", "cold", "--json")
    assert r.exit_code == 0, r.output
    lines = warning_lines(r.stderr, state_file)
    assert any("cannot write the warmup record of target cold" in line for line in lines), r.stderr
    assert_warned(r, state_file, "warmup")
    data = json.loads(r.stdout)
    assert data["items"][0]["status"] == "ok" and len(data["warnings"]) == 2
    assert "warmup record" in data["items"][0]["details"]["warnings"][0]


def test_teardown_tears_down_and_warns(blocked):
    path, state_file = blocked
    r = invoke("teardown", "-c", str(path), "-t", "cold")
    assert r.exit_code == 0, r.output
    assert "ran locally: true" in r.stdout
    assert_warned(r, state_file, "teardown")


# --- replicate (cli.common.store with its replication history) ------------------------------


def test_replicate_keeps_its_exit_code_and_warns(tmp_path):
    state_file = tmp_path / "state"
    state_file.write_text("")
    path = tmp_path / "config.toml"
    # no targets: the run fails with exit 1 before any ssh; the state problem must not change that
    path.write_text(f'state_dir = "{state_file}"\nlock_dir = "{tmp_path / "lock"}"\n[[datasets]]\nname = "tank/data"\n')
    proc = subprocess.run([sys.executable, "-m", "zfsrep", "replicate", "--config", str(path), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["exit_code"] == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("zfsrep: warning:")]
    assert len(lines) == 1 and f"state_dir {state_file}" in lines[0] and "Traceback" not in proc.stderr
    assert data["warnings"] == [lines[0].removeprefix("zfsrep: warning: ")]


def _replicated(**kwargs):
    result = RunResult(verb="replicate", started_at=1.0, finished_at=2.0, dry_run=kwargs["dry_run"],
                       items=[ItemResult(dataset="tank/home", target="offsite", status=OK, sent=["s2"],
                                         to_snapshot="s2", bytes=4096)])
    return result


def test_replicate_success_warns_with_the_shared_line_and_json_warnings(blocked, monkeypatch):
    path, state_file = blocked
    monkeypatch.setattr(replicate, "run", lambda *_a, **k: _replicated(**k))
    r = invoke("replicate", "-c", str(path), "--json")
    assert r.exit_code == 0, r.output
    assert_warned(r, state_file, "replicate")  # the same line (cause, fix, consequence) as every other verb
    data = json.loads(r.stdout)
    assert data["status"] == "ok" and data["items"][0]["to_snapshot"] == "s2"
    assert len(data["warnings"]) == 1 and data["warnings"][0] in r.stderr

    r = invoke("replicate", "-c", str(path))
    assert r.exit_code == 0 and "tank/home -> offsite: sent 1 snapshot(s)" in r.stdout
    assert_warned(r, state_file, "replicate")


def test_replicate_stores_its_result_and_history_in_a_usable_state_dir(tmp_path, monkeypatch):
    state_dir = tmp_path / "state"
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(state=state_dir, lock=tmp_path / "lock"))
    monkeypatch.setattr(replicate, "run", lambda *_a, **k: _replicated(**k))
    r = invoke("replicate", "-c", str(path), "--json")
    assert r.exit_code == 0 and "warning" not in r.stderr
    assert "warnings" not in json.loads(r.stdout)
    assert state.read_run_result(state_dir, "replicate").items[0].to_snapshot == "s2"
    assert state.read_replication(state_dir)["offsite"]["tank/home"]["newest_snapshot"] == "s2"


def test_replicate_dry_run_neither_stores_nor_warns(blocked, monkeypatch):
    path, state_file = blocked
    monkeypatch.setattr(replicate, "run", lambda *_a, **k: _replicated(**k))
    r = invoke("replicate", "-c", str(path), "--dry-run", "--json")
    assert r.exit_code == 0 and warning_lines(r.stderr, state_file) == []
    assert "warnings" not in json.loads(r.stdout)
