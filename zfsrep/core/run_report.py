"""What `report-result` says about a run, decided from the run's result file(s) and from how the
service manager saw the run (systemd's `SERVICE_RESULT`, `EXIT_CODE`, `EXIT_STATUS`).

Pure: no I/O; the caller passes the environment, the loaded results and ``now``.

The rules that keep a report honest:
- a result written before this run started (another invocation, or an older time) is *stale*:
  it is left out and named, so a crash before the verb wrote its result is not reported with
  last night's numbers;
- the report never says "ok" when the service manager says the run did not succeed;
- without any result and without the service manager's word, the run is reported as failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zfsrep.core.result import FAILED, ItemResult, RunResult

# Run-level outcomes, mildest first.
RUN_OK = "ok"
RUN_PARTIAL = "partial"
RUN_FAILED = "failed"
_RANK = {RUN_OK: 0, RUN_PARTIAL: 1, RUN_FAILED: 2}

# A result may start up to this many seconds before the service's recorded start (clock skew
# between systemd's monotonic timestamp and the wall clock) and still belong to this run.
START_SLACK = 2.0


@dataclass(frozen=True)
class ServiceView:
    """How the service manager (or the caller, with flags) saw the run."""

    service_result: str | None = None  # SERVICE_RESULT: success, exit-code, signal, timeout, ...
    exit_code: str | None = None  # EXIT_CODE: exited, killed, dumped
    exit_status: str | None = None  # EXIT_STATUS: a number, or a signal name
    unit: str | None = None
    invocation_id: str | None = None
    started_at: float | None = None  # when the service started, to spot a stale result

    @property
    def succeeded(self) -> bool | None:
        """True/False when the service manager (or the caller) said; None when nobody did."""
        if self.service_result is not None:
            return self.service_result == "success"
        if self.exit_status is not None:
            return self.exit_status.strip() == "0"
        return None

    def describe(self) -> str:
        parts = []
        if self.service_result is not None:
            parts.append(f"service result {self.service_result}")
        if self.exit_code is not None and self.exit_code != "exited":
            parts.append(f"process {self.exit_code}")
        if self.exit_status is not None:
            parts.append(f"exit status {self.exit_status}")
        return ", ".join(parts)


def service_view(
    env: Mapping[str, str],
    *,
    service_result: str | None = None,
    exit_code: str | None = None,
    exit_status: str | None = None,
    unit: str | None = None,
    started_at: float | None = None,
) -> ServiceView:
    """The view from systemd's environment; explicit values (CLI flags) win."""

    def pick(explicit: str | None, name: str) -> str | None:
        value = explicit if explicit is not None else env.get(name)
        return value if value else None

    return ServiceView(
        service_result=pick(service_result, "SERVICE_RESULT"),
        exit_code=pick(exit_code, "EXIT_CODE"),
        exit_status=pick(exit_status, "EXIT_STATUS"),
        unit=unit,
        invocation_id=pick(None, "INVOCATION_ID"),
        started_at=started_at,
    )


def unit_from_cgroup(text: str) -> str | None:
    """The service unit a process runs in, from /proc/self/cgroup (cgroup v2 `0::/…/x.service`)."""
    for line in text.splitlines():
        hierarchy, _, path = line.partition("::")
        if hierarchy != "0" or not path:
            continue
        last = path.rstrip("/").rsplit("/", 1)[-1]
        return last if last.endswith(".service") else None
    return None


def run_id(invocation_id: str | None) -> str | None:
    """systemd's invocation id (32 hex digits) as a UUID, healthchecks' `rid` form."""
    if not invocation_id:
        return None
    try:
        return str(uuid.UUID(hex=invocation_id))
    except ValueError:
        return None


@dataclass(frozen=True)
class LoadedResult:
    """A result file as found: ``result`` is None when it is missing or unreadable."""

    path: str
    verb: str
    result: RunResult | None
    invocation_id: str | None = None
    problem: str | None = None  # why it could not be read


def staleness(loaded: LoadedResult, view: ServiceView, *, now: float, max_age: float | None) -> str | None:
    """Why ``loaded`` does not describe this run, or None when it does."""
    result = loaded.result
    if result is None:
        return loaded.problem or f"no {loaded.verb} result at {loaded.path}"
    if view.invocation_id and loaded.invocation_id:
        if view.invocation_id != loaded.invocation_id:
            return (f"the {loaded.verb} result in {loaded.path} is from another run "
                    f"(invocation {loaded.invocation_id}, started {rfc3339(result.started_at)})")
        return None
    if view.started_at is not None and result.started_at < view.started_at - START_SLACK:
        return (f"the {loaded.verb} result in {loaded.path} is from {rfc3339(result.started_at)}, "
                f"before this run started ({rfc3339(view.started_at)})")
    finished = result.finished_at or result.started_at
    if max_age is not None and now - finished > max_age:
        return f"the {loaded.verb} result in {loaded.path} is from {rfc3339(finished)}, older than --max-age"
    return None


