"""`zfsrep prune-received`: on a backup target, thin each source's copies by the target's own
retention ([receive.sources.NAME])."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from zfsrep.actions import prune_received as action
from zfsrep.cli.common import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    VerboseOption,
    finish,
    guarded,
    load,
    plan_header,
    setup_logging,
)
from zfsrep.cli.snapshot import NowOption, parse_now
from zfsrep.core.result import FAILED, NOTHING_TO_DO, SKIPPED, ItemResult, RunResult
from zfsrep.core.sizes import format_bytes

SourceOption = Annotated[
    list[str] | None, typer.Option("--source", "-s", help="Only this [receive.sources.NAME] (repeatable).")
]


def command(
    source: SourceOption = None,
    config: ConfigOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
    now: NowOption = None,
) -> None:
    """On a backup target: thin the copies each source sent by the target's own retention."""
    setup_logging(verbose)
    cfg = load(config)
    moment = parse_now(now)
    result = guarded(lambda: action.run(cfg, now=moment, dry_run=dry_run, sources=source))
    finish(result, json=json, render=render, state_dir=cfg.state_dir)


def render(result: RunResult) -> str:
    lines: list[str] = []
    if result.dry_run:
        lines.append(plan_header(result))
        argvs = [argv for i in result.items for argv in i.details.get("destroy_commands", ())]
        lines += [f"  {c}" for c in dict.fromkeys(shlex.join(argv) for argv in argvs)]
    idle = [i for i in result.items if i.status == NOTHING_TO_DO]
    for item in result.items:
        if item not in idle:
            lines.append(_item_line(item, result.dry_run))
        lines += item.details.get("notes", [])
    if idle:
        lines.append(f"{len(idle)} dataset(s): nothing to prune" if len(idle) > 1
                     else f"{idle[0].dataset}: nothing to prune")
    destroyed = sum(len(i.destroyed) for i in result.items)
    summary = f"{'would destroy' if result.dry_run else 'destroyed'} {destroyed}"
    if result.dry_run:
        freed = sum(int(i.details.get("freed_bytes_at_least", 0)) for i in result.items)
        summary += f", freeing at least {format_bytes(freed)}"
    failed = sum(1 for i in result.items if i.status == FAILED)
    if failed:
        summary += f"; {failed} failed"
    lines.append(summary)
    lines += [f"error: {e}" for e in result.errors]
    return "\n".join(lines) + "\n"


def _item_line(item: ItemResult, dry_run: bool) -> str:
    if item.status == FAILED:
        done = f" (destroyed {len(item.destroyed)})" if item.destroyed else ""
        return f"{item.dataset}: FAILED{done}: {item.error}"
    if item.status == SKIPPED:
        return item.details.get("skipped") or f"{item.dataset}: skipped"
    names = ", ".join(n.split("@", 1)[-1] for n in item.destroyed)
    line = f"{item.dataset}: {'destroy' if dry_run else 'destroyed'} {len(item.destroyed)}: {names}"
    if dry_run:
        line += f" (frees at least {format_bytes(int(item.details.get('freed_bytes_at_least', 0)))})"
    return line
