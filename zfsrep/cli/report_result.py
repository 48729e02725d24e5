"""`zfsrep report-result`: post the run's outcome to Honeycomb, a healthchecks-style URL and a
webhook (as configured in [report]). Help texts escape `[` (typer renders them as rich markup)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from zfsrep import sinks
from zfsrep.actions import report_result
from zfsrep.cli.common import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    VerboseOption,
    finish,
    guarded,
    load,
    setup_logging,
    usage_error,
)
from zfsrep.core.durations import parse_duration


def command(
    config: ConfigOption = None,
    verb: Annotated[
        list[str] | None,
        typer.Option("--verb", help="Report the result of this verb from the state dir (repeatable) \\[default: replicate]."),
    ] = None,
    result: Annotated[
        list[Path] | None, typer.Option("--result", help="Report this result file instead (repeatable).")
    ] = None,
    start: Annotated[
        bool, typer.Option("--start", help="Only send the start ping (healthchecks URL/start), e.g. from ExecStartPre.")
    ] = False,
    service_result: Annotated[
        str | None, typer.Option("--service-result", help="Override $SERVICE_RESULT (success, exit-code, signal, …).")
    ] = None,
    exit_code: Annotated[
        str | None, typer.Option("--exit-code", help="Override $EXIT_CODE (exited, killed, dumped).")
    ] = None,
    exit_status: Annotated[
        str | None, typer.Option("--exit-status", help="Override $EXIT_STATUS; from cron: --exit-status $?.")
    ] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="The systemd unit \\[default: the unit this runs in].")
    ] = None,
    max_age: Annotated[
        str | None, typer.Option("--max-age", help="Ignore a result that finished longer ago than this (e.g. 2h).")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a sink could not be reached (default: warn, exit 0).")
    ] = False,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Report how the run went to every sink in \\[report]; a sink that is down is only a warning."""
    setup_logging(verbose)
    cfg = load(config)
    try:
        max_age_s = parse_duration(max_age) if max_age is not None else None
    except ValueError as e:
        usage_error(f"--max-age: {e}")
    if start and (verb or result):
        usage_error("--start sends only the start ping; it takes no --verb or --result")
    if not sinks.configured(cfg.report):
        message = f"no sinks configured in [report] of {cfg.path}; nothing to send"
        finish(report_result.ReportOutcome(report=None), json=json, note=message,
               render=lambda _: typer.echo(f"zfsrep: {message}", err=True))

    outcome = guarded(lambda: report_result.run(
        cfg, now=time.time(), verbs=verb, result_files=[str(p) for p in result or []],
        service_result=service_result, exit_code=exit_code, exit_status=exit_status, unit=unit,
        max_age=max_age_s, start=start, strict=strict, dry_run=dry_run,
    ))
    finish(outcome, json=json, render=_render)


def _render(outcome: report_result.ReportOutcome) -> None:
    """Prints itself: a sink that failed is a line on stderr."""
    if outcome.report is not None:
        typer.echo(outcome.report.headline())
        for note in outcome.report.stale:
            typer.echo(f"  note: {note}")
    for planned in outcome.planned:
        typer.echo(f"would send {planned.what} to {planned.sink} ({planned.destination}):")
        typer.echo("  " + planned.body.rstrip("\n").replace("\n", "\n  "))
    for delivery in outcome.deliveries:
        if delivery.ok:
            sent = ", ".join(f"{n} × {what}" if n > 1 else what for what, n in Counter(delivery.sent).items())
            typer.echo(f"{delivery.sink}: sent {sent} to {delivery.destination}")
        else:
            label = "error" if outcome.strict else "warning"
            typer.echo(f"zfsrep: {label}: {delivery.detail}", err=True)
