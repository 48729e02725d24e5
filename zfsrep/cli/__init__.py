"""The `zfsrep` command: one root typer app; each verb lives in its own module here.

Each verb is also a console script `zfsrep-<verb>` (see `zfsrep.cli.scripts`). A verb is
registered only once it works.

Start-up time matters (a timer runs zfsrep every few minutes, and under emulation each import
costs): `zfsrep <verb>` imports only that verb's module; the full app with every verb, for
`zfsrep --help` and tests, is built on first use of ``zfsrep.cli.app``.
"""


import importlib
import sys

# name -> (module, function); `zfsrep.cli.scripts` builds `zfsrep-<name>` from the same table.
VERBS: dict[str, tuple[str, str]] = {
    name: (module, "command") for name, module in [
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
        ("serve", "zfsrep.cli.serve"),
        ("prune-received", "zfsrep.cli.prune_received"),
    ]
}
# command groups: name -> module with a typer `app`
GROUPS: dict[str, str] = {"config": "zfsrep.cli.config_cmd", "systemd": "zfsrep.cli.systemd_cmd"}

TYPER_SETTINGS = dict(pretty_exceptions_show_locals=False, add_completion=False,
                      context_settings={"help_option_names": ["-h", "--help"]})


def verb_function(verb: str):
    module, function = VERBS[verb]
    return getattr(importlib.import_module(module), function)


def build_app():  # no `from __future__ import annotations` here: typer reads the local names
    """The root app with every verb and group (imports all of them)."""
    from typing import Annotated

    import typer

    from zfsrep import __version__

    root = typer.Typer(name="zfsrep", no_args_is_help=True, **TYPER_SETTINGS,
                       help="ZFS snapshots, retention and safe incremental replication over SSH.")

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"zfsrep {__version__}")
            raise typer.Exit()

    @root.callback()
    def _root(
        version: Annotated[
            bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version.")
        ] = False,
    ) -> None:
        pass

    for name, module in GROUPS.items():
        root.add_typer(importlib.import_module(module).app, name=name)
    for name in VERBS:
        root.command(name)(verb_function(name))
    return root


def run_verb(verb: str, *, prog_name: str, args: list[str] | None = None) -> None:
    """One verb as a command of its own (`zfsrep-<verb>`, and the fast path of `zfsrep <verb>`)."""
    import typer

    single = typer.Typer(**TYPER_SETTINGS)
    single.command(verb)(verb_function(verb))
    single(prog_name=prog_name, args=args)


_app = None


def __getattr__(name: str):
    if name == "app":
        global _app
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    args = sys.argv[1:]
    if args == ["--version"]:  # without building the app (every verb's imports)
        from zfsrep import __version__

        print(f"zfsrep {__version__}")
        return
    if args and args[0] in VERBS:
        run_verb(args[0], prog_name=f"zfsrep {args[0]}", args=args[1:])
    else:
        __getattr__("app")()
