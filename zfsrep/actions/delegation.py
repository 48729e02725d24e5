"""`zfs allow` / `zfs unallow` for the dedicated user the systemd units run as.

The units grant the permissions in ExecStartPre (as root, "+") and revoke them in ExecStopPost,
so the user holds them only while a run is going on (the pattern of nixpkgs' syncoid module).
Permissions set on a configured dataset apply to it and its descendants.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Sequence

from zfsrep.config.model import Config
from zfsrep.core.result import FAILED, OK, PLANNED, ItemResult, RunResult
from zfsrep.errors import CommandError, UsageError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.unit_run import Grant

_PERMISSION = re.compile(r"^[a-z][a-z_-]*$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")


def parse_permissions(text: str) -> tuple[str, ...]:
    perms = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in perms if not _PERMISSION.match(p)]
    if not perms or bad:
        raise UsageError(
            f"--permissions {text!r}: expected comma-separated zfs permission names, e.g. snapshot,destroy,mount"
        )
    return perms


def delegation_argv(user: str, permissions: Sequence[str], dataset: str, *, revoke: bool) -> list[str]:
    return ["zfs", "unallow" if revoke else "allow", "-u", user, ",".join(permissions), dataset]


def run(
    config: Config,
    *,
    user: str,
    permissions: Sequence[str],
    revoke: bool,
    runner: Runner | None = None,
    now: float | None = None,
    dry_run: bool = False,
    also: Sequence[Grant] = (),
) -> RunResult:
    """Grant (or revoke) ``permissions`` to ``user`` on every configured dataset; ``also``: grants
    an earlier config made (`zfsrep.unit_run`), revoked as well. A dataset gone since has
    nothing left to revoke."""
    if not _USER.match(user) or user == "root":
        raise UsageError(f"--user {user!r}: name the dedicated system user the units run as (not root)")
    runner = runner or Runner()
    verb = "unallow" if revoke else "allow"
    result = RunResult(verb=f"systemd-{verb}", started_at=now or time.time(), host=socket.gethostname(), dry_run=dry_run)
    if not config.datasets:
        result.errors.append(f"no datasets in {config.path or 'the config'}: nothing to {verb}; add [[datasets]]")
    wanted = [(user, tuple(permissions), d.name) for d in config.datasets]
    wanted += [(g.user, g.permissions, d) for g in also for d in g.datasets]
    for who, perms, name in dict.fromkeys(wanted):
        argv = delegation_argv(who, perms, name, revoke=revoke)
        item = ItemResult(dataset=name, status=OK, details={"argv": argv})
        if dry_run:
            item.status = PLANNED
        else:
            try:
                runner.run(argv)
            except CommandError as e:
                if revoke and "does not exist" in e.stderr:
                    item.add_note("the dataset is gone: nothing left to revoke")
                    result.items.append(item)
                    continue
                fix = "check that it exists (zfs list)" if "does not exist" in e.stderr else f"check that user {who!r} exists"
                item.status, item.error = FAILED, f"zfs {verb} on {name} failed: {e.stderr.splitlines()[-1] if e.stderr else e}; {fix}"
            except ZfsrepError as e:
                item.status, item.error = FAILED, f"zfs {verb} on {name}: {e}"
        result.items.append(item)
    result.finished_at = time.time() if now is None else now
    return result
