"""Pure rollback planning: what `zfs rollback -r DATASET@SNAPSHOT` would destroy, and whether
zfsrep lets it.

`zfs rollback -r` destroys every snapshot (and bookmark) newer than the one named. zfsrep lists
them first, and refuses when one of them is a target's replication base (hold
``zfsrep:<target>``) unless forced, since the next replication to that target would then have no
incremental base. Holds of other tools and clones always block (zfsrep never uses `-R`).

Stdlib only, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from zfsrep.core.restore_plan import HOLD_PREFIX
from zfsrep.core.snapshot import Snapshot

ROLLBACK = "rollback"
REFUSE = "refuse"


@dataclass(frozen=True)
class RollbackPlan:
    dataset: str
    snapshot: str  # short name rolled back to
    action: str  # ROLLBACK | REFUSE
    destroys: tuple[Snapshot, ...] = ()  # newer snapshots, oldest first
    destroys_bookmarks: tuple[str, ...] = ()
    bases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # snap name -> targets
    releases: tuple[tuple[str, str], ...] = ()  # (tag, ds@snap) released first (forced)
    message: str = ""  # REFUSE: the one actionable line
    notes: tuple[str, ...] = ()

    @property
    def destroys_bytes(self) -> int:
        """A lower bound: the bytes only these snapshots hold."""
        return sum(s.used for s in self.destroys)

    def describe(self) -> list[str]:
        if self.action == REFUSE:
            return [self.message]
        lines = [f"roll {self.dataset} back to @{self.snapshot} (changes since it are lost)"]
        if not self.destroys and not self.destroys_bookmarks:
            lines.append("no newer snapshots: only changes since the snapshot are discarded")
        for snap in self.destroys:
            mark = f"  [replication base of {', '.join(self.bases[snap.name])}]" if snap.name in self.bases else ""
            lines.append(f"destroy @{snap.name}{mark}")
        lines += [f"destroy bookmark #{b}" for b in self.destroys_bookmarks]
        lines += [f"release hold {tag} on {name}" for tag, name in self.releases]
        return lines + list(self.notes)


def plan_rollback(
    dataset: str,
    snapshot: str,
    snaps: Sequence[Snapshot],
    *,
    holds: Mapping[str, frozenset[str] | set[str]],
    clones: Mapping[str, Sequence[str]] | None = None,
    bookmarks: Sequence[tuple[str, int]] = (),
    force: bool = False,
) -> RollbackPlan:
    """Plan rolling ``dataset`` back to ``@snapshot``.

    ``snaps``: the dataset's own snapshots; ``holds``: ``{ds@snap: tags}`` for the held ones;
    ``clones``: ``{ds@snap: [clone datasets]}``; ``bookmarks``: ``(name, createtxg)`` pairs.
    """
    ordered = sorted(snaps, key=lambda s: s.createtxg)
    to = next((s for s in ordered if s.name == snapshot), None)
    if to is None:
        newest = ", ".join(s.name for s in ordered[-3:]) or "none"
        return RollbackPlan(dataset, snapshot, REFUSE, message=(
            f"{dataset} has no snapshot @{snapshot} (newest: {newest}); "
            f"`zfsrep snapshots {dataset}` lists them"))
    newer = tuple(s for s in ordered if s.createtxg > to.createtxg)
    marks = tuple(b for b, txg in bookmarks if txg > to.createtxg)
    bases: dict[str, tuple[str, ...]] = {}
    foreign: list[str] = []
    releases: list[tuple[str, str]] = []
    for snap in newer:
        tags = sorted(holds.get(snap.full_name, ()))
        targets = tuple(t[len(HOLD_PREFIX):] for t in tags if t.startswith(HOLD_PREFIX))
        if targets:
            bases[snap.name] = targets
            releases += [(t, snap.full_name) for t in tags if t.startswith(HOLD_PREFIX)]
        foreign += [f"@{snap.name} ({t})" for t in tags if not t.startswith(HOLD_PREFIX)]
    cloned = [f"@{s.name} -> {', '.join(clones[s.full_name])}" for s in newer
              if clones and clones.get(s.full_name)]
    kw = dict(destroys=newer, destroys_bookmarks=marks, bases=bases)

    if cloned:
        return RollbackPlan(dataset, snapshot, REFUSE, **kw, message=(
            f"{dataset}: newer snapshot(s) have clones ({'; '.join(cloned[:3])}); zfsrep does not "
            "destroy clones: `zfs promote` or destroy them first, then rerun"))
    if foreign:
        return RollbackPlan(dataset, snapshot, REFUSE, **kw, message=(
            f"{dataset}: newer snapshot(s) are held by other tools ({', '.join(foreign[:3])}); "
            "release them (`zfs release TAG SNAPSHOT`) first, then rerun"))
    if bases and not force:
        which = "; ".join(f"@{n} is the replication base of {', '.join(t)}" for n, t in bases.items())
        return RollbackPlan(dataset, snapshot, REFUSE, **kw, message=(
            f"{dataset}: refusing to destroy a replication base ({which}); the next replication "
            "to that target would have to roll it back or re-seed. Rerun with --force to do it "
            f"anyway, or roll back to a newer snapshot"))
    notes: list[str] = []
    for name, targets in bases.items():
        for target in targets:
            notes.append(f"target {target} holds @{name}, which the source will no longer have: its "
                         f"next replication needs the target rolled back to @{snapshot} or older "
                         f"(`zfsrep rollback --target {target} {dataset}@{snapshot}`)")
    return RollbackPlan(dataset, snapshot, ROLLBACK, **kw, releases=tuple(releases), notes=tuple(notes))
