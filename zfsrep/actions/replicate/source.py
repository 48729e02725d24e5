"""The source side of a replicate run: the configured datasets (and the children `recursive`
finds) with their snapshots and `zfs holds`, listed once, in a worker thread (`SourceSide`)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from zfsrep.actions.replicate.listing_cache import ListingCache
from zfsrep.config.model import Config, DatasetConfig
from zfsrep.core.result import FAILED, ItemResult
from zfsrep.core.snapshot import Snapshot
from zfsrep.errors import ZfsrepError
from zfsrep.phases import Phases
from zfsrep.targets.select import covers
from zfsrep.zfs import ZfsClient
from zfsrep.zfs.parse import Bookmark

log = logging.getLogger(__name__)


@dataclass
class SourceDataset:
    name: str
    config: DatasetConfig
    top: bool  # the configured dataset itself (not a child found by `recursive`)
    volume: bool = False
    encrypted: bool = False
    snapshots: list[Snapshot] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)  # when a target keeps bookmarks


def _wants_bookmarks(config: Config, dcfg: DatasetConfig) -> bool:
    return any(t.bookmarks for t in config.targets_for(dcfg))


def _bookmarks(client: ZfsClient, roots: Sequence[str], recursive: bool) -> dict[str, list[Bookmark]]:
    """The roots' bookmarks in one `zfs list -t bookmark` per pool, never from the listing
    cache (`zfs bookmark` leaves `snapshots_changed` as it was: measured on 2.3). If that
    fails, none: each copy then plans without the fallback, as before bookmarks."""
    try:
        return client.list_bookmarks(roots, recursive=recursive, missing_ok=True)
    except ZfsrepError as e:
        log.warning("listing bookmarks of %s: %s", ", ".join(roots), (str(e).strip().splitlines() or [""])[0])
        return {}


def _source_datasets(config: Config, chosen: Sequence[DatasetConfig], client: ZfsClient,
                     failed: list[ItemResult], cache: ListingCache) -> list[SourceDataset]:
    props = ["type", "encryption"]
    found: list[SourceDataset] = []
    for recursive in (True, False):
        group = [d for d in chosen if d.recursive == recursive]
        if not group:
            continue
        listed, snaps = cache.list_tree(client, [d.name for d in group], recursive=recursive,
                                        props=props, missing_ok=True)
        marked = [d.name for d in group if _wants_bookmarks(config, d)]
        marks = _bookmarks(client, marked, recursive) if marked else {}
        for dcfg in group:
            if dcfg.name not in listed:
                for target in config.targets_for(dcfg):
                    failed.append(ItemResult(
                        dataset=dcfg.name, target=target.name, status=FAILED,
                        error=f"{dcfg.name}: no such dataset on {socket.gethostname()}; "
                              "create it or fix its datasets[].name in the config"))
                continue
            for name in sorted(n for n in listed if covers(dcfg, n)):
                p = listed[name]
                found.append(SourceDataset(
                    name=name, config=dcfg, top=name == dcfg.name,
                    volume=p.get("type") == "volume",
                    encrypted=p.get("encryption", "off") not in ("off", "-", ""),
                    snapshots=snaps.get(name, []), bookmarks=marks.get(name, []),
                ))
    return sorted(found, key=lambda d: d.name)  # parents before their children


def source_holds(client: ZfsClient, datasets: Sequence[SourceDataset]) -> dict[str, set[str]]:
    """``{source ds@snap: tags}`` for held snapshots (`zfs holds` for the few with holds)."""
    held = [s.full_name for d in datasets for s in d.snapshots if s.userrefs > 0]
    return client.holds(held) if held else {}


class SourceListingFailed(Exception):
    """The source could not be listed: the run ends with this one error (see `run`)."""


@dataclass
class SourceSide:
    """The source's datasets, snapshots and holds for this run, listed in a worker thread
    (`begin`) while the first target connects and lists; `get` waits for them. On a 1-vCPU
    host the two listings still overlap: each mostly waits for its own kernel."""
    config: Config
    chosen: Sequence[DatasetConfig]
    client: ZfsClient
    cache: ListingCache  # the source's listing cache
    host: str
    failed: list[ItemResult] = field(default_factory=list)  # configured, not on this host
    phases: Phases = field(default_factory=Phases)
    _future: Future | None = field(default=None, init=False, repr=False)

    def begin(self, pool: ThreadPoolExecutor) -> None:
        self._future = pool.submit(self._list)

    def _list(self) -> tuple[list[SourceDataset], dict[str, set[str]] | None]:
        with self.phases.timed("source_listing"):
            sources = _source_datasets(self.config, self.chosen, self.client, self.failed, self.cache)
        with self.phases.timed("source_holds"):
            try:
                held = source_holds(self.client, sources)
            except ZfsrepError:
                held = None  # each target asks again and fails with its own message
        return sources, held

    def get(self) -> tuple[list[SourceDataset], dict[str, set[str]] | None]:
        """(datasets, `{ds@snap: tags}` or None); raises SourceListingFailed."""
        if self._future is None:
            return self._list()
        try:
            return self._future.result()
        except ZfsrepError as e:
            raise SourceListingFailed(f"listing datasets on {self.host}: "
                                      f"{str(e).splitlines()[0]}") from None
