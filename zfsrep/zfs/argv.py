"""Pure builders of `zfs` argument lists. Every dataset or snapshot name is its own argv element
(names may contain spaces; a child may start with a dash), so nothing here is ever a shell
string. Remote execution quotes the whole list once (`zfsrep.execute.Runner`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ZFS = "zfs"

SNAPSHOT_COLUMNS: tuple[str, ...] = ("name", "guid", "createtxg", "creation", "used", "userrefs")

# Linux caps one argv element at 128 KiB (MAX_ARG_STRLEN); a `ds@a,b,c` batch stays far below,
# also when it travels through ssh to a remote shell.
MAX_BATCH_CHARS = 32 * 1024


def list_datasets(
    roots: Sequence[str],
    *,
    recursive: bool = False,
    props: Sequence[str] = ("name",),
    types: str = "filesystem,volume",
) -> list[str]:
    columns = ["name", *[p for p in props if p != "name"]]
    argv = [ZFS, "list", "-H", "-p", "-t", types, "-o", ",".join(columns)]
    if recursive:
        argv.append("-r")
    return [*argv, *roots]


def list_snapshots(roots: Sequence[str], *, recursive: bool = False,
                   columns: Sequence[str] = SNAPSHOT_COLUMNS) -> list[str]:
    """All snapshots of ``roots`` (and their descendants if ``recursive``), oldest first."""
    argv = [ZFS, "list", "-H", "-p", "-t", "snapshot", "-o", ",".join(columns), "-s", "createtxg"]
    if recursive:
        argv.append("-r")
    else:
        argv += ["-d", "1"]  # a filesystem's own snapshots, not its children's
    return [*argv, *roots]


BOOKMARK_COLUMNS: tuple[str, ...] = ("name", "guid", "createtxg")


def list_bookmarks(roots: Sequence[str], *, recursive: bool = False) -> list[str]:
    """The bookmarks of ``roots`` (and their descendants if ``recursive``) in one `zfs list`."""
    return [ZFS, "list", "-H", "-p", "-t", "bookmark", "-o", ",".join(BOOKMARK_COLUMNS),
            *(["-r"] if recursive else ["-d", "1"]), *roots]


def bookmark(snapshot: str, bookmark_name: str) -> list[str]:
    """`zfs bookmark ds@snap ds#name`."""
    return [ZFS, "bookmark", snapshot, bookmark_name]


def destroy_bookmark(bookmark_name: str) -> list[str]:
    """`zfs destroy ds#name` (needs the `destroy` permission; without `mount` that allows
    destroying bookmarks only)."""
    if "#" not in bookmark_name:
        raise ValueError(f"not a bookmark (ds#name): {bookmark_name!r}")
    return [ZFS, "destroy", bookmark_name]


def list_tree(roots: Sequence[str], *, recursive: bool = False,
              props: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Datasets and their snapshots in one `zfs list` (one process, one pass over the pool):
    (argv, columns). The snapshot columns come first, then ``type`` and ``props``; without
    ``recursive``, ``-d 1`` also lists the roots' children, which the parser drops."""
    columns = [*SNAPSHOT_COLUMNS, "type", *[p for p in props if p not in SNAPSHOT_COLUMNS and p != "type"]]
    argv = [ZFS, "list", "-H", "-p", "-t", "filesystem,volume,snapshot", "-o", ",".join(columns),
            "-s", "createtxg", *(["-r"] if recursive else ["-d", "1"]), *roots]
    return argv, columns


CHANGED_COLUMNS: tuple[str, ...] = ("guid", "snapshots_changed", "origin")


def list_changed(roots: Sequence[str], *, recursive: bool = False,
                 props: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """The host's clock (`date +%s`, first line), then the datasets with ``type``, ``props``,
    ``guid``, ``snapshots_changed`` (OpenZFS >= 2.2) and ``origin``, no snapshots: (argv, columns).
    The clock is read first, in the same process, so it is the host's own time before the
    listing (see `core.listing_cache`). The names travel as arguments, never in the script."""
    columns = ["name", "type", *[p for p in props if p not in ("name", "type", *CHANGED_COLUMNS)],
               *CHANGED_COLUMNS]
    zfs = [ZFS, "list", "-H", "-p", "-t", "filesystem,volume", "-o", ",".join(columns),
           *(["-r"] if recursive else []), *roots]
    return ["sh", "-c", 'date +%s && exec "$@"', "sh", *zfs], columns


def name_batches(names: Sequence[str], *, max_chars: int = MAX_BATCH_CHARS) -> list[list[str]]:
    """``names`` in order, cut into groups whose names stay under ``max_chars`` together (so a
    command of one group stays far below Linux's argv limits, also through ssh)."""
    batches: list[list[str]] = []
    size = 0
    for name in names:
        if not batches or size + len(name) + 1 > max_chars:
            batches.append([])
            size = 0
        batches[-1].append(name)
        size += len(name) + 1
    return batches


def snapshot(full_names: Sequence[str], *, recursive: bool = False,
             props: dict[str, str] | None = None) -> list[str]:
    """One atomic `zfs snapshot` of ``ds@name`` entries (all in one pool, one per dataset)."""
    if not full_names:
        raise ValueError("zfs snapshot needs at least one name")
    argv = [ZFS, "snapshot"]
    if recursive:
        argv.append("-r")
    for key, value in (props or {}).items():
        argv += ["-o", f"{key}={value}"]
    return [*argv, *full_names]


def destroy_batches(dataset: str, names: Iterable[str], *, dry_run: bool = False, recursive: bool = False,
                    max_chars: int = MAX_BATCH_CHARS) -> list[list[str]]:
    """`zfs destroy [-r] ds@a,b,c` commands, each argument under ``max_chars``.

    ``recursive`` adds ``-r``: the names go in ``dataset`` and in every descendant that has
    them (OpenZFS skips datasets without them), all-or-nothing per command.
    ``dry_run`` adds ``-n -v -p`` (zfs reports what it would reclaim, destroys nothing).
    """
    flags = (["-r"] if recursive else []) + (["-n", "-v", "-p"] if dry_run else [])
    names = list(names)
    for name in names:
        if "@" in name or "," in name or not name:
            raise ValueError(f"not a snapshot name (the part after @): {name!r}")
    # each argument is "<dataset>@" followed by its batch of names
    return [[ZFS, "destroy", *flags, f"{dataset}@{','.join(batch)}"]
            for batch in name_batches(names, max_chars=max_chars - len(dataset) - 1)]


def hold(tag: str, full_names: Sequence[str]) -> list[str]:
    return [ZFS, "hold", tag, *full_names]


def release(tag: str, full_names: Sequence[str]) -> list[str]:
    return [ZFS, "release", tag, *full_names]


def holds(full_names: Sequence[str]) -> list[str]:
    return [ZFS, "holds", "-H", *full_names]


def get(props: Sequence[str], names: Sequence[str]) -> list[str]:
    return [ZFS, "get", "-H", "-p", "-o", "name,property,value", ",".join(props), *names]
