"""`zfsrep scrub --target NAME [--wait]`: start `zpool scrub` of the target's pool and report
what it found (`zpool status -p -v`, parsed by `zfsrep.core.pool_status`).

An on-demand target is warmed up first and torn down after the scrub finished — so for such a
target ``wait`` is implied (tearing it down would otherwise stop the scrub half-way). A scrub
that is already running is not restarted; with ``wait`` zfsrep waits for it (`zpool wait -t scrub`).
"""

from __future__ import annotations

import socket
import time

from zfsrep.config.model import Config, TargetConfig
from zfsrep.core.pool_status import PoolStatus, parse_pool_status
from zfsrep.core.result import FAILED, OK, PLANNED, ItemResult, RunResult
from zfsrep.core.snapshot import pool_of
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner
from zfsrep.targets.access import Connect, connector
from zfsrep.targets.select import require_target

VERB = "scrub"


def target_pool(target: TargetConfig) -> str:
    pool = getattr(target.warmup, "pool", None) if target.warmup is not None else None
    return pool or pool_of(target.dataset)


def run(config: Config, *, now: float, target: str, wait: bool = False, dry_run: bool = False,
        connect: Connect | None = None) -> RunResult:
    t = require_target(config, target)
    pool = target_pool(t)
    wait = wait or t.warmup is not None
    clock = time.monotonic()
    result = RunResult(verb=VERB, started_at=float(now), host=socket.gethostname(), dry_run=dry_run)
    item = ItemResult(dataset=pool, target=t.name, status=PLANNED if dry_run else OK,
                      details={"pool": pool, "waited": wait})
    result.items.append(item)
    if dry_run:
        item.details["plan"] = ([f"warm {t.name} up"] if t.warmup is not None else []) + [
            f"zpool scrub {pool} on {t.name}"] + ([f"wait for it, then report `zpool status {pool}`"] if wait else []) + (
            [f"tear {t.name} down"] if t.warmup is not None else [])
        return result
    try:
        with (connect or connector(config))(t) as session:
            status = _scrub(session.runner, t, pool, wait=wait, item=item)
        session.annotate(item)
    except ZfsrepError as e:
        item.status, item.error = FAILED, f"target {t.name}: scrub of pool {pool} failed: {e}"
        result.finished_at = float(now) + (time.monotonic() - clock)
        return result
    item.details["status"] = _status_dict(status)
    if status.problems():
        item.status = FAILED
        item.error = (f"pool {pool} on target {t.name}: {'; '.join(status.problems())}; run `zpool status -v {pool}` "
                      f"there{': ' + status.action if status.action else ''}")
    item.seconds = round(time.monotonic() - clock, 3)
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result


def _scrub(runner: Runner, target: TargetConfig, pool: str, *, wait: bool, item: ItemResult) -> PoolStatus:
    started = runner.run(["zpool", "scrub", pool], check=False)
    if started.ok:
        item.details["started"] = True
    elif "currently scrubbing" in started.stderr or "in progress" in started.stderr:
        item.details["started"] = False
        item.add_note("a scrub was already running; not restarted")
    else:
        last = started.stderr.strip().splitlines()[-1] if started.stderr.strip() else f"exit {started.returncode}"
        raise ZfsrepError(f"`zpool scrub {pool}` on {runner.host or target.name}: {last}; check that the pool "
                          "is imported (`zpool list`) and this user may scrub it")
    if wait:
        waited = runner.run(["zpool", "wait", "-t", "scrub", pool], check=False)
        if not waited.ok:
            last = waited.stderr.strip().splitlines()[-1] if waited.stderr.strip() else f"exit {waited.returncode}"
            raise ZfsrepError(f"`zpool wait -t scrub {pool}` on {runner.host or target.name}: {last} "
                              "(OpenZFS >= 2.0 is needed for --wait)")
    text = runner.run(["zpool", "status", "-p", "-v", pool]).stdout
    return parse_pool_status(pool, text)


def _status_dict(s: PoolStatus) -> dict[str, object]:
    return {"state": s.state, "scan": s.scan, "scrubbing": s.scrubbing, "finished": s.finished,
            "percent": s.percent, "repaired": s.repaired, "scan_errors": s.scan_errors,
            "read": s.read, "write": s.write, "cksum": s.cksum, "data_errors": s.data_errors,
            "error_files": list(s.error_files), "healthy": s.healthy}
