"""`zfsrep verify [--target NAME] [--deep]`: is the backup there? Exit 0 only when verified."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from zfsrep.actions import verify as action
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
from zfsrep.core.result import FAILED, OK, RunResult

DatasetOption = Annotated[str | None, typer.Option("--dataset", "-d", help="Only this dataset.")]
DeepOption = Annotated[bool, typer.Option(
    "--deep", help="Also compare the files of the newest common snapshot (metadata of all, sha256 of a sample).")]
SampleOption = Annotated[int, typer.Option(
    "--sample", min=0, help="With --deep: how many files to checksum per dataset (0: every file).")]


def command(
    target: TargetOption = None,
    dataset: DatasetOption = None,
    deep: DeepOption = False,
    sample: SampleOption = action.DEFAULT_SAMPLE,
    config: ConfigOption = None,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Compare source and target snapshots by GUID (missing, extra, diverged); --deep compares files."""
    setup_logging(verbose)
    cfg = load(config)
    result = guarded(lambda: action.run(cfg, now=time.time(), targets=target, dataset=dataset, deep=deep,
                                        sample=sample))
    finish(result, json=json, render=render, state_dir=cfg.state_dir)


def render(result: RunResult) -> str:
    lines: list[str] = []
    for item in result.items:
        c = item.details.get("comparison", {})
        where = f"{item.dataset} -> {item.target}"
        if item.status == OK:
            text = f"{where}: verified at @{item.to_snapshot} ({c.get('common', 0)} snapshot(s) in common)"
            deep = item.details.get("deep")
            if deep and deep.get("checked"):
                text += f"; files equal ({deep['entries']} entries, {deep['files_checked']} checksummed)"
            elif deep:
                text += f"; deep check skipped: {deep['reason']}"
            lines.append(text)
            lines += [f"  note: {n}" for n in c.get("notes", [])]
        else:
            lines.append(f"{where}: NOT VERIFIED: {item.error}")
            deep = item.details.get("deep") or {}
            lines += [f"  {d}" for d in deep.get("differences", [])[1:]]
    lines += [f"error: {e}" for e in result.errors]
    ok = sum(1 for i in result.items if i.status == OK)
    failed = sum(1 for i in result.items if i.status == FAILED)
    if result.items:
        lines.append(f"verified {ok} of {ok + failed}" + ("" if not failed else "; the backup is NOT verified"))
    elif not result.errors:
        lines.append("nothing to verify: no dataset has a target")
    return "\n".join(lines) + "\n"
