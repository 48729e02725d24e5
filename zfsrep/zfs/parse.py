"""Parsers of `zfs ... -H -p` output: one record per line, fields separated by exactly one tab.

Dataset names may contain spaces, so lines are only ever split on tabs (ZFS names cannot
contain tabs or newlines). Anything unexpected raises ZfsOutputError naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from zfsrep.core.snapshot import Snapshot
from zfsrep.errors import ZfsrepError
from zfsrep.zfs.argv import BOOKMARK_COLUMNS, SNAPSHOT_COLUMNS


class ZfsOutputError(ZfsrepError):
    """`zfs` printed something this version of zfsrep does not understand."""


def rows(text: str, ncols: int) -> list[list[str]]:
    out: list[list[str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        fields = line.split("\t")
        if len(fields) != ncols:
            raise ZfsOutputError(
                f"unexpected zfs output line {number} (expected {ncols} tab-separated fields, "
                f"got {len(fields)}): {line[:200]!r}"
            )
        out.append(fields)
    return out


def table(text: str, columns: Sequence[str]) -> list[dict[str, str]]:
    return [dict(zip(columns, fields, strict=True)) for fields in rows(text, len(columns))]


def integer(value: str, what: str, line: str = "") -> int:
    """A `-p` number; "-" (not applicable) is 0."""
    if value == "-":
        return 0
    try:
        return int(value)
    except ValueError:
        raise ZfsOutputError(f"expected a number for {what}, got {value!r}" + (f" in {line!r}" if line else "")) from None


def snapshots(text: str, columns: Sequence[str] = SNAPSHOT_COLUMNS) -> list[Snapshot]:
    """`zfs list -H -p -t snapshot -o name,guid,createtxg,creation,used,userrefs`, in output order."""
    return [_snapshot(record) for record in table(text, columns)]


def _snapshot(record: dict[str, str]) -> Snapshot:
    full = record["name"]
    dataset, at, name = full.partition("@")
    if not at or not dataset or not name:
        raise ZfsOutputError(f"expected a snapshot name (dataset@name), got {full!r}")
    num = {col: integer(record[col], col, full) if col in record else 0
           for col in ("guid", "createtxg", "creation", "used", "userrefs")}
    return Snapshot(dataset=dataset, name=name, **num)


@dataclass(frozen=True)
class Bookmark:
    """A listed bookmark: ``dataset#name``, the GUID and createtxg of the snapshot it marks."""

    dataset: str
    name: str  # the part after "#"
    guid: int
    createtxg: int

    @property
    def full_name(self) -> str:
        return f"{self.dataset}#{self.name}"


def bookmarks(text: str) -> dict[str, list[Bookmark]]:
    """`zfs list -H -p -t bookmark -o name,guid,createtxg` as ``{dataset: [bookmarks]}``,
    oldest first."""
    out: dict[str, list[Bookmark]] = {}
    for record in table(text, BOOKMARK_COLUMNS):
        full = record["name"]
        dataset, hash_, name = full.partition("#")
        if not hash_ or not dataset or not name:
            raise ZfsOutputError(f"expected a bookmark name (dataset#name), got {full!r}")
        out.setdefault(dataset, []).append(Bookmark(
            dataset, name, integer(record["guid"], "guid", full),
            integer(record["createtxg"], "createtxg", full)))
    for marks in out.values():
        marks.sort(key=lambda b: b.createtxg)
    return out


def datasets(text: str, columns: Sequence[str]) -> dict[str, dict[str, str]]:
    """`zfs list -H -p -o name,<props>` as ``{name: {prop: value}}`` in output order."""
    return {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in table(text, columns)}


def tree(text: str, columns: Sequence[str], roots: Sequence[str] | None = None,
         ) -> tuple[dict[str, dict[str, str]], list[Snapshot]]:
    """`zfs list -t filesystem,volume,snapshot -o <snapshot columns>,type,<props>` (see
    `argv.list_tree`) as ({dataset: {column: value}}, snapshots in output order). With ``roots``
    (a non-recursive listing), only the roots and their own snapshots are kept."""
    keep = set(roots) if roots is not None else None
    found: dict[str, dict[str, str]] = {}
    snaps: list[Snapshot] = []
    for record in table(text, columns):
        name = record["name"]
        if record["type"] == "snapshot":
            if keep is None or name.partition("@")[0] in keep:
                snaps.append(_snapshot(record))
        elif keep is None or name in keep:
            found[name] = {k: v for k, v in record.items() if k != "name"}
    return found, snaps


def clock_and_datasets(text: str, columns: Sequence[str]) -> tuple[int, dict[str, dict[str, str]]]:
    """`argv.list_changed`'s output: (the host's clock in epoch seconds, {name: {column: value}})."""
    first, _, rest = text.partition("\n")
    if not first.strip().isdigit():
        raise ZfsOutputError(f"expected the host's clock (`date +%s`) first, got {first[:200]!r}")
    return int(first), datasets(rest, columns)


def unknown_property(stderr: str, prop: str) -> bool:
    """True if zfs refused ``prop`` as a property it does not know (an older OpenZFS)."""
    return f"invalid property '{prop}'" in stderr or f'invalid property "{prop}"' in stderr


def properties(text: str) -> dict[str, dict[str, str]]:
    """`zfs get -H -p -o name,property,value` as ``{name: {property: value}}``."""
    out: dict[str, dict[str, str]] = {}
    for name, prop, value in rows(text, 3):
        out.setdefault(name, {})[prop] = value
    return out


def holds(text: str) -> dict[str, set[str]]:
    """`zfs holds -H` (name, tag, timestamp) as ``{ds@snap: {tag, ...}}``."""
    out: dict[str, set[str]] = {}
    for name, tag, _when in rows(text, 3):
        out.setdefault(name, set()).add(tag)
    return out


_MISSING = re.compile(r"^cannot open '(?P<name>.*)': (?:dataset does not exist|.*no such pool.*)$", re.MULTILINE)


def missing_datasets(stderr: str) -> set[str]:
    """Names zfs reported as not existing ("cannot open 'x': dataset does not exist")."""
    return {m.group("name") for m in _MISSING.finditer(stderr)}


def unexplained_errors(stderr: str) -> list[str]:
    """stderr lines that are not "does not exist" reports."""
    return [line for line in stderr.splitlines() if line.strip() and not _MISSING.match(line)]
