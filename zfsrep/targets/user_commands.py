"""The commands a target's ``warmup`` table names: run locally (``command``,
``teardown_command``) or on the target over ssh (``remote_command``), and the one line a failed
command is reported by (`last_line`)."""

from __future__ import annotations

import shlex

from zfsrep.config.model import TargetConfig
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner


def last_line(stderr: str, returncode: int) -> str:
    """What a failed command said last, or its exit status if it said nothing."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {returncode}"


def run_remote_command(runner: Runner, target: TargetConfig, argv: tuple[str, ...]) -> None:
    result = runner.run(list(argv), check=False)
    if not result.ok:
        raise ZfsrepError(
            f"target {target.name}: warmup.remote_command `{shlex.join(argv)}` failed on {runner.host}: "
            f"{last_line(result.stderr, result.returncode)}; run it there by hand to see why"
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
            f"{last_line(result.stderr, result.returncode)}; run it by hand to see why"
        )
    return result.stdout
