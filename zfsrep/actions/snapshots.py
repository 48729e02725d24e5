"""`zfsrep snapshots`: what can be restored — each configured dataset's snapshots on the source
and on each target, side by side (aligned by GUID), marking the ones they have in common.

On-demand targets (with a ``warmup``) are listed only when named with ``--target`` (then they
are warmed up first and torn down after); otherwise they are reported as not listed.
"""

from __future__ import annotations

import socket
import time

from zfsrep.actions.listing import Side, datasets_of, list_source, list_target
from zfsrep.config.model import Config
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, ItemResult, RunResult
from zfsrep.core.verify_plan import side_by_side
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner
from zfsrep.targets.access import Connect, connector
from zfsrep.targets.select import pick_targets, selected_entries
from zfsrep.zfs import ZfsClient

VERB = "snapshots"
SOURCE = "source"


def run(config: Config, *, now: float, targets: list[str] | None = None, dataset: str | None = None,
        runner: Runner | None = None, connect: Connect | None = None) -> RunResult:
    runner = runner or Runner()
    connect = connect or connector(config)
    result = RunResult(verb=VERB, started_at=float(now), host=runner.host or socket.gethostname())
    clock = time.monotonic()
    entries = selected_entries(config, dataset)
    chosen = pick_targets(config, targets)

    sides: dict[str, Side | None] = {}
    try:
        sides[SOURCE] = list_source(ZfsClient(runner), entries)
    except ZfsrepError as e:
        result.errors.append(f"cannot list the source's snapshots on {result.host}: {e}")
        sides[SOURCE] = None
    notes: list[str] = []
    not_listed: list[str] = []
    for target in chosen:
        mine = [e for e in entries if target in config.targets_for(e)] if not dataset else entries
        if not mine:
            continue
        if target.warmup is not None and not targets:
            not_listed.append(target.name)
            continue
        try:
            with connect(target) as session:
                sides[target.name] = list_target(ZfsClient(session.runner), target, mine)
            notes += session.steps
        except ZfsrepError as e:
            result.errors.append(f"target {target.name}: cannot list snapshots: {e}")
            sides[target.name] = None

    listed = [s for s in sides.values() if s is not None]
    for name in datasets_of(entries, *listed):
        columns = {side: view.snaps(name) for side, view in sides.items() if view is not None}
        rows = side_by_side(columns)
        item = ItemResult(dataset=name, status=OK if rows else NOTHING_TO_DO, details={
            "sides": list(columns),
            "missing_on": [side for side, snaps in columns.items() if snaps is None],
            "not_listed": not_listed,
            "notes": notes,
            "rows": [{"name": r.name, "guid": str(r.guid), "creation": r.creation, "on": r.on,
                      "common": r.common, "clash": list(r.clash)} for r in rows],
        })
        result.items.append(item)
    if not listed:
        result.items = [ItemResult(dataset=e.name, status=FAILED, error=result.errors[0]) for e in entries]
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result
