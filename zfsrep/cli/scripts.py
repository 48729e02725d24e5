"""Console scripts `zfsrep-<verb>`: the same command functions as `zfsrep <verb>`."""

from __future__ import annotations

import importlib

import typer

from zfsrep.cli import VERBS, config_cmd


def _run(verb: str) -> None:
    module, function = VERBS[verb]
    single = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False,
                         context_settings={"help_option_names": ["-h", "--help"]})
    single.command(verb)(getattr(importlib.import_module(module), function))
    single(prog_name=f"zfsrep-{verb}")


def config() -> None:
    config_cmd.app(prog_name="zfsrep-config")


def __getattr__(name: str):  # zfsrep.cli.scripts:report_result -> zfsrep-report-result
    verb = name.replace("_", "-")
    if verb in VERBS:
        return lambda: _run(verb)
    raise AttributeError(name)
