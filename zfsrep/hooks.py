"""Runs a ``[[datasets]]`` entry's ``pre_snapshot`` / ``post_snapshot`` hook: its argv, locally,
through `zfsrep.execute.Runner` (no shell), with its timeout and the environment
`core.snapshot_hooks` describes. Returns None when the hook succeeded, else the one line that
says which hook failed for which entry, why, and what to do."""

from __future__ import annotations

import logging
import shlex

from zfsrep.core.durations import format_duration
from zfsrep.core.snapshot_hooks import EntryHooks
from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.execute import Runner

log = logging.getLogger(__name__)

TIMED_OUT = 124  # Runner's returncode for a command it killed at its timeout


def run_hook(hooks: EntryHooks, phase: str, *, outcome: str | None = None,
             runner: Runner | None = None) -> str | None:
    argv = hooks.argv(phase)
    if argv is None:
        return None
    runner = runner or Runner()
    shown = shlex.join(argv)
    log.info("%s hook for %s: %s", phase, hooks.entry, shown)
    try:
        runner.run(argv, timeout=hooks.timeout, env=hooks.env(phase, outcome))
    except CommandError as e:
        if e.returncode == TIMED_OUT and "timed out" in e.stderr:
            why = f"timed out after {format_duration(hooks.timeout)} and was killed"
            fix = f"make it finish sooner or raise hook_timeout of [[datasets]] {hooks.entry}"
        else:
            last = e.stderr.strip().splitlines()[-1:] or [""]
            why = f"exited {e.returncode}" + (f": {last[0]}" if last[0] else "")
            fix = f"run it by hand (`{shown}`) to see why"
        return f"{phase} hook `{shown}` for {hooks.entry} {why}; {_consequence(phase)}; {fix}"
    except (ZfsrepError, OSError) as e:
        return (f"{phase} hook `{shown}` for {hooks.entry} could not start: {e}; "
                f"{_consequence(phase)}; fix {phase} of [[datasets]] {hooks.entry}")
    return None


def _consequence(phase: str) -> str:
    if phase == "pre_snapshot":
        return "no snapshot taken of it"
    return "the snapshot was taken, but whatever the hook undoes may still be in effect"
