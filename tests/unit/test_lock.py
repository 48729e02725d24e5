"""The per-target lock (replicate, verify…, and teardown), contended by real separate processes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from zfsrep.actions import teardown
from zfsrep.cli import app
from zfsrep.config.load import parse_config
from zfsrep.errors import LockError
from zfsrep.lock import held_by_this_process, lock_path, target_lock
from zfsrep.targets import lifecycle

HOLDER = """
import sys, time
from zfsrep.lock import target_lock
with target_lock(sys.argv[1], sys.argv[2], 5):
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold_in_child(lock_dir, target, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir), target, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_gives_up_after_timeout_naming_the_holder(tmp_path):
    holder = hold_in_child(tmp_path, "backup", 30)
    try:
        start = time.monotonic()
        with pytest.raises(LockError) as e:
            with target_lock(tmp_path, "backup", 0.5):
                pytest.fail("got a lock another process holds")
        assert time.monotonic() - start >= 0.5
        msg = str(e.value)
        assert f"pid {holder.pid}" in msg and "targets.backup.lock_timeout" in msg
    finally:
        holder.kill()
        holder.wait()


def test_second_run_waits_and_proceeds_when_the_first_ends(tmp_path):
    holder = hold_in_child(tmp_path, "backup", 1.0)
    start = time.monotonic()
    with target_lock(tmp_path, "backup", 20) as path:
        assert time.monotonic() - start >= 0.8  # we only got it once the holder let go
        assert path.read_text().split()[0] != str(holder.pid)
    holder.wait()


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    holder = hold_in_child(tmp_path, "backup", 60)
    holder.kill()
    holder.wait()
    with target_lock(tmp_path, "backup", 2):
        pass


def test_targets_lock_independently(tmp_path):
    holder = hold_in_child(tmp_path, "a", 30)
    try:
        with target_lock(tmp_path, "b", 0):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_lock_file_name_is_safe_for_odd_target_names(tmp_path):
    assert lock_path(tmp_path, "../x y").name == "replicate-.._x_y.lock"
    assert lock_path(tmp_path, "../x y").parent == tmp_path


def test_unwritable_lock_dir_is_an_actionable_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LockError, match="set lock_dir"):
        with target_lock(blocker / "sub", "backup", 0):
            pass


# --- teardown takes the same lock ---------------------------------------------------------------

TEARDOWN_CONFIG = """
state_dir = "{tmp}/state"
lock_dir = "{lock_dir}"
[targets.cold]
host = "cold.example.org"
dataset = "backup/h"
lock_timeout = "{lock_timeout}"
[targets.cold.warmup]
type = "command"
command = ["true"]
teardown_command = ["touch", "{tmp}/torn-down"]
"""


def teardown_config(tmp_path, lock_timeout="20s", lock_dir=None):
    return parse_config(TEARDOWN_CONFIG.format(tmp=tmp_path, lock_dir=lock_dir or tmp_path / "lock",
                                               lock_timeout=lock_timeout))


def test_teardown_waits_for_a_run_holding_the_target_then_tears_it_down(tmp_path):
    holder = hold_in_child(tmp_path / "lock", "cold", 1.0)
    start = time.monotonic()
    result = teardown.run(teardown_config(tmp_path), now=time.time())
    assert time.monotonic() - start >= 0.8  # it waited for the holder to let go
    assert result.items[0].status == "ok" and (tmp_path / "torn-down").exists()
    holder.wait()


def test_teardown_gives_up_after_lock_timeout_and_leaves_the_target_up(tmp_path):
    holder = hold_in_child(tmp_path / "lock", "cold", 30)
    try:
        cfg = tmp_path / "config.toml"
        cfg.write_text(TEARDOWN_CONFIG.format(tmp=tmp_path, lock_dir=tmp_path / "lock", lock_timeout="1s"))
        start = time.monotonic()
        r = CliRunner().invoke(app, ["teardown", "-c", str(cfg)], catch_exceptions=False)
        assert 1.0 <= time.monotonic() - start < 10
        assert r.exit_code == 1
        line = next(x for x in r.stderr.splitlines() if "not torn down" in x)
        assert line.startswith("zfsrep: target cold: not torn down: another zfsrep run")
        assert f"(pid {holder.pid})" in line and "left up" in line
        assert "`zfsrep teardown --target cold` once that run has finished" in line
        assert not (tmp_path / "torn-down").exists()
    finally:
        holder.kill()
        holder.wait()


def test_teardown_waits_at_most_its_own_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(lifecycle, "TEARDOWN_LOCK_WAIT", 1.0)  # below lock_timeout (10 minutes)
    holder = hold_in_child(tmp_path / "lock", "cold", 30)
    try:
        start = time.monotonic()
        result = teardown.run(teardown_config(tmp_path, lock_timeout="10m"), now=time.time())
        assert time.monotonic() - start < 10
        assert result.items[0].status == "failed" and "after 1 s" in result.items[0].error
        assert result.exit_code == 1 and not (tmp_path / "torn-down").exists()
    finally:
        holder.kill()
        holder.wait()


def test_dry_run_teardown_does_not_wait_for_the_lock(tmp_path):
    holder = hold_in_child(tmp_path / "lock", "cold", 30)
    try:
        start = time.monotonic()
        result = teardown.run(teardown_config(tmp_path), now=time.time(), dry_run=True)
        assert time.monotonic() - start < 5 and result.items[0].status == "planned"
    finally:
        holder.kill()
        holder.wait()


def test_teardown_inside_the_lock_this_process_holds(tmp_path):
    # verify/scrub/restore warm an on-demand target up and tear it down under the lock they hold
    with target_lock(tmp_path / "lock", "cold", 5) as path:
        assert held_by_this_process(path)
        start = time.monotonic()
        result = teardown.run(teardown_config(tmp_path), now=time.time())
        assert time.monotonic() - start < 5
        assert result.items[0].status == "ok" and (tmp_path / "torn-down").exists()
    assert not held_by_this_process(path)


def test_a_lock_another_process_holds_is_not_ours(tmp_path):
    holder = hold_in_child(tmp_path, "cold", 30)
    try:
        assert not held_by_this_process(lock_path(tmp_path, "cold"))
    finally:
        holder.kill()
        holder.wait()
    assert not held_by_this_process(tmp_path / "missing.lock")


def test_teardown_with_an_unusable_lock_dir_warns_and_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = teardown.run(teardown_config(tmp_path, lock_dir=blocker), now=time.time())
    item = result.items[0]
    assert item.status == "ok" and (tmp_path / "torn-down").exists()
    assert any("torn down without its lock" in w and "set lock_dir" in w for w in item.details["warnings"])
