"""Which datasets a ``[[datasets]]`` entry covers: the one statement of the rule. Pure.

An entry covers its own dataset and, with ``recursive``, every dataset below it, except those
at or below one of its ``exclude`` names. Where entries overlap, the most specific one (the
longest name) governs: its ``snapshot``, retention and targets decide.

The rule lives here, in `core/`, because `core.snapshot_plan` needs it and `core/` imports
nothing outside itself; `zfsrep.targets.select` offers it to the actions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from zfsrep.core.snapshot import is_descendant

if TYPE_CHECKING:
    from zfsrep.config.model import DatasetConfig


def covers(entry: DatasetConfig, dataset: str) -> bool:
    """True if ``entry`` covers ``dataset``: it is the entry's dataset, or (``recursive``) lies
    below it, and it is not at or below an ``exclude``. (The config check allows an exclude
    only below the entry's own dataset and only with ``recursive``, so the entry's dataset is
    always covered.)"""
    inside = dataset == entry.name or (entry.recursive and is_descendant(dataset, entry.name))
    return inside and not any(is_descendant(dataset, x) for x in entry.exclude)


def governing_entry(entries: Iterable[DatasetConfig], dataset: str) -> DatasetConfig | None:
    """The most specific entry covering ``dataset`` (the first of the longest names), or None."""
    best: DatasetConfig | None = None
    for entry in entries:
        if covers(entry, dataset) and (best is None or len(entry.name) > len(best.name)):
            best = entry
    return best
