"""`zfsrep report-result` against real local HTTP servers (pytest-httpserver): what each sink
receives, retries, a sink that stays down, and secrets that never show."""

import json
import logging
import socket
import time

import pytest
from typer.testing import CliRunner
from werkzeug import Response

from zfsrep import report, state
from zfsrep.cli import app
from zfsrep.core.result import FAILED, OK, ItemResult, RunResult

INV = "5f3c0ab1e2d94c7f8a6b1c2d3e4f5a6b"
RID = "5f3c0ab1-e2d9-4c7f-8a6b-1c2d3e4f5a6b"
KEY = "hcaik_SECRET-9f8e7d6c5b4a39281706"
PING_UUID = "a1b2c3d4-0000-4000-8000-0123456789ab"
FINISHED = 1_800_000_030.0


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(report, "BACKOFF_BASE", 0.01)  # timing is not under test here
    # the test server's own access log (it runs in this process) is not zfsrep's output
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture
def setup(tmp_path):
    """Writes a config with the given [report] TOML and a replicate result for this run."""
    state_dir = tmp_path / "state"
    key_file = tmp_path / "honeycomb-key"
    key_file.write_text(KEY + "\n")

    def make(report_toml, *, statuses=(OK, FAILED), invocation=INV):
        items = [ItemResult(dataset=f"tank/d{i}", target="offsite", status=s, bytes=4096 * (i + 1),
                            seconds=1.5, to_snapshot="zfsrep_hourly_2027-01-15T08:00:00Z",
                            error="cannot receive: out of space" if s == FAILED else None)
                 for i, s in enumerate(statuses)]
        result = RunResult(verb="replicate", started_at=FINISHED - 30, finished_at=FINISHED, host="web1",
                           items=items, invocation_id=invocation,
                           phases={"startup": 1.25, "sends": 26.5})
        state.write_run_result(state_dir, result)
        config = tmp_path / "config.toml"
        config.write_text(f'state_dir = "{state_dir}"\n\n{report_toml.replace("KEYFILE", str(key_file))}')
        return config

    return make


def systemd_env(service_result="exit-code", status="3"):
    return {"SERVICE_RESULT": service_result, "EXIT_CODE": "exited", "EXIT_STATUS": status,
            "INVOCATION_ID": INV}


def run(config, *args, env=None):
    runner = CliRunner()
    return runner.invoke(app, ["report-result", "--config", str(config), "--unit", "zfsrep-replicate.service",
                               *args], env={"INVOCATION_ID": None, "SERVICE_RESULT": None, **(env or {})})


def honeycomb(httpserver, batch=False):
    return (f'[report.honeycomb]\nkey_file = "KEYFILE"\ndataset = "zfsrep test"\n'
            f'api_host = "{httpserver.url_for("/").rstrip("/")}"\n' + ("batch = true\n" if batch else ""))


def pings(httpserver):
    return f'[report.healthchecks]\nurl = "{httpserver.url_for("/ping/" + PING_UUID)}"\n'


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_honeycomb_receives_one_event_per_dataset_and_target_and_a_run_summary(httpserver, setup):
    httpserver.expect_request("/1/events/zfsrep test", method="POST").respond_with_data("", status=200)
    result = run(setup(honeycomb(httpserver)), env=systemd_env())
    assert result.exit_code == 0, result.output
    requests_ = [req for req, _ in httpserver.log]
    assert len(requests_) == 3
    for req in requests_:
        assert req.headers["X-Honeycomb-Team"] == KEY
        assert req.headers["X-Honeycomb-Event-Time"] == "2027-01-15T08:00:30.000Z"
        assert req.headers["Content-Type"] == "application/json"
    first, second, summary = (json.loads(req.get_data()) for req in requests_)
    assert first["dataset"] == "tank/d0" and first["target"] == "offsite" and first["status"] == "ok"
    assert first["bytes"] == 4096 and first["seconds"] == 1.5
    assert first["to_snapshot"] == "zfsrep_hourly_2027-01-15T08:00:00Z"
    assert second["status"] == "failed" and second["error"] == "cannot receive: out of space"
    assert summary["event"] == "run" and summary["status"] == "partial"
    assert summary["service_result"] == "exit-code" and summary["exit_code"] == "exited"
    assert summary["exit_status"] == 3 and summary["invocation_id"] == INV
    assert summary["unit"] == "zfsrep-replicate.service"
    assert summary["items"] == 2 and summary["items_failed"] == 1 and summary["bytes"] == 3 * 4096
    assert summary["phase.replicate.startup"] == 1.25 and summary["phase.replicate.sends"] == 26.5
    assert "phase.replicate.startup" not in first
    assert "honeycomb: sent 2 × item event, run event" in result.stdout


