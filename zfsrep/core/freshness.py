"""How fresh each dataset's copy on each target is, judged against warn/crit thresholds, with
Nagios states and exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). Pure: ``now`` is passed in.

The age of a copy is the age of the newest snapshot on the target (the data you could restore)
when its time is known — from a live listing, or from a zfsrep snapshot name — and otherwise the
time since the last successful replication. The first catches what the second cannot: a
replicate that "succeeds" with nothing to send because snapshots stopped being taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from zfsrep.core.durations import format_duration

OK = "OK"
WARNING = "WARNING"
CRITICAL = "CRITICAL"
UNKNOWN = "UNKNOWN"
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}
# Worst first wins: an unreachable check (UNKNOWN) outranks a mere WARNING.
_SEVERITY = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}


@dataclass(frozen=True)
class Observation:
    """What is known about one dataset on one target (times are epoch seconds)."""

    dataset: str
    target: str
    warn: float
    crit: float
    newest_source: str | None = None  # snapshot name (after "@")
    newest_source_time: float | None = None
    newest_target: str | None = None
    newest_target_time: float | None = None
    behind: int | None = None  # source snapshots newer than the target's newest (live only)
    last_success: float | None = None
    last_attempt: float | None = None
    last_status: str | None = None
    last_error: str | None = None
    bytes: int | None = None  # of the last run
    seconds: float | None = None
    recorded: bool = False  # replication history has an entry for this pair
    problem: str | None = None  # why it could not be checked


@dataclass(frozen=True)
class Verdict:
    observation: Observation
    state: str
    age: float | None
    basis: str | None  # "snapshot" (newest copy's time) or "success" (last replication)
    reason: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.observation), "state": self.state, "exit_code": self.exit_code,
                "age": self.age, "age_basis": self.basis, "reason": self.reason}


def evaluate(obs: Observation, *, now: float) -> Verdict:
    warn, crit = obs.warn, max(obs.crit, obs.warn)
    if obs.newest_target_time is not None:
        basis, since = "snapshot", obs.newest_target_time
    elif obs.last_success is not None:
        basis, since = "success", obs.last_success
    else:
        basis, since = None, None
    age = max(0.0, now - since) if since is not None else None
    limits = f"warn {format_duration(warn)}, crit {format_duration(crit)}"

    if obs.problem:
        known = f"; last known copy {format_duration(age)} old" if age is not None else ""
        return Verdict(obs, UNKNOWN, age, basis, obs.problem + known)
    if age is None:
        if obs.newest_target is not None or obs.recorded:
            why = f"no time known for {obs.newest_target or 'the last replication'}"
            return Verdict(obs, UNKNOWN, None, None, why)
        return Verdict(obs, CRITICAL, None, None, f"never replicated to {obs.target}: no copy known")

    state = CRITICAL if age >= crit else WARNING if age >= warn else OK
    if basis == "snapshot":
        reason = f"newest copy {obs.newest_target} is {format_duration(age)} old ({limits})"
    else:
        reason = f"last successful replication {format_duration(age)} ago ({limits})"
    if obs.behind:
        reason += f"; {obs.behind} newer snapshot(s) on the source not yet sent"
    if obs.last_status == "failed" and obs.last_error:
        reason += f"; last attempt failed: {obs.last_error}"
    return Verdict(obs, state, age, basis, reason)


def overall(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return UNKNOWN
    return max((v.state for v in verdicts), key=_SEVERITY.__getitem__)


def summary_line(verdicts: Sequence[Verdict]) -> str:
    """The Nagios plugin's first line: state, counts, the worst pairs, then perfdata."""
    state = overall(verdicts)
    if not verdicts:
        return f"ZFSREP {state} - nothing to check: no dataset has a target in the config"
    counts = {s: sum(1 for v in verdicts if v.state == s) for s in (CRITICAL, UNKNOWN, WARNING, OK)}
    text = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    worst = [v for v in verdicts if v.state == state and state != OK][:3]
    if worst:
        text += ": " + "; ".join(f"{v.observation.dataset} → {v.observation.target} {_short(v)}" for v in worst)
    return f"ZFSREP {state} - {text} | {perfdata(verdicts)}"


def perfdata(verdicts: Sequence[Verdict]) -> str:
    parts = []
    for v in verdicts:
        if v.age is None:
            continue
        label = f"{v.observation.dataset}@{v.observation.target}".replace("'", "")
        o = v.observation
        parts.append(f"'{label}'={int(v.age)}s;{int(o.warn)};{int(max(o.crit, o.warn))};0")
    return " ".join(parts)


def _short(v: Verdict) -> str:
    if v.state == UNKNOWN:
        return f"not checked ({v.reason})"
    if v.age is None:
        return "never replicated"
    return f"{format_duration(v.age)} old"
