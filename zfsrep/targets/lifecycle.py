"""Up and down of one on-demand target (one with a ``warmup`` table), dispatching on the warmup's
kind to `zfsrep.targets.ec2` or `zfsrep.targets.command`. The verbs (`zfsrep warmup`,
`zfsrep teardown`) call these per target; so does `zfsrep.targets.access` for a verb that warms
a target up for its own run and puts it back to rest afterwards.

`up` first notes the target for the unit run's ``teardown --this-run`` (`zfsrep.unit_run`).
`down` runs under the target's lock (`zfsrep.lock.teardown_lock`, the one replicate, verify,
scrub, restore and rollback hold), so a run still using the target is not left without it. As
an ``ExecStopPost`` teardown runs after its own unit's run has let go of the lock; another unit
may still hold it: down waits up to the target's ``lock_timeout``, at most `TEARDOWN_LOCK_WAIT`
(systemd's stop timeout, ``TimeoutStopSec=``, is 90 s by default), then fails for that target,
leaving it up. `reap` takes no lock, so a run hung past ``max_uptime`` cannot keep an instance
alive.

Each returns the target's result item, with the warnings of its bookkeeping
(``details["warnings"]``) and the seconds it took.
"""

from __future__ import annotations

from contextlib import nullcontext

from zfsrep import unit_run
from zfsrep.config.model import Config, Ec2Warmup, TargetConfig
from zfsrep.core.result import FAILED, ItemResult
from zfsrep.errors import ZfsrepError
from zfsrep.lock import teardown_lock
from zfsrep.targets import command, ec2
from zfsrep.targets.progress import Clocks

TEARDOWN_LOCK_WAIT = 60.0  # at most, for another run to let go of the target's lock


def up(config: Config, target: TargetConfig, *, dry_run: bool = False, clocks: Clocks | None = None) -> ItemResult:
    """Bring ``target`` up (idempotent: one that is up already is only checked)."""
    clocks = clocks or Clocks()
    started = clocks.clock()
    warnings: list[str] = []
    if not dry_run:  # before anything is started: this run's `teardown --this-run` undoes it
        noted = unit_run.note_warmed(target.name)
        warnings += [noted] if noted else []
    if isinstance(target.warmup, Ec2Warmup):
        item = ec2.up(config, target, target.warmup, dry_run=dry_run, clocks=clocks, warnings=warnings)
    else:
        item = command.up(config, target, target.warmup, dry_run=dry_run, clocks=clocks, warnings=warnings)
    return _finished(item, warnings, clocks.clock() - started)


def down(config: Config, target: TargetConfig, *, dry_run: bool = False, clocks: Clocks | None = None) -> ItemResult:
    """Put ``target`` back to rest, under its lock (idempotent, safe after a failed warmup)."""
    clocks = clocks or Clocks()
    started = clocks.clock()
    warnings: list[str] = []
    wait = min(target.lock_timeout, TEARDOWN_LOCK_WAIT)
    try:
        with nullcontext() if dry_run else teardown_lock(config.lock_dir, target.name, wait, warnings=warnings):
            if isinstance(target.warmup, Ec2Warmup):
                item = ec2.down(config, target, target.warmup, dry_run=dry_run, clocks=clocks, warnings=warnings)
            else:
                item = command.down(config, target, target.warmup, dry_run=dry_run, clocks=clocks, warnings=warnings)
    except ZfsrepError as e:
        item = ItemResult(dataset=target.dataset, target=target.name, status=FAILED, error=str(e))
    return _finished(item, warnings, clocks.clock() - started)


def reap(config: Config, target: TargetConfig, *, now: float, dry_run: bool = False,
         clocks: Clocks | None = None) -> list[ItemResult]:
    """Stop or terminate what ran longer than ``max_uptime``: only EC2 targets have instances to
    reap (none for another kind)."""
    if not isinstance(target.warmup, Ec2Warmup):
        return []
    return ec2.reap(config, target, target.warmup, now=now, dry_run=dry_run, clocks=clocks or Clocks())


def _finished(item: ItemResult, warnings: list[str], seconds: float) -> ItemResult:
    if warnings:
        item.details["warnings"] = warnings
    item.seconds = round(seconds, 3)
    return item
