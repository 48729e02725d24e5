"""`zfsrep snapshots [DATASET] [--target NAME]`: what can be restored, side by side."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from zfsrep.actions import snapshots as action
from zfsrep.cli.common import (
    ConfigOption,
    JsonOption,
    TargetOption,
    VerboseOption,
    finish,
    guarded,
    load,
    setup_logging,
)
from zfsrep.core.result import FAILED, RunResult

DatasetArgument = Annotated[str | None, typer.Argument(help="Only this dataset (configured, or below one).")]
PRESENT, ABSENT, CLASH = "*", "-", "!"


def command(
    dataset: DatasetArgument = None,
    target: TargetOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """List the snapshots on the source and on each target, side by side (common ones marked)."""
    setup_logging(verbose)
    cfg = load(config)
    result = guarded(lambda: action.run(cfg, now=time.time(), targets=target, dataset=dataset))
    finish(result, json=json, render=render)


def render(result: RunResult) -> str:
    lines: list[str] = []
    notes: list[str] = []
    not_listed: list[str] = []
    for item in result.items:
        if item.status == FAILED:
            lines.append(f"{item.dataset}: FAILED: {item.error}")
            continue
        sides: list[str] = item.details["sides"]
        rows = item.details["rows"]
        notes += [n for n in item.details.get("notes", []) if n not in notes]
        not_listed += [n for n in item.details.get("not_listed", []) if n not in not_listed]
        width = max([len(r["name"]) for r in rows] + [len(item.dataset), 8])
        header = f"{item.dataset:<{width}}  " + "  ".join(sides)
        lines.append(header)
        missing = item.details.get("missing_on", [])
        if missing:
            lines.append(f"  (no such dataset on: {', '.join(missing)})")
        if not rows:
            lines.append("  (no snapshots)")
        for r in rows:
            marks = "  ".join(f"{_mark(r, side):^{len(side)}}" for side in sides)
            when = datetime.fromtimestamp(r["creation"], UTC).strftime("%Y-%m-%d %H:%M")
            tail = "common" if r["common"] else ""
            if r["clash"]:
                tail = f"DIFFERENT DATA under this name on {', '.join(r['clash'])}"
            lines.append(f"  {r['name']:<{width - 2}}  {marks}  {when}  {tail}".rstrip())
        lines.append("")
    for name in not_listed:
        lines.append(f"target {name} is on-demand and was not listed; `zfsrep snapshots --target {name}` "
                     "warms it up to list it")
    lines += notes
    lines += [f"error: {e}" for e in result.errors]
    if any(i.details.get("rows") for i in result.items):
        lines.append(f"{PRESENT} present  {ABSENT} absent  {CLASH} same name, other data; restore with "
                     "`zfsrep restore DATASET@SNAPSHOT --target NAME`")
    return "\n".join(lines).rstrip("\n") + "\n"


def _mark(row: dict, side: str) -> str:
    if side in row["clash"]:
        return CLASH if side not in row["on"] else PRESENT
    return PRESENT if side in row["on"] else ABSENT
