"""Console scripts `zfsrep-<verb>`: the same command functions as `zfsrep <verb>`."""

from __future__ import annotations

from zfsrep.cli import VERBS, run_verb


def config() -> None:
    from zfsrep.cli import config_cmd

    config_cmd.app(prog_name="zfsrep-config")


def __getattr__(name: str):  # zfsrep.cli.scripts:report_result -> zfsrep-report-result
    verb = name.replace("_", "-")
    if verb in VERBS:
        return lambda: run_verb(verb, prog_name=f"zfsrep-{verb}")
    raise AttributeError(name)
