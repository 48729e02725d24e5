"""`ZfsClient`: the zfs control-plane commands zfsrep needs, over any `Runner` (local, or a
target through `SshSession.runner()`). Listings are batched: one `zfs list` per pool for
all requested roots, never one per dataset."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from zfsrep.core import listing_cache as lc
from zfsrep.core.snapshot import Snapshot, pool_of
from zfsrep.errors import CommandError
from zfsrep.execute import CommandResult, Runner
from zfsrep.zfs import argv as za
from zfsrep.zfs import parse


class DestroyError(CommandError):
    """A `zfs destroy` batch failed; ``destroyed`` lists the snapshots earlier batches removed."""

    def __init__(self, error: CommandError, dataset: str, destroyed: list[str]):
        super().__init__(error.argv, error.returncode, error.stderr, host=error.host)
        self.dataset = dataset
        self.destroyed = destroyed


def by_pool(names: Iterable[str]) -> dict[str, list[str]]:
    """Group dataset (or ``ds@snap``) names by pool, keeping order and dropping repeats."""
    pools: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        pools.setdefault(pool_of(name), []).append(name)
    return pools


def _by_dataset(snapshots: Iterable[Snapshot]) -> dict[str, list[Snapshot]]:
    """``{dataset: [snapshots oldest first]}``."""
    out: dict[str, list[Snapshot]] = {}
    for snap in snapshots:
        out.setdefault(snap.dataset, []).append(snap)
    for snaps in out.values():
        snaps.sort(key=lambda s: s.createtxg)
    return out


@dataclass
class CachedTree:
    """`ZfsClient.list_tree_cached`'s answer: what `list_tree` gives (``datasets``,
    ``snapshots``), plus what `core.listing_cache.remember` needs (``seen`` and each dataset's
    host ``clocks``) and which datasets' snapshot lists were ``reused`` or ``listed`` again."""

    datasets: dict[str, dict[str, str]] = field(default_factory=dict)
    snapshots: dict[str, list[Snapshot]] = field(default_factory=dict)
    seen: dict[str, lc.Seen] = field(default_factory=dict)
    clocks: dict[str, int] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)

    def remember(self, drop: Iterable[str] = ()) -> dict[str, lc.Entry]:
        out: dict[str, lc.Entry] = {}
        for clock in set(self.clocks.values()):
            seen = {n: s for n, s in self.seen.items() if self.clocks[n] == clock}
            out.update(lc.remember(seen, clock, self.snapshots, drop))
        return out