def test_honeycomb_batch_checks_every_event_status(httpserver, setup):
    httpserver.expect_request("/1/batch/zfsrep test", method="POST").respond_with_json(
        [{"status": 202}, {"status": 400, "error": "event has too many columns"}, {"status": 202}])
    config = setup(honeycomb(httpserver, batch=True))
    result = run(config, env=systemd_env())
    assert result.exit_code == 0
    body = json.loads(httpserver.log[0][0].get_data())
    assert [e["data"]["event"] for e in body] == ["item", "item", "run"]
    assert body[2]["time"] == "2027-01-15T08:00:30.000Z"
    assert "1 of 3 events rejected: event has too many columns" in result.stderr
    assert run(config, "--strict", env=systemd_env()).exit_code == 1


def test_healthchecks_success_pings_the_url_with_the_summary_as_body(httpserver, setup):
    httpserver.expect_request(f"/ping/{PING_UUID}", method="POST").respond_with_data("OK")
    result = run(setup(pings(httpserver), statuses=(OK, OK)), env=systemd_env("success", "0"))
    assert result.exit_code == 0, result.output
    (req, _), = httpserver.log
    assert req.path == f"/ping/{PING_UUID}" and req.args["rid"] == RID
    body = req.get_data(as_text=True)
    assert body.startswith("zfsrep replicate on web1: ok (service result success, exit status 0)")
    assert "tank/d1 → offsite: ok, 8192 bytes in 1.5 s, now at zfsrep_hourly_2027-01-15T08:00:00Z" in body


def test_healthchecks_failure_pings_url_fail_with_the_errors(httpserver, setup):
    httpserver.expect_request(f"/ping/{PING_UUID}/fail", method="POST").respond_with_data("OK")
    result = run(setup(pings(httpserver)), env=systemd_env())
    assert result.exit_code == 0, result.output
    (req, _), = httpserver.log
    assert req.path == f"/ping/{PING_UUID}/fail"
    assert "tank/d1 → offsite: failed: cannot receive: out of space" in req.get_data(as_text=True)


def test_a_stale_result_never_turns_a_failed_run_into_a_success_ping(httpserver, setup):
    httpserver.expect_request(f"/ping/{PING_UUID}/fail", method="POST").respond_with_data("OK")
    config = setup(pings(httpserver), statuses=(OK, OK), invocation="0" * 32)  # last night's good run
    result = run(config, env=systemd_env("exit-code", "1"))
    assert result.exit_code == 0
    (req, _), = httpserver.log
    body = req.get_data(as_text=True)
    assert req.path.endswith("/fail")
    assert "without writing a result for this run" in body and "from another run" in body
    assert "tank/d0" not in body


def test_start_ping_for_exec_start_pre(httpserver, setup):
    httpserver.expect_request(f"/ping/{PING_UUID}/start", method="POST").respond_with_data("OK")
    result = run(setup(pings(httpserver)), "--start", env={"INVOCATION_ID": INV})
    assert result.exit_code == 0, result.output
    (req, _), = httpserver.log
    assert req.path == f"/ping/{PING_UUID}/start" and req.args["rid"] == RID


