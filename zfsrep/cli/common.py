"""Shared CLI options, error handling and output helpers. Only `zfsrep.cli` imports typer."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol

import typer

from zfsrep import unit_run
from zfsrep.config.load import config_path, load_config
from zfsrep.config.model import CONFIG_ENV, Config
from zfsrep.errors import EXIT_USAGE, ZfsrepError

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar=CONFIG_ENV, show_envvar=True,
        help="Config file \\[default: /etc/zfsrep/config.toml].",
    ),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", "-n", help="Print the plan; change nothing.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result.")]
VerboseOption = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv: commands).")]
TargetOption = Annotated[
    list[str] | None, typer.Option("--target", "-t", help="Only this target (repeatable).")
]


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    # -vv shows every command with the milliseconds since start, to see where a run's time goes
    fmt = "%(levelname)s %(name)s: %(message)s" if verbose < 2 else \
        "%(levelname)s +%(relativeCreated)dms %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)
    # the `sh` library logs every chunk it reads at INFO/DEBUG: noise that also slows a run
    logging.getLogger("sh").setLevel(logging.WARNING)


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"zfsrep: {message}", err=True)
    raise typer.Exit(code)


def load(config: Path | None, *, pin: bool = True) -> Config:
    """The config; inside one of zfsrep's units, the copy the run started with (`zfsrep.unit_run`).
    ``pin=False`` for the steps that run as root in a unit with a dedicated user."""
    warnings: list[str] = []
    path = unit_run.config_for_run(config_path(config), warnings) if pin else config
    for message in warnings:
        warn(message)
    try:
        return load_config(path)
    except ZfsrepError as e:
        fail(str(e), e.exit_code)


def guarded(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a ZfsrepError becomes one line on stderr and its exit code."""
    try:
        return fn()
    except ZfsrepError as e:
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def usage_error(message: str) -> NoReturn:
    fail(message, EXIT_USAGE)


def warn(message: str) -> None:
    typer.echo(f"zfsrep: warning: {message}", err=True)


def store(state_dir: str, result: Any, *, replication: bool = False) -> tuple[Any, list[str]]:
    """Keep the RunResult in ``state_dir`` (not for a dry run). A state dir that cannot be written
    is a warning, never the run's exit code: bookkeeping must not fail a good backup. Prints the
    warnings (also those an action left in an item's ``details["warnings"]``). Returns the result
    as kept (`state.as_saved`: with this run's invocation id) and the warnings."""
    from zfsrep.state import as_saved, save_run

    result = as_saved(result)
    found = (w for item in result.items for w in item.details.get("warnings", ()))
    warnings = list(dict.fromkeys(found))  # once each: reaching a target warns on all its items
    problem = save_run(state_dir, result, replication=replication)
    warnings += [problem] if problem else []
    for message in warnings:
        warn(message)
    return result, warnings


class Outcome(Protocol):
    """What a verb ends with: a `RunResult`, or status' and report-result's own documents."""

    @property
    def exit_code(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


def result_document(result: Outcome, warnings: list[str], *, note: str | None = None) -> dict[str, Any]:
    """The --json document: the result, plus ``warnings`` when there were any and a ``note``."""
    data = result.to_dict()
    if warnings:
        data["warnings"] = warnings
    if note is not None:
        data["note"] = note
    return data


def finish(result: Outcome, *, json: bool, render: Callable[[Any], str | None], state_dir: str | None = None,
           replication: bool = False, note: str | None = None) -> NoReturn:
    """The end of every verb: store the RunResult in ``state_dir`` (see `store`; ``replication``:
    also replicate's history), print it and exit with its exit code. ``render`` returns the human
    text for stdout, or prints it itself (when some lines go to stderr) and returns None; --json
    prints `result_document` instead, with ``note`` (a line about the whole run) if given."""
    warnings: list[str] = []
    if state_dir is not None:  # --json shows the result as kept
        result, warnings = store(state_dir, result, replication=replication)
    if json:
        print_json(result_document(result, warnings, note=note))
    else:
        text = render(result)
        if text is not None:
            typer.echo(text, nl=False)
    raise typer.Exit(result.exit_code)


def plan_header(result: Any) -> str:
    """The first line of a dry run's plan: where, when (the run's ``now``, UTC) and that nothing
    changed."""
    stamp = datetime.fromtimestamp(int(result.started_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"plan on {result.host} at {stamp} (dry run: nothing changed)"
