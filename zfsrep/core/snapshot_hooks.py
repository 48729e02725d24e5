"""Which ``pre_snapshot`` / ``post_snapshot`` hooks a `zfsrep snapshot` run calls, in which
order, with which environment. Pure: `zfsrep.hooks` runs them, `actions.snapshot` decides.

* A hook belongs to a ``[[datasets]]`` entry and runs once per run for all the datasets that
  entry governs and that get a snapshot this run; an entry with nothing to create (nothing due,
  or every dataset skipped by ``min_change``) runs no hook.
* Snapshots stay atomic per pool: for each pool's one `zfs snapshot`, the pre-hooks of its
  entries run first, in config order; then the snapshot of every dataset whose pre-hook
  succeeded; then the post-hooks in the reverse order (the first entry frozen is the last
  thawed, as nested locks unwind). A post-hook runs whenever its pre-hook ran (also when the
  pre-hook or the snapshot failed), and after the snapshot when the entry has no pre-hook.
* Environment (added to zfsrep's own): ``ZFSREP_HOOK`` (``pre_snapshot``/``post_snapshot``),
  ``ZFSREP_ENTRY`` (the entry's dataset), ``ZFSREP_DATASETS`` and ``ZFSREP_SNAPSHOTS``
  (``ds@name``; one per line: names may hold spaces), ``ZFSREP_LABELS`` (the due labels,
  comma-separated), and for post ``ZFSREP_OUTCOME``: ``ok``, ``failed`` (the snapshot failed) or
  ``skipped`` (the pre-hook failed, nothing was taken).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zfsrep.core.snapshot import pool_of
from zfsrep.core.snapshot_plan import PoolCreate, SnapshotPlan, pool_creates

if TYPE_CHECKING:
    from zfsrep.config.model import DatasetConfig

PRE, POST = "pre_snapshot", "post_snapshot"
OUTCOMES = ("ok", "failed", "skipped")


@dataclass(frozen=True)
class EntryHooks:
    """One entry's hooks around its pool's `zfs snapshot`."""

    entry: str
    pool: str
    datasets: tuple[str, ...]
    snapshots: tuple[str, ...]  # ds@name, what the snapshot creates for this entry
    labels: tuple[str, ...]
    pre: tuple[str, ...] | None
    post: tuple[str, ...] | None
    timeout: float

    def argv(self, phase: str) -> tuple[str, ...] | None:
        return self.pre if phase == PRE else self.post

    def env(self, phase: str, outcome: str | None = None) -> dict[str, str]:
        env = {
            "ZFSREP_HOOK": phase,
            "ZFSREP_ENTRY": self.entry,
            "ZFSREP_DATASETS": "\n".join(self.datasets),
            "ZFSREP_SNAPSHOTS": "\n".join(self.snapshots),
            "ZFSREP_LABELS": ",".join(self.labels),
        }
        if phase == POST:
            env["ZFSREP_OUTCOME"] = outcome or "ok"
        return env


def plan_hooks(plan: SnapshotPlan, entries: Sequence[DatasetConfig]) -> dict[str, list[EntryHooks]]:
    """``{pool: [EntryHooks in config order]}`` for the entries with a hook and something to
    create this run."""
    out: dict[str, list[EntryHooks]] = {}
    for entry in entries:
        if entry.pre_snapshot is None and entry.post_snapshot is None:
            continue
        mine = [d for d in plan.datasets if d.entry == entry.name and d.create and not d.error]
        if not mine:
            continue
        labels = tuple(dict.fromkeys(label for d in mine for label in d.due))
        hooks = EntryHooks(
            entry=entry.name, pool=pool_of(entry.name),
            datasets=tuple(d.dataset for d in mine),
            snapshots=tuple(f"{d.dataset}@{d.create}" for d in mine),
            labels=labels, pre=entry.pre_snapshot, post=entry.post_snapshot, timeout=entry.hook_timeout,
        )
        out.setdefault(hooks.pool, []).append(hooks)
    return out


def post_order(hooks: Sequence[EntryHooks]) -> list[EntryHooks]:
    """The post-hooks' order: the pre-hooks' reversed."""
    return list(reversed(hooks))


def without(create: PoolCreate, skip: Collection[str], plan: SnapshotPlan,
            listed: Iterable[str]) -> PoolCreate | None:
    """``create`` minus the datasets in ``skip`` (their pre-hook failed), again as one atomic
    command (``-r`` only where still exactly right); None when nothing is left."""
    names = {d.dataset: d.create for d in plan.datasets if d.create}
    rest = {d: names[d] for d in create.datasets if d not in skip and d in names}
    if not rest:
        return None
    (only,) = pool_creates(rest, listed)
    return only