def test_by_hand_from_cron_the_exit_status_flag_decides(httpserver, setup):
    httpserver.expect_request(f"/ping/{PING_UUID}/fail", method="POST").respond_with_data("OK")
    result = run(setup(pings(httpserver), statuses=(OK,)), "--exit-status", "1", "--max-age", "1h")
    assert result.exit_code == 0, result.output
    assert httpserver.log[0][0].path.endswith("/fail")


def test_webhook_gets_the_json_document_with_headers_from_a_file(httpserver, setup, tmp_path):
    url_file, headers_file = tmp_path / "hook-url", tmp_path / "hook-headers"
    url_file.write_text(httpserver.url_for("/hooks/zfsrep") + "\n")
    headers_file.write_text("# sent with every report\nAuthorization: Bearer hook-SECRET-123\n")
    httpserver.expect_request("/hooks/zfsrep", method="POST",
                              headers={"Authorization": "Bearer hook-SECRET-123"}).respond_with_data("")
    config = setup(f'[report.webhook]\nurl_file = "{url_file}"\nheaders_file = "{headers_file}"\n')
    result = run(config, env=systemd_env())
    assert result.exit_code == 0, result.output
    doc = json.loads(httpserver.log[0][0].get_data())
    assert doc["event"] == "zfsrep.run" and doc["status"] == "partial" and doc["success"] is False
    assert doc["service_result"] == "exit-code" and doc["exit_status"] == 3
    assert [(i["dataset"], i["status"]) for i in doc["items"]] == [("tank/d0", "ok"), ("tank/d1", "failed")]
    assert doc["errors"] == ["tank/d1 → offsite: cannot receive: out of space"]
    assert doc["phases"] == {"replicate.startup": 1.25, "replicate.sends": 26.5}
    assert "hook-SECRET" not in result.output


def test_a_sink_answering_500_then_200_is_retried(httpserver, setup):
    httpserver.expect_ordered_request(f"/ping/{PING_UUID}/fail").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request(f"/ping/{PING_UUID}/fail").respond_with_data("OK", status=200)
    result = run(setup(pings(httpserver)), env=systemd_env())
    assert result.exit_code == 0
    assert [resp.status_code for _, resp in httpserver.log] == [500, 200]
    assert "healthchecks: sent fail ping" in result.stdout and result.stderr == ""
    httpserver.expect_oneshot_request(f"/ping/{PING_UUID}/fail").respond_with_data("boom", status=500)
    httpserver.expect_request(f"/ping/{PING_UUID}/fail").respond_with_data("OK")
    verbose = run(setup(pings(httpserver)), "-vv", env=systemd_env())
    assert verbose.exit_code == 0 and "healthchecks: sent fail ping" in verbose.stdout
    assert "attempt 1 of 4" in verbose.stderr  # the retry is logged …
    assert PING_UUID not in verbose.output  # … without the URL's secret path


def test_a_sink_that_stays_down_is_a_warning_and_exit_0_unless_strict(setup):
    url = f"http://127.0.0.1:{closed_port()}/ping/{PING_UUID}"
    config = setup(f'[report]\nretries = 2\n[report.healthchecks]\nurl = "{url}"\n')
    result = run(config, env=systemd_env())
    assert result.exit_code == 0
    assert "warning: healthchecks (http://127.0.0.1:" in result.stderr
    assert "cannot connect: Connection refused (after 3 attempts)" in result.stderr
    assert PING_UUID not in result.output
    strict = run(config, "--strict", "-vv", env=systemd_env())
    assert strict.exit_code == 1 and "error: healthchecks" in strict.stderr
    assert PING_UUID not in strict.output


def test_a_sink_that_keeps_failing_is_tried_retries_plus_one_times(httpserver, setup):
    httpserver.expect_request(f"/ping/{PING_UUID}/fail").respond_with_data("down", status=503)
    result = run(setup(f'[report]\nretries = 3\n{pings(httpserver)}'), env=systemd_env())
    assert result.exit_code == 0
    assert len(httpserver.log) == 4
    assert "HTTP 503: down (after 4 attempts)" in result.stderr


