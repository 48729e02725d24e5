"""`zfsrep warmup`: bring on-demand targets up before a backup."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import typer

from zfsrep.cli.common import (
    ConfigOption, DryRunOption, JsonOption, TargetOption, VerboseOption, finish, guarded, load, setup_logging,
)
from zfsrep.core.result import FAILED, RunResult


def render(result: RunResult) -> None:
    """Print an on-demand result (warmup or teardown): one header line per target, its steps
    (errors on stderr)."""
    if not result.items:
        typer.echo(f"no target has a [targets.NAME.warmup] table; nothing to {result.verb}")
    for item in result.items:
        head = f"target {item.target}: " + ("would:" if result.dry_run and item.status != FAILED else item.status)
        typer.echo(head)
        for step in item.details.get("steps", []):
            typer.echo(f"  {'- ' if result.dry_run else ''}{step}")
        if item.error:
            typer.echo(f"zfsrep: {item.error}", err=True)


def run_verb(action: Callable[[], RunResult], *, state_dir: str, json: bool) -> None:
    """Run an on-demand action with SIGTERM turned into KeyboardInterrupt (so a warmup killed by
    systemd still undoes what it launched), record, render, exit with its code."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = guarded(action)
    finally:
        signal.signal(signal.SIGTERM, previous)
    finish(result, json=json, render=render, state_dir=state_dir)


def command(
    target: TargetOption = None,
    config: ConfigOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Start (or launch) on-demand targets, attach their volume, wait for ssh with the pinned host
    key, import the pool. Already up: only checks. On failure, undoes what it started."""
    from zfsrep.actions import warmup

    setup_logging(verbose)
    cfg = load(config)
    run_verb(lambda: warmup.run(cfg, now=time.time(), dry_run=dry_run, targets=target),
             state_dir=cfg.state_dir, json=json)
