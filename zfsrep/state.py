"""The state directory: the last run's result per verb, and per target × dataset replication
history that `status` and `report-result` read. Files are written atomically (rename)."""

from __future__ import annotations

import errno
import json
import os
import pwd
import tempfile
from pathlib import Path
from typing import Any

from zfsrep.core.result import FAILED, OK, RunResult

DEFAULT_STATE_DIR = "/var/lib/zfsrep"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The file's JSON, or None when there is none (also when the state dir is missing or a file)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def problem(state_dir: str | Path, error: OSError, *, doing: str, consequence: str) -> str:
    """One actionable line for a state file that could not be written (or read): what, where, why,
    the fix, and what is lost. Callers warn with it: bookkeeping never fails a run."""
    directory = Path(state_dir)
    blocker = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        why = f"{blocker} is a file, not a directory"
        fix = "remove it or set state_dir to a directory"
    elif error.errno in (errno.EACCES, errno.EPERM):
        why = f"permission denied for user {_user()}"
        fix = (f"make {directory} writable by that user (e.g. `install -d -o {_user()} -m 0750 {directory}`; "
               "under systemd: StateDirectory=)")
    elif error.errno == errno.EROFS:
        why = "read-only file system"
        fix = f"under systemd give the unit StateDirectory= (or ReadWritePaths={directory})"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        why = error.strerror or "no space left"
        fix = f"free some space on the file system holding {directory}"
    else:
        why = error.strerror or str(error)
        fix = f"create {directory} as a directory this user can write (under systemd: StateDirectory=)"
    return f"cannot {doing} in state_dir {directory}: {why}; {fix}; {consequence}"


def result_path(state_dir: str | Path, verb: str) -> Path:
    return Path(state_dir) / f"last-{verb}.json"


def write_run_result(state_dir: str | Path, result: RunResult) -> Path:
    path = result_path(state_dir, result.verb)
    if result.invocation_id is None:
        # report-result (ExecStopPost) tells this run's result from an older one by this id.
        result.invocation_id = os.environ.get("INVOCATION_ID") or None
    write_json_atomic(path, result.to_dict())
    return path


def save_run(state_dir: str | Path, result: RunResult, *, replication: bool = False) -> str | None:
    """Keep a run's result (and, for replicate, its replication history) in ``state_dir``; nothing
    for a dry run. Returns a warning line if it could not be written: the run's exit code stands."""
    if result.dry_run:
        return None
    try:
        write_run_result(state_dir, result)
        if replication:
            record_replication(state_dir, result)
    except OSError as e:
        return problem(state_dir, e, doing=f"write the {result.verb} result",
                       consequence="`zfsrep status` and report-result will not see this run")
    return None


def read_run_result(state_dir: str | Path, verb: str) -> RunResult | None:
    data = read_json(result_path(state_dir, verb))
    return RunResult.from_dict(data) if data else None


def replication_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "replication.json"


def record_replication(state_dir: str | Path, result: RunResult) -> None:
    """Merge a replicate run into replication.json:
    ``{target: {dataset: {last_attempt, last_success, last_error, newest_snapshot, bytes, seconds, status}}}``.
    """
    if result.dry_run:
        return
    path = replication_path(state_dir)
    data: dict[str, dict[str, dict[str, Any]]] = read_json(path) or {}
    for item in result.items:
        if item.target is None:
            continue
        entry = data.setdefault(item.target, {}).setdefault(item.dataset, {})
        entry["last_attempt"] = result.finished_at or result.started_at
        entry["status"] = item.status
        entry["bytes"] = item.bytes
        entry["seconds"] = item.seconds
        if item.status == FAILED:
            entry["last_error"] = item.error
        else:
            entry["last_success"] = result.finished_at or result.started_at
            entry["last_error"] = None
            if item.to_snapshot:
                entry["newest_snapshot"] = item.to_snapshot
    write_json_atomic(path, data)


def read_replication(state_dir: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    return read_json(replication_path(state_dir)) or {}


def listing_cache_path(state_dir: str | Path, side: str) -> Path:
    """Where one side's snapshot listing cache lives (``side``: "source" or "target-NAME")."""
    return Path(state_dir) / "listings" / f"{side}.json"


def read_listing_cache(state_dir: str | Path, side: str) -> Any | None:
    """The cache file's JSON; None if it is missing or cannot be read or parsed (a cache only
    saves work: a damaged one is listed afresh and overwritten)."""
    try:
        return read_json(listing_cache_path(state_dir, side))
    except (OSError, ValueError):
        return None


def write_listing_cache(state_dir: str | Path, side: str, doc: Any) -> str | None:
    """Keep one side's listing cache; a warning line if it could not be written."""
    try:
        write_json_atomic(listing_cache_path(state_dir, side), doc)
    except OSError as e:
        return problem(state_dir, e, doing="keep the snapshot listing cache",
                       consequence="the next run lists every snapshot again")
    return None


__all__ = [
    "DEFAULT_STATE_DIR",
    "OK",
    "problem",
    "read_replication",
    "read_run_result",
    "record_replication",
    "save_run",
    "write_run_result",
]
