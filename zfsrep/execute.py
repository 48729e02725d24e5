"""The one seam for control-plane commands (listing, snapshot, destroy, hold, ssh checks).

Data streams (send/recv) never come through here: see ``zfsrep.pipeline``. Commands are
argument lists, never shell strings; a remote command is one argv handed to ``ssh`` after
``shlex.join`` (see ``zfsrep.ssh``). ``sh`` is confined to this module.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sh

from zfsrep.errors import CommandError, ZfsrepError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Runner:
    """Runs argv lists, either locally or, with ``prefix``, through ``ssh``.

    ``prefix`` is the ssh argv up to and including the destination (e.g.
    ``["ssh", "-F", cfg, "-o", "BatchMode=yes", "root@backup", "--"]``); the command is then
    passed as a single ``shlex.join``-ed word so the remote shell sees exactly these arguments.
    ``calls`` counts commands run, for benchmarks and tests.
    """

    prefix: tuple[str, ...] = ()
    host: str | None = None
    timeout: float | None = None
    calls: int = field(default=0, compare=False)

    def full_argv(self, argv: Sequence[str]) -> list[str]:
        if not self.prefix:
            return list(argv)
        return [*self.prefix, shlex.join(argv)]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """``env``: variables added to this process's environment (local commands only)."""
        full = self.full_argv(argv)
        extra = {"_env": {**os.environ, **env}} if env else {}
        self.calls += 1
        log.debug("run%s: %s", f" on {self.host}" if self.host else "", shlex.join(argv))
        try:
            proc = sh.Command(full[0])(
                *full[1:],
                _in=input,
                _ok_code=list(range(256)),
                _return_cmd=True,
                _timeout=timeout if timeout is not None else self.timeout,
                _tty_out=False,
                **extra,
            )
        except sh.CommandNotFound:
            raise ZfsrepError(
                f"command not found: {full[0]!r}"
                + (f" (needed to reach {self.host})" if self.host else "")
                + "; install it or put it on PATH"
            ) from None
        except sh.TimeoutException:
            raise CommandError(
                list(argv), 124, f"timed out after {timeout or self.timeout} s", host=self.host
            ) from None
        result = CommandResult(
            argv=tuple(argv),
            returncode=proc.exit_code,
            stdout=proc.stdout.decode("utf-8", "replace"),
            stderr=proc.stderr.decode("utf-8", "replace"),
        )
        if check and result.returncode != 0:
            raise CommandError(list(argv), result.returncode, result.stderr, host=self.host)
        return result
