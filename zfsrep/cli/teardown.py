"""`zfsrep teardown`: put on-demand targets back to rest after a backup (an ExecStopPost)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from zfsrep.cli.common import ConfigOption, DryRunOption, JsonOption, TargetOption, VerboseOption, load, setup_logging
from zfsrep.cli.warmup import run_verb


def command(
    target: TargetOption = None,
    config: ConfigOption = None,
    reap: Annotated[bool, typer.Option(
        "--reap", help="Instead: stop/terminate instances tagged by zfsrep that have run longer than warmup.max_uptime.",
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
    action = teardown.reap if reap else teardown.run
    run_verb(lambda: action(cfg, now=time.time(), dry_run=dry_run, targets=target), state_dir=cfg.state_dir, json=json)
