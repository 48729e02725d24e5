"""`zfsrep replicate`: send new snapshots of every configured dataset to its targets."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from zfsrep.actions import replicate
from zfsrep.cli.common import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    TargetOption,
    VerboseOption,
    finish,
    guarded,
    load,
    setup_logging,
)
from zfsrep.core.durations import format_duration
from zfsrep.core.sizes import format_bytes
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, SKIPPED, ItemResult, RunResult
from zfsrep.phases import seconds_since_process_start

DatasetOption = Annotated[
    list[str] | None, typer.Option("--dataset", "-d", help="Only this configured dataset (repeatable).")
]


def human_bytes(n: int | None) -> str:
    return "?" if n is None else format_bytes(n)


class TerminalProgress:
    """One self-overwriting status line on stderr, at most a few times a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.shown = False
        self.started: dict[tuple[str, str, str], float] = {}

    def __call__(self, ev: replicate.ProgressEvent) -> None:
        now = time.monotonic()
        key = (ev.dataset, ev.target, ev.step)
        start = self.started.setdefault(key, now)
        if now - self.last < 0.25:
            return
        self.last = now
        rate = ev.bytes / (now - start) if now > start else 0.0
        pct = f" ({100 * ev.bytes / ev.estimated:.0f}%)" if ev.estimated else ""
        line = (f"{ev.dataset} -> {ev.target}: {human_bytes(ev.bytes)} of "
                f"{human_bytes(ev.estimated)}{pct}, {human_bytes(int(rate))}/s")
        sys.stderr.write("\r\033[K" + line[:200])
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def describe_item(item: ItemResult) -> str:
    where = f"{item.dataset} -> {item.target}"
    if item.status == PLANNED:
        steps = "; ".join(item.details.get("plan", []))
        est = item.details.get("estimated_bytes")
        doomed = item.details.get("would_prune", [])
        prune = f"; would prune {len(doomed)} on the target: @{', @'.join(doomed)}" if doomed else ""
        return f"{where}: would send {steps} (~{human_bytes(est)}){prune}"
    if item.status == NOTHING_TO_DO:
        return f"{where}: up to date" + (f" at @{item.to_snapshot}" if item.to_snapshot else "")
    if item.status == OK:
        extra = " (resumed)" if item.resumed else ""
        pruned = f", pruned {len(item.destroyed)} on the target" if item.destroyed else ""
        return (f"{where}: sent {len(item.sent)} snapshot(s), {human_bytes(item.bytes)} in "
                f"{format_duration(item.seconds)}{extra}, now at @{item.to_snapshot}{pruned}")
    if item.status == SKIPPED:
        return f"{where}: skipped: {item.error}"
    return f"{where}: FAILED: {item.error}"


def render(result: RunResult) -> None:
    """Prints itself: notes and failures go to stderr."""
    for item in result.items:
        for note in item.details.get("notes", []):
            typer.echo(f"note: {note}", err=True)
        text = describe_item(item)
        typer.echo(text, err=item.status == FAILED)
    for error in result.errors:
        typer.echo(f"zfsrep: {error}", err=True)


def command(
    config: ConfigOption = None,
    target: TargetOption = None,
    dataset: DatasetOption = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress line on stderr \\[default: on a terminal].")
    ] = None,
    listing_cache: Annotated[
        bool, typer.Option("--listing-cache/--no-listing-cache",
                           help="Reuse earlier snapshot listings of datasets whose snapshots_changed "
                                "(OpenZFS >= 2.2) shows no change; off lists every snapshot.")
    ] = True,
    verbose: VerboseOption = 0,
) -> None:
    """Send new snapshots to each target: incremental from the newest common snapshot,
    resumable, never destroying the base. --dry-run prints the plan with estimated sizes."""
    setup_logging(verbose)
    cfg = load(config)
    startup = seconds_since_process_start()  # the interpreter, imports and the config
    show = progress if progress is not None else (sys.stderr.isatty() and not json)
    meter = TerminalProgress() if show else None
    try:
        result = guarded(lambda: replicate.run(cfg, now=time.time(), dry_run=dry_run, targets=target,
                                               datasets=dataset, progress=meter,
                                               listing_cache=listing_cache))
    finally:
        if meter is not None:
            meter.done()
    if startup is not None:
        result.phases = {"startup": round(startup, 3), **result.phases}
    # the result and the per-target history; a state dir that cannot be written is a warning
    finish(result, json=json, render=render, state_dir=cfg.state_dir, replication=True)
