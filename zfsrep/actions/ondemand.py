"""Shared by `warmup` and `teardown`: the result item of one on-demand target, and the address a
command warmup printed. Which targets are on-demand: `zfsrep.targets.select.warmup_targets`."""

from __future__ import annotations

import shlex

from zfsrep.config.model import TargetConfig
from zfsrep.core.result import ItemResult
from zfsrep.errors import ZfsrepError


def target_item(target: TargetConfig, status: str, steps: list[str], error: str | None = None, **details) -> ItemResult:
    """The result for one on-demand target: its receiving dataset, the steps done (or planned)."""
    return ItemResult(dataset=target.dataset, target=target.name, status=status, error=error,
                      details={"steps": steps, **details})


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
