"""The holds replicate keeps on the source: ``zfsrep:<target>`` on the newest snapshot each
target has (`zfsrep snapshot` never prunes a held snapshot), and the ledger of one target's
turn (`HoldLedger`): which snapshots hold which tags, what to place and what to release."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zfsrep.actions.replicate.copy import Copy
from zfsrep.actions.replicate.listing_cache import ListingCache
from zfsrep.actions.replicate.messages import first_line
from zfsrep.core import replication_plan as rp
from zfsrep.core.restore_plan import HOLD_PREFIX  # the one definition (core: rollback and restore use it too)
from zfsrep.errors import ZfsrepError
from zfsrep.phases import Phases
from zfsrep.zfs import ZfsClient



def hold_tag(target: str) -> str:
    """The hold zfsrep keeps on the newest replicated snapshot per target (`zfsrep snapshot`
    never prunes a held snapshot)."""
    return f"{HOLD_PREFIX}{target}"


@dataclass
class HoldLedger:
    """One target's tag on the source during its turn. ``held`` ({ds@snap: tags}, from the
    source's `zfs holds`) is kept up to date with every hold placed and released, and so is
    the source's listing cache (it keeps hold counts; a dataset whose holds cannot be
    accounted for is not kept there)."""

    tag: str
    local: ZfsClient
    cache: ListingCache  # the source's listing cache
    phases: Phases
    held: dict[str, set[str]]

    def holds(self, snapshot: str) -> bool:
        return self.tag in self.held.get(snapshot, set())

    def hold(self, snapshot: str) -> None:
        """Hold ``snapshot`` (ds@snap) unless it is held already."""
        if not self.holds(snapshot):
            with self.phases.timed("holds"):
                self.local.hold(self.tag, [snapshot])
            self._placed([snapshot])

    def hold_ahead(self, copies: Sequence[Copy]) -> None:
        """One `zfs hold` (per pool) for the snapshot every plan sends up to or keeps as its
        base, before anything is sent. If it fails (a snapshot destroyed meanwhile, say), each
        copy holds its own (`hold`) and a failure is that copy's."""
        names = [c.plan.newest for c in copies if c.plan is not None
                 and c.plan.action in (rp.SEND, rp.NOTHING) and c.plan.newest
                 and not self.holds(c.plan.newest)]
        if len(names) < 2:
            return  # `hold` does one as cheaply
        try:
            with self.phases.timed("holds"):
                self.local.hold(self.tag, names)
        except ZfsrepError:
            # some may be held now: those datasets' remembered hold counts are not kept
            self.cache.dont_keep([n.partition("@")[0] for n in names])
            return
        self._placed(names)

    def keep_newest(self, copy: Copy) -> None:
        """Hold the copy's newest common snapshot; queue the release of the tag from its
        other snapshots (`copy.stale`, released by `release_stale` once every copy is through)."""
        newest = copy.plan.newest
        if not newest:
            return
        self.hold(newest)
        copy.stale = [s.full_name for s in copy.source.snapshots
                      if s.full_name != newest and self.holds(s.full_name)]

    def release_stale(self, copies: Sequence[Copy]) -> None:
        """Release the queued holds: one `zfs release` per pool; if that fails, copy by copy,
        so a failure is the copy's own (its item fails, naming it)."""
        queued = [c for c in copies if c.stale]
        if not queued:
            return
        with self.phases.timed("holds"):
            try:
                self.local.release(self.tag, [n for c in queued for n in c.stale])
            except ZfsrepError:
                for copy in queued:
                    try:
                        self.local.release(self.tag, copy.stale)
                    except ZfsrepError as e:
                        self.cache.dont_keep([copy.source.name])
                        copy.fail(first_line(e))
                        continue
                    self._released(copy.stale)
                return
        self._released([n for c in queued for n in c.stale])

    def _placed(self, names: list[str]) -> None:
        self.cache.holds_changed(names, +1)
        for name in names:
            self.held.setdefault(name, set()).add(self.tag)

    def _released(self, names: list[str]) -> None:
        self.cache.holds_changed(names, -1)
        for name in names:
            self.held[name].discard(self.tag)
