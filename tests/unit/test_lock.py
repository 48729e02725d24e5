"""The per-target replicate lock, contended by real separate processes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from zfsrep.errors import LockError
from zfsrep.lock import lock_path, target_lock

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
