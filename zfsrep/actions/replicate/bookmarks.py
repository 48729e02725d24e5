"""The bookmark replicate keeps on the source per dataset and target: the newest snapshot the
target has, as ``ds#zfsrep_<target>_<createtxg>``. When that snapshot is gone from the source
(pruned or destroyed by hand), the planner sends incrementally from the bookmark
(`core.replication_plan`) instead of refusing the target.

A new bookmark is made before the older ones of the target are destroyed, so the source is never
without one. `zfs bookmark` needs the `bookmark` permission, destroying one `destroy`, which the
units do not grant replicate (`systemd.REPLICATE_PERMISSIONS` stay disjoint from the snapshot
unit's): there the older bookmarks stay (they hold no space), and a run that makes a new one
notes it; a run that makes none tries no destroy."""

from __future__ import annotations

import logging

from zfsrep.actions.replicate.copy import Copy
from zfsrep.actions.replicate.messages import first_line
from zfsrep.errors import ZfsrepError
from zfsrep.phases import Phases
from zfsrep.zfs import ZfsClient
from zfsrep.zfs.parse import Bookmark

log = logging.getLogger(__name__)

PREFIX = "zfsrep_"


def bookmark_prefix(target: str) -> str:
    """``zfsrep_<target>_``: a name with it and then only digits is this target's."""
    return f"{PREFIX}{target}_"


def bookmark_name(target: str, dataset: str, createtxg: int) -> str:
    """``ds#zfsrep_<target>_<createtxg of the bookmarked snapshot>``."""
    return f"{dataset}#{bookmark_prefix(target)}{createtxg}"


def ours(target: str, marks: list[Bookmark]) -> list[Bookmark]:
    """The target's bookmarks among a dataset's (another target's name never matches: after
    the prefix only digits follow)."""
    prefix = bookmark_prefix(target)
    return [b for b in marks if b.name.startswith(prefix) and b.name[len(prefix):].isdigit()]


def keep_bookmark(local: ZfsClient, copy: Copy, phases: Phases) -> None:
    """Bookmark the copy's newest common snapshot for its target (if not bookmarked yet) and
    destroy the target's older zfsrep bookmarks of the dataset. A failure is a warning on the
    item: the data arrived; only the fallback for the next run is missing."""
    ds, plan, item = copy.source, copy.plan, copy.item
    newest = next((s for s in ds.snapshots if s.full_name == plan.newest), None)
    if newest is None:
        return
    mine = ours(copy.target, ds.bookmarks)
    name = bookmark_name(copy.target, ds.name, newest.createtxg)
    made = False
    try:
        if not any(b.full_name == name and b.guid == newest.guid for b in mine):
            with phases.timed("bookmarks"):
                local.bookmark(newest.full_name, name)
            ds.bookmarks.append(Bookmark(ds.name, name.partition("#")[2], newest.guid, newest.createtxg))
            made = True
    except ZfsrepError as e:
        item.details.setdefault("warnings", []).append(
            f"{copy.where}: could not bookmark {newest.full_name} as {name}: {first_line(e)}; "
            f"replicate needs the `bookmark` permission on {ds.name} (or set "
            f"targets.{copy.target}.bookmarks = false)")
        return
    item.details["bookmark"] = name
    # only when this run made the new one: without `destroy` (the units) the older ones stay,
    # and a run with nothing new would only try again and fail the same way
    kept = [b.full_name for b in mine if b.full_name != name] if made else []
    while kept:
        try:
            with phases.timed("bookmarks"):
                local.destroy_bookmark(kept[0])
        except ZfsrepError as e:  # no `destroy` permission: the others would fail alike
            log.debug("keeping %s: %s", ", ".join(kept), first_line(e))
            break
        gone = kept.pop(0)
        ds.bookmarks = [b for b in ds.bookmarks if b.full_name != gone]
    if kept:
        item.add_note(f"{len(kept)} older bookmark(s) of target {copy.target} kept on {ds.name} "
                      f"({kept[0]}…): destroying one needs the `destroy` permission, which the "
                      "units do not grant replicate; they hold no space")
