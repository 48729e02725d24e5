"""`ItemResult.details`: every key an action may put there, what it holds, and which renderer
shows it: the one list. The keys are part of each verb's --json document and of the stored
results (`last-<verb>.json`), so a key is renamed only with a reading of the old name in
`ItemResult.from_dict` (`RENAMED`).

`tests/unit/test_result_details.py` reads zfsrep's source and fails when code reads or writes a
key not declared here, when a renderer reads a key no action writes, or when a declared key is no
longer written. Nested documents that have a ``to_dict`` of their own name it.
"""

from __future__ import annotations

from typing import Any, TypedDict

# Keys renamed since: old -> new. `ItemResult.from_dict` reads a stored result's old key (a string)
# as one more entry of the new one (a list).
RENAMED = {
    "note": "notes",  # restore, scrub and systemd unallow kept one string before issue 19
}


class Listing(TypedDict):
    """How a dataset's snapshots were found on each side (`actions.replicate.listing_cache`)."""
    source: str  # REUSED, LISTED or FULL of `actions.replicate.listing_cache`
    target: str


class SendStep(TypedDict):
    """One `zfs send | zfs receive` replicate ran."""
    step: str
    bytes: int
    estimated: int | None
    seconds: float
    stages: list[str]  # what ran here, e.g. ["zfs send", "zstd", "mbuffer", "ssh to backup"]
    remote: str  # what ran on the target: "[mbuffer … |] [zstd -q -d -c |] zfs receive …"


class Stage(TypedDict):
    """One process of a failed send pipeline."""
    name: str
    returncode: int | None
    stderr: str  # its last 2000 characters


class DeepCheck(TypedDict, total=False):
    """verify --deep: the file-by-file comparison of the newest common snapshot."""
    checked: bool
    reason: str  # when not checked
    snapshot: str
    entries: int
    files_checked: int
    differences: list[str]


class SnapshotRow(TypedDict):
    """One snapshot name in `zfsrep snapshots`' table."""
    name: str
    guid: str
    creation: int
    on: list[str]  # the sides that have it
    common: bool
    clash: list[str]  # sides with other data under this name


class Details(TypedDict, total=False):
    """``shown by`` names the renderers (modules of zfsrep/cli/) that read a key (the test checks
    it); the other keys are in --json and the state file only."""

    # -- any verb ---------------------------------------------------------------------------
    warnings: list[str]  # bookkeeping and reaching-a-target warnings; shown by common.store (stderr, --json)
    notes: list[str]  # lines for the user (ItemResult.add_note); shown by replicate, snapshots, restore, scrub, prune_received
    plan: list[str]  # what --dry-run would do (restore and rollback: always); shown by replicate, scrub, rollback
    access: list[str]  # how the target was reached (targets' Session.annotate); shown by restore, scrub
    steps: list[str] | list[SendStep]  # warmup/teardown: lines done or planned; replicate: sends; shown by warmup

    # -- replicate ----------------------------------------------------------------------------
    target_dataset: str  # the copy's name on the target
    bookmark: str  # the source's bookmark of the copy's newest snapshot for this target (ds#zfsrep_<target>_<txg>)
    listing: Listing
    estimated_bytes: int | None  # dry run; shown by replicate
    stages: list[Stage]  # a failed send
    prune_error: str  # listing the target after sending failed: nothing was pruned
    would_prune: list[str]  # dry run: snapshot names the target's retention destroys; shown by replicate
    kept_held: list[str]  # snapshot names retention would destroy but a hold kept

    # -- warmup, teardown (on-demand targets) --------------------------------------------------
    kind: str  # "ec2" or "command"
    address: str | None  # where warmup reached it (read by target access for the session)
    pool_imported: bool
    instance_id: str | None
    zone: str | None
    launched_by_us: bool
    started_by_us: bool
    uptime_seconds: int | None  # teardown
    action: str  # teardown --reap: "stop" or "terminate"

    # -- snapshot -------------------------------------------------------------------------------
    due: list[str]  # the labels due now; shown by snapshot
    kept: int  # zfsrep snapshots kept
    foreign: int  # snapshots zfsrep did not make
    freed_bytes_at_least: int  # shown by snapshot, prune_received
    snapshot_command: list[str]  # the argv; shown by snapshot (--dry-run)
    destroy_commands: list[list[str]]  # dry run: the argvs; shown by snapshot, prune_received
    destroy_retried: str  # a grouped destroy failed and was done per dataset
    skipped: str  # why no snapshot was taken although labels are due (min_change), or why prune-received left the dataset alone (a pending receive, a missing root); shown by snapshot, prune_received
    hooks: dict[str, list[str]]  # "pre_snapshot"/"post_snapshot" -> the argv run around it; shown by snapshot

    # -- prune-received ---------------------------------------------------------------------------
    source: str  # the [receive.sources.NAME] the copy belongs to

    # -- snapshots ------------------------------------------------------------------------------
    sides: list[str]  # "source" and each target listed; shown by snapshots
    missing_on: list[str]  # sides without the dataset; shown by snapshots
    not_listed: list[str]  # on-demand targets left asleep; shown by snapshots
    rows: list[SnapshotRow]  # shown by snapshots

    # -- verify ---------------------------------------------------------------------------------
    comparison: dict[str, Any]  # `core.verify_plan.Comparison.to_dict()`; shown by verify
    deep: DeepCheck  # shown by verify

    # -- restore --------------------------------------------------------------------------------
    source_dataset: str  # the dataset the copy was made of
    copy: str  # the copy on the target; shown by restore
    mounted: bool  # shown by restore

    # -- rollback -------------------------------------------------------------------------------
    bookmarks: list[str]  # bookmarks the rollback destroys
    bases: dict[str, list[str]]  # target -> snapshot names that are its replication base

    # -- scrub ----------------------------------------------------------------------------------
    pool: str  # shown by scrub
    waited: bool
    started: bool  # False: one was running already
    status: dict[str, Any]  # the pool's `zpool status` (`actions.scrub._status_dict`); shown by scrub

    # -- systemd allow/unallow ------------------------------------------------------------------
    argv: list[str]  # the zfs allow/unallow command; shown by systemd_cmd
