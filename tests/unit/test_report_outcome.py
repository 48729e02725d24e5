"""report-result's verdict on a run (pure): stale results, the service manager's word, text."""

from hypothesis import given
from hypothesis import strategies as st

from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, ItemResult, RunResult
from zfsrep.core.run_report import (
    LoadedResult,
    ServiceView,
    build_report,
    run_id,
    service_view,
    truncate_utf8,
    unit_from_cgroup,
)

NOW = 1_800_000_000.0
INV = "0123456789abcdef0123456789abcdef"


def result(*statuses, started=NOW - 60, invocation=INV, errors=()):
    return RunResult(
        verb="replicate", started_at=started, finished_at=started + 30, host="web1",
        items=[ItemResult(dataset=f"tank/d{i}", target="offsite", status=s, bytes=1000 * (i + 1),
                          error="cannot receive: out of space" if s == FAILED else None)
               for i, s in enumerate(statuses)],
        errors=list(errors), invocation_id=invocation,
    )


def loaded(r):
    return LoadedResult("/var/lib/zfsrep/last-replicate.json", "replicate", r,
                        invocation_id=r.invocation_id if r else None)


def systemd(service_result="success", status="0", invocation=INV, **kw):
    env = {"SERVICE_RESULT": service_result, "EXIT_CODE": "exited", "EXIT_STATUS": status,
           "INVOCATION_ID": invocation}
    return service_view(env, unit="zfsrep-replicate.service", **kw)


def test_fresh_ok_result_under_a_successful_service_is_ok():
    report = build_report([loaded(result(OK, NOTHING_TO_DO))], systemd(), now=NOW, host="h")
    assert report.status == "ok" and report.success
    assert report.bytes == 3000 and not report.stale and report.host == "web1"


def test_partial_result_stays_partial_and_lists_the_failed_dataset():
    report = build_report([loaded(result(OK, FAILED))], systemd("exit-code", "3"), now=NOW, host="h")
    assert report.status == "partial"
    assert report.messages() == ["tank/d1 → offsite: cannot receive: out of space"]
    assert report.summary_fields()["exit_status"] == 3
    assert report.summary_fields()["items_failed"] == 1


def test_result_from_another_invocation_is_stale_and_the_failure_is_still_reported():
    old = result(OK, OK, invocation="f" * 32)
    report = build_report([loaded(old)], systemd("exit-code", "1"), now=NOW, host="h")
    assert report.status == "failed"
    assert report.items == []  # last night's numbers are not reported as this run's
    assert "from another run" in report.stale[0]
    assert report.errors == [
        ("zfsrep replicate failed (service result exit-code, exit status 1) without writing a result "
         f"for this run; see `journalctl _SYSTEMD_INVOCATION_ID={INV}`")
    ]


def test_without_invocation_ids_a_result_older_than_the_service_start_is_stale():
    old = result(OK, started=NOW - 7200, invocation=None)
    view = service_view({"SERVICE_RESULT": "timeout"}, unit="zfsrep-replicate.service", started_at=NOW - 600)
    report = build_report([loaded(old)], view, now=NOW, host="h")
    assert report.status == "failed" and "before this run started" in report.stale[0]
    fresh = result(OK, started=NOW - 300, invocation=None)
    assert build_report([loaded(fresh)], view, now=NOW, host="h").items  # fresh, though service says failed
    assert build_report([loaded(fresh)], view, now=NOW, host="h").status == "failed"


def test_max_age_marks_an_old_result_stale_by_hand():
    old = result(OK, started=NOW - 7200, invocation=None)
    view = service_view({}, exit_status="1")
    report = build_report([loaded(old)], view, now=NOW, host="h", max_age=3600)
    assert report.items == [] and "older than --max-age" in report.stale[0]
    assert build_report([loaded(old)], view, now=NOW, host="h", max_age=None).items
    # cron: `zfsrep replicate; zfsrep report-result --exit-status $?`: the exit status decides
    assert report.status == "failed"
    assert build_report([loaded(old)], service_view({}, exit_status="0"), now=NOW, host="h",
                        max_age=3600).status == "ok"


def test_no_result_and_no_word_from_anyone_is_a_failure():
    report = build_report([loaded(None)], service_view({}), now=NOW, host="h")
    assert report.status == "failed"
    assert report.stale == ["no replicate result at /var/lib/zfsrep/last-replicate.json"]


def test_a_failed_result_wins_over_a_service_that_says_success():
    report = build_report([loaded(result(FAILED))], systemd(), now=NOW, host="h")
    assert report.status == "failed"


@given(
    service_result=st.sampled_from(["exit-code", "signal", "timeout", "core-dump", "oom-kill", "watchdog"]),
    statuses=st.lists(st.sampled_from([OK, NOTHING_TO_DO, FAILED]), max_size=4),
    same_run=st.booleans(),
)
def test_never_ok_when_the_service_did_not_succeed(service_result, statuses, same_run):
    r = result(*statuses, invocation=INV if same_run else "e" * 32)
    report = build_report([loaded(r)], systemd(service_result, "1"), now=NOW, host="h")
    assert report.status in ("partial", "failed") and not report.success
    assert report.messages()  # always says why


def test_item_events_carry_the_run_fields():
    report = build_report([loaded(result(OK, FAILED))], systemd("exit-code", "3"), now=NOW, host="h")
    ok, failed = (report.item_fields(i) for i in report.items)
    assert ok == {
        "event": "item", "verb": "replicate", "host": "web1", "run.status": "partial", "run.success": False,
        "service_result": "exit-code", "exit_code": "exited", "exit_status": 3,
        "unit": "zfsrep-replicate.service", "invocation_id": INV,
        "dataset": "tank/d0", "target": "offsite", "status": "ok", "bytes": 1000, "seconds": 0.0,
    }
    assert failed["error"] == "cannot receive: out of space"


def test_text_summary_names_each_dataset_and_target():
    report = build_report([loaded(result(OK, FAILED))], systemd("exit-code", "3"), now=NOW, host="h")
    text = report.text()
    assert text.splitlines()[0] == "zfsrep replicate on web1: partial (service result exit-code, exit status 3)"
    assert "tank/d0 → offsite: ok, 1000 bytes in 0.0 s" in text
    assert "tank/d1 → offsite: failed: cannot receive: out of space" in text


def test_unit_from_cgroup():
    assert unit_from_cgroup("0::/system.slice/zfsrep-replicate.service\n") == "zfsrep-replicate.service"
    assert unit_from_cgroup("12:pids:/x\n0::/user.slice/user-0.slice/session-3.scope\n") is None
    assert unit_from_cgroup("0::/\n") is None


def test_run_id_is_a_uuid_or_nothing():
    assert run_id(INV) == "01234567-89ab-cdef-0123-456789abcdef"
    assert run_id("not-hex") is None and run_id(None) is None


@given(st.text(), st.integers(min_value=32, max_value=400))
def test_truncate_utf8_stays_under_the_limit_and_decodes(text, limit):
    data = truncate_utf8(text, limit)
    assert len(data) <= limit
    data.decode("utf-8")
    if len(text.encode()) <= limit:
        assert data == text.encode()


def test_service_view_flags_win_over_the_environment():
    view = service_view({"SERVICE_RESULT": "success", "EXIT_STATUS": "0"}, service_result="exit-code")
    assert view.succeeded is False
    assert ServiceView(exit_status="0").succeeded is True and ServiceView().succeeded is None
