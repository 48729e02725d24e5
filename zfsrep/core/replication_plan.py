"""Pure replication planning: what to send from one source dataset to one target dataset.

Input is what listing found (snapshots on both sides, ordered by createtxg, identified by GUID;
whether the receiving dataset exists; a probed resume token). Output is a `ReplicationPlan`:
a list of steps (full / incremental `-I base..newest` / resume `-t token` / abort a stale
token), or nothing to do, or a refusal whose message names the snapshots and the repair.

Rules (the safety contract, checked by property tests):
  * the common snapshot is found by GUID, never by name;
  * an incremental always starts at the target's newest snapshot, which must be on the source;
  * a target whose newest snapshot is gone from the source but a bookmark of the source
    dataset with that snapshot's GUID remains (zfsrep bookmarks each sent snapshot) gets
    `-i ds#bookmark ds@next` (then `-I` on to the newest: `-I` refuses a bookmark as its base);
  * a target whose newest snapshot is not on the source (nor bookmarked there), or that has
    snapshots but none in common, is refused; a plan never destroys anything on either side (pruning the target is a
    separate plan, `target_prune_candidates`, that never touches the newest common snapshot).

Stdlib only, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from zfsrep.core.retention import RetentionDecision, decide
from zfsrep.core.snapshot import Snapshot

FULL = "full"
INCREMENTAL = "incremental"
RESUME = "resume"
ABORT_RESUME = "abort-resume"

SEND = "send"
NOTHING = "nothing"
REFUSE = "refuse"
EMPTY = "empty"  # the source has no snapshot yet


class Snap(Protocol):
    """What the planner needs of a listed snapshot (e.g. `zfsrep.zfs` snapshot records)."""

    @property
    def name(self) -> str: ...  # the part after "@"

    @property
    def full_name(self) -> str: ...  # "pool/ds@snap"

    @property
    def guid(self) -> int: ...

    @property
    def createtxg(self) -> int: ...


@dataclass(frozen=True)
class ResumeState:
    """A `receive_resume_token` on the target, probed on the source with `zfs send -n -t`."""

    token: str
    valid: bool  # the probe succeeded: the snapshot it continues still exists on the source
    toname: str | None = None  # "pool/ds@snap" on the source
    toguid: int | None = None
    reason: str = ""  # why it is not valid (the probe's error)


@dataclass(frozen=True)
class Step:
    kind: str  # FULL | INCREMENTAL | RESUME | ABORT_RESUME
    to: str | None = None  # source snapshot this step ends at ("pool/ds@snap")
    base: str | None = None  # incremental source ("pool/ds@snap")
    token: str | None = None  # RESUME
    snapshots: tuple[str, ...] = ()  # short names this step lands on the target

    def describe(self) -> str:
        if self.kind == INCREMENTAL and self.base and "#" in self.base:
            return f"incremental from bookmark {self.base} -> {self.to} ({len(self.snapshots)} snapshot(s))"
        if self.kind == FULL:
            return f"full {self.to}"
        if self.kind == INCREMENTAL:
            return f"incremental {self.base} -> {self.to} ({len(self.snapshots)} snapshot(s))"
        if self.kind == RESUME:
            return f"resume interrupted receive of {self.to or 'a snapshot'}"
        return "abort the stale partial receive (zfs receive -A)"


@dataclass(frozen=True)
class ReplicationPlan:
    source: str  # source dataset
    target_name: str
    target_dataset: str  # receiving dataset
    action: str  # SEND | NOTHING | REFUSE | EMPTY
    steps: tuple[Step, ...] = ()
    base: str | None = None  # newest common snapshot before the run ("pool/ds@snap" on the source)
    # or, when that snapshot is gone from the source, its bookmark there ("pool/ds#bm")
    base_guid: int | None = None
    newest: str | None = None  # newest source snapshot: the newest common one after success
    newest_guid: int | None = None
    message: str = ""  # for REFUSE/EMPTY: the one actionable line; else a note (e.g. stale token)
    notes: tuple[str, ...] = field(default=())

    @property
    def sends(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind in (FULL, INCREMENTAL, RESUME))

    @property
    def snapshots_landing(self) -> tuple[str, ...]:
        out: list[str] = []
        for s in self.steps:
            out += [n for n in s.snapshots if n not in out]
        return tuple(out)


def short(name: str) -> str:
    """`pool/ds@snap` -> `snap`; a bookmark `pool/ds#bm` -> `#bm`."""
    if "#" in name:
        return "#" + name.split("#", 1)[1]
    return name.split("@", 1)[1] if "@" in name else name


def _ordered(snaps: Iterable[Snap]) -> list[Snap]:
    return sorted(snaps, key=lambda s: s.createtxg)


def _names(snaps: Sequence[Snap]) -> str:
    shown = [f"@{s.name}" for s in snaps[-3:]]
    more = len(snaps) - len(shown)
    return ", ".join(shown) + (f" (+{more} older)" if more > 0 else "")


def newest_common(source: Sequence[Snap], target: Sequence[Snap]) -> Snap | None:
    """The newest target snapshot (by the target's createtxg) whose GUID is on the source,
    returned as the *source's* record."""
    by_guid = {s.guid: s for s in source}
    for t in reversed(_ordered(target)):
        if t.guid in by_guid:
            return by_guid[t.guid]
    return None


def _after(source: Sequence[Snap], snap: Snap) -> tuple[str, ...]:
    return tuple(s.name for s in source if s.createtxg > snap.createtxg)


def plan_replication(
    source_dataset: str,
    target_name: str,
    target_dataset: str,
    source_snaps: Iterable[Snap],
    target_snaps: Iterable[Snap],
    *,
    target_exists: bool,
    resume: ResumeState | None = None,
    force: bool = False,
    source_bookmarks: Iterable[Snap] = (),
) -> ReplicationPlan:
    """``source_bookmarks``: the source dataset's bookmarks (``full_name`` "pool/ds#bm"); one
    whose GUID is the target's newest snapshot's is the base when that snapshot is gone from
    the source. Bookmarks of another dataset are never used."""
    source = _ordered(source_snaps)
    target = _ordered(target_snaps)
    where = f"target {target_name}: {target_dataset}"
    base_kw = dict(source=source_dataset, target_name=target_name, target_dataset=target_dataset)

    if not source:
        return ReplicationPlan(**base_kw, action=EMPTY,
                               message=f"{source_dataset} has no snapshots to send; "
                                       "run `zfsrep snapshot` (or take one) first")
    newest = source[-1]
    by_guid = {s.guid: s for s in source}
    steps: list[Step] = []
    notes: list[str] = []

    # 1. An interrupted receive: continue it if its snapshot still exists, else discard it.
    if resume is not None:
        resumed = None
        if resume.valid:
            resumed = by_guid.get(resume.toguid) if resume.toguid is not None else None
            if resumed is None and resume.toname is not None:
                resumed = next((s for s in source if s.full_name == resume.toname), None)
        if resumed is not None:
            steps.append(Step(RESUME, to=resumed.full_name, token=resume.token,
                              snapshots=(resumed.name,)))
            if resumed.createtxg < newest.createtxg:
                steps.append(Step(INCREMENTAL, base=resumed.full_name, to=newest.full_name,
                                  snapshots=_after(source, resumed)))
            common = newest_common(source, target)
            return ReplicationPlan(
                **base_kw, action=SEND, steps=tuple(steps),
                base=common.full_name if common else None, base_guid=common.guid if common else None,
                newest=newest.full_name, newest_guid=newest.guid,
                message=f"resuming the interrupted receive of {resumed.full_name}",
            )
        why = resume.reason or "its snapshot is gone from the source"
        notes.append(f"stale resume token on {target_dataset} ({why}); aborting it "
                     "(zfs receive -A) and sending normally")
        steps.append(Step(ABORT_RESUME))
        if not target:
            # An interrupted first full receive: aborting it removes the partial dataset.
            target_exists = False

    # 2. First time: full send of the oldest snapshot, then everything after it in one -I.
    if not target:
        if target_exists and not force:
            return ReplicationPlan(
                **base_kw, action=REFUSE, notes=tuple(notes),
                message=f"{where} exists but has no snapshots, so nothing can be sent "
                        f"incrementally; nothing was changed. Repair: rename it aside "
                        f"(zfs rename {target_dataset} {target_dataset}.old) or destroy it if it "
                        f"is empty, or set targets.{target_name}.force = true to overwrite it",
            )
        oldest = source[0]
        steps.append(Step(FULL, to=oldest.full_name, snapshots=(oldest.name,)))
        if oldest is not newest:
            steps.append(Step(INCREMENTAL, base=oldest.full_name, to=newest.full_name,
                              snapshots=_after(source, oldest)))
        return ReplicationPlan(**base_kw, action=SEND, steps=tuple(steps), newest=newest.full_name,
                               newest_guid=newest.guid, notes=tuple(notes),
                               message="first replication: full send")

    # 3. Incremental from the target's newest snapshot, which must be on the source.
    target_newest = target[-1]
    if target_newest.guid not in by_guid:
        mark = _bookmark_of(source_dataset, source_bookmarks, target_newest.guid)
        if mark is not None:
            return _from_bookmark(base_kw, mark, source, steps, notes)
    common = newest_common(source, target)
    if common is None:
        return ReplicationPlan(
            **base_kw, action=REFUSE, notes=tuple(notes),
            message=f"{where} has {len(target)} snapshot(s) ({_names(target)}) but none in common "
                    f"with {source_dataset} (compared by GUID); refusing to overwrite it, nothing "
                    f"was changed. Repair: rename it aside (zfs rename {target_dataset} "
                    f"{target_dataset}.old) and rerun for a full send, or destroy it if it is "
                    "disposable",
        )
    if target_newest.guid not in by_guid:
        extra = [t for t in target if t.createtxg > next(
            x.createtxg for x in target if x.guid == common.guid)]
        return ReplicationPlan(
            **base_kw, action=REFUSE, base=common.full_name, base_guid=common.guid, notes=tuple(notes),
            message=f"{where} has diverged: {len(extra)} snapshot(s) after the common snapshot "
                    f"@{common.name} are not on {source_dataset} ({_names(extra)}); nothing "
                    f"was changed. Repair: if they are disposable, destroy them on the target "
                    f"(zfs destroy {target_dataset}@{extra[0].name}…) and rerun; to keep "
                    f"them, rename the target aside (zfs rename {target_dataset} "
                    f"{target_dataset}.diverged) and rerun for a full send",
        )
    if common.guid == newest.guid:
        return ReplicationPlan(**base_kw, action=NOTHING if not steps else SEND,
                               steps=tuple(steps), base=common.full_name, base_guid=common.guid,
                               newest=newest.full_name, newest_guid=newest.guid, notes=tuple(notes),
                               message=f"up to date at @{newest.name}")
    steps.append(Step(INCREMENTAL, base=common.full_name, to=newest.full_name,
                      snapshots=_after(source, common)))
    return ReplicationPlan(**base_kw, action=SEND, steps=tuple(steps), base=common.full_name,
                           base_guid=common.guid, newest=newest.full_name, newest_guid=newest.guid,
                           notes=tuple(notes))


def _bookmark_of(dataset: str, bookmarks: Iterable[Snap], guid: int) -> Snap | None:
    """The bookmark of ``dataset`` (never of another dataset) that marks snapshot ``guid``."""
    return next((b for b in bookmarks
                 if b.guid == guid and b.full_name.partition("#")[0] == dataset), None)


def _from_bookmark(base_kw: dict, mark: Snap, source: Sequence[Snap], steps: list[Step],
                   notes: list[str]) -> ReplicationPlan:
    """The target's newest snapshot is gone from the source but ``mark`` bookmarks it: `-i`
    from the bookmark to the next snapshot, then `-I` on to the newest (`zfs send -I` does not
    take a bookmark: "multiple snapshots cannot be sent from a bookmark")."""
    later = [s for s in source if s.createtxg > mark.createtxg]
    newest = source[-1]
    kw = dict(base=mark.full_name, base_guid=mark.guid, notes=tuple(notes))
    if not later:
        return ReplicationPlan(**base_kw, action=NOTHING if not steps else SEND, steps=tuple(steps),
                               newest_guid=mark.guid, **kw,
                               message=f"up to date at bookmark {mark.full_name}")
    first = later[0]
    steps.append(Step(INCREMENTAL, base=mark.full_name, to=first.full_name, snapshots=(first.name,)))
    if first is not newest:
        steps.append(Step(INCREMENTAL, base=first.full_name, to=newest.full_name,
                          snapshots=_after(source, first)))
    return ReplicationPlan(**base_kw, action=SEND, steps=tuple(steps), newest=newest.full_name,
                           newest_guid=newest.guid, **kw,
                           message=f"the target's newest snapshot is gone from the source: "
                                   f"sending incrementally from its bookmark {mark.full_name}")


def common_after(plan: ReplicationPlan, succeeded: bool) -> tuple[str | None, int | None]:
    """The newest common snapshot once the plan ran: its newest on success, else the base."""
    if succeeded and plan.action in (SEND, NOTHING):
        return plan.newest, plan.newest_guid
    return plan.base, plan.base_guid


def after_receive(before: Sequence[Snapshot], landing: Sequence[Snapshot], dataset: str) -> list[Snapshot]:
    """A target copy's snapshots once ``landing`` (source snapshots, oldest first) arrived on
    ``before`` (its listing): a received snapshot keeps its name, guid and creation, has no
    holds, and is younger in that pool than every snapshot the copy had (its createtxg there)."""
    names = {s.name for s in landing}
    kept = [s for s in before if s.name not in names]
    txg = max((s.createtxg for s in before), default=0)
    return kept + [replace(s, dataset=dataset, createtxg=txg + i, userrefs=0)
                   for i, s in enumerate(landing, start=1)]


def target_retention(target_snaps: Iterable[Snap], counts: Mapping[str, int],
                     newest_common_guid: int | None) -> RetentionDecision:
    """What the target's retention decides after a successful receive: it destroys only
    zfsrep-made names, never a held one, never the newest common snapshot (the next base)."""
    protected = {newest_common_guid} if newest_common_guid is not None else set()
    return decide(target_snaps, counts, protected=protected)


def target_prune(target_snaps: Iterable[Snap], counts: Mapping[str, int],
                 newest_common_guid: int | None) -> list:
    """Target snapshots the target's retention destroys after a successful receive
    (`target_retention`)."""
    return list(target_retention(target_snaps, counts, newest_common_guid).destroy)
