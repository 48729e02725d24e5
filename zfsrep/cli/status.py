"""`zfsrep status`: how old each dataset's copy on each target is; a Nagios-style check.

Exit codes follow the Nagios plugin convention, not zfsrep's usual ones: 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN — and a config or usage problem is UNKNOWN (3), never CRITICAL.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from zfsrep import prometheus
from zfsrep.actions import status
from zfsrep.cli.common import (
    ConfigOption,
    JsonOption,
    TargetOption,
    VerboseOption,
    finish,
    setup_logging,
)
from zfsrep.config.load import load_config
from zfsrep.core import freshness as fr
from zfsrep.core.durations import format_duration, parse_duration
from zfsrep.errors import ZfsrepError

EXIT_UNKNOWN = fr.EXIT_CODES[fr.UNKNOWN]

DatasetsOption = Annotated[
    list[str] | None, typer.Option("--dataset", "-d", help="Only this configured dataset (repeatable).")
]


def command(
    config: ConfigOption = None,
    target: TargetOption = None,
    dataset: DatasetsOption = None,
    live: Annotated[
        bool, typer.Option("--live", help="List snapshots on the source and on each target (ssh) instead of "
                                          "reading the state dir; on-demand targets are not woken up.")
    ] = False,
    warn: Annotated[
        str | None, typer.Option("--warn", help="Warn when a copy is this old (e.g. 26h) \\[default: config].")
    ] = None,
    crit: Annotated[
        str | None, typer.Option("--crit", help="Critical when a copy is this old (e.g. 50h) \\[default: config].")
    ] = None,
    prometheus_file: Annotated[
        Path | None, typer.Option("--prometheus", metavar="FILE",
                                  help="Also write node-exporter textfile metrics to FILE (atomically).")
    ] = None,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Per dataset × target: newest snapshots, last success, age against warn/crit.
    Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios)."""
    setup_logging(verbose)
    try:
        warn_s = parse_duration(warn) if warn is not None else None
        crit_s = parse_duration(crit) if crit is not None else None
    except ValueError as e:
        _unknown(f"--warn/--crit: {e}")
    if warn_s is not None and crit_s is not None and crit_s < warn_s:
        _unknown("--crit must not be shorter than --warn")
    try:
        cfg = load_config(config)
        report = status.run(cfg, now=time.time(), live=live, targets=target, datasets=dataset,
                            warn=warn_s, crit=crit_s)
    except ZfsrepError as e:
        _unknown(str(e))
    except KeyboardInterrupt:
        _unknown("interrupted")
    if prometheus_file is not None:
        try:
            prometheus.write_textfile(prometheus_file, prometheus.render(report.verdicts, now=report.checked_at))
        except OSError as e:
            _unknown(f"cannot write {prometheus_file}: {e.strerror}; check that the directory exists and is writable")
    finish(report, json=json, render=_render)


def _render(report: status.StatusReport) -> str:
    lines = [fr.summary_line(report.verdicts)]
    if sys.stdout.isatty():
        lines.append(_table(report))
    else:
        lines += [f"{v.state}: {v.observation.dataset} → {v.observation.target}: {v.reason}" for v in report.verdicts]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _unknown(message: str) -> NoReturn:
    typer.echo(f"ZFSREP UNKNOWN - {message}")
    raise typer.Exit(EXIT_UNKNOWN)


def _table(report: status.StatusReport) -> str:
    header = ("DATASET", "TARGET", "STATE", "AGE", "LAST SUCCESS", "NEWEST ON TARGET", "NEWEST ON SOURCE")
    rows = [header]
    for v in report.verdicts:
        o = v.observation
        rows.append((
            o.dataset, o.target, v.state,
            format_duration(v.age) if v.age is not None else "-",
            _when(o.last_success, report.checked_at),
            o.newest_target or "-",
            (o.newest_source or "-") + (f" (+{o.behind})" if o.behind else ""),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    for v in report.verdicts:
        if v.state != fr.OK or v.observation.last_error:
            lines.append(f"{v.state}: {v.observation.dataset} → {v.observation.target}: {v.reason}")
    return "\n".join(lines)


def _when(t: float | None, now: float) -> str:
    if t is None:
        return "never"
    stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%MZ")
    return f"{stamp} ({format_duration(max(0.0, now - t))} ago)"
