"""`zfsrep teardown`: put on-demand targets back to rest — export the pool, stop or terminate
the instance per ``after`` (terminate only what zfsrep launched), detach the volume where
configured, or run the command type's ``teardown_command``. Idempotent and safe after a failed
warmup or replicate (it is meant for ``ExecStopPost``). Reports each instance's up-time.

Each target is torn down under its lock, waiting at most
`zfsrep.targets.lifecycle.TEARDOWN_LOCK_WAIT` (`zfsrep.targets.lifecycle.down` says why).

`reap`: stop/terminate instances tagged for a configured target that have run longer than its
``max_uptime`` (a safety net for crashes; it takes no lock, so a run hung past max_uptime cannot
keep an instance alive).
"""

from __future__ import annotations

import socket

from zfsrep.config.model import Config
from zfsrep.core.result import RunResult
from zfsrep.targets import lifecycle
from zfsrep.targets.progress import Clocks
from zfsrep.targets.select import warmup_targets


def run(
    config: Config, *, now: float, dry_run: bool = False, targets: list[str] | None = None,
    clocks: Clocks | None = None,
) -> RunResult:
    clocks = clocks or Clocks()
    result = RunResult(verb="teardown", started_at=now, host=socket.gethostname(), dry_run=dry_run)
    result.items = [lifecycle.down(config, target, dry_run=dry_run, clocks=clocks)
                    for target in warmup_targets(config, targets)]
    result.finished_at = clocks.wall()
    return result


def reap(config: Config, *, now: float, dry_run: bool = False, targets: list[str] | None = None,
         clocks: Clocks | None = None) -> RunResult:
    clocks = clocks or Clocks()
    result = RunResult(verb="teardown", started_at=now, host=socket.gethostname(), dry_run=dry_run)
    for target in warmup_targets(config, targets):
        result.items += lifecycle.reap(config, target, now=now, dry_run=dry_run, clocks=clocks)
    result.finished_at = clocks.wall()
    return result
