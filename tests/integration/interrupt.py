"""Interrupting a transfer at a known point: kill on observed progress, not after a delay.

A fixed delay fires too early on a slow or loaded machine (before the receive has begun, so
there is no resume token yet) and too late on a fast one (the stream is already done). These
helpers instead watch how much the receiving dataset holds and kill once it passes a mark.
"""

from __future__ import annotations

import threading
import time


def received(lab, host: str, dataset: str) -> int:
    """Bytes a receive has written into ``dataset`` on ``host`` so far (0 before it exists).

    ZFS accounts written data per transaction group, so this grows in steps."""
    out = lab.ssh(host, ["zfs", "get", "-Hp", "-o", "value", "used", dataset], check=False)
    value = out.stdout.strip()
    return int(value) if out.returncode == 0 and value.isdigit() else 0


def run_zfsrep_and_kill(lab, args, *, pattern: str, watch: tuple[str, str], more: int,
                        timeout: float = 600):
    """Run ``zfsrep ARGS`` in source; once a process matching ``pattern`` runs there and
    ``watch`` = (host, dataset) has received ``more`` bytes since it started, SIGKILL it.

    The mark is relative: a resumed receive starts from what earlier attempts left (and a
    killed one keeps growing until its last transaction group is written).
    Returns (the finished zfsrep process, whether the kill found a process to kill)."""
    runs = {}

    def run():
        runs["proc"] = lab.run_zfsrep(list(args), check=False, timeout=timeout)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    killed = False
    baseline = None
    while thread.is_alive() and time.monotonic() < deadline:
        if baseline is None:
            if lab.ssh("source", ["pgrep", "-f", pattern], check=False).returncode == 0:
                baseline = received(lab, *watch)
        elif received(lab, *watch) >= baseline + more:
            killed = lab.ssh("source", ["pkill", "-KILL", "-f", pattern],
                             check=False).returncode == 0
            break
        time.sleep(0.1)
    thread.join(timeout)
    return runs["proc"], killed
