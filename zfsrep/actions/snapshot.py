"""`zfsrep snapshot`: take the due snapshots (one atomic `zfs snapshot` per pool) and prune by
retention (`zfs destroy -r root@a,b,c` over subtrees that prune alike, `ds@a,b,c` batches
elsewhere: `zfsrep.core.destroy_groups`). Planning is `zfsrep.core.snapshot_plan`; this module
lists, applies and reports. A failure in one pool or dataset leaves the others done (exit 3); a
failed `-r` destroy is retried per dataset, so one bad dataset does not block the rest.
An entry's ``pre_snapshot`` / ``post_snapshot`` hooks run around its pool's `zfs snapshot`
(`core.snapshot_hooks` says when and in which order, `zfsrep.hooks` runs them); a failed
pre-hook leaves that entry's datasets out of the snapshot (FAILED), a failed post-hook fails
its datasets although their snapshot was taken. ``min_change`` reads ``written`` in the same
`zfs list` as the datasets (no extra command).
One run per config at a time (`<lock_dir>/snapshot-<config>.lock`); a dry run takes no lock."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Sequence

from zfsrep.config.model import Config
from zfsrep.core.destroy_groups import DestroyCommand
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, ItemResult, RunResult
from zfsrep.core.snapshot import Snapshot, pool_of
from zfsrep.core.snapshot_hooks import POST, PRE, EntryHooks, plan_hooks, post_order, without
from zfsrep.core.snapshot_plan import (
    DatasetPlan,
    PoolCreate,
    SnapshotPlan,
    destroy_commands,
    managed_datasets,
    plan_snapshots,
)
from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.hooks import run_hook
from zfsrep.lock import config_lock
from zfsrep.state import StateFormatError, read_replication
from zfsrep.zfs import DestroyError, ZfsClient, by_pool
from zfsrep.zfs.argv import destroy_batches
from zfsrep.zfs.argv import snapshot as snapshot_argv

VERB = "snapshot"
log = logging.getLogger(__name__)


def run(config: Config, *, now: float, dry_run: bool = False, runner: Runner | None = None) -> RunResult:
    """Raises LockError (exit 1) when another `zfsrep snapshot` with this config is running."""
    if dry_run:
        return _run(config, now=now, dry_run=True, runner=runner)
    with config_lock(config.lock_dir, VERB, config.path):
        return _run(config, now=now, dry_run=False, runner=runner)


def _run(config: Config, *, now: float, dry_run: bool, runner: Runner | None) -> RunResult:
    runner = runner or Runner()
    client = ZfsClient(runner)
    where = runner.host or socket.gethostname()
    result = RunResult(verb=VERB, started_at=float(now), host=where, dry_run=dry_run)
    clock = time.monotonic()

    listed, written, snapshots, pool_errors = _list(client, config, where)
    try:
        protected = _replication_bases(config, snapshots)
    except StateFormatError as e:
        # which snapshots are replication bases is not known: take the due ones, destroy none
        protected = {s.guid for listing in snapshots.values() for s in listing}
        result.errors.append(f"nothing pruned: {e}")
    plan = plan_snapshots(config.datasets, listed, snapshots, now, protected=protected, written=written)
    hooks = plan_hooks(plan, config.datasets)
    failed_pools = dict(pool_errors)
    items: dict[str, ItemResult] = {}
    for dp in plan.datasets:
        pool = pool_of(dp.dataset)
        if pool in failed_pools and dp.error:
            continue  # reported once per configured entry below
        items[dp.dataset] = _item(dp, plan, hooks, dry_run, where, config.path)
    for entry in config.datasets:
        pool = pool_of(entry.name)
        if pool in failed_pools and entry.name not in items:
            items[entry.name] = ItemResult(dataset=entry.name, status=FAILED, error=failed_pools[pool])

    if not dry_run:
        _apply(client, plan, hooks, items, where, listed, snapshots)
    result.items = list(items.values())
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result


def _list(client: ZfsClient, config: Config, where: str) -> tuple[
        list[str], dict[str, int], dict[str, list[Snapshot]], dict[str, str]]:
    """Datasets under the configured roots (with ``written`` when an entry sets min_change) and
    the managed datasets' snapshots: one `zfs list` of each kind per pool. A pool whose listing
    fails is reported and left out."""
    listed: list[str] = []
    written: dict[str, int] = {}
    props = ["written"] if any(e.min_change is not None for e in config.datasets) else []
    errors: dict[str, str] = {}
    for pool, roots in by_pool(e.name for e in config.datasets).items():
        try:
            found = client.list_datasets(roots, recursive=True, missing_ok=True, props=props)
            listed += found
            written |= {d: int(p["written"]) for d, p in found.items() if p.get("written", "-").isdigit()}
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
    return listed, written, snapshots, errors


def _replication_bases(config: Config, snapshots: dict[str, list[Snapshot]]) -> set[int]:
    """GUIDs of the snapshots replication last sent to each target (recorded in the state dir);
    holds (`zfsrep:<target>`) protect them too, this covers targets that cannot hold. A history
    in a newer format raises StateFormatError: it is not guessed at."""
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


def _item(dp: DatasetPlan, plan: SnapshotPlan, hooks: dict[str, list[EntryHooks]], dry_run: bool, where: str,
          path: str | None) -> ItemResult:
    if dp.error:
        return ItemResult(dataset=dp.dataset, status=FAILED, error=(
            f"{dp.error} on {where}; create it (zfs create) or remove it from [[datasets]] "
            f"in {path or 'the config'}"))
    details = {"due": list(dp.due), "kept": dp.kept, "foreign": dp.foreign, "freed_bytes_at_least": dp.freed}
    command = _command_for(dp.dataset, plan.creates)
    if command is not None:
        details["snapshot_command"] = command
    if dp.skipped:
        details["skipped"] = dp.skipped
    mine = next((h for h in hooks.get(pool_of(dp.dataset), ()) if dp.dataset in h.datasets), None)
    if mine is not None:
        details["hooks"] = {phase: list(argv) for phase in (PRE, POST) if (argv := mine.argv(phase))}
    item = ItemResult(dataset=dp.dataset, status=NOTHING_TO_DO, details=details)
    if dry_run:
        item.created = [f"{dp.dataset}@{dp.create}"] if dp.create else []
        item.destroyed = [s.full_name for s in dp.destroy]
        destroys = [argv for c in plan.destroys if dp.dataset in c.datasets for argv in destroy_argv(c)]
        if destroys:
            details["destroy_commands"] = destroys
        if item.created or item.destroyed:
            item.status = PLANNED
    return item


def destroy_argv(command: DestroyCommand) -> list[list[str]]:
    """The argv(s) of one grouped destroy, as a dry run shows them."""
    return destroy_batches(command.root, command.names, recursive=command.recursive)


def _command_for(dataset: str, creates: Sequence[PoolCreate]) -> list[str] | None:
    for create in creates:
        if dataset in create.datasets:
            return snapshot_argv(list(create.names), recursive=create.recursive)
    return None


def _apply(client: ZfsClient, plan: SnapshotPlan, hooks: dict[str, list[EntryHooks]],
           items: dict[str, ItemResult], where: str, listed: Iterable[str],
           snapshots: dict[str, list[Snapshot]]) -> None:
    listed = list(listed)
    failed: set[str] = set()
    for planned in plan.creates:
        failed |= _snapshot_pool(client, planned, hooks.get(planned.pool, []), plan, items, where, listed)
    # no pruning where the new snapshot is missing (retention counted it); such datasets'
    # snapshots then count as kept, so no -r reaches them
    commands = destroy_commands(plan, listed, snapshots, skip=failed) if failed else plan.destroys
    destroyed: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for command in commands:
        destroy_grouped(client, command, where, items, destroyed, errors)
    for dp in plan.datasets:
        if dp.error or not dp.destroy or dp.dataset in failed:
            continue
        record_destroyed(items[dp.dataset], destroyed, errors)


def record_destroyed(item: ItemResult, destroyed: dict[str, list[str]], errors: dict[str, str]) -> None:
    """What `destroy_grouped` did to ``item``'s dataset: its destroyed names, OK or FAILED."""
    item.destroyed = [f"{item.dataset}@{n}" for n in destroyed.get(item.dataset, ())]
    if item.dataset in errors:
        _fail({item.dataset: item}, [item.dataset], errors[item.dataset])
    elif item.status != FAILED:  # a post-hook may have failed it
        item.status = OK