def test_a_refused_key_is_not_retried_and_never_shown_even_if_the_server_echoes_it(httpserver, setup):
    httpserver.expect_request("/1/events/zfsrep test").respond_with_json(
        {"error": f"unknown API key {KEY}"}, status=401)
    result = run(setup(honeycomb(httpserver)), "-vv", "--strict", env=systemd_env())
    assert result.exit_code == 1
    assert len(httpserver.log) == 1  # 401 is final; the other events are not tried
    assert "HTTP 401: unknown API key [redacted]" in result.stderr
    assert "check the key in" in result.stderr
    assert KEY not in result.output and KEY[:12] not in result.output


def test_the_key_never_appears_in_output_logs_or_json(httpserver, setup, caplog):
    httpserver.expect_request("/1/events/zfsrep test").respond_with_data("")
    config = setup(honeycomb(httpserver))
    for args in (["-vv"], ["--json", "-vv"], ["--dry-run"], ["--dry-run", "--json"]):
        result = run(config, *args, env=systemd_env())
        assert result.exit_code == 0
        assert KEY not in result.output and KEY not in caplog.text


def test_missing_key_file_is_a_warning_and_the_other_sinks_still_report(httpserver, setup, tmp_path):
    httpserver.expect_request(f"/ping/{PING_UUID}/fail").respond_with_data("OK")
    config = setup(honeycomb(httpserver).replace("KEYFILE", str(tmp_path / "nope")) + pings(httpserver))
    result = run(config, env=systemd_env())
    assert result.exit_code == 0
    assert f"honeycomb: Honeycomb key file {tmp_path / 'nope'} does not exist" in result.stderr
    assert [req.path for req, _ in httpserver.log] == [f"/ping/{PING_UUID}/fail"]


def test_dry_run_sends_nothing_and_shows_what_it_would_send(httpserver, setup):
    config = setup(honeycomb(httpserver) + pings(httpserver))
    result = run(config, "--dry-run", env=systemd_env())
    assert result.exit_code == 0 and httpserver.log == []
    assert "would send fail ping to healthchecks (http://localhost:" in result.stdout
    assert "would send run event to honeycomb" in result.stdout
    assert PING_UUID not in result.output


def test_json_output_lists_each_sink(httpserver, setup):
    httpserver.expect_request(f"/ping/{PING_UUID}/fail").respond_with_data("OK")
    data = json.loads(run(setup(pings(httpserver)), "--json", env=systemd_env()).stdout)
    assert data["exit_code"] == 0 and data["report"]["status"] == "partial"
    assert data["sinks"] == [{"sink": "healthchecks", "ok": True, "destination": httpserver.url_for("/").rstrip("/"),
                              "sent": ["fail ping"], "attempts": 1, "error": None}]


def test_retry_after_is_honoured_but_capped(httpserver, setup, monkeypatch):
    monkeypatch.setattr(report, "BACKOFF_CAP", 0.2)
    httpserver.expect_ordered_request(f"/ping/{PING_UUID}/fail").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "3600"}))
    httpserver.expect_ordered_request(f"/ping/{PING_UUID}/fail").respond_with_data("OK")
    started = time.monotonic()
    result = run(setup(pings(httpserver)), env=systemd_env())
    assert result.exit_code == 0 and len(httpserver.log) == 2
    assert time.monotonic() - started < 60  # not the hour the server asked for


def test_no_sinks_configured_is_said_and_exit_0(setup):
    result = run(setup(""), env=systemd_env())
    assert result.exit_code == 0 and "no sinks configured" in result.stderr
    result = run(setup(""), "--json", env=systemd_env())
    assert result.exit_code == 0 and json.loads(result.stdout) == {
        "report": None, "sinks": [], "planned": None, "exit_code": 0,
        "note": f"no sinks configured in [report] of {setup('')}; nothing to send"}
