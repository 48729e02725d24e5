"""The plan of one `zfsrep prune-received` run on a backup target: which received snapshots
each source's retention (``[receive.sources.NAME]``) destroys. Pure; ``now`` passed in.

The same rules as every other prune (`core.retention.decide`), plus what a target must keep
so that the source's next incremental still finds its base:

* only datasets under the source's ``root`` (itself included) are considered, whatever the
  listing held; nothing outside it is ever destroyed (``-r`` only on datasets inside it, whose
  whole subtree was listed: `core.destroy_groups`);
* only zfsrep-named snapshots (`core.names`) are destroyed; every other one is kept;
* a held snapshot (userrefs > 0) is never destroyed (its name is reported in ``kept_held``
  when retention alone would have destroyed it);
* the newest snapshot of each dataset (by createtxg: the last one received, the base the
  source's next incremental starts from) and its newest zfsrep snapshot are never destroyed;
* a dataset with a partial receive (``receive_resume_token`` set) is skipped with a line:
  which snapshot the pending receive resumes from is not known without decoding the token,
  so nothing of it is destroyed until the receive has completed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from zfsrep.core.destroy_groups import DestroyCommand, group_destroys
from zfsrep.core.names import parse_name
from zfsrep.core.retention import decide
from zfsrep.core.snapshot import Snapshot, is_descendant

RESUME_TOKEN = "receive_resume_token"  # the dataset property `zfs recv -s` leaves behind


@dataclass(frozen=True)
class ReceivedSource:
    """What the plan needs of one ``[receive.sources.NAME]``."""

    name: str
    root: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class ReceivedDatasetPlan:
    source: str
    dataset: str
    destroy: tuple[Snapshot, ...] = ()
    kept: int = 0  # zfsrep snapshots kept
    foreign: int = 0  # snapshots zfsrep did not make (never touched)
    newest: str | None = None  # the newest snapshot's name: never destroyed (the next base)
    kept_held: tuple[str, ...] = ()  # retention would destroy these, but they are held
    skipped: str | None = None  # why nothing of this dataset is destroyed

    @property
    def freed(self) -> int:
        return sum(s.used for s in self.destroy)


@dataclass
class ReceivedPrunePlan:
    now: int
    datasets: list[ReceivedDatasetPlan] = field(default_factory=list)
    destroys: list[DestroyCommand] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # sources whose root does not exist


def plan_received_prune(
    sources: Sequence[ReceivedSource],
    datasets: Mapping[str, Mapping[str, str]],
    snapshots: Mapping[str, Sequence[Snapshot]],
    now: float,
) -> ReceivedPrunePlan:
    """``datasets``: ``{name: {property: value}}`` of the recursive listing of the roots (with
    ``receive_resume_token`` where known); ``snapshots``: each dataset's snapshots."""
    plan = ReceivedPrunePlan(now=int(now))
    for source in sources:
        inside = [d for d in datasets if is_descendant(d, source.root)]
        if source.root not in datasets:
            plan.missing.append(source.name)
            continue
        planned = [plan_dataset(source, d, datasets[d], snapshots.get(d, ())) for d in inside]
        plan.datasets += planned
        destroy = {p.dataset: [s.name for s in p.destroy] for p in planned}
        known = {d: [s.name for s in snapshots.get(d, ())] for d in inside}
        plan.destroys += group_destroys(destroy, inside, known)
    return plan


def plan_dataset(source: ReceivedSource, dataset: str, props: Mapping[str, str],
                 existing: Sequence[Snapshot]) -> ReceivedDatasetPlan:
    snaps = [s for s in existing if s.dataset == dataset]
    newest = max(snaps, key=lambda s: s.createtxg, default=None)
    base = ReceivedDatasetPlan(source=source.name, dataset=dataset,
                               newest=newest.name if newest else None)
    if props.get(RESUME_TOKEN, "-") not in ("-", ""):
        return replace(base, skipped=(
            f"a partial receive is pending ({RESUME_TOKEN} is set): nothing pruned until the "
            f"source's next replicate completes it (or `zfs receive -A {dataset}` drops it)"))
    ours = [s for s in snaps if parse_name(s.name) is not None]
    protected = {s.guid for s in (newest, max(ours, key=lambda s: s.createtxg, default=None)) if s}
    decision = decide(snaps, source.counts, protected=protected)
    return replace(
        base, destroy=tuple(decision.destroy), kept=len(decision.keep), foreign=len(decision.foreign),
        kept_held=tuple(decision.held_only()))
