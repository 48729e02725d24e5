"""`zfsrep snapshot`: take the due snapshots (one atomic `zfs snapshot` per pool) and prune by
retention (`zfs destroy ds@a,b,c` batches). Planning is `zfsrep.core.snapshot_plan`; this module
lists, applies and reports. A failure in one pool or dataset leaves the others done (exit 3)."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from zfsrep.config.model import Config
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, ItemResult, RunResult
from zfsrep.core.snapshot import Snapshot, pool_of
from zfsrep.core.snapshot_plan import (
    DatasetPlan,
    PoolCreate,
    SnapshotPlan,
    managed_datasets,
    plan_snapshots,
)
from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.state import read_replication
from zfsrep.zfs import DestroyError, ZfsClient, by_pool
from zfsrep.zfs.argv import snapshot as snapshot_argv

VERB = "snapshot"


def run(config: Config, *, now: float, dry_run: bool = False, runner: Runner | None = None) -> RunResult:
    runner = runner or Runner()
    client = ZfsClient(runner)
    where = runner.host or socket.gethostname()
    result = RunResult(verb=VERB, started_at=float(now), host=where, dry_run=dry_run)
    clock = time.monotonic()

    listed, snapshots, pool_errors = _list(client, config, where)
    plan = plan_snapshots(config.datasets, listed, snapshots, now,
                          protected=_replication_bases(config, snapshots))
    failed_pools = dict(pool_errors)
    items: dict[str, ItemResult] = {}
    for dp in plan.datasets:
        pool = pool_of(dp.dataset)
        if pool in failed_pools and dp.error:
            continue  # reported once per configured entry below
        items[dp.dataset] = _item(dp, plan, dry_run, where, config.path)
    for entry in config.datasets:
        pool = pool_of(entry.name)
        if pool in failed_pools and entry.name not in items:
            items[entry.name] = ItemResult(dataset=entry.name, status=FAILED, error=failed_pools[pool])

    if not dry_run:
        _apply(client, plan, items, where)
    result.items = list(items.values())
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result


def _list(client: ZfsClient, config: Config, where: str) -> tuple[list[str], dict[str, list[Snapshot]], dict[str, str]]:
    """Datasets under the configured roots and the managed datasets' snapshots: one `zfs list`
    of each kind per pool. A pool whose listing fails is reported and left out."""
    listed: list[str] = []
    errors: dict[str, str] = {}
    for pool, roots in by_pool(e.name for e in config.datasets).items():
        try:
            listed += client.list_datasets(roots, recursive=True, missing_ok=True)
        except ZfsrepError as e:
            errors[pool] = f"cannot list pool {pool} on {where}: {_detail(e)}; check `zpool status {pool}`"
    managed, _ = managed_datasets(config.datasets, listed)
    snapshots: dict[str, list[Snapshot]] = {}
    for pool, datasets in by_pool(managed).items():
        if pool in errors:
            continue
        try:
            snapshots.update(client.list_snapshots(datasets, missing_ok=True))
        except ZfsrepError as e:
            errors[pool] = f"cannot list snapshots in pool {pool} on {where}: {_detail(e)}; check `zpool status {pool}`"
            listed = [d for d in listed if pool_of(d) != pool]
    return listed, snapshots, errors


def _replication_bases(config: Config, snapshots: dict[str, list[Snapshot]]) -> set[int]:
    """GUIDs of the snapshots replication last sent to each target (recorded in the state dir);
    holds (`zfsrep:<target>`) protect them too, this covers targets that cannot hold."""
    try:
        state = read_replication(config.state_dir)
    except (OSError, ValueError):
        return set()
    guids: set[int] = set()
    for per_dataset in state.values():
        for dataset, entry in per_dataset.items():
            newest = (entry or {}).get("newest_snapshot")
            if not newest:
                continue
            name = newest.split("@", 1)[-1]
            guids |= {s.guid for s in snapshots.get(dataset, ()) if s.name == name}
    return guids


def _item(dp: DatasetPlan, plan: SnapshotPlan, dry_run: bool, where: str, path: str | None) -> ItemResult:
    if dp.error:
        return ItemResult(dataset=dp.dataset, status=FAILED, error=(
            f"{dp.error} on {where}; create it (zfs create) or remove it from [[datasets]] "
            f"in {path or 'the config'}"))
    details = {"due": list(dp.due), "kept": dp.kept, "foreign": dp.foreign, "freed_bytes_at_least": dp.freed}
    command = _command_for(dp.dataset, plan.creates)
    if command is not None:
        details["snapshot_command"] = command
    item = ItemResult(dataset=dp.dataset, status=NOTHING_TO_DO, details=details)
    if dry_run:
        item.created = [f"{dp.dataset}@{dp.create}"] if dp.create else []
        item.destroyed = [s.full_name for s in dp.destroy]
        if item.created or item.destroyed:
            item.status = PLANNED
    return item


def _command_for(dataset: str, creates: Sequence[PoolCreate]) -> list[str] | None:
    for create in creates:
        if dataset in create.datasets:
            return snapshot_argv(list(create.names), recursive=create.recursive)
    return None


def _apply(client: ZfsClient, plan: SnapshotPlan, items: dict[str, ItemResult], where: str) -> None:
    failed: set[str] = set()
    for create in plan.creates:
        try:
            client.snapshot(list(create.names), recursive=create.recursive)
        except ZfsrepError as e:
            message = (f"zfs snapshot in pool {create.pool} on {where} failed: {_detail(e)}; "
                       f"{_snapshot_fix(e)}")
            for dataset in create.datasets:
                items[dataset].status, items[dataset].error = FAILED, message
            failed |= set(create.datasets)
            continue
        for dataset in create.datasets:
            dp = plan.for_dataset(dataset)
            items[dataset].created = [f"{dataset}@{dp.create}"]
            items[dataset].status = OK
    for dp in plan.datasets:
        if dp.error or not dp.destroy or dp.dataset in failed:
            continue  # no pruning where the new snapshot is missing: retention counted it
        item = items[dp.dataset]
        try:
            done = client.destroy(dp.dataset, [s.name for s in dp.destroy])
        except DestroyError as e:
            item.destroyed = [f"{dp.dataset}@{n}" for n in e.destroyed]
            item.status, item.error = FAILED, (
                f"zfs destroy on {where} failed: {_detail(e)}; "
                f"{_destroy_fix(e)}")
            continue
        item.destroyed = [f"{dp.dataset}@{n}" for n in done]
        item.status = OK


def _detail(e: ZfsrepError) -> str:
    if isinstance(e, CommandError):
        return e.stderr.splitlines()[-1] if e.stderr else f"exit status {e.returncode}"
    return str(e)


def _snapshot_fix(e: ZfsrepError) -> str:
    text = _detail(e)
    if "permission denied" in text.lower():
        return "grant it with `zfs allow <user> snapshot,destroy,hold,release <dataset>`"
    if "out of space" in text.lower():
        return "free space in the pool, or lower the retention counts"
    return "run the zfs snapshot command `zfsrep snapshot --dry-run` shows by hand to see why"


def _destroy_fix(e: ZfsrepError) -> str:
    text = _detail(e).lower()
    if "busy" in text or "hold" in text:
        return "a hold or clone keeps one of them; `zfs holds` / `zfs list -o clones` show which"
    if "permission denied" in text:
        return "grant it with `zfs allow <user> destroy,mount <dataset>`"
    return "run `zfsrep snapshot --dry-run` to see the plan and retry"