def _snapshot_pool(client: ZfsClient, planned: PoolCreate, around: list[EntryHooks], plan: SnapshotPlan,
                   items: dict[str, ItemResult], where: str, listed: list[str]) -> set[str]:
    """One pool's pre-hooks, its `zfs snapshot` without the datasets whose pre-hook failed, and
    the post-hook of every entry whose pre-hook ran (also if something raised in between).
    Returns the datasets that got no new snapshot."""
    skipped: set[str] = set()
    ran: list[EntryHooks] = []
    outcome = "failed"
    try:
        for entry in around:
            ran.append(entry)
            message = run_hook(entry, PRE)
            if message is not None:
                skipped |= set(entry.datasets)
                _fail(items, entry.datasets, message)
        create = without(planned, skipped, plan, listed)
        outcome = "ok" if create is None else _create(client, create, plan, items, where)
        return skipped | (set(create.datasets) if create is not None and outcome == "failed" else set())
    finally:
        for entry in post_order(ran):
            message = run_hook(entry, POST, outcome="skipped" if set(entry.datasets) <= skipped else outcome)
            if message is not None:
                _fail(items, entry.datasets, message)


def _create(client: ZfsClient, create: PoolCreate, plan: SnapshotPlan, items: dict[str, ItemResult],
            where: str) -> str:
    """One pool's atomic `zfs snapshot`: "ok" or "failed" (its datasets' items say why)."""
    try:
        client.snapshot(list(create.names), recursive=create.recursive)
    except ZfsrepError as e:
        message = (f"zfs snapshot in pool {create.pool} on {where} failed: {_detail(e)}; "
                   f"{_snapshot_fix(e)}")
        _fail(items, create.datasets, message)
        return "failed"
    names = {d.dataset: d.create for d in plan.datasets if d.create}
    for dataset in create.datasets:
        items[dataset].created = [f"{dataset}@{names[dataset]}"]
        if items[dataset].status != FAILED:
            items[dataset].status = OK
    return "ok"


