"""One `zfsrep replicate` per target at a time: an exclusive `flock` on
``<lock_dir>/replicate-<target>.lock``. A second run waits up to the target's ``lock_timeout``,
then gives up with a message naming the holder. `zfsrep snapshot` likewise takes
``<lock_dir>/snapshot-<config path>.lock`` (`config_lock`) and gives up at once. The kernel
drops the lock when its holder exits, however it exits, so a crashed run never leaves a stale
lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from zfsrep.errors import LockError

log = logging.getLogger(__name__)


def lock_path(lock_dir: str | Path, target: str, verb: str = "replicate") -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target)
    return Path(lock_dir) / f"{verb}-{safe}.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return text.split()[0] if text else ""


def target_lock(lock_dir: str | Path, target: str, timeout: float, *, verb: str = "replicate",
                poll: float = 0.2) -> AbstractContextManager[Path]:
    def gave_up(who: str, path: Path) -> str:
        return (f"target {target}: another zfsrep {verb}{who} is still running (lock {path}); "
                f"gave up after waiting {timeout:.0f} s. Let it finish, or raise "
                f"targets.{target}.lock_timeout")
    return exclusive_lock(lock_path(lock_dir, target, verb), timeout, subject=f"target {target}",
                          verb=verb, gave_up=gave_up, poll=poll)


def config_lock(lock_dir: str | Path, verb: str, config_path: str | None, *, timeout: float = 0.0,
                poll: float = 0.2) -> AbstractContextManager[Path]:
    """One `zfsrep <verb>` per config file at a time: ``<lock_dir>/<verb>-<config path>.lock``.
    By default a second run gives up at once (``timeout`` 0) instead of running late."""
    key = os.path.abspath(config_path) if config_path else "config"

    def gave_up(who: str, path: Path) -> str:
        return (f"another zfsrep {verb} is running{who} with config {key} (lock {path}); this run "
                f"changed nothing. Let it finish; if runs keep overlapping, run {verb} less often")
    return exclusive_lock(lock_path(lock_dir, key, verb), timeout, subject=f"config {key}", verb=verb,
                          gave_up=gave_up, poll=poll)


@contextmanager
def exclusive_lock(path: Path, timeout: float, *, subject: str, verb: str,
                   gave_up: Callable[[str, Path], str], poll: float = 0.2) -> Iterator[Path]:
    """An exclusive `flock` on ``path``, waiting up to ``timeout`` s; then LockError with
    ``gave_up(" (pid N)" or "", path)``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise LockError(f"{subject}: cannot open lock file {path}: {e.strerror}; "
                        "set lock_dir to a directory this user can write") from None
    try:
        deadline = time.monotonic() + max(0.0, timeout)
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise LockError(f"{subject}: cannot lock {path}: {e.strerror}") from None
            if time.monotonic() >= deadline:
                pid = _holder(fd)
                raise LockError(gave_up(f" (pid {pid})" if pid else "", path))
            if not waited:
                log.info("%s: another zfsrep %s holds %s; waiting up to %.0f s",
                         subject, verb, path, timeout)
                waited = True
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())) or poll / 10)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {int(time.time())}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # no stale pid for the next holder's rivals to name
    finally:
        os.close(fd)  # releases the flock


def held_by_this_process(path: Path) -> bool:
    """Whether this process already holds the lock on ``path`` (through another open file): it
    is taken and the pid written in it is ours — no other live process can have our pid."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder(fd) == str(os.getpid())
    finally:
        os.close(fd)  # drops the shared lock if we got it
    return False


@contextmanager
def teardown_lock(lock_dir: str | Path, target: str, timeout: float, *, warnings: list[str],
                  poll: float = 0.2) -> Iterator[Path]:
    """The target's lock for `zfsrep teardown`: the one replicate, verify, scrub, restore and
    rollback take (`target_lock`), so an on-demand target is not put to rest under one of them.
    Waits up to ``timeout``, then LockError: the target is left up. Already held by this process
    (verify tearing down what it warmed up): taken as it is. A lock file that cannot be opened is
    a warning and teardown goes on unlocked: anything else using the target would need it too."""
    path = lock_path(lock_dir, target)
    if held_by_this_process(path):
        yield path
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
    except OSError as e:
        warnings.append(f"target {target}: torn down without its lock: cannot open {path}: {e.strerror}; "
                        "set lock_dir to a directory this user can write")
        yield path
        return
    def gave_up(who: str, path: Path) -> str:
        return (f"target {target}: not torn down: another zfsrep run{who} (a replicate, verify, scrub, "
                f"restore or rollback of it) still holds {path} after {timeout:.0f} s; the target is left "
                f"up: run `zfsrep teardown --target {target}` once that run has finished")
    with exclusive_lock(path, timeout, subject=f"target {target}", verb="run", gave_up=gave_up, poll=poll):
        yield path
