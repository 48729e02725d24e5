"""`verify --deep`, the pure part: parse file manifests and checksums read from the same
snapshot on both ends, pick the sample, and say what differs.

The commands that produce the text are constants here (`MANIFEST_SCRIPT`, `CHECKSUM_SCRIPT`,
`CHECKSUM_ALL_SCRIPT`): fixed `sh -c` programs that take the snapshot directory as ``$1`` and
file names on stdin (NUL-separated), so no shell string is ever built from data.

Stdlib only, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# One record per entry: type, size, mode, uid, gid, mtime, link target, path — NUL-separated.
MANIFEST_FIELDS = 8
MANIFEST_SCRIPT = r"""cd -- "$1" && exec find . -mindepth 1 -printf '%y\0%s\0%m\0%U\0%G\0%T@\0%l\0%P\0'"""
# sha256 of the relative paths given on stdin (NUL-separated): "HASH  ./path\0" per file.
CHECKSUM_SCRIPT = r"""cd -- "$1" && exec xargs -0 -r sha256sum -z --"""
CHECKSUM_ALL_SCRIPT = r"""cd -- "$1" && find . -type f -print0 | xargs -0 -r sha256sum -z --"""


@dataclass(frozen=True)
class Entry:
    kind: str  # find's %y: f d l b c p s
    size: int
    mode: str
    uid: str
    gid: str
    mtime: str
    link: str

    def differs(self, other: Entry) -> list[str]:
        fields = ("kind", "size", "mode", "uid", "gid", "mtime", "link")
        if self.kind == "d":  # a directory's size depends on its entries, compared anyway
            fields = ("kind", "mode", "uid", "gid", "mtime")
        return [f for f in fields if getattr(self, f) != getattr(other, f)]


class ManifestError(ValueError):
    pass


def parse_manifest(text: str) -> dict[str, Entry]:
    """``{relative path: Entry}`` from `MANIFEST_SCRIPT` output."""
    parts = text.split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) % MANIFEST_FIELDS:
        raise ManifestError(f"truncated file listing ({len(parts)} fields, not a multiple of {MANIFEST_FIELDS})")
    out: dict[str, Entry] = {}
    for i in range(0, len(parts), MANIFEST_FIELDS):
        kind, size, mode, uid, gid, mtime, link, path = parts[i:i + MANIFEST_FIELDS]
        try:
            nbytes = int(size)
        except ValueError:
            raise ManifestError(f"bad size {size!r} for {path!r} in the file listing") from None
        out[path] = Entry(kind, nbytes, mode, uid, gid, mtime, link)
    return out


def parse_checksums(text: str) -> dict[str, str]:
    """``{relative path: sha256}`` from `sha256sum -z` output ("HASH  ./path" records)."""
    out: dict[str, str] = {}
    for record in text.split("\0"):
        if not record:
            continue
        digest, sep, path = record.partition("  ")
        if not sep or len(digest) != 64:
            raise ManifestError(f"unexpected sha256sum output: {record[:120]!r}")
        out[path[2:] if path.startswith("./") else path] = digest
    return out


def choose_sample(manifest: Mapping[str, Entry], count: int, *, seed: int) -> list[str]:
    """Up to ``count`` regular files: half the most recently modified (what the last
    replications carried), the rest a pseudo-random pick that changes with ``seed`` (so
    successive runs cover different files). Sorted by path."""
    files = [p for p, e in manifest.items() if e.kind == "f"]
    if count <= 0 or count >= len(files):
        return sorted(files)
    newest = sorted(files, key=lambda p: (float(manifest[p].mtime or 0), p), reverse=True)[: count // 2]
    chosen = set(newest)
    key = lambda p: hashlib.sha256(f"{seed}\0{p}".encode("utf-8", "surrogateescape")).digest()  # noqa: E731
    for path in sorted((p for p in files if p not in chosen), key=key):
        if len(chosen) >= count:
            break
        chosen.add(path)
    return sorted(chosen)


def stdin_for(paths: Iterable[str]) -> str:
    """The NUL-separated list `CHECKSUM_SCRIPT` reads (``./`` keeps names from looking like options)."""
    return "".join(f"./{p}\0" for p in paths)


@dataclass(frozen=True)
class DeepResult:
    entries: int  # entries compared by metadata
    files_checked: int  # files whose checksums were compared
    differences: tuple[str, ...]  # empty = equal

    @property
    def equal(self) -> bool:
        return not self.differences


def compare(
    source: Mapping[str, Entry],
    target: Mapping[str, Entry],
    source_sums: Mapping[str, str],
    target_sums: Mapping[str, str],
    checked: Iterable[str],
    *,
    limit: int = 20,
) -> DeepResult:
    """Metadata of every entry, and the checksums of ``checked`` files, side by side."""
    diffs: list[str] = []
    for path in sorted(set(source) | set(target)):
        s, t = source.get(path), target.get(path)
        if s is None:
            diffs.append(f"only on the target: {path}")
        elif t is None:
            diffs.append(f"missing on the target: {path}")
        else:
            fields = s.differs(t)
            if fields:
                diffs.append(f"{', '.join(fields)} differ: {path}")
    paths = list(checked)
    for path in paths:
        s, t = source_sums.get(path), target_sums.get(path)
        if s is None and t is None:
            continue  # unreadable on both ends (e.g. vanished): nothing to compare
        if t is None:
            diffs.append(f"unreadable on the target: {path}")
        elif s is None:
            diffs.append(f"unreadable on the source: {path}")
        elif s != t:
            diffs.append(f"content differs (sha256): {path}")
    shown = diffs[:limit] + ([f"... and {len(diffs) - limit} more"] if len(diffs) > limit else [])
    return DeepResult(entries=len(source), files_checked=len(paths), differences=tuple(shown))
