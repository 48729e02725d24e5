"""`zfsrep config init|show|check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zfsrep.cli.common import ConfigOption, JsonOption, fail, load, print_json
from zfsrep.config.load import config_path, config_to_dict, parse_config, render_config
from zfsrep.config.starter import STARTER_CONFIG
from zfsrep.errors import EXIT_FAILED, EXIT_USAGE

app = typer.Typer(no_args_is_help=True, help="Write, show and check the config file.")


@app.command()
def init(
    path: Annotated[Path | None, typer.Argument(help="Where to write [default: --config or /etc/zfsrep/config.toml].")] = None,
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config."""
    target = path or config_path(config)
    if target.exists() and not force:
        fail(f"{target} exists; not overwriting it (use --force)", EXIT_USAGE)
    parse_config(STARTER_CONFIG)  # the starter must always be valid
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(STARTER_CONFIG)
    except OSError as e:
        fail(f"cannot write {target}: {e.strerror}", EXIT_FAILED)
    typer.echo(f"wrote {target}; edit it, then run `zfsrep config check --config {target}`")


@app.command()
def show(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Print the resolved config with every default filled in."""
    cfg = load(config)
    if json:
        print_json(config_to_dict(cfg))
    else:
        typer.echo(render_config(cfg), nl=False)


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the config; print every problem with its dotted path (exit 2 if any)."""
    cfg = load(config)
    received = f", {len(cfg.receive.sources)} receive source(s)" if cfg.receive else ""
    typer.echo(
        f"{cfg.path}: ok ({len(cfg.datasets)} dataset(s), {len(cfg.targets)} target(s){received})"
    )
