"""The state directory: the last run's result per verb, and per target × dataset replication
history that `status` and `report-result` read. Files are written atomically (rename).

Every state file has a format version (`Kind`; the kinds are below). A file without one is
version 1, the format zfsrep wrote before files carried a version. A zfsrep reads the versions it
knows and refuses a newer one (an older zfsrep after a rollback) with `StateFormatError`: one line
naming the file, both versions, the fix and what moving the file away loses. It never replaces
or removes a newer file either: `write_versioned` refuses as well. Bump a kind's version only
when an older zfsrep would misread the new form; a new key that older ones ignore needs none.
Version 1 files stay readable by a zfsrep from before versions (they only gain a key it ignores).
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zfsrep.core import listing_cache
from zfsrep.core.result import FAILED, OK, RunResult
from zfsrep.errors import ZfsrepError

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


class StateFormatError(ZfsrepError):
    """A state file in a newer format than this zfsrep knows (it is neither used nor replaced)."""


def _stamped(data: Any, key: str, version: int) -> Any:
    return {**data, key: version} if isinstance(data, dict) else data


def _found(data: Any, key: str) -> Any:
    return data.get(key, 1) if isinstance(data, dict) else 1


@dataclass(frozen=True)
class Kind:
    """One kind of state file: the newest ``version`` of its format this zfsrep reads and
    writes, kept under ``key``; ``lost`` is what moving such a file away loses."""

    name: str
    version: int
    lost: str
    key: str = "format"
    found: Callable[[Any, str], Any] = _found  # the version in a file's JSON (checked by `check`)
    stamp: Callable[[Any, str, int], Any] = _stamped  # the JSON to write, with its version

    def refused(self, path: Path, found: int, doing: str) -> StateFormatError:
        return StateFormatError(
            f"{doing} {path}: a newer zfsrep wrote it ({self.name} format {found}; this zfsrep knows "
            f"format {self.version} at most); upgrade zfsrep to the version that wrote it, or move the "
            f"file away (that loses {self.lost})")

    def check(self, path: Path, data: Any, *, doing: str = "cannot use") -> Any:
        """``data`` (read from ``path``); StateFormatError if its format is newer than ours."""
        found = self.found(data, self.key)
        if not isinstance(found, int) or isinstance(found, bool) or found < 1:
            raise ValueError(f"{path}: {self.key} {found!r} is not a format version")
        if found > self.version:
            raise self.refused(path, found, doing)
        return data


def _replication_found(data: Any, key: str) -> Any:
    """replication.json is keyed by target name, so its entries carry the version (a ``format``
    at the top would be a target to a zfsrep from before versions); a later layout may put a
    version there instead (a target's value is always a table)."""
    if not isinstance(data, dict):
        return 1
    if key in data and not isinstance(data[key], dict):
        return data[key]
    found = [entry.get(key, 1) for per in data.values() if isinstance(per, dict)
             for entry in per.values() if isinstance(entry, dict)]
    odd = [v for v in found if not isinstance(v, int) or isinstance(v, bool)]
    return odd[0] if odd else max(found, default=1)


def _replication_stamped(data: Any, key: str, version: int) -> Any:
    return {target: {ds: _stamped(entry, key, version) for ds, entry in per.items()}
            if isinstance(per, dict) else per for target, per in data.items()}


RESULT = Kind("run result", 1, "only the last result of that verb, which `zfsrep status` and "
                               "report-result read; its next run writes a new one")
REPLICATION = Kind("replication history", 1,
                   "the replication history `zfsrep status` reports from; the next replicate of each "
                   "target records it again", found=_replication_found, stamp=_replication_stamped)
WARMUP = Kind("warmup record", 1, "what the last warmup did to the target; teardown then goes by what "
                                  "it finds, and a target without host needs `zfsrep warmup` again")
LISTING_CACHE = Kind("listing cache", listing_cache.VERSION,
                     "only the listing cache; the next replicate lists every snapshot once", key="version")


def read_versioned(path: Path, kind: Kind, *, doing: str = "cannot use") -> Any | None:
    """`read_json`, refusing a newer format (StateFormatError, its line starting with ``doing``)."""
    data = read_json(path)
    return None if data is None else kind.check(path, data, doing=doing)


def write_versioned(path: Path, kind: Kind, data: Any) -> None:
    """`write_json_atomic` with ``kind``'s version in the file. A file already there in a newer
    format is left as it is (StateFormatError); one that cannot be read is replaced."""
    try:
        existing = read_json(path)
    except (OSError, ValueError):
        existing = None
    if existing is not None:
        try:
            kind.check(path, existing, doing="did not overwrite")
        except ValueError:
            pass
    write_json_atomic(path, kind.stamp(data, kind.key, kind.version))


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


def as_saved(result: RunResult) -> RunResult:
    """``result`` as `write_run_result` keeps it: with systemd's INVOCATION_ID of this run when it
    has none (report-result, an ExecStopPost, tells this run's result from an older one by it). A
    copy: ``result`` is left as it is. A dry run is not kept: as it is."""
    if result.dry_run or result.invocation_id is not None:
        return result
    return replace(result, invocation_id=os.environ.get("INVOCATION_ID") or None)


def write_run_result(state_dir: str | Path, result: RunResult) -> Path:
    path = result_path(state_dir, result.verb)
    write_versioned(path, RESULT, as_saved(result).to_dict())
    return path


def save_run(state_dir: str | Path, result: RunResult, *, replication: bool = False) -> str | None:
    """Keep a run's result (and, for replicate, its replication history) in ``state_dir``; nothing
    for a dry run. Returns a warning line if it could not be written: the run's exit code stands.
    A file in a newer format (`StateFormatError`) is left as it is, and the other still written."""
    if result.dry_run:
        return None
    warnings: list[str] = []
    try:
        try:
            write_run_result(state_dir, result)
        except StateFormatError as e:
            warnings.append(str(e))
        try:
            history = record_replication(state_dir, result) if replication else None  # a damaged one set aside
        except StateFormatError as e:
            history = str(e)
        warnings += [history] if history else []
    except OSError as e:
        return problem(state_dir, e, doing=f"write the {result.verb} result",
                       consequence="`zfsrep status` and report-result will not see this run")
    return "; ".join(warnings) or None


def read_run_result(state_dir: str | Path, verb: str) -> RunResult | None:
    data = read_versioned(result_path(state_dir, verb), RESULT)
    return RunResult.from_dict(data) if data else None


def replication_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "replication.json"


def record_replication(state_dir: str | Path, result: RunResult) -> str | None:
    """Merge a replicate run into replication.json:
    ``{target: {dataset: {last_attempt, last_success, last_error, newest_snapshot, bytes, seconds, status,
    format}}}``. A history a newer zfsrep wrote is left as it is (StateFormatError); one that is
    not JSON is moved to ``replication.json.damaged`` and a new one started (the warning line).
    """
    if result.dry_run:
        return None
    path = replication_path(state_dir)
    set_aside = None
    try:
        data: dict[str, dict[str, dict[str, Any]]] = \
            read_versioned(path, REPLICATION, doing="did not overwrite") or {}
    except ValueError as e:  # not JSON (StateFormatError is not a ValueError): keep its bytes beside it
        set_aside = path.with_name(path.name + ".damaged")
        n = 1
        while set_aside.exists():  # an earlier damaged copy is kept too
            n += 1
            set_aside = path.with_name(f"{path.name}.damaged.{n}")
        os.replace(path, set_aside)
        data, damage = {}, f"{e.msg} at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else str(e)
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
    write_versioned(path, REPLICATION, data)
    if set_aside is None:
        return None
    return (f"{path} was damaged ({damage}): moved it to {set_aside} and started a new replication history "
            "with this run; `zfsrep status` knows the other targets' last runs again after their next one")


def read_replication(state_dir: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The replication history; StateFormatError if a newer zfsrep wrote it or it is damaged."""
    path = replication_path(state_dir)
    try:
        return read_versioned(path, REPLICATION) or {}
    except StateFormatError:
        raise
    except ValueError as e:
        raise StateFormatError(
            f"cannot use {path}: it is damaged (not JSON: {e}); the next replicate moves it to "
            f"{path.name}.damaged and starts a new history, or move it away yourself") from e


def listing_cache_path(state_dir: str | Path, side: str) -> Path:
    """Where one side's snapshot listing cache lives (``side``: "source" or "target-NAME")."""
    return Path(state_dir) / "listings" / f"{side}.json"


def read_listing_cache(state_dir: str | Path, side: str) -> Any | None:
    """The cache file's JSON; None if it is missing or cannot be read or parsed (a cache only
    saves work: a damaged one is listed afresh and overwritten), or is in a newer format (not
    used; `write_listing_cache` then leaves it as it is and says so)."""
    try:
        return read_versioned(listing_cache_path(state_dir, side), LISTING_CACHE)
    except (OSError, ValueError, StateFormatError):
        return None


def write_listing_cache(state_dir: str | Path, side: str, doc: Any) -> str | None:
    """Keep one side's listing cache; a warning line if it could not be written (or is in a
    newer format: not overwritten)."""
    try:
        write_versioned(listing_cache_path(state_dir, side), LISTING_CACHE, doc)
    except StateFormatError as e:
        return str(e)
    except OSError as e:
        return problem(state_dir, e, doing="keep the snapshot listing cache",
                       consequence="the next run lists every snapshot again")
    return None


__all__ = [
    "DEFAULT_STATE_DIR",
    "LISTING_CACHE",
    "OK",
    "REPLICATION",
    "RESULT",
    "WARMUP",
    "Kind",
    "StateFormatError",
    "as_saved",
    "problem",
    "read_replication",
    "read_run_result",
    "read_versioned",
    "record_replication",
    "save_run",
    "write_versioned",
    "write_run_result",
]
