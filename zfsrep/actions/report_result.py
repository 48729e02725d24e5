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

from zfsrep import sinks, state
from zfsrep.config.model import Config
from zfsrep.core.result import RunResult
from zfsrep.core.run_report import (
    LoadedResult,
    RunReport,
    build_report,
    run_id,
    service_view,
    unit_from_cgroup,
)
from zfsrep.errors import EXIT_FAILED, EXIT_OK
from zfsrep.execute import Runner
from zfsrep.sinks.shared import SinkError

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
class ReportOutcome:
    """What `report-result` did: the report it made of the run, and what each sink got (or, with
    --dry-run, would have got)."""

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
) -> ReportOutcome:
    env = os.environ if env is None else env
    unit = unit or detect_unit(env)

    if start:
        view = service_view(env, unit=unit)
        out = ReportOutcome(report=None, strict=strict, dry_run=dry_run)
        _tell_sinks(out, None, run_id(view.invocation_id), config, sleep)
        return out

    view = service_view(env, service_result=service_result, exit_code=exit_code, exit_status=exit_status,
                        unit=unit, started_at=started_at(unit))
    loaded = load_results(config.state_dir, list(verbs or ([] if result_files else ["replicate"])),
                          list(result_files or []))
    run_report = build_report(loaded, view, now=now, host=socket.gethostname(), max_age=max_age)
    out = ReportOutcome(report=run_report, strict=strict, dry_run=dry_run)
    _tell_sinks(out, run_report, run_id(view.invocation_id), config, sleep)
    return out


def _tell_sinks(out: ReportOutcome, run_report: RunReport | None, rid: str | None, config: Config,
                sleep: Callable[[float], None]) -> None:
    """Each configured sink, in turn: what it has to say about the run (or its start), sent."""
    from zfsrep import report

    for sink, settings in sinks.configured(config.report):
        try:
            requests_ = sink.build_requests(settings, run_report, rid)
        except SinkError as e:
            out.deliveries.append(report.Delivery(sink.NAME, False, "", detail=f"{sink.NAME}: {e}"))
            continue
        if not requests_:  # nothing to say (no start message)
            continue
        if out.dry_run:
            out.planned += [Planned(r.sink, r.destination, r.what, r.body.decode("utf-8", "replace"))
                            for r in requests_]
            continue
        out.deliveries.append(report.deliver(sink.NAME, requests_, timeout=config.report.timeout,
                                             retries=config.report.retries, sleep=sleep))
