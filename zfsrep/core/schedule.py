"""Which labels are due for a dataset at ``now``: a label is due when none of the dataset's
zfsrep snapshots carrying it falls in the current period. Periods are UTC calendar periods
(no DST, so a clock change never takes or skips a snapshot):

  frequent  the 15-minute slot (:00, :15, :30, :45)
  hourly    the hour
  daily     the day
  weekly    the ISO week (Monday to Sunday)
  monthly   the month
  yearly    the year

A label whose retention count is 0 is never due.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache

from zfsrep.core.labels import FREQUENT_MINUTES, LABELS
from zfsrep.core.names import parse_name

Period = tuple[int, ...]


@lru_cache(maxsize=65536)
def period(label: str, when: float) -> Period:
    """The key of the ``label`` period containing epoch ``when``; equal keys, same period."""
    t = datetime.fromtimestamp(int(when), UTC)
    if label == "frequent":
        return (int(when) // (FREQUENT_MINUTES * 60),)
    if label == "hourly":
        return (int(when) // 3600,)
    if label == "daily":
        return (t.year, t.month, t.day)
    if label == "weekly":
        year, week, _ = t.isocalendar()
        return (year, week)
    if label == "monthly":
        return (t.year, t.month)
    if label == "yearly":
        return (t.year,)
    raise ValueError(f"unknown label {label!r}")


def due_labels(counts: Mapping[str, int], snapshot_names: Iterable[str], now: float) -> tuple[str, ...]:
    """Labels (in LABELS order) that need a snapshot at ``now``.

    ``snapshot_names`` are the dataset's snapshot names (after ``@``); names zfsrep did not
    make are ignored.
    """
    current = {label: period(label, now) for label in LABELS if counts.get(label, 0) > 0}
    missing = set(current)
    for name in snapshot_names:
        parsed = parse_name(name)
        if parsed is None:
            continue
        for label in parsed.labels:
            if label in missing and period(label, parsed.time) == current[label]:
                missing.discard(label)
        if not missing:
            break
    return tuple(label for label in LABELS if label in missing)
