"""Pure restore planning: bring one snapshot back from a target into a local dataset.

The data path is replication in reverse (`ssh target zfs send | zfs receive` locally), so the
plan reuses the replication step kinds: FULL (one snapshot, full stream), RESUME (continue an
interrupted restore with its token) and ABORT_RESUME (discard a stale partial receive).

Safety contract (checked by tests):
  * by default the restore lands in a dataset that does not exist yet; nothing is destroyed;
  * a live destination is replaced only with ``force``, and then only *after* the restored copy
    has fully arrived next to it (received as ``<dest>.zfsrep-restore``, then the live dataset is
    destroyed and the copy renamed); the plan lists exactly what that destroys;
  * holds other than zfsrep's on the live dataset's snapshots block the replacement.

Stdlib only, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from zfsrep.core.replication_plan import ABORT_RESUME, FULL, RESUME, ResumeState, Step
from zfsrep.core.sizes import format_bytes
from zfsrep.core.snapshot import Snapshot, parent_of

NEW = "new"  # receive into a dataset that does not exist
REPLACE = "replace"  # receive next to a live dataset, then destroy it and rename the copy
REFUSE = "refuse"

TEMP_SUFFIX = ".zfsrep-restore"
HOLD_PREFIX = "zfsrep:"


@dataclass(frozen=True)
class LocalDataset:
    """What listing found about a local dataset that a restore would write (dest or temp)."""

    exists: bool = False
    descendants: tuple[str, ...] = ()  # child datasets, recursively (not including itself)
    snapshots: tuple[Snapshot, ...] = ()  # of itself and its descendants
    used: int = 0  # bytes
    resume: ResumeState | None = None  # an interrupted receive into it, probed on the target
    holds: Mapping[str, frozenset[str]] = field(default_factory=dict)  # ds@snap -> tags

    @property
    def partial(self) -> bool:
        """Only an interrupted first receive: nothing live, resumable or discardable."""
        return self.exists and self.resume is not None and not self.snapshots


@dataclass(frozen=True)
class RestorePlan:
    dataset: str  # the source dataset whose copy is restored
    target_name: str
    target_dataset: str  # the copy on the target
    dest: str  # where the data ends up
    action: str  # NEW | REPLACE | REFUSE
    snapshot: Snapshot | None = None  # the target's snapshot being restored
    receive_into: str | None = None  # dest, or the temporary name next to it (REPLACE)
    steps: tuple[Step, ...] = ()  # FULL / RESUME / ABORT_RESUME; empty: already received
    create_parents: tuple[str, ...] = ()  # missing parents, created first (canmount=off)
    destroys: tuple[str, ...] = ()  # REPLACE: datasets destroyed (with all their snapshots)
    destroys_snapshots: int = 0
    destroys_bytes: int = 0
    releases: tuple[tuple[str, str], ...] = ()  # (tag, ds@snap) zfsrep holds released first
    message: str = ""  # REFUSE: the one actionable line
    notes: tuple[str, ...] = ()

    @property
    def temp(self) -> str | None:
        return self.receive_into if self.action == REPLACE else None

    def describe(self) -> list[str]:
        """The plan as lines for --dry-run and for the confirmation text."""
        if self.action == REFUSE:
            return [self.message]
        assert self.snapshot is not None
        lines = [f"restore {self.target_name}:{self.snapshot.full_name} -> {self.dest}"]
        lines += [f"create missing parent {p} (canmount=off)" for p in self.create_parents]
        for step in self.steps:
            if step.kind == RESUME:
                lines.append(f"resume the interrupted receive into {self.receive_into}")
            elif step.kind == ABORT_RESUME:
                lines.append(f"discard the stale partial receive into {self.receive_into} (zfs receive -A)")
            else:
                lines.append(f"receive a full stream of @{self.snapshot.name} into {self.receive_into}")
        if not self.steps:
            lines.append(f"{self.receive_into} already holds @{self.snapshot.name}; nothing to receive")
        if self.action == REPLACE:
            lines += [f"release hold {tag} on {name}" for tag, name in self.releases]
            lines.append(f"then DESTROY {', '.join(self.destroys)} ({self.destroys_snapshots} snapshot(s), "
                         f"{format_bytes(self.destroys_bytes)}) and rename {self.receive_into} to {self.dest}")
        return lines + list(self.notes)


def pick_snapshot(snaps: Sequence[Snapshot], wanted: str | None) -> Snapshot | None:
    """The snapshot named ``wanted`` (short name, or ``ds@name``), or the newest if None."""
    ordered = sorted(snaps, key=lambda s: s.createtxg)
    if not ordered:
        return None
    if wanted is None:
        return ordered[-1]
    short = wanted.split("@", 1)[1] if "@" in wanted else wanted
    return next((s for s in ordered if s.name == short), None)


def temp_name(dest: str) -> str:
    return dest + TEMP_SUFFIX


def plan_restore(
    dataset: str,
    target_name: str,
    target_dataset: str,
    target_snaps: Sequence[Snapshot] | None,
    *,
    dest: str,
    wanted: str | None,
    local: LocalDataset,
    temp: LocalDataset | None = None,
    missing_parents: Sequence[str] = (),
    force: bool = False,
) -> RestorePlan:
    """Plan restoring ``wanted`` (None: newest) of ``target_dataset`` into ``dest``.

    ``target_snaps`` None: the copy does not exist on the target. ``local`` describes ``dest``,
    ``temp`` the temporary ``<dest>.zfsrep-restore`` (only needed when ``dest`` is live).
    ``missing_parents`` are ancestors of ``dest`` that do not exist, outermost first.
    """
    base = dict(dataset=dataset, target_name=target_name, target_dataset=target_dataset, dest=dest)
    where = f"target {target_name}"

    def refuse(message: str, snap: Snapshot | None = None) -> RestorePlan:
        return RestorePlan(**base, action=REFUSE, snapshot=snap, message=message)

    if target_snaps is None:
        return refuse(f"{where} has no copy of {dataset} ({target_dataset} does not exist); "
                      f"`zfsrep snapshots --target {target_name}` lists what it holds")
    if not target_snaps:
        return refuse(f"{where}: {target_dataset} has no snapshots, nothing to restore; "
                      f"`zfsrep snapshots --target {target_name}` lists what it holds")
    snap = pick_snapshot(target_snaps, wanted)
    if snap is None:
        newest = ", ".join(s.name for s in sorted(target_snaps, key=lambda s: s.createtxg)[-3:])
        return refuse(f"{where} has no snapshot {wanted!r} of {dataset} (newest: {newest}); "
                      f"`zfsrep snapshots --target {target_name} {dataset}` lists them all")

    live = local.exists and not local.partial
    if not live:
        steps = _receive_steps(snap, local)
        return RestorePlan(**base, action=NEW, snapshot=snap, receive_into=dest, steps=steps,
                           create_parents=tuple(missing_parents),
                           notes=_notes(local, snap))

    # dest is live: replacing it needs --force and a restored copy that arrived in full first.
    destroyed = (dest, *local.descendants)
    mine = tuple(sorted((tag, name) for name, tags in local.holds.items() for tag in tags
                        if tag.startswith(HOLD_PREFIX)))
    foreign = sorted(f"{name} ({tag})" for name, tags in local.holds.items() for tag in tags
                     if not tag.startswith(HOLD_PREFIX))
    what = (f"{dest}{f' and {len(local.descendants)} child dataset(s)' if local.descendants else ''} "
            f"with {len(local.snapshots)} snapshot(s), {format_bytes(local.used)}")
    if not force:
        return refuse(
            f"{dest} exists and is live; nothing was changed. Restore next to it with "
            f"`--to {dest}-restored`, or replace it with --force, which would destroy {what} "
            f"after the restored copy has arrived", snap)
    if "/" not in dest:
        return refuse(f"{dest} is a pool's root dataset and cannot be replaced; restore into a "
                      f"child with `--to {dest}/restored`", snap)
    if foreign:
        return refuse(f"{dest} cannot be replaced: snapshot(s) held by other tools: "
                      f"{', '.join(foreign[:3])}; release them (`zfs release TAG SNAPSHOT`) or restore "
                      f"next to it with `--to {dest}-restored`", snap)
    into = temp_name(dest)
    tmp = temp or LocalDataset()
    if tmp.exists and not tmp.partial:
        if any(s.guid == snap.guid and s.dataset == into for s in tmp.snapshots):
            steps: tuple[Step, ...] = ()  # a previous run received it, then stopped before the swap
        else:
            return refuse(f"{into} exists from an earlier restore of another snapshot; destroy it "
                          f"(`zfs destroy -r {into}`) and rerun", snap)
    else:
        steps = _receive_steps(snap, tmp)
    return RestorePlan(
        **base, action=REPLACE, snapshot=snap, receive_into=into, steps=steps,
        create_parents=tuple(missing_parents), destroys=destroyed,
        destroys_snapshots=len(local.snapshots), destroys_bytes=local.used, releases=mine,
        notes=_notes(tmp, snap),
    )


def _receive_steps(snap: Snapshot, into: LocalDataset) -> tuple[Step, ...]:
    resume = into.resume if into.exists else None
    if resume is not None and resume.valid and (
            resume.toguid == snap.guid or (resume.toguid is None and resume.toname == snap.full_name)):
        return (Step(RESUME, to=snap.full_name, token=resume.token, snapshots=(snap.name,)),)
    steps: list[Step] = []
    if resume is not None:
        steps.append(Step(ABORT_RESUME))
    steps.append(Step(FULL, to=snap.full_name, snapshots=(snap.name,)))
    return tuple(steps)


def _notes(into: LocalDataset, snap: Snapshot) -> tuple[str, ...]:
    resume = into.resume if into.exists else None
    if resume is None:
        return ()
    if resume.valid and resume.toguid == snap.guid:
        return (f"continuing an interrupted restore of @{snap.name}",)
    why = resume.reason or f"it was for {resume.toname or 'another snapshot'}"
    return (f"an interrupted restore was found and is discarded ({why})",)


def missing_ancestors(dest: str, existing: set[str] | frozenset[str]) -> tuple[str, ...]:
    """Ancestors of ``dest`` (below the pool) not in ``existing``, outermost first."""
    out: list[str] = []
    parent = parent_of(dest)
    while parent is not None and "/" in parent and parent not in existing:
        out.append(parent)
        parent = parent_of(parent)
    return tuple(reversed(out))
