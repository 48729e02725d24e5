"""`zfsrep rollback DATASET@SNAPSHOT`: list what `zfs rollback -r` destroys, ask, then roll back."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from zfsrep.actions import rollback as action
from zfsrep.cli.common import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    VerboseOption,
    fail,
    finish,
    guarded,
    load,
    print_json,
    setup_logging,
)
from zfsrep.core.result import FAILED, RunResult
from zfsrep.core.rollback_plan import REFUSE
from zfsrep.errors import EXIT_USAGE

SpecArg = Annotated[str, typer.Argument(metavar="DATASET@SNAPSHOT", help="The dataset and the snapshot to roll back to.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking (after listing what is destroyed).")]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Also destroy snapshots that are a target's replication base (zfsrep's holds are released).")]
OnTargetOption = Annotated[str | None, typer.Option(
    "--target", "-t", help="Roll back the dataset's copy on this target instead (repairs a target that was written to).")]


def command(
    spec: SpecArg,
    yes: YesOption = False,
    force: ForceOption = False,
    target: OnTargetOption = None,
    config: ConfigOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Roll a dataset back to a snapshot, destroying the newer ones (listed first; asks for --yes)."""
    setup_logging(verbose)
    cfg = load(config)
    now = time.time()

    def go() -> RunResult:
        with action.side(cfg, now=now, target=target, runner=None, connect=None) as (runner, where):
            plan = action.plan(cfg, spec, runner=runner, target=target, force=force)
            if plan.action != REFUSE and not dry_run and not yes:
                if json or not sys.stdin.isatty():
                    if json:
                        print_json(action.apply(plan, runner=runner, now=now, dry_run=True).to_dict())
                    else:
                        typer.echo("\n".join(plan.describe()))
                    fail(f"not rolled back: rerun with --yes to destroy the {len(plan.destroys)} snapshot(s) "
                         f"listed above ({where})", EXIT_USAGE)
                typer.echo("\n".join(plan.describe()))
                if not typer.confirm(f"Roll back on the {where}?", default=False):
                    fail("not rolled back: nothing was changed", EXIT_USAGE)
            return action.apply(plan, runner=runner, now=now, dry_run=dry_run)

    result = guarded(go)
    finish(result, json=json, render=render, state_dir=cfg.state_dir)


def render(result: RunResult) -> str:
    lines: list[str] = []
    for item in result.items:
        if item.status == FAILED:
            lines.append(f"{item.dataset}: NOT rolled back: {item.error}")
            continue
        lines += item.details.get("plan", [])
        if result.dry_run:
            lines.append("dry run: nothing changed")
        else:
            lines.append(f"{item.dataset}: rolled back to @{item.to_snapshot}; destroyed {len(item.destroyed)} "
                         "newer snapshot(s)")
    return "\n".join(lines) + "\n"
