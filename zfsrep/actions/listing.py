"""Batched snapshot listings of the configured datasets on the source and of their copies on a
target (one `zfs list` of each kind per pool), keyed by the *source* dataset name so the two
sides line up. Shared by `snapshots` and `verify`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from zfsrep.config.model import DatasetConfig, TargetConfig
from zfsrep.core.snapshot import Snapshot
from zfsrep.targets.select import covered, source_dataset, target_dataset
from zfsrep.zfs import ZfsClient

DATASET_PROPS = ("type",)


@dataclass
class Side:
    """One host's view: which datasets exist (with their type) and their snapshots, by source name."""

    exists: dict[str, str] = field(default_factory=dict)  # source name -> type
    snapshots: dict[str, list[Snapshot]] = field(default_factory=dict)

    def snaps(self, dataset: str) -> list[Snapshot] | None:
        """None: the dataset does not exist on this side."""
        if dataset not in self.exists:
            return None
        return self.snapshots.get(dataset, [])


def list_source(client: ZfsClient, entries: Sequence[DatasetConfig]) -> Side:
    listed = client.list_datasets([e.name for e in entries], recursive=True, props=DATASET_PROPS,
                                  missing_ok=True)
    names = list(listed)
    wanted = list(dict.fromkeys(d for e in entries for d in covered(e, names) if d in listed))
    side = Side(exists={d: listed[d].get("type", "filesystem") for d in wanted})
    if wanted:
        side.snapshots = client.list_snapshots(wanted, missing_ok=True)
    return side


def list_target(client: ZfsClient, target: TargetConfig, entries: Sequence[DatasetConfig]) -> Side:
    roots = [target_dataset(target, e.name) for e in entries]
    listed = client.list_datasets(roots, recursive=True, props=DATASET_PROPS, missing_ok=True)
    by_source = {source_dataset(target, copy): props for copy, props in listed.items()}
    names = [n for n in by_source if n is not None]
    wanted = list(dict.fromkeys(d for e in entries for d in covered(e, names) if d in by_source))
    side = Side(exists={d: by_source[d].get("type", "filesystem") for d in wanted})
    if wanted:
        found = client.list_snapshots([target_dataset(target, d) for d in wanted], missing_ok=True)
        for copy, snaps in found.items():
            name = source_dataset(target, copy)
            if name is not None:
                side.snapshots[name] = snaps
    return side


def datasets_of(entries: Sequence[DatasetConfig], *sides: Side) -> list[str]:
    """Every dataset seen on any side, grouped by entry in config order, parents first."""
    seen = list(dict.fromkeys(d for s in sides for d in s.exists))
    out: list[str] = []
    for entry in entries:
        out += [d for d in sorted({entry.name, *(d for d in covered(entry, seen) if d in seen)}) if d not in out]
    return out