@dataclass
class ZfsClient:
    runner: Runner

    @property
    def host(self) -> str | None:
        return self.runner.host

    # -- listing ---------------------------------------------------------------------------

    def _list(self, argv: list[str], roots: Sequence[str], missing_ok: bool) -> CommandResult:
        return self._checked(argv, self.runner.run(argv, check=False), roots, missing_ok)

    def _checked(self, argv: list[str], result: CommandResult, roots: Sequence[str],
                 missing_ok: bool) -> CommandResult:
        """``result``, unless it failed for more than (allowed) missing ``roots``: CommandError."""
        if result.returncode != 0:
            missing = parse.missing_datasets(result.stderr)
            other = parse.unexplained_errors(result.stderr)
            if other or not missing or not missing_ok or not missing <= set(roots):
                raise CommandError(argv, result.returncode, result.stderr, host=self.host)
        return result

    def list_datasets(
        self,
        roots: Sequence[str],
        *,
        recursive: bool = False,
        props: Sequence[str] = (),
        types: str = "filesystem,volume",
        missing_ok: bool = False,
    ) -> dict[str, dict[str, str]]:
        """``{name: {prop: value}}`` for ``roots`` (and descendants), one `zfs list` per pool.

        With ``missing_ok``, roots that do not exist are simply absent from the result.
        """
        columns = ["name", *[p for p in props if p != "name"]]
        out: dict[str, dict[str, str]] = {}
        for pool_roots in by_pool(roots).values():
            argv = za.list_datasets(pool_roots, recursive=recursive, props=columns, types=types)
            result = self._list(argv, pool_roots, missing_ok)
            out.update(parse.datasets(result.stdout, columns))
        return out

    def list_snapshots(
        self, roots: Sequence[str], *, recursive: bool = False, missing_ok: bool = False
    ) -> dict[str, list[Snapshot]]:
        """``{dataset: [snapshots oldest first]}``, one `zfs list -t snapshot` per pool.

        Datasets without snapshots do not appear; use `list_datasets` to know which exist.
        """
        found: list[Snapshot] = []
        for pool_roots in by_pool(roots).values():
            argv = za.list_snapshots(pool_roots, recursive=recursive)
            result = self._list(argv, pool_roots, missing_ok)
            found += parse.snapshots(result.stdout)
        return _by_dataset(found)

    def list_tree(
        self, roots: Sequence[str], *, recursive: bool = False, props: Sequence[str] = (),
        missing_ok: bool = False,
    ) -> tuple[dict[str, dict[str, str]], dict[str, list[Snapshot]]]:
        """`list_datasets` and `list_snapshots` together from one `zfs list` per pool:
        ({name: {prop: value}} including ``type``, {dataset: [snapshots oldest first]})."""
        datasets: dict[str, dict[str, str]] = {}
        found: list[Snapshot] = []
        for pool_roots in by_pool(roots).values():
            argv, columns = za.list_tree(pool_roots, recursive=recursive, props=props)
            result = self._list(argv, pool_roots, missing_ok)
            listed, snaps = parse.tree(result.stdout, columns, None if recursive else pool_roots)
            datasets.update(listed)
            found += snaps
        return datasets, _by_dataset(found)

    def list_tree_cached(
        self, roots: Sequence[str], cached: Mapping[str, lc.Entry], *, recursive: bool = False,
        props: Sequence[str] = (), missing_ok: bool = False, only: Collection[str] | None = None,
    ) -> CachedTree | None:
        """What `list_tree` returns, listing snapshots only of datasets whose `snapshots_changed`
        says ``cached`` may be out of date (`core.listing_cache`): one `zfs list` of the datasets
        per pool, then `zfs list -t snapshot -d 1` of those that changed, in batches. With
        ``only``, other datasets are listed (``datasets``) but not their snapshots. A dataset
        destroyed between the two listings is left out. None when this host's zfs has no
        `snapshots_changed` (OpenZFS < 2.2): use `list_tree`."""
        out = CachedTree()
        for pool_roots in by_pool(roots).values():
            argv, columns = za.list_changed(pool_roots, recursive=recursive, props=props)
            result = self.runner.run(argv, check=False)
            if result.returncode != 0 and parse.unknown_property(result.stderr, "snapshots_changed"):
                return None
            self._checked(argv, result, pool_roots, missing_ok)
            clock, listed = parse.clock_and_datasets(result.stdout, columns)
            seen = {name: lc.Seen(parse.integer(p["guid"], "guid", name),
                                  None if p["snapshots_changed"] in ("-", "")
                                  else parse.integer(p["snapshots_changed"], "snapshots_changed", name),
                                  p["origin"])
                    for name, p in listed.items()}
            if only is not None:
                seen = {n: v for n, v in seen.items() if n in only}
            reused, again = lc.split(seen, cached)
            found: list[Snapshot] = []
            for batch in za.name_batches(again):
                result = self._list(za.list_snapshots(batch), batch, True)
                found += parse.snapshots(result.stdout)
                for gone in parse.missing_datasets(result.stderr) & set(batch):
                    listed.pop(gone, None)
                    seen.pop(gone, None)
                    again.remove(gone)
            snaps = reused | _by_dataset(found)
            out.datasets.update({n: {k: v for k, v in p.items() if k not in za.CHANGED_COLUMNS}
                                 for n, p in listed.items()})
            out.snapshots.update(snaps)
            out.seen.update(seen)
            out.clocks.update(dict.fromkeys(seen, clock))
            out.reused += list(reused)
            out.listed += again
        return out

    def list_bookmarks(self, roots: Sequence[str], *, recursive: bool = False,
                       missing_ok: bool = False) -> dict[str, list[parse.Bookmark]]:
        """``{dataset: [bookmarks oldest first]}``, one `zfs list -t bookmark` per pool. Not
        cached: bookmarks are few, and a bookmark is no snapshot to `snapshots_changed`."""
        out: dict[str, list[parse.Bookmark]] = {}
        for pool_roots in by_pool(roots).values():
            argv = za.list_bookmarks(pool_roots, recursive=recursive)
            out.update(parse.bookmarks(self._list(argv, pool_roots, missing_ok).stdout))
        return out

    def bookmark(self, snapshot: str, bookmark_name: str) -> None:
        """Bookmark ``snapshot`` (ds@snap) as ``bookmark_name`` (ds#name)."""
        self.runner.run(za.bookmark(snapshot, bookmark_name))

    def destroy_bookmark(self, bookmark_name: str) -> None:
        """Destroy ``bookmark_name`` (ds#name)."""
        self.runner.run(za.destroy_bookmark(bookmark_name))

    def get(self, props: Sequence[str], names: Sequence[str], *, missing_ok: bool = False) -> dict[str, dict[str, str]]:
        """``{name: {prop: value}}`` from one `zfs get -H -p` per pool ("-" means unset)."""
        out: dict[str, dict[str, str]] = {}
        for pool_names in by_pool(names).values():
            argv = za.get(props, pool_names)
            result = self._list(argv, pool_names, missing_ok)
            out.update(parse.properties(result.stdout))
        return out

    def holds(self, full_names: Sequence[str], *, batch: int = 50) -> dict[str, set[str]]:
        """``{ds@snap: {tags}}`` for snapshots that carry holds. `zfs holds` slows down
        super-linearly with many names (openzfs#13372), so it is asked in bounded batches."""
        out: dict[str, set[str]] = {}
        names = list(dict.fromkeys(full_names))
        for i in range(0, len(names), batch):
            result = self.runner.run(za.holds(names[i:i + batch]))
            out.update(parse.holds(result.stdout))
        return out

    # -- changes ---------------------------------------------------------------------------

    def snapshot(self, full_names: Sequence[str], *, recursive: bool = False,
                 props: dict[str, str] | None = None) -> None:
        """Create ``ds@name`` snapshots atomically: one `zfs snapshot` (so one pool, and at most
        one new snapshot per dataset, which is what ZFS accepts in one transaction)."""
        pools = by_pool(full_names)
        if len(pools) > 1:
            raise ValueError(f"one atomic zfs snapshot spans one pool, got {sorted(pools)}")
        self.runner.run(za.snapshot(list(full_names), recursive=recursive, props=props))

    def destroy(self, dataset: str, names: Sequence[str], *, recursive: bool = False,
                max_chars: int = za.MAX_BATCH_CHARS) -> list[str]:
        """Destroy ``dataset@name`` for each name, in `zfs destroy ds@a,b,c` batches; with
        ``recursive`` (`-r`) also in every descendant that has a snapshot of that name (the
        caller must know that is exactly what it wants: `core.destroy_groups`).

        Returns the names destroyed; a failed batch raises DestroyError (with what earlier
        batches destroyed). ZFS destroys a batch all-or-nothing, `-r` included.
        """
        done: list[str] = []
        for argv in za.destroy_batches(dataset, names, recursive=recursive, max_chars=max_chars):
            try:
                self.runner.run(argv)
            except CommandError as e:
                raise DestroyError(e, dataset, done) from None
            done += argv[-1].split("@", 1)[1].split(",")
        return done

    def reclaimable(self, dataset: str, names: Sequence[str]) -> int:
        """Bytes `zfs destroy -nvp` says destroying these snapshots would free (nothing changes)."""
        total = 0
        for argv in za.destroy_batches(dataset, names, dry_run=True):
            result = self.runner.run(argv)
            for line in result.stdout.splitlines():
                key, _, value = line.partition("\t")
                if key == "reclaim":
                    total += parse.integer(value.strip(), "reclaim", line)
        return total

    def hold(self, tag: str, full_names: Sequence[str]) -> None:
        """Place hold ``tag`` on each snapshot; a hold that already exists is fine."""
        self._tag("hold", tag, full_names, "tag already exists")

    def release(self, tag: str, full_names: Sequence[str]) -> None:
        """Release hold ``tag`` from each snapshot; a hold that is not there is fine."""
        self._tag("release", tag, full_names, "no such tag")

    def _tag(self, verb: str, tag: str, full_names: Sequence[str], harmless: str) -> None:
        names = list(dict.fromkeys(full_names))
        if not names:
            return
        build = za.hold if verb == "hold" else za.release
        for pool_names in by_pool(names).values():
            argv = build(tag, pool_names)
            result = self.runner.run(argv, check=False)
            if result.ok:
                continue
            if harmless not in result.stderr:
                raise CommandError(argv, result.returncode, result.stderr, host=self.host)
            # ZFS applies a batch all-or-nothing: redo one by one, tolerating the harmless case.
            for name in pool_names:
                one = build(tag, [name])
                single = self.runner.run(one, check=False)
                if not single.ok and harmless not in single.stderr:
                    raise CommandError(one, single.returncode, single.stderr, host=self.host)
