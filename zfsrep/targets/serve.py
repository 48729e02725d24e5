"""`zfsrep serve`, on the target: the command its `authorized_keys` forces on the source's key
(`restrict,command="zfsrep serve --root backup/hosts/web1"`). It reads SSH_ORIGINAL_COMMAND,
asks `core.serve_policy` whether zfsrep may run it, and then either

- refuses: one line on stderr (`zfsrep serve: refused: <reason>: <command>`), the same line in
  the journal (syslog, facility auth), exit `EXIT_REFUSED` (77);
- runs one command: `os.execvp`, so serve is gone and the command's exit code is ssh's;
- runs a receive (or, with --allow-restore, send) pipeline: `pipeline.run_passed_through`,
  ssh's stdin into the first stage, the last stage's stdout to ssh; no byte passes through
  Python. The exit code is the first stage that failed of its own accord.

No shell runs anything here. Allowed commands are logged to the journal too (level info)."""

from __future__ import annotations

import os
import signal
import sys
import syslog
from collections.abc import Callable, Sequence

from zfsrep.core import serve_policy
from zfsrep.errors import EXIT_REFUSED
from zfsrep.pipeline import run_passed_through

EXIT_NOT_FOUND = 127  # what a shell says for a missing program
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # zfs and zpool on Debian, not on a user's PATH

Journal = Callable[[int, str], None]


def journal(priority: int, message: str) -> None:
    """One line to the journal (journald reads syslog) as `zfsrep-serve[pid]`, facility auth."""
    syslog.openlog("zfsrep-serve", syslog.LOG_PID, syslog.LOG_AUTH)
    syslog.syslog(priority, message)


def one_line(text: str | None) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in (text or ""))


def with_sbin(path: str | None) -> str:
    parts = [p for p in (path or "/usr/local/bin:/usr/bin:/bin").split(":") if p]
    return ":".join([*parts, *(s for s in SBIN if s not in parts)])


def exec_command(program: str, argv: list[str]) -> None:
    """Become ``argv``, with SIGPIPE and SIGXFSZ as a shell would leave them (Python ignores
    both, and an exec keeps what is ignored)."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    os.execvp(program, argv)


def run(command: str | None, *, roots: Sequence[str], allow_restore: bool = False,
        environ: dict[str, str] | None = None, log: Journal | None = None,
        execvp: Callable[[str, list[str]], object] | None = None,
        pipe: Callable[[Sequence[Sequence[str]]], int] = run_passed_through) -> int:
    """Serve ``command`` (SSH_ORIGINAL_COMMAND); returns the exit code (an exec does not return)."""
    environ = os.environ if environ is None else environ
    log = log or journal
    execvp = execvp or exec_command
    client = (environ.get("SSH_CONNECTION") or "").split(" ")[0] or "local"
    answer = serve_policy.decide(command, roots=roots, allow_restore=allow_restore)
    if isinstance(answer, serve_policy.Refusal):
        line = f"zfsrep serve: refused: {answer.reason}: {one_line(command)}"
        print(line, file=sys.stderr, flush=True)
        log(syslog.LOG_WARNING, f"{line} (from {client})")
        return EXIT_REFUSED
    log(syslog.LOG_INFO, f"zfsrep serve: {answer.what} (from {client}): {one_line(command)}")
    environ["PATH"] = with_sbin(environ.get("PATH"))
    stages = [list(s) for s in answer.stages]
    try:
        if len(stages) == 1:
            execvp(stages[0][0], stages[0])
            return 0  # only a test's execvp returns
        return pipe(stages)
    except FileNotFoundError as e:
        print(f"zfsrep serve: cannot run {e.filename or stages[0][0]}: not installed on this host "
              f"(PATH={environ['PATH']}); install it", file=sys.stderr, flush=True)
        return EXIT_NOT_FOUND
