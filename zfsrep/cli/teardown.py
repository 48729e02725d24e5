"""`zfsrep teardown`: put on-demand targets back to rest after a backup (an ExecStopPost)."""

from __future__ import annotations

import socket
import time
from typing import Annotated

import typer

from zfsrep import unit_run
from zfsrep.cli.common import (
    ConfigOption, DryRunOption, JsonOption, TargetOption, VerboseOption, finish, load, setup_logging, usage_error,
)
from zfsrep.core.result import RunResult
from zfsrep.cli.warmup import run_verb


def command(
    target: TargetOption = None,
    config: ConfigOption = None,
    reap: Annotated[bool, typer.Option(
        "--reap", help="Instead: stop/terminate instances tagged by zfsrep that have run longer than warmup.max_uptime.",
    )] = False,
    this_run: Annotated[bool, typer.Option(
        "--this-run", help="Instead of --target: the targets this unit's run warmed up (its ExecStopPost).",
    )] = False,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Export the pool, stop or terminate the instance per warmup.after (terminate only what zfsrep
    launched), detach the volume where configured; print the up-time. Safe to run any time."""
    from zfsrep.actions import teardown

    setup_logging(verbose)
    cfg = load(config)
    if this_run:
        if target or reap:
            usage_error("--this-run names the targets itself: drop --target/--reap")
        target = unit_run.warmed_targets()
        if not target:  # exit 0: nothing to do, nothing stored (the last teardown's result stands)
            now = time.time()
            nothing = RunResult(verb="teardown", started_at=now, finished_at=now, host=socket.gethostname(),
                                dry_run=dry_run)
            finish(nothing, json=json, render=lambda _: "teardown: this run warmed up no target\n",
                   note="this run warmed up no target")
    action = teardown.reap if reap else teardown.run
    run_verb(lambda: action(cfg, now=time.time(), dry_run=dry_run, targets=target), state_dir=cfg.state_dir, json=json)
