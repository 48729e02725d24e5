"""The plan of one `zfsrep snapshot` run, from the config and what `zfs list` showed. Pure.

* Which datasets: each ``[[datasets]]`` entry covers its dataset, and with ``recursive`` every
  listed descendant except ``exclude`` subtrees; where entries overlap, the most specific one
  (longest name) decides, so ``snapshot = false`` or another retention on a child wins
  (`core.coverage`, the rule every verb uses).
* What to create: one snapshot per dataset carrying every due label (`core.schedule`), all of
  one pool in ONE atomic `zfs snapshot`; with ``-r`` on subtree roots when every listed
  dataset below each root gets the same name, otherwise the explicit list.
* What to skip: an entry with ``min_change`` takes no new snapshot of a dataset whose
  ``written`` (bytes written since its newest snapshot, of any name) is below it. Its due labels
  stay due (no snapshot carries them), so the next run asks again; retention then counts only the
  existing snapshots, so a skip never makes it destroy more. A dataset with no snapshot yet, or
  whose ``written`` was not listed, is never skipped.
* What to destroy: `core.retention` over the existing snapshots plus the one being created,
  per dataset; space freed is the sum of ``used`` (a lower bound: space shared by several
  destroyed snapshots is freed too).
* How to destroy: `core.destroy_groups` — ``zfs destroy -r root@a,b,c`` where a whole subtree
  prunes those names and nothing in it keeps a snapshot of that name (datasets whose snapshots
  were not listed, e.g. excluded ones, forbid ``-r`` above them); ``ds@a,b,c`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zfsrep.core.coverage import governing_entry
from zfsrep.core.destroy_groups import DestroyCommand, group_destroys
from zfsrep.core.names import format_name
from zfsrep.core.retention import decide
from zfsrep.core.schedule import due_labels
from zfsrep.core.sizes import format_bytes
from zfsrep.core.snapshot import Snapshot, is_descendant, parent_of, pool_of

if TYPE_CHECKING:
    from zfsrep.config.model import DatasetConfig


@dataclass(frozen=True)
class DatasetPlan:
    dataset: str
    entry: str  # the [[datasets]] name that governs it
    due: tuple[str, ...] = ()
    create: str | None = None  # the new snapshot's name (after @), if any label is due
    destroy: tuple[Snapshot, ...] = ()
    kept: int = 0  # zfsrep snapshots kept (after this run)
    foreign: int = 0  # snapshots zfsrep did not make (never touched)
    error: str | None = None
    skipped: str | None = None  # why no snapshot is taken although labels are due (min_change)

    @property
    def freed(self) -> int:
        return sum(s.used for s in self.destroy)


@dataclass(frozen=True)
class PoolCreate:
    """One `zfs snapshot [-r] NAMES...` invocation."""

    pool: str
    names: tuple[str, ...]  # ds@snap arguments
    recursive: bool
    datasets: tuple[str, ...]  # every dataset that gets a snapshot from it


@dataclass
class SnapshotPlan:
    now: int
    datasets: list[DatasetPlan] = field(default_factory=list)
    creates: list[PoolCreate] = field(default_factory=list)
    destroys: list[DestroyCommand] = field(default_factory=list)  # if every create succeeds

    @property
    def freed(self) -> int:
        return sum(d.freed for d in self.datasets)

    def for_dataset(self, dataset: str) -> DatasetPlan | None:
        return next((d for d in self.datasets if d.dataset == dataset), None)


def managed_datasets(entries: Sequence[DatasetConfig], listed: Collection[str]) -> tuple[dict[str, DatasetConfig], list[tuple[DatasetConfig, str]]]:
    """``{dataset: governing entry}`` for datasets zfsrep snapshots, and entries whose dataset
    is missing (with a message)."""
    present = [e for e in entries if e.name in listed]
    missing = [(e, f"dataset {e.name} does not exist") for e in entries if e.name not in listed]
    managed: dict[str, DatasetConfig] = {}
    for d in dict.fromkeys(listed):
        entry = governing_entry(present, d)
        if entry is not None and entry.snapshot:
            managed[d] = entry
    return managed, missing


def plan_snapshots(
    entries: Sequence[DatasetConfig],
    listed: Collection[str],
    snapshots: Mapping[str, Sequence[Snapshot]],
    now: float,
    *,
    protected: Collection[int] = (),
    written: Mapping[str, int] | None = None,
) -> SnapshotPlan:
    """The whole run: ``listed`` are the existing filesystems/volumes under the configured
    roots (recursively), ``snapshots`` each dataset's snapshots, ``protected`` GUIDs that
    must survive (replication bases), ``written`` each dataset's ``written`` property (needed
    only where an entry sets ``min_change``)."""
    plan = SnapshotPlan(now=int(now))
    managed, missing = managed_datasets(entries, listed)
    for entry, message in missing:
        plan.datasets.append(DatasetPlan(dataset=entry.name, entry=entry.name, error=message))
    for dataset, entry in managed.items():
        plan.datasets.append(plan_dataset(dataset, entry, snapshots.get(dataset, ()), now, protected,
                                          written=(written or {}).get(dataset)))
    plan.creates = pool_creates(
        {d.dataset: d.create for d in plan.datasets if d.create}, listed
    )
    plan.destroys = destroy_commands(plan, listed, snapshots)
    return plan


def destroy_commands(
    plan: SnapshotPlan, listed: Iterable[str], snapshots: Mapping[str, Sequence[Snapshot]],
    *, skip: Collection[str] = (),
) -> list[DestroyCommand]:
    """The plan's destroys as few `zfs destroy` commands as is safe. ``snapshots`` must hold
    every snapshot of each planned dataset (the ones the plan was made from); ``skip`` are
    datasets that prune nothing this run (their new snapshot is missing): their snapshots
    count as kept, so no ``-r`` reaches them."""
    planned = [d for d in plan.datasets if not d.error]
    destroy = {d.dataset: [s.name for s in d.destroy] for d in planned if d.dataset not in skip}
    known = {d.dataset: {s.name for s in snapshots.get(d.dataset, ())} | ({d.create} if d.create else set())
             for d in planned}
    return group_destroys(destroy, listed, known)


def plan_dataset(
    dataset: str, entry: DatasetConfig, existing: Sequence[Snapshot], now: float, protected: Collection[int],
    *, written: int | None = None,
) -> DatasetPlan:
    counts = entry.retention.counts()
    due = due_labels(counts, (s.name for s in existing), now)
    skipped = _too_little_written(entry.min_change, written) if due and existing else None
    create = format_name(due, now) if due and not skipped else None
    candidates = list(existing)
    if create:
        newest_txg = max((s.createtxg for s in existing), default=0) + 1
        candidates.append(Snapshot(dataset, create, guid=0, createtxg=newest_txg, creation=int(now)))
    decision = decide(candidates, counts, protected=protected)
    destroy = tuple(s for s in decision.destroy if s.name != create)
    return DatasetPlan(
        dataset=dataset, entry=entry.name, due=due, create=create, destroy=destroy,
        kept=len(decision.keep), foreign=len(decision.foreign), skipped=skipped,
    )


def _too_little_written(min_change: int | None, written: int | None) -> str | None:
    if min_change is None or written is None or written >= min_change:
        return None
    return f"{format_bytes(written)} written since the newest snapshot, below min_change {format_bytes(min_change)}"


def pool_creates(new: Mapping[str, str], listed: Iterable[str]) -> list[PoolCreate]:
    """Group ``{dataset: snapname}`` into one `zfs snapshot` per pool, using ``-r`` on subtree
    roots when that yields exactly the same snapshots."""
    listed = list(listed)
    pools: dict[str, dict[str, str]] = {}
    for dataset, snap in new.items():
        pools.setdefault(pool_of(dataset), {})[dataset] = snap
    creates = []
    for pool, wanted in pools.items():
        roots = [d for d in wanted if not _has_ancestor_in(d, wanted)]
        whole = all(
            wanted.get(d) == wanted[r]
            for r in roots for d in listed if is_descendant(d, r)
        )
        if whole and len(roots) < len(wanted):
            names = tuple(f"{r}@{wanted[r]}" for r in roots)
            creates.append(PoolCreate(pool, names, True, tuple(wanted)))
        else:
            names = tuple(f"{d}@{s}" for d, s in wanted.items())
            creates.append(PoolCreate(pool, names, False, tuple(wanted)))
    return creates


def _has_ancestor_in(dataset: str, others: Mapping[str, str]) -> bool:
    parent = parent_of(dataset)
    while parent is not None:
        if parent in others:
            return True
        parent = parent_of(parent)
    return False
