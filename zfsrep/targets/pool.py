"""The target's pool (``warmup.pool``): imported when the target comes up, exported before it
goes down, over the target's ssh runner."""

from __future__ import annotations

import time
from collections.abc import Callable

from zfsrep.config.model import TargetConfig
from zfsrep.core.warmup_plan import backoff_delays
from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.ssh import SshSession
from zfsrep.targets.user_commands import last_line

IMPORT_DEVICE_WAIT = 90.0  # a freshly attached EBS volume may take a while to show up as a device
SSH_CONNECT_TIMEOUT = 60.0  # for exporting the pool of a target going down


def pool_imported(runner: Runner, pool: str) -> bool:
    return runner.run(["zpool", "list", "-H", "-o", "name", pool], check=False).ok


def import_pool(
    runner: Runner, target: TargetConfig, pool: str, *, force: bool,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Import ``pool`` (not mounting anything: -N) unless it is imported; True if this imported it.

    ``force`` (-f) is for an EBS volume that EC2 says is attached only to this instance: a pool
    last used by a since-terminated instance is "in use from another system" until forced.
    """
    if pool_imported(runner, pool):
        return False
    argv = ["zpool", "import", "-N", *(["-f"] if force else []), pool]
    deadline = clock() + IMPORT_DEVICE_WAIT
    delays = backoff_delays(first=2.0, cap=10.0)
    while True:
        result = runner.run(argv, check=False)
        if result.ok:
            return True
        message = last_line(result.stderr, result.returncode)
        if "no such pool" in result.stderr and clock() < deadline:
            sleep(min(next(delays), max(0.0, deadline - clock())))
            continue
        if "no such pool" in result.stderr:
            fix = "check that the volume is attached (warmup.volume_id/device) and holds this pool (warmup.pool)"
        elif "another system" in result.stderr:
            fix = "export it on the system that has it imported; if that system is gone, verify and run `zpool import -f` once by hand"
        else:
            fix = f"run `zpool import {pool}` on {runner.host} to see why"
        raise ZfsrepError(f"target {target.name}: cannot import pool {pool} on {runner.host}: {message}; {fix}")


def export_pool(runner: Runner, target: TargetConfig, pool: str) -> bool:
    """Export ``pool`` if it is imported; True if this exported it."""
    if not pool_imported(runner, pool):
        return False
    try:
        runner.run(["zpool", "export", pool])
    except CommandError as e:
        fix = "stop whatever uses it (a running zfs recv, a shell in a mounted dataset) and run teardown again"
        raise ZfsrepError(f"target {target.name}: cannot export pool {pool} on {runner.host}: "
                          f"{last_line(e.stderr, e.returncode)}; {fix}") from None
    return True


def export_at(target: TargetConfig, address: str | None, pool: str, *, must: bool) -> tuple[str | None, str | None]:
    """Export ``pool`` over ssh to ``address``. Returns (what was done, error). ``must``: a failure
    to connect is an error (warmup imported the pool) rather than "nothing to export"."""
    if not address:
        return None, f"target {target.name}: no address to ssh to for exporting pool {pool}; set targets.{target.name}.host"
    try:
        with SshSession(target, host=address) as session:
            session.start(timeout=SSH_CONNECT_TIMEOUT)
            exported = export_pool(session.runner(), target, pool)
    except ZfsrepError as e:
        if must:
            return None, str(e)
        return f"could not reach {address} to export pool {pool} (warmup had not imported it): {e}", None
    return (f"exported pool {pool} on {address}" if exported else f"pool {pool} is not imported on {address}"), None
