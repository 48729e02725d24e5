"""Compare one dataset's snapshots on the source and on a target, by GUID (pure).

A snapshot's GUID is identical on every copy made by send/receive, so the GUID — not the
name — says whether the target holds the source's data. Ordering uses each side's own
``createtxg`` (txgs of different pools are not comparable).

Verdict (``Comparison.problems`` empty means verified):
- **diverged**: a snapshot of the same name with a different GUID, a target snapshot newer than
  the newest common one that the source does not have (the target was written to), or both
  sides have snapshots but none in common.
- **behind**: the newest common snapshot is older than the freshness threshold.
- **never replicated**: the target has no copy, or the source has no snapshots.
Older snapshots present on one side only are reported but are normal (separate retention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from zfsrep.core.durations import format_duration
from zfsrep.core.snapshot import Snapshot


@dataclass(frozen=True)
class Comparison:
    dataset: str  # the source dataset
    target_dataset: str  # its copy on the target
    common: tuple[str, ...] = ()  # source names of snapshots on both sides (by GUID), oldest first
    newest_common: Snapshot | None = None  # the source's copy
    newest_common_target: Snapshot | None = None  # the target's copy (its name may differ)
    not_replicated: tuple[str, ...] = ()  # source snapshots newer than the newest common one
    pruned_on_target: tuple[str, ...] = ()  # older source snapshots the target no longer has
    kept_on_target: tuple[str, ...] = ()  # older target snapshots the source no longer has
    target_only_newer: tuple[str, ...] = ()  # target snapshots after the newest common: diverged
    name_clashes: tuple[str, ...] = ()  # same name, different GUID: diverged
    problems: tuple[str, ...] = ()  # why it is not verified; empty = verified
    notes: tuple[str, ...] = field(default=())  # informational

    @property
    def verified(self) -> bool:
        return not self.problems

    @property
    def diverged(self) -> bool:
        unrelated = self.newest_common is None and bool(self.not_replicated) and bool(self.kept_on_target)
        return bool(self.target_only_newer or self.name_clashes) or unrelated

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "target_dataset": self.target_dataset,
            "verified": self.verified,
            "diverged": self.diverged,
            "common": len(self.common),
            "newest_common": self.newest_common.name if self.newest_common else None,
            "newest_common_guid": self.newest_common.guid if self.newest_common else None,
            "missing": list(self.not_replicated),
            "pruned_on_target": list(self.pruned_on_target),
            "extra": list(self.kept_on_target) + list(self.target_only_newer),
            "target_only_newer": list(self.target_only_newer),
            "diverged_names": list(self.name_clashes),
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def _sorted(snaps: Sequence[Snapshot]) -> list[Snapshot]:
    return sorted(snaps, key=lambda s: (s.createtxg, s.creation, s.name))


def compare(
    dataset: str,
    target_dataset: str,
    source: Sequence[Snapshot] | None,
    target: Sequence[Snapshot] | None,
    *,
    now: float,
    max_age: float | None = None,
    target_name: str = "target",
) -> Comparison:
    """Compare ``source`` and ``target`` snapshot lists of one dataset.

    ``None`` means the dataset does not exist on that side (an empty list: it exists with no
    snapshots). ``max_age``: the newest common snapshot must be younger than this (seconds).
    """
    src = _sorted(source or [])
    dst = _sorted(target or [])
    where = f"{target_name}:{target_dataset}"
    if source is None:
        return Comparison(dataset, target_dataset, problems=(
            f"{dataset} does not exist on the source; restore it with "
            f"`zfsrep restore {dataset} --target {target_name}` or remove it from the config",))
    if target is None:
        return Comparison(dataset, target_dataset, not_replicated=tuple(s.name for s in src), problems=(
            f"{dataset} was never replicated to {where} (no such dataset); "
            f"run `zfsrep replicate --target {target_name}`",))
    if not src:
        return Comparison(dataset, target_dataset, kept_on_target=tuple(s.name for s in dst), problems=(
            f"{dataset} has no snapshots on the source; run `zfsrep snapshot`",))

    src_by_guid = {s.guid: s for s in src}
    dst_by_guid = {s.guid: s for s in dst}
    common_src = [s for s in src if s.guid in dst_by_guid]
    newest = common_src[-1] if common_src else None
    newest_dst = dst_by_guid[newest.guid] if newest else None

    src_names = {s.name: s for s in src}
    clashes = tuple(d.name for d in dst if d.name in src_names and src_names[d.name].guid != d.guid)
    if newest is None:
        not_repl = tuple(s.name for s in src)
        pruned: tuple[str, ...] = ()
        kept = tuple(d.name for d in dst)
        newer_on_target: tuple[str, ...] = ()
    else:
        assert newest_dst is not None
        not_repl = tuple(s.name for s in src if s.createtxg > newest.createtxg and s.guid not in dst_by_guid)
        pruned = tuple(s.name for s in src if s.createtxg < newest.createtxg and s.guid not in dst_by_guid)
        kept = tuple(d.name for d in dst if d.createtxg < newest_dst.createtxg and d.guid not in src_by_guid)
        newer_on_target = tuple(
            d.name for d in dst if d.createtxg > newest_dst.createtxg and d.guid not in src_by_guid)

    problems: list[str] = []
    notes: list[str] = []
    if newer_on_target:
        problems.append(
            f"{where} has {len(newer_on_target)} snapshot(s) the source never had, newer than the "
            f"newest common {newest.name if newest else '?'} ({_some(newer_on_target)}): the target was "
            f"written to; inspect them, then roll the target back with "
            f"`zfs rollback -r {target_dataset}@{newest_dst.name if newest_dst else '?'}` on it")
    if clashes:
        problems.append(
            f"{where} has {len(clashes)} snapshot(s) with the source's name but different data "
            f"(GUID differs: {_some(clashes)}): the copies diverged; keep the target copy for "
            f"inspection and re-seed (rename {target_dataset} on the target, then replicate)")
    if newest is None and dst:
        problems.append(
            f"{dataset} and {where} have no snapshot in common: the copies are unrelated or diverged; "
            f"rename {target_dataset} on the target and replicate again (a full send)")
    elif newest is None:
        problems.append(
            f"{dataset} has no snapshots on {where} yet; run `zfsrep replicate --target {target_name}`")
    if newest is not None and max_age is not None:
        age = now - newest.creation
        if age > max_age and not not_repl:
            notes.append(f"the newest snapshot {newest.name} is {format_duration(age)} old on both sides; "
                         "is `zfsrep snapshot` running?")
        elif age > max_age:
            problems.append(
                f"{where} is behind: the newest common snapshot {newest.name} is {format_duration(age)} old "
                f"(limit {format_duration(max_age)}) and {len(not_repl)} newer snapshot(s) are missing; "
                f"run `zfsrep replicate --target {target_name}` and check its errors")
    if newest is not None and not_repl and not problems:
        notes.append(f"{len(not_repl)} newer snapshot(s) not replicated yet (within the freshness limit)")
    if pruned:
        notes.append(f"{len(pruned)} older source snapshot(s) not on the target (target retention)")
    if kept:
        notes.append(f"{len(kept)} older snapshot(s) kept only on the target")
    return Comparison(
        dataset=dataset,
        target_dataset=target_dataset,
        common=tuple(s.name for s in common_src),
        newest_common=newest,
        newest_common_target=newest_dst,
        not_replicated=not_repl,
        pruned_on_target=pruned,
        kept_on_target=kept,
        target_only_newer=newer_on_target,
        name_clashes=clashes,
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _some(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- the side-by-side table of `zfsrep snapshots` -------------------------------------------

@dataclass(frozen=True)
class Row:
    """One snapshot (by GUID) across the source and the targets, in source order when known."""

    name: str  # the source's name, else the first target's name
    guid: int
    creation: int
    on: dict[str, str]  # side ("source" or target name) -> the snapshot's name there
    clash: tuple[str, ...] = ()  # sides where this name exists with another GUID

    @property
    def common(self) -> bool:
        """On the source and on at least one target."""
        return "source" in self.on and len(self.on) > 1


def side_by_side(sides: dict[str, Sequence[Snapshot] | None]) -> list[Row]:
    """Align snapshot lists by GUID. ``sides`` maps "source"/target names to lists (None: no copy).

    Rows are ordered by creation time, then by the first side's txg order.
    """
    rows: dict[int, dict[str, object]] = {}
    order: dict[int, tuple[int, int, int]] = {}
    for rank, (side, snaps) in enumerate(sides.items()):
        for snap in _sorted(snaps or []):
            row = rows.setdefault(snap.guid, {"name": snap.name, "creation": snap.creation, "on": {}})
            on = row["on"]
            assert isinstance(on, dict)
            if side == "source":
                row["name"] = snap.name
            on[side] = snap.name
            order.setdefault(snap.guid, (snap.creation, rank, snap.createtxg))
    by_side_name: dict[str, dict[str, int]] = {
        side: {s.name: s.guid for s in (snaps or [])} for side, snaps in sides.items()}
    out: list[Row] = []
    for guid in sorted(rows, key=lambda g: order[g]):
        row = rows[guid]
        name = str(row["name"])
        clash = tuple(side for side, names in by_side_name.items() if names.get(name, guid) != guid)
        out.append(Row(name=name, guid=guid, creation=int(row["creation"]),  # type: ignore[arg-type]
                       on=dict(row["on"]), clash=clash))  # type: ignore[arg-type]
    return out
