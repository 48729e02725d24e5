"""zfsrep's snapshot names: ``zfsrep_<labels>_<YYYY-MM-DDTHH:MM:SSZ>`` in UTC.

``<labels>`` is one label, or several joined by ``.`` in LABELS order when several periods
fall due at once (``zfsrep_hourly.daily_2026-11-23T00:00:00Z``): ZFS allows only one new
snapshot per dataset in one atomic `zfs snapshot`, so one snapshot serves every due label.

Only names that parse are zfsrep's; retention never looks at anything else, so a user's
manual snapshot (or another tool's) is never destroyed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from zfsrep.core.labels import LABELS

PREFIX = "zfsrep"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_LABEL_SET = "|".join(LABELS)
_NAME = re.compile(
    rf"{PREFIX}_(?P<labels>(?:{_LABEL_SET})(?:\.(?:{_LABEL_SET}))*)"
    r"_(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)"
)


@dataclass(frozen=True)
class ParsedName:
    labels: tuple[str, ...]  # in LABELS order, no duplicates
    time: int  # epoch seconds (UTC)


def format_name(labels: Iterable[str], time: float) -> str:
    """The snapshot name (after ``@``) for ``labels`` taken at epoch ``time`` (whole seconds)."""
    ordered = canonical_labels(labels)
    if not ordered:
        raise ValueError("a zfsrep snapshot name needs at least one label")
    stamp = datetime.fromtimestamp(int(time), UTC).strftime(TIME_FORMAT)
    return f"{PREFIX}_{'.'.join(ordered)}_{stamp}"


@lru_cache(maxsize=65536)
def parse_name(name: str) -> ParsedName | None:
    """The labels and time of a zfsrep snapshot name, or None if zfsrep did not make it."""
    m = _NAME.fullmatch(name)
    if not m:
        return None
    labels = tuple(m.group("labels").split("."))
    if labels != canonical_labels(labels) or len(set(labels)) != len(labels):
        return None
    stamp = m.group("time")
    try:  # fixed positions: YYYY-MM-DDTHH:MM:SSZ
        moment = datetime(int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]),
                          int(stamp[11:13]), int(stamp[14:16]), int(stamp[17:19]), tzinfo=UTC)
    except ValueError:  # e.g. month 13
        return None
    if moment.year < 1970:
        return None
    return ParsedName(labels=labels, time=int(moment.timestamp()))


def canonical_labels(labels: Iterable[str]) -> tuple[str, ...]:
    wanted = set(labels)
    unknown = wanted - set(LABELS)
    if unknown:
        raise ValueError(f"unknown label(s): {', '.join(sorted(unknown))}")
    return tuple(label for label in LABELS if label in wanted)


def is_zfsrep_name(name: str) -> bool:
    return parse_name(name) is not None
