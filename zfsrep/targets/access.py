"""Reaching a target: where to ssh (`ssh_host`: its configured host, else where warmup brought
it up), and for the "getting data back" verbs (snapshots, restore, rollback, verify, scrub,
status --live) an ssh session to it — warming an on-demand target up first and tearing it down
afterwards (`zfsrep.targets.lifecycle`), under the target's replicate lock so a concurrent
replicate is never torn down under its feet. What its copies are called and which targets a run
means: `zfsrep.targets.select`.

Actions take a ``connect`` callable (`Connect`) so tests can hand in fake runners.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from zfsrep.config.model import Config, TargetConfig
from zfsrep.core.result import FAILED, OK, ItemResult
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner
from zfsrep.lock import target_lock
from zfsrep.ssh import SshSession
from zfsrep.targets.record import target_host

__all__ = ["Connect", "Session", "connector", "ssh_host"]


def ssh_host(state_dir: str | Path, target: TargetConfig, *, warmed: str | None = None) -> str | None:
    """Where to ssh for ``target``: its configured host, else ``warmed`` (the address a warmup in
    this process just reported), else the address warmup recorded in the state dir. Raises
    ZfsrepError (see `zfsrep.targets.record.target_host`) only when the record is needed and
    cannot be read."""
    return target.host or warmed or target_host(state_dir, target.name)


@dataclass
class Session:
    """A reachable target: its runner, what was done to reach it (for the report) and the
    warnings of its warmup and teardown (a state dir or lock dir that cannot be written)."""

    target: TargetConfig
    runner: Runner
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def annotate(self, item: ItemResult) -> None:
        """Put on the verb's ``item`` how the target was reached (``details["access"]``) and the
        warnings of that (``details["warnings"]``, which the CLI prints and adds to --json).
        After the session has ended, so that its teardown is in both."""
        item.details["access"] = self.steps
        if self.warnings:
            have = item.details.setdefault("warnings", [])
            have += [w for w in self.warnings if w not in have]


Connect = Callable[[TargetConfig], AbstractContextManager[Session]]


def _warnings_of(item: ItemResult, into: list[str]) -> None:
    into += [w for w in item.details.get("warnings", ()) if w not in into]


@contextmanager
def _warm(config: Config, target: TargetConfig, *, steps: list[str], warnings: list[str]) -> Iterator[str | None]:
    """Warm ``target`` up, yield the address warmup reported (None if it gave none), and tear it
    down afterwards if it was not up before. Their warnings go into ``warnings``."""
    from zfsrep.targets import lifecycle  # only needed for on-demand targets

    up = lifecycle.up(config, target)
    _warnings_of(up, warnings)
    if up.status == FAILED:
        raise ZfsrepError(up.error or f"target {target.name}: warmup failed; run "
                          f"`zfsrep warmup --target {target.name} -v` to see why")
    warmed = up.status == OK  # it was not up before: put it back to rest afterwards
    steps.append(f"warmed up {target.name}" if warmed else f"{target.name} was up already")
    try:
        yield up.details.get("address")
    finally:
        if warmed:
            down = lifecycle.down(config, target)
            _warnings_of(down, warnings)
            if down.status == FAILED and down.error:
                steps.append(f"teardown of {target.name} FAILED: {down.error}")
            else:
                steps.append(f"tore {target.name} down")


def connector(config: Config, *, warm: bool = True, lock: bool | None = None) -> Connect:
    """The default `Connect`: ssh (multiplexed) to the target. An on-demand target (one with a
    ``warmup``) is warmed up first and torn down after, under its replicate lock, when ``warm``;
    otherwise it must be up already. ``lock`` (default: only for on-demand targets) holds the
    target's replicate lock for the whole session."""

    @contextmanager
    def connect(target: TargetConfig) -> Iterator[Session]:
        steps: list[str] = []
        warnings: list[str] = []
        on_demand = target.warmup is not None
        locked = _maybe_lock(config, target, lock if lock is not None else (on_demand and warm))
        warmed = _warm(config, target, steps=steps, warnings=warnings) if (on_demand and warm) \
            else _nothing()
        with locked, warmed as address:
            # the address warmup just reported: no need to read it back from the state dir
            host = ssh_host(config.state_dir, target, warmed=address)
            if not host:
                raise ZfsrepError(f"target {target.name} is not up (no host; it is on-demand): run "
                                  f"`zfsrep warmup --target {target.name}` first")
            with SshSession(target, host=host) as ssh:
                yield Session(target, ssh.runner(), steps, warnings)

    return connect


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


@contextmanager
def _maybe_lock(config: Config, target: TargetConfig, wanted: bool) -> Iterator[None]:
    if not wanted:
        yield
        return
    with target_lock(config.lock_dir, target.name, target.lock_timeout):
        yield
