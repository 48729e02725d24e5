"""Reusing an earlier run's snapshot listing of a dataset where ZFS says it cannot have changed.

Listing snapshots costs the kernel a round trip per snapshot, on both sides, every run, even
when nothing is new. OpenZFS 2.2 added the `snapshots_changed` property of a filesystem or
volume: the time (whole seconds, the host's clock) a snapshot of it was last created,
destroyed or renamed, which receive, rollback and promote do too. Listing the datasets with it
costs a round trip per dataset, not per snapshot.

A dataset's earlier listing is reused when its ``guid``, ``snapshots_changed`` and ``origin``
are what they were then (`zfs promote` moves snapshots to the promoted clone without changing
its `snapshots_changed`, measured on 2.3; its ``origin`` changes). It is remembered only when
its ``snapshots_changed`` lay in a second strictly before the host's clock read just before
that listing: any later change then has a later time and shows. A dataset whose value is ``-`` (no change since the pool gained the feature) is always
listed. Holds change nothing here: a caller that places or releases holds adjusts the remembered
hold counts by what it did (``with_holds``), or, where it cannot know (a batch that failed
half-way), does not keep those datasets (``drop``). Everything is pure: the caller lists, reads
the clock and stores (the listing cache's other parts: `ZfsClient.list_tree_cached` lists,
`actions/replicate/listing_cache.py` keeps one side's cache in `<state_dir>/listings/`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from zfsrep.core.snapshot import Snapshot

VERSION = 1
_FIELDS = ("name", "guid", "createtxg", "creation", "used", "userrefs")


@dataclass(frozen=True)
class Seen:
    """One dataset in the cheap listing: its guid, `snapshots_changed` (None for "-") and
    origin ("-" unless a clone)."""

    guid: int
    changed: int | None
    origin: str = "-"


@dataclass(frozen=True)
class Entry:
    """A remembered listing of one dataset's snapshots (oldest first)."""

    guid: int
    changed: int
    snapshots: tuple[Snapshot, ...]
    origin: str = "-"


def split(seen: Mapping[str, Seen], cached: Mapping[str, Entry],
          ) -> tuple[dict[str, list[Snapshot]], list[str]]:
    """({dataset: snapshots} reusable from ``cached``, [datasets to list again]), in ``seen``'s order."""
    reused: dict[str, list[Snapshot]] = {}
    again: list[str] = []
    for name, now in seen.items():
        entry = cached.get(name)
        if (entry is not None and now.changed is not None
                and (entry.guid, entry.changed, entry.origin) == (now.guid, now.changed, now.origin)):
            reused[name] = list(entry.snapshots)
        else:
            again.append(name)
    return reused, again


def remember(seen: Mapping[str, Seen], clock: int, snapshots: Mapping[str, Sequence[Snapshot]],
             drop: Iterable[str] = ()) -> dict[str, Entry]:
    """The entries worth keeping after a run: every dataset of ``seen`` whose `snapshots_changed`
    is older than ``clock`` (the host's time, read before ``seen`` was listed), minus ``drop``."""
    dropped = set(drop)
    return {name: Entry(now.guid, now.changed, tuple(snapshots.get(name, ())), now.origin)
            for name, now in seen.items()
            if now.changed is not None and now.changed < clock and name not in dropped}


def with_holds(entries: Mapping[str, Entry], changed: Mapping[str, int]) -> dict[str, Entry]:
    """``entries`` with each snapshot's `userrefs` moved by ``changed`` ({ds@snap: holds placed
    minus holds released}), never below 0: what a listing after those holds would show."""
    out = dict(entries)
    by_dataset: dict[str, dict[str, int]] = {}
    for full, delta in changed.items():
        dataset, _, name = full.partition("@")
        by_dataset.setdefault(dataset, {})[name] = delta
    for dataset, deltas in by_dataset.items():
        entry = out.get(dataset)
        if entry is None:
            continue
        out[dataset] = replace(entry, snapshots=tuple(
            replace(s, userrefs=max(0, s.userrefs + deltas[s.name])) if s.name in deltas else s
            for s in entry.snapshots))
    return out


def to_doc(entries: Mapping[str, Entry], where: str) -> dict[str, Any]:
    """The JSON form kept in the state dir (``where`` names the host, for people reading it)."""
    return {"version": VERSION, "where": where, "datasets": {
        name: {"guid": e.guid, "snapshots_changed": e.changed, "origin": e.origin,
               "snapshots": [[s.name, s.guid, s.createtxg, s.creation, s.used, s.userrefs]
                             for s in e.snapshots]}
        for name, e in sorted(entries.items())}}


def from_doc(doc: Any) -> dict[str, Entry]:
    """Entries from ``to_doc``'s form. Anything else (another version, damage) gives none:
    the cache only ever saves work, so a doubtful one is simply not used."""
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return {}
    out: dict[str, Entry] = {}
    try:
        for name, raw in dict(doc.get("datasets") or {}).items():
            snaps = tuple(Snapshot(dataset=str(name), **_snapshot_fields(row))
                          for row in raw["snapshots"])
            out[str(name)] = Entry(int(raw["guid"]), int(raw["snapshots_changed"]), snaps,
                                   str(raw["origin"]))
    except (KeyError, TypeError, ValueError):
        return {}
    return out


def _snapshot_fields(row: Any) -> dict[str, Any]:
    if not isinstance(row, list) or len(row) != len(_FIELDS) or not isinstance(row[0], str) or not row[0]:
        raise ValueError(f"bad snapshot row {row!r}")
    return {"name": row[0], **{k: int(v) for k, v in zip(_FIELDS[1:], row[1:], strict=True)}}
