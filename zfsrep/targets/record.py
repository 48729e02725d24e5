"""What `zfsrep warmup` did for a target, kept in the state dir (``warmup-<target>.json``) so
that `replicate` learns the address to ssh to and `teardown` knows what to undo (it may run
much later, as an ``ExecStopPost``, after a crash).

`target_host(state_dir, target)` is what replicate and the other verbs need for a target
without ``host`` (through `zfsrep.targets.access.ssh_host`): the address warmup brought it up at. Writing a record is
bookkeeping (a state dir that cannot be written is a warning: `save_record`, `load_record`), but
an address that is needed and cannot be read fails that target with one line naming the state
dir and the fix.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from zfsrep.errors import ZfsrepError
from zfsrep.state import WARMUP, problem, read_versioned, write_versioned

# status values
WARMING = "warming"  # warmup started and has not finished (or crashed)
UP = "up"  # warmup finished: the target answers ssh, the pool is imported
FAILED = "failed"  # warmup failed (and undid what it could)
DOWN = "down"  # teardown finished


@dataclass
class WarmupRecord:
    target: str
    kind: str  # ec2 | command
    status: str = WARMING
    region: str | None = None
    instance_id: str | None = None
    launched_by_us: bool = False  # zfsrep launched it (it may terminate it)
    started_by_us: bool = False  # zfsrep started it from stopped
    attached_by_us: bool = False  # zfsrep attached the volume
    zone: str | None = None
    address: str | None = None  # where ssh goes
    pool: str | None = None
    pool_imported: bool = False
    warmup_started_at: float | None = None
    instance_started_at: float | None = None  # when the instance was launched/started
    up_at: float | None = None
    down_at: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WarmupRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def record_path(state_dir: str | Path, target: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", target)
    return Path(state_dir) / f"warmup-{safe}.json"


def read_record(state_dir: str | Path, target: str) -> WarmupRecord | None:
    """The target's record; None if there is none. A record in a newer format (an older zfsrep
    after a rollback) raises `StateFormatError`, a ZfsrepError: what warmup did is not guessed at."""
    data = read_versioned(record_path(state_dir, target), WARMUP)
    if not isinstance(data, dict) or data.get("target") != target:
        return None
    return WarmupRecord.from_dict(data)


def write_record(state_dir: str | Path, record: WarmupRecord) -> None:
    """Keep ``record``; StateFormatError (and the file left as it is) if a newer zfsrep wrote it."""
    write_versioned(record_path(state_dir, record.target), WARMUP, record.to_dict())


def save_record(state_dir: str, record: WarmupRecord, warnings: list[str]) -> None:
    """Keep ``record`` in the state dir. One that cannot be written is a warning (added to
    ``warnings`` once), not a failure: the target is brought up or down all the same."""
    try:
        write_record(state_dir, record)
    except OSError as e:
        _warn_once(warnings, problem(
            state_dir, e, doing=f"write the warmup record of target {record.target}",
            consequence="teardown and replicate will not know what warmup did (teardown falls back to what it finds)",
        ))


def load_record(state_dir: str, target: str, warnings: list[str]) -> WarmupRecord | None:
    """The target's warmup record; None (and a warning) if the state dir cannot be read."""
    try:
        return read_record(state_dir, target)
    except OSError as e:
        _warn_once(warnings, problem(state_dir, e, doing=f"read the warmup record of target {target}",
                                     consequence="going by what is found instead"))
    except (ValueError, TypeError, KeyError) as e:  # not JSON, or not a record
        _warn_once(warnings, f"the warmup record of target {target} in {state_dir} is damaged ({e}); "
                             "going by what is found instead (it is rewritten when this run records)")
    return None


def _warn_once(warnings: list[str], message: str) -> None:
    if message not in warnings:
        warnings.append(message)


def mark_down(state_dir: str, target: str, instance_id: str | None, at: float, warnings: list[str]) -> None:
    """Record that ``target`` went down at ``at`` (only if the record is about ``instance_id``,
    when one is given: an instance reaped need not be the one warmup brought up)."""
    record = load_record(state_dir, target, warnings)
    if record is not None and (instance_id is None or record.instance_id == instance_id):
        record.status, record.down_at, record.pool_imported = DOWN, at, False
        save_record(state_dir, record, warnings)


def target_host(state_dir: str | Path, target: str) -> str | None:
    """The address warmup brought ``target`` up at, or None if it is not up. A record that cannot
    be read (permission denied, not JSON, a newer zfsrep's format) is a ZfsrepError: one line naming
    the state dir or file and the fix."""
    try:
        record = read_record(state_dir, target)
    except OSError as e:
        raise ZfsrepError(problem(
            state_dir, e, doing=f"read the warmup record of target {target}",
            consequence=f"target {target} has no host configured, so where warmup brought it up is unknown "
                        f"and it is not reached (or set targets.{target}.host)",
        )) from None
    except (ValueError, TypeError) as e:  # not JSON, not UTF-8, or fields missing
        path = record_path(state_dir, target)
        raise ZfsrepError(
            f"target {target}: its warmup record {path} is damaged ({e}); remove it and run "
            f"`zfsrep warmup --target {target}` again (or set targets.{target}.host)"
        ) from None
    if record is None or record.status != UP:
        return None
    return record.address
