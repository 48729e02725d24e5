"""The `zfsrep` command: one root typer app; each verb lives in its own module here.

Each verb is also a console script `zfsrep-<verb>` (see `zfsrep.cli.scripts`). A verb is
registered only once it works.
"""

from __future__ import annotations

from typing import Annotated

import typer

from zfsrep import __version__
from zfsrep.cli import config_cmd, systemd_cmd

app = typer.Typer(
    name="zfsrep",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="ZFS snapshots, retention and safe incremental replication over SSH.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"zfsrep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version.")
    ] = False,
) -> None:
    pass


app.add_typer(config_cmd.app, name="config")
app.add_typer(systemd_cmd.app, name="systemd")

# name -> (module, function); `zfsrep.cli.scripts` builds `zfsrep-<name>` from the same table.
VERBS: dict[str, tuple[str, str]] = {}


def register(name: str, module: str, function: str = "command") -> None:
    import importlib

    VERBS[name] = (module, function)
    app.command(name)(getattr(importlib.import_module(module), function))


for _name, _module in [
    # verbs are added here as they land
    ("snapshot", "zfsrep.cli.snapshot"),
    ("warmup", "zfsrep.cli.warmup"),
    ("teardown", "zfsrep.cli.teardown"),
    ("report-result", "zfsrep.cli.report_result"),
    ("status", "zfsrep.cli.status"),
    ("replicate", "zfsrep.cli.replicate"),
    ("snapshots", "zfsrep.cli.snapshots"),
    ("restore", "zfsrep.cli.restore"),
    ("rollback", "zfsrep.cli.rollback"),
    ("verify", "zfsrep.cli.verify"),
    ("scrub", "zfsrep.cli.scrub"),
]:
    register(_name, _module)


def main() -> None:
    app()
