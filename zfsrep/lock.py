"""One `zfsrep replicate` per target at a time: an exclusive `flock` on
``<lock_dir>/replicate-<target>.lock``. A second run waits up to the target's ``lock_timeout``,
then gives up with a message naming the holder. The kernel drops the lock when its holder
exits, however it exits, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def target_lock(lock_dir: str | Path, target: str, timeout: float, *, verb: str = "replicate",
                poll: float = 0.2) -> Iterator[Path]:
    path = lock_path(lock_dir, target, verb)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise LockError(f"target {target}: cannot open lock file {path}: {e.strerror}; "
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
                    raise LockError(f"target {target}: cannot lock {path}: {e.strerror}") from None
            if not waited:
                log.info("target %s: another zfsrep %s holds %s; waiting up to %.0f s",
                         target, verb, path, timeout)
                waited = True
            if time.monotonic() >= deadline:
                pid = _holder(fd)
                who = f" (pid {pid})" if pid else ""
                raise LockError(
                    f"target {target}: another zfsrep {verb}{who} is still running (lock {path}); "
                    f"gave up after waiting {timeout:.0f} s. Let it finish, or raise "
                    f"targets.{target}.lock_timeout"
                )
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())) or poll / 10)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {int(time.time())}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
