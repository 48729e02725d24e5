"""`zfsrep verify`: is the backup there? Per target and dataset, compare the snapshot lists by
GUID (`zfsrep.core.verify_plan`: missing, extra, diverged, behind) and, with ``deep``, compare
the files of the newest common snapshot on both ends (every entry's metadata, plus sha256 of a
sample or of every file). One item per (dataset, target): ok = verified, failed = not verified
with the reason; the CLI stores the result (`last-verify.json`) for status and report-result.
"""

from __future__ import annotations

import socket
import time

from zfsrep.actions.deep_verify import DeepSkip, Reader, deep_check
from zfsrep.actions.listing import Side, datasets_of, list_source, list_target
from zfsrep.config.model import Config, TargetConfig
from zfsrep.core.result import FAILED, OK, ItemResult, RunResult
from zfsrep.core.verify_plan import Comparison, compare
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner
from zfsrep.targets.access import Connect, connector
from zfsrep.targets.select import pick_targets, selected_entries, target_dataset
from zfsrep.zfs import ZfsClient

VERB = "verify"
DEFAULT_SAMPLE = 64


def run(config: Config, *, now: float, targets: list[str] | None = None, dataset: str | None = None,
        deep: bool = False, sample: int = DEFAULT_SAMPLE, runner: Runner | None = None,
        connect: Connect | None = None) -> RunResult:
    runner = runner or Runner()
    connect = connect or connector(config)
    host = runner.host or socket.gethostname()
    result = RunResult(verb=VERB, started_at=float(now), host=host)
    clock = time.monotonic()
    entries = selected_entries(config, dataset)
    try:
        source = list_source(ZfsClient(runner), entries)
    except ZfsrepError as e:
        result.errors.append(f"cannot list the source's snapshots on {host}: {e}; check `zpool status`")
        result.finished_at = float(now) + (time.monotonic() - clock)
        return result
    for target in pick_targets(config, targets):
        mine = [e for e in entries if target in config.targets_for(e)] if not dataset else entries
        if not mine:
            continue
        started = time.monotonic()
        try:
            with connect(target) as session:
                copies = list_target(ZfsClient(session.runner), target, mine)
                checked = [_verify_one(config, target, name, source, copies, now=now)
                           for name in datasets_of(mine, source, copies)]
                if deep:
                    for item, c in checked:
                        _deep(item, c, runner, session.runner, target, sample=sample, seed=int(now // 86400))
                items = [item for item, _ in checked]
            for item in items:
                session.annotate(item)
        except ZfsrepError as e:
            items = [ItemResult(dataset=e_.name, target=target.name, status=FAILED,
                                error=f"target {target.name}: not verified: {e}") for e_ in mine]
        for item in items:
            item.seconds = round(time.monotonic() - started, 3)
        result.items += items
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result


def _verify_one(config: Config, target: TargetConfig, name: str, source: Side, copies: Side, *,
                now: float) -> tuple[ItemResult, Comparison]:
    max_age = target.crit if target.crit is not None else config.status.crit
    c = compare(name, target_dataset(target, name), source.snaps(name), copies.snaps(name), now=now,
                max_age=max_age, target_name=target.name)
    item = ItemResult(dataset=name, target=target.name, status=OK if c.verified else FAILED,
                      error=None if c.verified else "; ".join(c.problems),
                      to_snapshot=c.newest_common.name if c.newest_common else None,
                      details={"comparison": c.to_dict()})
    return item, c


def _deep(item: ItemResult, c: Comparison, local: Runner, remote: Runner, target: TargetConfig, *,
          sample: int, seed: int) -> None:
    if not c.verified or c.newest_common is None or c.newest_common_target is None:
        item.details["deep"] = {"checked": False, "reason": "snapshot lists do not verify"}
        return
    src = Reader(local, "source", c.dataset, c.newest_common.name)
    dst = Reader(remote, f"target {target.name}", c.target_dataset, c.newest_common_target.name)
    try:
        deep = deep_check(src, dst, sample=sample, seed=seed)
    except DeepSkip as e:
        item.details["deep"] = {"checked": False, "reason": str(e)}
        return
    except ZfsrepError as e:
        item.status, item.error = FAILED, f"{c.dataset} on target {target.name}: deep check failed: {e}"
        item.details["deep"] = {"checked": False, "reason": str(e)}
        return
    item.details["deep"] = {"checked": True, "snapshot": c.newest_common.name, "entries": deep.entries,
                            "files_checked": deep.files_checked, "differences": list(deep.differences)}
    if not deep.equal:
        item.status = FAILED
        item.error = (f"{c.dataset}@{c.newest_common.name} differs on target {target.name} "
                      f"({c.target_dataset}): {deep.differences[0]}"
                      + (f" (+{len(deep.differences) - 1} more)" if len(deep.differences) > 1 else "")
                      + "; check `zpool status -v` on the target and re-seed the copy if the pool is healthy")
