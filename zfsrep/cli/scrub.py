"""`zfsrep scrub --target NAME [--wait]`: scrub the target's pool and report what it found."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from zfsrep.actions import scrub as action
from zfsrep.cli.common import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    VerboseOption,
    finish,
    guarded,
    load,
    setup_logging,
)
from zfsrep.core.result import FAILED, PLANNED, RunResult

TargetArg = Annotated[str, typer.Option("--target", "-t", help="The target whose pool to scrub.")]
WaitOption = Annotated[bool, typer.Option(
    "--wait", help="Wait for the scrub to finish and report its result (implied for on-demand targets).")]


def command(
    target: TargetArg,
    wait: WaitOption = False,
    config: ConfigOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Start `zpool scrub` of a target's pool (warming it up first if on-demand) and report errors."""
    setup_logging(verbose)
    cfg = load(config)
    result = guarded(lambda: action.run(cfg, now=time.time(), target=target, wait=wait, dry_run=dry_run))
    finish(result, json=json, render=render, state_dir=cfg.state_dir)


def render(result: RunResult) -> str:
    lines: list[str] = []
    for item in result.items:
        pool = item.details.get("pool", item.dataset)
        head = f"{item.target}: pool {pool}"
        lines += [f"  {s}" for s in item.details.get("access", [])]
        if item.status == PLANNED:
            lines.append(f"{head}: would " + "; ".join(item.details.get("plan", [])))
            continue
        status = item.details.get("status") or {}
        lines += [f"{head}: {note}" for note in item.details.get("notes", [])]
        if item.status == FAILED:
            lines.append(f"{head}: FAILED: {item.error}")
            lines += [f"  damaged: {f}" for f in status.get("error_files", [])[:20]]
        elif status.get("scrubbing"):
            pct = status.get("percent")
            lines.append(f"{head}: scrub running ({pct:.1f}% done)" if pct is not None else f"{head}: scrub running")
            lines.append(f"  `zfsrep scrub --target {item.target} --wait` waits for it and reports the result")
        else:
            lines.append(f"{head}: scrub finished, no errors ({status.get('scan', '')})")
    return "\n".join(lines) + "\n"
