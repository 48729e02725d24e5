"""`zfsrep report-result`: tell every configured sink how the run went.

Built to run as systemd `ExecStopPost=` (it reads `SERVICE_RESULT`, `EXIT_CODE`, `EXIT_STATUS`,
`INVOCATION_ID` and the unit's cgroup) and by hand or from cron (flags). A sink that stays down
is a warning, never a failed backup: the outcome is exit 0 unless ``strict``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zfsrep import state
from zfsrep.config.model import Config
from zfsrep.core.result import RunResult
from zfsrep.core.run_report import (
    LoadedResult,
    RunReport,
    build_report,
    rfc3339,
    run_id,
    service_view,
    unit_from_cgroup,
)
from zfsrep.errors import EXIT_FAILED, EXIT_OK
from zfsrep.execute import Runner

if TYPE_CHECKING:  # requests is imported only when a report is actually sent
    from zfsrep import report


@dataclass
class Planned:
    """A request that --dry-run would have sent (nothing secret)."""

    sink: str
    destination: str
    what: str
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {"sink": self.sink, "destination": self.destination, "what": self.what, "body": self.body}


@dataclass
class ReportRun:
    report: RunReport | None  # None for a start ping
    deliveries: list[report.Delivery] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    strict: bool = False
    dry_run: bool = False

    @property
    def failed(self) -> list[report.Delivery]:
        return [d for d in self.deliveries if not d.ok]

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.strict and self.failed else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": self.report.to_dict() if self.report else None,
            "sinks": [d.to_dict() for d in self.deliveries],
            "planned": [p.to_dict() for p in self.planned] if self.dry_run else None,
            "exit_code": self.exit_code,
        }


def load_results(state_dir: str, verbs: list[str], files: list[str]) -> list[LoadedResult]:
    """The result of each verb in the state dir, and of each explicit file."""
    wanted = [(str(state.result_path(state_dir, v)), v) for v in verbs] + [(f, "") for f in files]
    return [_load(path, verb) for path, verb in wanted]


def _load(path: str, verb: str) -> LoadedResult:
    try:
        data = state.read_versioned(Path(path), state.RESULT)
    except state.StateFormatError as e:  # reported as the reason, like a missing result
        return LoadedResult(path, verb or "run", None, problem=str(e))
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or "not valid JSON"
        return LoadedResult(path, verb or "run", None, problem=f"cannot read the result {path}: {why}")
    if data is None:
        return LoadedResult(path, verb or "run", None)
    try:
        result = RunResult.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return LoadedResult(path, verb or "run", None, problem=f"{path} is not a zfsrep run result")
    return LoadedResult(path, verb or result.verb, result, invocation_id=result.invocation_id)


def detect_unit(env: Mapping[str, str]) -> str | None:
    """The unit this runs in, when systemd runs it as ExecStopPost (SERVICE_RESULT is set)."""
    if not env.get("SERVICE_RESULT"):
        return None
    try:
        return unit_from_cgroup(Path("/proc/self/cgroup").read_text())
    except OSError:
        return None


def service_started_at(unit: str | None, runner: Runner | None = None) -> float | None:
    """When ``unit`` last left the inactive state (wall clock), from systemctl; None if unknown."""
    if not unit:
        return None
    runner = runner or Runner(timeout=10)
    try:
        out = runner.run(["systemctl", "show", "--property=InactiveExitTimestampMonotonic", "--", unit],
                         check=False)
    except Exception:  # noqa: BLE001 — no systemctl: the invocation id or --max-age still work
        return None
    _, _, value = out.stdout.strip().partition("=")
    if not out.ok or not value.isdigit() or int(value) == 0:
        return None
    return time.time() - (time.monotonic() - int(value) / 1e6)


def run(
    config: Config,
    *,
    now: float,
    env: Mapping[str, str] | None = None,
    verbs: list[str] | None = None,
    result_files: list[str] | None = None,
    service_result: str | None = None,
    exit_code: str | None = None,
    exit_status: str | None = None,
    unit: str | None = None,
    max_age: float | None = None,
    start: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    started_at: Callable[[str | None], float | None] = service_started_at,
) -> ReportRun:
    from zfsrep import report

    env = os.environ if env is None else env
    unit = unit or detect_unit(env)
    sinks = config.report

    if start:
        view = service_view(env, unit=unit)
        out = ReportRun(report=None, strict=strict, dry_run=dry_run)
        if sinks.healthchecks is not None:
            _dispatch(out, "healthchecks",
                      lambda: [report.ping_request(sinks.healthchecks, "start", "", run_id(view.invocation_id))],
                      config, sleep)
        return out

    view = service_view(env, service_result=service_result, exit_code=exit_code, exit_status=exit_status,
                        unit=unit, started_at=started_at(unit))
    loaded = load_results(config.state_dir, list(verbs or ([] if result_files else ["replicate"])),
                          list(result_files or []))
    run_report = build_report(loaded, view, now=now, host=socket.gethostname(), max_age=max_age)
    out = ReportRun(report=run_report, strict=strict, dry_run=dry_run)

    if sinks.honeycomb is not None:
        events = [(rfc3339(run_report.finished_at), run_report.item_fields(i)) for i in run_report.items]
        events.append((rfc3339(run_report.finished_at), run_report.summary_fields()))
        _dispatch(out, "honeycomb", lambda: report.honeycomb_requests(sinks.honeycomb, events), config, sleep)
    if sinks.healthchecks is not None:
        kind = "success" if run_report.success else "fail"
        rid = run_id(view.invocation_id)
        _dispatch(out, "healthchecks",
                  lambda: [report.ping_request(sinks.healthchecks, kind, run_report.text(), rid)], config, sleep)
    if sinks.webhook is not None:
        _dispatch(out, "webhook", lambda: [report.webhook_request(sinks.webhook, run_report.to_dict())],
                  config, sleep)
    return out


def _dispatch(out: ReportRun, sink: str, build: Callable[[], list[report.Request]], config: Config,
              sleep: Callable[[float], None]) -> None:
    from zfsrep import report

    try:
        requests_ = build()
    except report.SinkError as e:
        out.deliveries.append(report.Delivery(sink, False, "", detail=f"{sink}: {e}"))
        return
    if out.dry_run:
        out.planned += [Planned(r.sink, r.destination, r.what, r.body.decode("utf-8", "replace"))
                        for r in requests_]
        return
    out.deliveries.append(report.deliver(sink, requests_, timeout=config.report.timeout,
                                         retries=config.report.retries, sleep=sleep))
