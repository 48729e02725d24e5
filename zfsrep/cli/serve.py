"""`zfsrep serve --root DS [--root DS…] [--allow-restore]`: the forced command of an
append-only target (see `zfsrep.targets.serve` and docs/append-only.md)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

RootOption = Annotated[list[str], typer.Option(
    "--root", help="A dataset the source may receive into (and read) at or below; repeatable.")]
AllowRestoreOption = Annotated[bool, typer.Option(
    "--allow-restore", help="Also serve `zfs send` of datasets under the roots (zfsrep restore).")]


def command(root: RootOption, allow_restore: AllowRestoreOption = False) -> None:
    """Run what SSH_ORIGINAL_COMMAND asks if zfsrep may (an append-only target); refuse the rest."""
    from zfsrep.targets import serve

    code = serve.run(os.environ.get("SSH_ORIGINAL_COMMAND"), roots=root, allow_restore=allow_restore)
    raise typer.Exit(code)
