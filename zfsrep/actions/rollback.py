"""`zfsrep rollback DATASET@SNAPSHOT`: list what `zfs rollback -r` would destroy (newer snapshots
and bookmarks, which of them are a target's replication base), then — once confirmed — release
zfsrep's holds on them (only when forced) and roll back. With ``target``, the dataset's copy on
that target is rolled back instead (the repair for a target that was written to).

`plan` only lists; `apply` changes. The CLI shows the plan and asks for ``--yes`` in between.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from zfsrep.config.model import Config
from zfsrep.core.result import FAILED, OK, PLANNED, ItemResult, RunResult
from zfsrep.core.rollback_plan import REFUSE, RollbackPlan, plan_rollback
from zfsrep.errors import UsageError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.targets.access import Connect, connector
from zfsrep.targets.select import require_target, target_dataset
from zfsrep.zfs import ZfsClient
from zfsrep.zfs import parse as zparse

VERB = "rollback"


def split_spec(spec: str) -> tuple[str, str]:
    dataset, at, snapshot = spec.partition("@")
    if not at or not dataset or not snapshot or "@" in snapshot:
        raise UsageError(f"expected DATASET@SNAPSHOT, got {spec!r} (`zfsrep snapshots {dataset or 'DATASET'}` "
                         "lists the snapshots)")
    return dataset.rstrip("/"), snapshot


@contextmanager
def side(config: Config, *, now: float, target: str | None, runner: Runner | None,
         connect: Connect | None) -> Iterator[tuple[Runner, str]]:
    """The runner for the dataset's host (local, or the target's under its replicate lock)."""
    if target is None:
        yield runner or Runner(), "source"
        return
    t = require_target(config, target)
    with (connect or connector(config, lock=True))(t) as session:
        yield session.runner, f"target {t.name}"


def plan(config: Config, spec: str, *, runner: Runner, target: str | None = None, force: bool = False) -> RollbackPlan:
    dataset, snapshot = split_spec(spec)
    name = target_dataset(config.targets[target], dataset) if target else dataset
    client = ZfsClient(runner)
    if name not in client.list_datasets([name], missing_ok=True):
        where = f"on target {target}" if target else f"on {runner.host or socket.gethostname()}"
        raise UsageError(f"{name} does not exist {where}; `zfsrep snapshots` lists the configured datasets")
    snaps = client.list_snapshots([name]).get(name, [])
    held = [s.full_name for s in snaps if s.held]
    holds = client.holds(held) if held else {}
    newer = [s for s in snaps if s.createtxg > max((x.createtxg for x in snaps if x.name == snapshot), default=1 << 62)]
    clones: dict[str, list[str]] = {}
    if newer:
        got = client.get(["clones"], [s.full_name for s in newer])
        clones = {n: [c for c in p.get("clones", "").split(",") if c and c != "-"] for n, p in got.items()}
    marks = runner.run(["zfs", "list", "-H", "-p", "-t", "bookmark", "-o", "name,createtxg", "-d", "1", name],
                       check=False)
    bookmarks = [(n.split("#", 1)[1], int(txg)) for n, txg in zparse.rows(marks.stdout, 2)] if marks.ok else []
    return plan_rollback(name, snapshot, snaps, holds=holds, clones=clones, bookmarks=bookmarks, force=force)


def apply(p: RollbackPlan, *, runner: Runner, now: float, dry_run: bool = False) -> RunResult:
    clock = time.monotonic()
    result = RunResult(verb=VERB, started_at=float(now), host=runner.host or socket.gethostname(), dry_run=dry_run)
    item = ItemResult(dataset=p.dataset, status=PLANNED if dry_run else OK, to_snapshot=p.snapshot,
                      destroyed=[s.name for s in p.destroys],
                      details={"plan": p.describe(), "bookmarks": list(p.destroys_bookmarks),
                               "bases": {k: list(v) for k, v in p.bases.items()}})
    result.items.append(item)
    if p.action == REFUSE:
        item.status, item.error, item.destroyed = FAILED, p.message, []
    elif not dry_run:
        client = ZfsClient(runner)
        try:
            for tag, name in p.releases:
                client.release(tag, [name])
            runner.run(["zfs", "rollback", "-r", f"{p.dataset}@{p.snapshot}"])
        except ZfsrepError as e:
            item.status, item.destroyed = FAILED, []
            item.error = (f"rolling {p.dataset} back to @{p.snapshot} on {runner.host or result.host} failed: {e}; "
                          f"`zfs list -t snapshot {p.dataset}` shows what is left")
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result
