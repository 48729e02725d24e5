"""`zfsrep snapshot`: take due snapshots and prune by retention."""

from __future__ import annotations

import shlex
import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from zfsrep.actions import snapshot as action
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
    usage_error,
)
from zfsrep.core.result import FAILED, NOTHING_TO_DO, ItemResult, RunResult
from zfsrep.core.sizes import format_bytes

NowOption = Annotated[
    str | None,
    typer.Option("--now", hidden=True, help="Pretend it is this time (ISO 8601 UTC or epoch seconds); for tests."),
]


def parse_now(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        usage_error(f"--now: expected ISO 8601 time like 2026-11-22T04:00:00Z or epoch seconds, got {text!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def command(
    config: ConfigOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
    now: NowOption = None,
) -> None:
    """Take the snapshots that are due and prune old ones by retention."""
    setup_logging(verbose)
    cfg = load(config)
    moment = parse_now(now)
    result = guarded(lambda: action.run(cfg, now=moment, dry_run=dry_run))
    finish(result, json=json, render=render, state_dir=cfg.state_dir)


def render(result: RunResult) -> str:
    lines: list[str] = []
    if result.dry_run:
        lines.append(plan_header(result))
        lines += [f"  {c}" for c in _planned_commands(result.items)]
    idle = [i for i in result.items if i.status == NOTHING_TO_DO and "skipped" not in i.details]
    for item in result.items:
        if item not in idle:
            lines.append(_item_line(item, result.dry_run))
    if idle:
        lines.append(f"{len(idle)} dataset(s): nothing due" if len(idle) > 1 else f"{idle[0].dataset}: nothing due")
    created = sum(len(i.created) for i in result.items)
    destroyed = sum(len(i.destroyed) for i in result.items)
    failed = sum(1 for i in result.items if i.status == FAILED)
    verb = ("would create", "would destroy") if result.dry_run else ("created", "destroyed")
    summary = f"{verb[0]} {created}, {verb[1]} {destroyed}"
    if result.dry_run:
        freed = sum(int(i.details.get("freed_bytes_at_least", 0)) for i in result.items)
        summary += f", freeing at least {format_bytes(freed)}"
    if failed:
        summary += f"; {failed} failed"
    if not result.items:
        summary = "no datasets configured; add [[datasets]] to the config"
    lines.append(summary)
    lines += [f"error: {e}" for e in result.errors]
    return "\n".join(lines) + "\n"


def _planned_commands(items: list[ItemResult]) -> list[str]:
    """The dry run's commands in the order a run runs them: per `zfs snapshot`, the hooks
    around it (pre in config order, post reversed), then the destroys."""
    lines: list[str] = []
    for command in dict.fromkeys(tuple(i.details["snapshot_command"]) for i in items if "snapshot_command" in i.details):
        around = [i.details["hooks"] for i in items
                  if "hooks" in i.details and tuple(i.details.get("snapshot_command", ())) == command]
        unique = list(dict.fromkeys(tuple((k, tuple(v)) for k, v in h.items()) for h in around))
        lines += [f"{_argv(argv)}    # pre_snapshot hook" for h in unique for k, argv in h if k == "pre_snapshot"]
        lines.append(_argv(command))
        lines += [f"{_argv(argv)}    # post_snapshot hook" for h in reversed(unique) for k, argv in h
                  if k == "post_snapshot"]
    destroys = [argv for i in items for argv in i.details.get("destroy_commands", ())]
    return list(dict.fromkeys([*lines, *(_argv(argv) for argv in destroys)]))


def _argv(argv: list[str] | tuple[str, ...]) -> str:
    return " ".join(_quote(a) for a in argv)


def _item_line(item: ItemResult, dry_run: bool) -> str:
    if item.status == FAILED:
        done = []
        if item.created:
            done.append(f"created {', '.join(_short(n) for n in item.created)}")
        if item.destroyed:
            done.append(f"destroyed {len(item.destroyed)}")
        prefix = f" ({'; '.join(done)})" if done else ""
        return f"{item.dataset}: FAILED{prefix}: {item.error}"
    parts = []
    if item.created:
        parts.append(("create " if dry_run else "created ") + ", ".join(_short(n) for n in item.created))
    if item.destroyed:
        names = ", ".join(_short(n) for n in item.destroyed)
        parts.append(("destroy " if dry_run else "destroyed ") + f"{len(item.destroyed)}: {names}")
        if dry_run:
            parts[-1] += f" (frees at least {format_bytes(int(item.details.get('freed_bytes_at_least', 0)))})"
    if "skipped" in item.details:
        parts.append(f"skipped ({item.details['skipped']}); {', '.join(item.details.get('due', []))} stay due")
    if not parts:
        parts.append("nothing due")
    return f"{item.dataset}: {'; '.join(parts)}"


def _short(full: str) -> str:
    return full.split("@", 1)[-1]


def _quote(arg: str) -> str:
    return shlex.quote(arg)
