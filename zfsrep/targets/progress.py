"""How one on-demand target's up or down goes, whatever its kind (`zfsrep.targets.ec2`,
`zfsrep.targets.command`): the time sources it reads (`Clocks`), an up's record kept in the state
dir as it goes and the steps it did (`Progress`), the host part of an up once the machine runs
(`bring_up_host`: ssh answers with the pinned key, the remote command, the pool), and the result
item it ends in (`target_item`).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from zfsrep.config.model import TargetConfig
from zfsrep.core.result import ItemResult
from zfsrep.ssh import SshSession
from zfsrep.targets.pool import import_pool
from zfsrep.targets.readiness import wait_for_ssh
from zfsrep.targets.record import WarmupRecord, save_record
from zfsrep.targets.user_commands import run_remote_command


@dataclass
class Clocks:
    """Time sources, injectable for tests: ``wall`` for records, ``clock``/``sleep`` for waits."""

    wall: Callable[[], float] = time.time
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def target_item(target: TargetConfig, status: str, steps: list[str], error: str | None = None, **details) -> ItemResult:
    """The result for one on-demand target: its receiving dataset, the steps done (or planned)."""
    return ItemResult(dataset=target.dataset, target=target.name, status=status, error=error,
                      details={"steps": steps, **details})


@dataclass
class Progress:
    """An up under way: its record (saved to the state dir at each change, so teardown can undo
    it even after a crash), the steps done, and what this run changed."""

    record: WarmupRecord
    state_dir: str
    warnings: list[str]
    done: list[str] = field(default_factory=list)
    changed: bool = False
    launched_now: bool = False
    started_now: bool = False
    attached_now: bool = False

    def note(self, text: str, *, changed: bool = True) -> None:
        self.done.append(text)
        self.changed = self.changed or changed

    def save(self) -> None:
        save_record(self.state_dir, self.record, self.warnings)


def bring_up_host(target: TargetConfig, address: str, *, pool: str | None, remote_command: tuple[str, ...] | None,
                  ssh_timeout: float, force_import: bool, progress: Progress, clocks: Clocks) -> None:
    """Once the machine runs: wait until ssh to ``address`` answers with the pinned key, run the
    remote command, import the pool; each noted on ``progress``."""
    ready = wait_for_ssh(target, address, timeout=ssh_timeout, clock=clocks.clock, sleep=clocks.sleep)
    progress.note(f"ssh to {address} answered with the pinned host key after {ready.seconds:.0f} s "
                  f"({ready.attempts} attempt(s))", changed=False)
    if not (pool or remote_command):
        return
    with SshSession(target, host=address) as session:
        runner = session.runner()
        if remote_command:
            run_remote_command(runner, target, remote_command)
            progress.note(f"ran on {address}: {shlex.join(remote_command)}")
        if pool:
            if import_pool(runner, target, pool, force=force_import, clock=clocks.clock, sleep=clocks.sleep):
                progress.note(f"imported pool {pool} on {address}")
            else:
                progress.note(f"pool {pool} is imported on {address}", changed=False)
            progress.record.pool_imported = True