@dataclass
class RunReport:
    """One run, as reported to every sink."""

    status: str  # ok | partial | failed
    verb: str
    host: str
    started_at: float
    finished_at: float
    view: ServiceView
    items: list[ItemResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # results left out, and why
    # where each verb's time went: "<verb>.<phase>" -> seconds (RunResult.phases)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status == RUN_OK

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    @property
    def seconds(self) -> float:
        return round(max(0.0, self.finished_at - self.started_at), 3)

    def common_fields(self) -> dict[str, Any]:
        """Fields every event of this run carries (so each event can be grouped by run)."""
        fields: dict[str, Any] = {
            "verb": self.verb,
            "host": self.host,
            "run.status": self.status,
            "run.success": self.success,
        }
        for name, value in (
            ("service_result", self.view.service_result),
            ("exit_code", self.view.exit_code),
            ("exit_status", _number_or_text(self.view.exit_status)),
            ("unit", self.view.unit),
            ("invocation_id", self.view.invocation_id),
        ):
            if value is not None:
                fields[name] = value
        return fields

    def summary_fields(self) -> dict[str, Any]:
        failed = [i for i in self.items if i.status == FAILED]
        fields = {
            "event": "run",
            **self.common_fields(),
            "status": self.status,
            "items": len(self.items),
            "items_failed": len(failed),
            "bytes": self.bytes,
            "seconds": self.seconds,
            "stale_result": bool(self.stale),
            **{f"phase.{name}": seconds for name, seconds in self.phases.items()},
        }
        messages = self.messages()
        if messages:
            fields["error"] = messages[0]
            fields["errors"] = len(messages)
        return fields

    def item_fields(self, item: ItemResult) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "event": "item",
            **self.common_fields(),
            "dataset": item.dataset,
            "status": item.status,
            "bytes": item.bytes,
            "seconds": round(item.seconds, 3),
        }
        for name, value in (
            ("target", item.target),
            ("error", item.error),
            ("from_snapshot", item.from_snapshot),
            ("to_snapshot", item.to_snapshot),
        ):
            if value is not None:
                fields[name] = value
        if item.resumed:
            fields["resumed"] = True
        if item.sent:
            fields["snapshots_sent"] = len(item.sent)
        return fields

    def messages(self) -> list[str]:
        """Every error worth a human's attention, most specific first."""
        out = [f"{_where(i)}: {i.error}" for i in self.items if i.status == FAILED and i.error]
        out += [e for e in self.errors if e not in out]
        return out

    def headline(self) -> str:
        how = self.view.describe()
        return (f"zfsrep {self.verb} on {self.host or 'this host'}: {self.status}"
                + (f" ({how})" if how else ""))

    def text(self) -> str:
        """A plain-text summary (the healthchecks ping body)."""
        lines = [self.headline()]
        if self.items:
            lines.append("")
        for item in self.items:
            line = f"{_where(item)}: {item.status}"
            if item.status != FAILED and (item.bytes or item.seconds):
                line += f", {item.bytes} bytes in {item.seconds:.1f} s"
            if item.to_snapshot and item.status != FAILED:
                line += f", now at {item.to_snapshot}"
            if item.error:
                line += f": {item.error}"
            lines.append(line)
        if self.errors or self.stale:
            lines.append("")
        lines += [f"error: {e}" for e in self.errors]
        lines += [f"note: {s}" for s in self.stale]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (webhook body, `--json`)."""
        return {
            "event": "zfsrep.run",
            **self.common_fields(),
            "status": self.status,
            "success": self.success,
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "seconds": self.seconds,
            "bytes": self.bytes,
            "items": [self.item_fields(i) for i in self.items],
            "errors": self.messages(),
            "stale": list(self.stale),
            "phases": dict(self.phases),
        }


def build_report(
    loaded: list[LoadedResult], view: ServiceView, *, now: float, host: str, max_age: float | None = None
) -> RunReport:
    """Decide the run's outcome from the fresh results and the service manager's view."""
    fresh: list[RunResult] = []
    stale: list[str] = []
    for one in loaded:
        why = staleness(one, view, now=now, max_age=max_age)
        if why is None and one.result is not None:
            fresh.append(one.result)
        else:
            stale.append(why or f"no {one.verb} result at {one.path}")

    items = [i for r in fresh for i in r.items]
    errors = [e for r in fresh for e in r.errors]
    from_results = max((r.status for r in fresh), key=_RANK.__getitem__, default=None)

    said = view.succeeded
    if said is False:
        status = from_results if from_results in (RUN_PARTIAL, RUN_FAILED) else RUN_FAILED
    elif said is True:
        status = from_results or RUN_OK
    else:
        status = from_results or RUN_FAILED

    verb = "+".join(dict.fromkeys(one.verb for one in loaded)) or "run"
    said_why = any(i.status == FAILED and i.error for i in items) or errors
    if status != RUN_OK and not said_why:
        how = f" ({view.describe()})" if view.describe() else ""
        hint = (f"; see `journalctl _SYSTEMD_INVOCATION_ID={view.invocation_id}`"
                if view.invocation_id else (f"; see `journalctl -u {view.unit}`" if view.unit else ""))
        if fresh:
            errors.append(f"{view.unit or 'the service'} failed{how} although zfsrep {verb} "
                          f"reported {from_results}{hint}")
        else:
            errors.append(f"zfsrep {verb} failed{how} without writing a result for this run{hint}")

    started = min((r.started_at for r in fresh), default=view.started_at or now)
    finished = max((r.finished_at or r.started_at for r in fresh), default=now)
    host_name = next((r.host for r in fresh if r.host), host)
    phases = {f"{r.verb}.{name}": seconds for r in fresh for name, seconds in r.phases.items()}
    return RunReport(status=status, verb=verb, host=host_name, started_at=started,
                     finished_at=finished, view=view, items=items, errors=errors, stale=stale,
                     phases=phases)


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def truncate_utf8(text: str, limit: int) -> bytes:
    """``text`` encoded, cut to at most ``limit`` bytes (with a marker when cut)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return data
    marker = "\n… (truncated)\n".encode()
    return data[: max(0, limit - len(marker))].decode("utf-8", "ignore").encode("utf-8") + marker


def _where(item: ItemResult) -> str:
    return f"{item.dataset} → {item.target}" if item.target else item.dataset


def _number_or_text(value: str | None) -> int | str | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value
