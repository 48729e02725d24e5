"""Shared by `warmup` and `teardown`: the commands run on an on-demand target over ssh (remote
command, `zpool import`, `zpool export`) and locally. Which targets are on-demand:
`zfsrep.targets.select.warmup_targets`."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

from zfsrep.config.model import TargetConfig
from zfsrep.core.result import ItemResult
from zfsrep.core.warmup_plan import backoff_delays
from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.execute import Runner

IMPORT_DEVICE_WAIT = 90.0  # a freshly attached EBS volume may take a while to show up as a device


def target_item(target: TargetConfig, status: str, steps: list[str], error: str | None = None, **details) -> ItemResult:
    """The result for one on-demand target: its receiving dataset, the steps done (or planned)."""
    return ItemResult(dataset=target.dataset, target=target.name, status=status, error=error,
                      details={"steps": steps, **details})


def _last(stderr: str, returncode: int) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {returncode}"


def run_remote_command(runner: Runner, target: TargetConfig, argv: tuple[str, ...]) -> None:
    result = runner.run(list(argv), check=False)
    if not result.ok:
        raise ZfsrepError(
            f"target {target.name}: warmup.remote_command `{shlex.join(argv)}` failed on {runner.host}: "
            f"{_last(result.stderr, result.returncode)}; run it there by hand to see why"
        )


def run_local_command(target: TargetConfig, argv: tuple[str, ...], key: str) -> str:
    """Run a warmup's local command; its standard output (a command warmup of a target without
    ``host`` prints the address there)."""
    try:
        result = Runner().run(list(argv), check=False)
    except ZfsrepError as e:
        raise ZfsrepError(f"target {target.name}: warmup.{key}: {e}") from None
    if not result.ok:
        raise ZfsrepError(
            f"target {target.name}: warmup.{key} `{shlex.join(argv)}` failed: "
            f"{_last(result.stderr, result.returncode)}; run it by hand to see why"
        )
    return result.stdout


def printed_address(target: TargetConfig, argv: tuple[str, ...], stdout: str) -> str:
    """The address a command warmup printed: the last non-empty line of its output, one word."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    address = lines[-1] if lines else ""
    if not address or any(ch.isspace() for ch in address) or address.startswith("-"):
        shown = repr(address) if address else "nothing"
        raise ZfsrepError(
            f"target {target.name}: warmup.command `{shlex.join(argv)}` printed {shown} as its last line, "
            f"not an address to ssh to; make it print the address (one word) last, or set targets.{target.name}.host"
        )
    return address


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
        message = _last(result.stderr, result.returncode)
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
                          f"{_last(e.stderr, e.returncode)}; {fix}") from None
    return True
