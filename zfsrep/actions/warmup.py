"""`zfsrep warmup`: bring on-demand targets up (start/launch the EC2 instance, attach its volume,
or run a local command), wait until ssh answers with the pinned host key, run the remote
command, import the pool. Idempotent: a target that is already up is only checked.

If anything fails after this run launched or started an instance, the instance is terminated or
stopped again before returning (no leaked instances). What was done is recorded in the state
dir (`zfsrep.targets.record`) as it happens, so teardown can undo it even after a crash. Each
target's up: `zfsrep.targets.lifecycle.up`.
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
    result = RunResult(verb="warmup", started_at=now, host=socket.gethostname(), dry_run=dry_run)
    result.items = [lifecycle.up(config, target, dry_run=dry_run, clocks=clocks)
                    for target in warmup_targets(config, targets)]
    result.finished_at = clocks.wall()
    return result
