"""Exceptions and the fixed exit codes every verb uses.

Exit codes (documented in the README):
  0  done, or nothing to do
  1  failed
  2  usage or configuration error
  3  partial: some datasets or targets failed, the others were done
 77  `zfsrep serve` refused the command ssh passed (EX_NOPERM of sysexits.h; serve only)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_REFUSED = 77


class ZfsrepError(Exception):
    """An error with a message meant for the user: one line naming what failed and the fix."""

    exit_code = EXIT_FAILED


class ConfigError(ZfsrepError):
    """The configuration could not be read or is invalid; carries every problem found."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str] | str, *, path: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.path = path
        head = f"{path}: " if path else ""
        if len(self.problems) == 1:
            message = head + self.problems[0]
        else:
            message = head + f"{len(self.problems)} problems:\n" + "\n".join(
                f"  {p}" for p in self.problems
            )
        super().__init__(message)


class UsageError(ZfsrepError):
    exit_code = EXIT_USAGE


class CommandError(ZfsrepError):
    """A command (local or remote) exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, stderr: str, *, host: str | None = None):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.host = host
        where = f" on {host}" if host else ""
        detail = _detail(self.stderr) or f"exit status {returncode}"
        super().__init__(f"{argv[0] if argv else '?'}{where} failed: {detail}")


def _detail(stderr: str) -> str:
    """The line of a command's stderr that says what went wrong: the last one, or the last
    before a usage text (zfs follows e.g. "invalid property" with its usage and property table)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.strip().lower().startswith("usage:"):
            return lines[i - 1].strip() if i else line.strip()
    return lines[-1].strip() if lines else ""


class LockError(ZfsrepError):
    pass
