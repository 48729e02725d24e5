"""`zfsrep prune-received`: on a backup target, thin the copies each source sent by the
retention the target declares for it (``[receive.sources.NAME]``), so the target prunes itself
and the source's ssh key never needs `destroy`. Planning is `zfsrep.core.received_prune_plan`
(the same `core.retention` rules as every prune, plus: never the newest snapshot, never a held
one, never outside the root, nothing of a dataset with a partial receive); this module lists
(one `zfs list` per pool of every root's tree), destroys (grouped like `zfsrep snapshot`:
`actions.snapshot.destroy_grouped`) and reports. One run per config at a time; a dry run takes
no lock."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from zfsrep.actions.snapshot import destroy_argv, destroy_grouped, record_destroyed
from zfsrep.config.model import Config
from zfsrep.core import received_prune_plan as rpp
from zfsrep.core.result import FAILED, NOTHING_TO_DO, PLANNED, SKIPPED, ItemResult, RunResult
from zfsrep.core.snapshot import Snapshot
from zfsrep.errors import ConfigError, UsageError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.lock import config_lock
from zfsrep.zfs import ZfsClient, by_pool

VERB = "prune-received"
PLAN_COMMAND = "zfsrep prune-received --dry-run"


def pick_sources(config: Config, names: Sequence[str] | None) -> list[rpp.ReceivedSource]:
    """The ``[receive.sources]`` named (or all), as the plan takes them. No ``[receive]`` is a
    config error, an unknown name a usage error (both exit 2)."""
    known = config.receive.sources if config.receive else {}
    if not known:
        raise ConfigError(f"no [receive.sources.NAME] in {config.path or 'the config'}: nothing to "
                          "prune; add one per source host with its root (docs/config.md)")
    unknown = [n for n in dict.fromkeys(names or ()) if n not in known]
    if unknown:
        raise UsageError(f"no receive source named {', '.join(map(repr, unknown))} in "
                         f"{config.path or 'the config'} (known: {', '.join(sorted(known))}); "
                         "check --source")
    chosen = list(dict.fromkeys(names)) if names else list(known)
    return [rpp.ReceivedSource(n, known[n].root, known[n].retention.counts()) for n in chosen]


def run(config: Config, *, now: float, dry_run: bool = False, sources: Sequence[str] | None = None,
        runner: Runner | None = None) -> RunResult:
    """Raises ConfigError/UsageError (exit 2) for a missing [receive] or an unknown source, and
    LockError (exit 1) when another `zfsrep prune-received` with this config is running."""
    chosen = pick_sources(config, sources)
    if dry_run:
        return _run(chosen, config, now=now, dry_run=True, runner=runner)
    with config_lock(config.lock_dir, VERB, config.path):
        return _run(chosen, config, now=now, dry_run=False, runner=runner)


def _run(sources: list[rpp.ReceivedSource], config: Config, *, now: float, dry_run: bool,
         runner: Runner | None) -> RunResult:
    runner = runner or Runner()
    client = ZfsClient(runner)
    where = runner.host or socket.gethostname()
    result = RunResult(verb=VERB, started_at=float(now), host=where, dry_run=dry_run)
    clock = time.monotonic()

    datasets, snapshots, failed = _list(client, [s.root for s in sources], where)
    listed = [s for s in sources if s.root not in failed]
    plan = rpp.plan_received_prune(listed, datasets, snapshots, now)
    items: dict[str, ItemResult] = {}
    for source in sources:
        if source.root in failed:
            items[source.root] = ItemResult(dataset=source.root, status=FAILED, error=failed[source.root],
                                            details={"source": source.name})
        elif source.name in plan.missing:
            items[source.root] = ItemResult(dataset=source.root, status=SKIPPED, details={
                "source": source.name,
                "skipped": f"{source.root} on {where}: skipped: it does not exist (nothing received "
                           f"from {source.name} yet, or receive.sources.{source.name}.root in "
                           f"{config.path or 'the config'} is wrong)"})
    for dp in plan.datasets:
        items[dp.dataset] = _item(dp, plan, dry_run, where)
    if not dry_run:
        _apply(client, plan, items, where)
    result.items = list(items.values())
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result


def _list(client: ZfsClient, roots: list[str], where: str
          ) -> tuple[dict[str, dict[str, str]], dict[str, list[Snapshot]], dict[str, str]]:
    """Every dataset under the roots (with its resume token) and its snapshots: one `zfs list`
    per pool. A pool whose listing fails fails its roots (``{root: message}``)."""
    datasets: dict[str, dict[str, str]] = {}
    snapshots: dict[str, list[Snapshot]] = {}
    failed: dict[str, str] = {}
    for pool, pool_roots in by_pool(roots).items():
        try:
            found, snaps = client.list_tree(pool_roots, recursive=True, props=[rpp.RESUME_TOKEN],
                                            missing_ok=True)
        except ZfsrepError as e:
            failed.update(dict.fromkeys(pool_roots, f"cannot list {', '.join(pool_roots)} on {where}: "
                                                    f"{e}; check `zpool status {pool}`"))
            continue
        datasets.update(found)
        snapshots.update(snaps)
    return datasets, snapshots, failed


def _item(dp: rpp.ReceivedDatasetPlan, plan: rpp.ReceivedPrunePlan, dry_run: bool, where: str) -> ItemResult:
    details: dict = {"source": dp.source, "kept": dp.kept, "foreign": dp.foreign,
                     "newest": dp.newest, "freed_bytes_at_least": dp.freed}
    if dp.skipped:
        details["skipped"] = f"{dp.dataset} on {where}: skipped: {dp.skipped}"
        return ItemResult(dataset=dp.dataset, status=SKIPPED, details=details)
    if dp.kept_held:
        details["kept_held"] = list(dp.kept_held)
        details["notes"] = [f"{dp.dataset} on {where}: kept {', '.join('@' + n for n in dp.kept_held)} "
                            f"although retention would destroy {'it' if len(dp.kept_held) == 1 else 'them'}: "
                            f"held (`zfs holds {dp.dataset}@{dp.kept_held[0]}` shows by whom)"]
    item = ItemResult(dataset=dp.dataset, status=NOTHING_TO_DO, details=details)
    if dry_run and dp.destroy:
        item.status = PLANNED
        item.destroyed = [s.full_name for s in dp.destroy]
        details["destroy_commands"] = [argv for c in plan.destroys if dp.dataset in c.datasets
                                       for argv in destroy_argv(c)]
    return item


def _apply(client: ZfsClient, plan: rpp.ReceivedPrunePlan, items: dict[str, ItemResult], where: str) -> None:
    destroyed: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for command in plan.destroys:
        destroy_grouped(client, command, where, items, destroyed, errors, plan_command=PLAN_COMMAND)
    for dp in plan.datasets:
        if dp.destroy:
            item = items[dp.dataset]
            record_destroyed(item, destroyed, errors)
            done = set(item.destroyed)  # oldest first, as planned (not in command order)
            item.destroyed = [s.full_name for s in dp.destroy if s.full_name in done]
