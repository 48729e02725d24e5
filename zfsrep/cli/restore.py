"""`zfsrep restore DATASET[@SNAPSHOT] --target NAME [--to NEW]`: get data back from a target."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from zfsrep.actions import restore as action
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
from zfsrep.core.restore_plan import REFUSE, RestorePlan
from zfsrep.core.result import FAILED, PLANNED, RunResult
from zfsrep.core.sizes import format_bytes

SpecArg = Annotated[str, typer.Argument(metavar="DATASET[@SNAPSHOT]",
                                        help="The source dataset, and the snapshot to restore (default: the newest).")]
TargetArg = Annotated[str, typer.Option("--target", "-t", help="The target to restore from.")]
ToOption = Annotated[str | None, typer.Option(
    "--to", help="Restore into this new dataset [default: DATASET itself, if it does not exist].")]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Replace the destination if it exists (destroyed only after the restored copy has arrived).")]
NoMountOption = Annotated[bool, typer.Option("--no-mount", help="Do not mount the restored dataset.")]


def command(
    spec: SpecArg,
    target: TargetArg,
    to: ToOption = None,
    force: ForceOption = False,
    no_mount: NoMountOption = False,
    config: ConfigOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Pull a snapshot back from a target (same safe data path as replicate; rerun to resume)."""
    setup_logging(verbose)
    cfg = load(config)

    def show(plan: RestorePlan) -> None:
        if plan.action != REFUSE and not json:  # refusals are reported once, with the result
            out = sys.stdout if dry_run else sys.stderr
            typer.echo("\n".join(plan.describe()), file=out)

    result = guarded(lambda: action.run(cfg, spec, target=target, now=time.time(), to=to, force=force,
                                        dry_run=dry_run, mount=not no_mount, on_plan=show))
    finish(result, json=json, render=render, state_dir=cfg.state_dir)


def render(result: RunResult) -> str:
    lines: list[str] = []
    for item in result.items:
        lines += [f"  {s}" for s in item.details.get("access", [])]
        if item.status == FAILED:
            lines.append(f"restore into {item.dataset}: FAILED: {item.error}")
        elif item.status == PLANNED:
            lines.append("dry run: nothing changed")
        else:
            how = "resumed and finished" if item.resumed else "restored"
            text = (f"{how} {item.target}:{item.details.get('copy')}@{item.to_snapshot} into {item.dataset} "
                    f"({format_bytes(item.bytes)} in {item.seconds:.0f} s)")
            if item.destroyed:
                text += f"; replaced (destroyed) the previous {', '.join(item.destroyed)}"
            lines.append(text)
            if item.details.get("mounted"):
                lines.append(f"  mounted; check the data, then point services at {item.dataset}")
            lines += [f"  {note}" for note in item.details.get("notes", [])]
    return "\n".join(lines) + "\n"
