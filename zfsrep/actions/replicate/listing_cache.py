"""The listing cache, one side of a replicate run: the snapshot listings kept in the state
dir (`<state_dir>/listings/<side>.json`, `state.read_listing_cache`), reused where the
datasets' `snapshots_changed` allows it (the rules: `core.listing_cache`; the `zfs list`s:
`ZfsClient.list_tree_cached`; OpenZFS >= 2.2).

A host whose zfs lacks the property (OpenZFS < 2.2) gets the full listing (`ZfsClient.list_tree`)
and is not asked again for a day. Holds do not change `snapshots_changed`, and replicate reads
the hold counts from the listing: the holds the run placed or released are added to what is
kept (`holds_changed`); a dataset whose holds it cannot account for is not kept (`dont_keep`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from zfsrep import state
from zfsrep.core import listing_cache as lc
from zfsrep.core.snapshot import Snapshot
from zfsrep.zfs import ZfsClient
from zfsrep.zfs.client import CachedTree

log = logging.getLogger(__name__)

RETRY_UNSUPPORTED_S = 86400.0

# How a dataset's snapshots were found, as shown in an item's details["listing"].
REUSED = "reused"  # from the cache: guid, snapshots_changed and origin as when last listed
LISTED = "listed"  # listed again (changed, new, or not cached)
FULL = "full"  # the cache was not used (--no-listing-cache, or OpenZFS < 2.2)


@dataclass
class ListingCache:
    """One side's listing cache for a run: read at the start, listed through (`list_tree`),
    told of the holds the run placed and released, kept at the end (`save`)."""

    state_dir: str
    side: str  # "source" or "target-NAME" (the file name in <state_dir>/listings/)
    where: str  # the host, for people reading the file and the log
    now: float
    enabled: bool = True
    cached: dict[str, lc.Entry] = field(default_factory=dict, init=False)
    trees: list[CachedTree] = field(default_factory=list, init=False)
    not_kept: set[str] = field(default_factory=set, init=False)  # `dont_keep`
    holds: dict[str, int] = field(default_factory=dict, init=False)  # ds@snap: placed - released
    unsupported: bool = field(default=False, init=False)  # this run's zfs refused the property

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        doc = state.read_listing_cache(self.state_dir, self.side)
        if isinstance(doc, dict) and float(doc.get("unsupported_until") or 0) > self.now:
            self.enabled = False  # refused less than a day ago: not asked, and the day not moved on
            return
        self.cached = lc.from_doc(doc)

    def list_tree(self, client: ZfsClient, roots: Sequence[str], *, recursive: bool,
                  props: Sequence[str], missing_ok: bool, only: Collection[str] | None = None,
                  ) -> tuple[dict[str, dict[str, str]], dict[str, list[Snapshot]]]:
        """What `ZfsClient.list_tree` returns, listing only what may have changed (and, with
        ``only``, the snapshots of those datasets alone)."""
        if self.enabled:
            tree = client.list_tree_cached(roots, self.cached, recursive=recursive, props=props,
                                            missing_ok=missing_ok, only=only)
            if tree is not None:
                self.trees.append(tree)
                log.debug("%s (%s): snapshot lists of %d dataset(s) reused, %d listed",
                          self.side, self.where, len(tree.reused), len(tree.listed))
                return tree.datasets, tree.snapshots
            log.debug("%s (%s): zfs has no snapshots_changed (OpenZFS < 2.2): listing all",
                      self.side, self.where)
            self.enabled, self.unsupported = False, True
        return client.list_tree(roots, recursive=recursive, props=props, missing_ok=missing_ok)

    def how(self, dataset: str) -> str:
        """REUSED, LISTED or FULL for one dataset of this side."""
        for tree in self.trees:
            if dataset in tree.reused:
                return REUSED
            if dataset in tree.listed:
                return LISTED
        return FULL

    def dont_keep(self, datasets: Iterable[str]) -> None:
        """These datasets' holds changed in ways this run cannot account for: their listings
        are not kept (the next run lists them again)."""
        self.not_kept.update(datasets)

    def holds_changed(self, full_names: Iterable[str], delta: int) -> None:
        """This run placed (+1) or released (-1) one hold on each of these snapshots."""
        for name in full_names:
            self.holds[name] = self.holds.get(name, 0) + delta

    def save(self) -> str | None:
        """Keep what the next run may reuse; a warning line if the state dir refused it."""
        if self.unsupported:
            doc = {"version": lc.VERSION, "where": self.where,
                   "unsupported_until": self.now + RETRY_UNSUPPORTED_S}
        elif self.trees:
            # datasets this run did not look at (--dataset, --target) keep their entries: each is
            # checked against its guid and snapshots_changed before it is ever used
            seen = {name for tree in self.trees for name in tree.seen}
            entries = {name: e for name, e in self.cached.items()
                       if name not in seen and name not in self.not_kept}
            for tree in self.trees:
                entries.update(lc.with_holds(tree.remember(self.not_kept), self.holds))
            doc = lc.to_doc(entries, self.where)
        else:
            return None
        return state.write_listing_cache(self.state_dir, self.side, doc)