def _fail(items: dict[str, ItemResult], datasets: Iterable[str], message: str) -> None:
    """Mark each dataset FAILED with ``message`` (after an error it already has)."""
    for dataset in datasets:
        item = items[dataset]
        item.error = f"{item.error}; {message}" if item.status == FAILED and item.error else message
        item.status = FAILED


def destroy_grouped(client: ZfsClient, command: DestroyCommand, where: str, items: dict[str, ItemResult],
                    destroyed: dict[str, list[str]], errors: dict[str, str], *,
                    plan_command: str = "zfsrep snapshot --dry-run") -> None:
    """Run one grouped destroy. A failed `-r` command is all-or-nothing in ZFS: retry each
    dataset it covered on its own, so only the dataset at fault fails. ``plan_command`` shows
    the plan (named in a failure's fix)."""
    try:
        done = client.destroy(command.root, list(command.names), recursive=command.recursive)
    except DestroyError as e:
        done = e.destroyed
        failure = e
    else:
        failure = None
    for dataset, names in command.targets:
        destroyed.setdefault(dataset, []).extend(n for n in names if n in done)
    if failure is None:
        return
    if not command.recursive:
        errors.setdefault(command.root, _destroy_error(failure, where, plan_command))
        return
    grouped = (f"zfs destroy -r {command.root}@... on {where} failed: {_detail(failure)}; "
               "destroyed per dataset instead")
    log.warning("%s", grouped)
    for dataset, names in command.targets:
        rest = [n for n in names if n not in done]
        if not rest:
            continue
        items[dataset].details["destroy_retried"] = grouped
        try:
            destroyed[dataset] += client.destroy(dataset, rest)
        except DestroyError as e:
            destroyed[dataset] += e.destroyed
            errors.setdefault(dataset, _destroy_error(e, where, plan_command))


def _destroy_error(e: DestroyError, where: str, plan_command: str) -> str:
    return f"zfs destroy on {where} failed: {_detail(e)}; {_destroy_fix(e, plan_command)}"


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


def _destroy_fix(e: ZfsrepError, plan_command: str) -> str:
    text = _detail(e).lower()
    if "busy" in text or "hold" in text:
        return "a hold or clone keeps one of them; `zfs holds` / `zfs list -o clones` show which"
    if "permission denied" in text:
        return "grant it with `zfs allow <user> destroy,mount <dataset>`"
    return f"run `{plan_command}` to see the plan and retry"
