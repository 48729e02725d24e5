"""Where a run's wall time went: named phases, each the seconds spent in it (summed when a
phase recurs, e.g. once per target), kept in the run's result (`RunResult.phases`) so that
`--json`, the state dir's last result and report-result all carry it.

Phases that run in a worker thread overlap the main thread's, so they need not add up to
the run's seconds. ``startup`` is the time from the process's start to the run's: the
interpreter, imports and reading the config.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator


class Phases:
    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._seconds[name] = self._seconds.get(name, 0.0) + max(0.0, seconds)

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - started)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {name: round(s, 3) for name, s in self._seconds.items()}


def seconds_since_process_start() -> float | None:
    """How long ago this process started (Linux `/proc`, 10 ms resolution); None elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        # the fields after the command name (which may hold spaces and parentheses)
        fields = stat[stat.rindex(b")") + 2:].split()
        started_ticks = int(fields[19])  # field 22, starttime, counting from field 3
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
