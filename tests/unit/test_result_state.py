import json

from zfsrep import state
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, ItemResult, RunResult


def run(*statuses, errors=()):
    return RunResult(
        verb="replicate", started_at=100.0, finished_at=110.0,
        items=[ItemResult(dataset=f"tank/d{i}", target="backup", status=s) for i, s in enumerate(statuses)],
        errors=list(errors),
    )


def test_exit_codes():
    assert run(OK, NOTHING_TO_DO).exit_code == 0
    assert run().exit_code == 0
    assert run(OK, FAILED).exit_code == 3
    assert run(FAILED, FAILED).exit_code == 1
    assert run(errors=["lock timeout"]).exit_code == 1
    assert run(OK, errors=["teardown failed"]).exit_code == 3


def test_result_round_trips_through_the_state_dir(tmp_path):
    result = run(OK, FAILED)
    result.items[1].error = "cannot receive: dataset is busy"
    path = state.write_run_result(tmp_path, result)
    data = json.loads(path.read_text())
    assert data["exit_code"] == 3 and data["status"] == "partial" and data["seconds"] == 10.0
    again = state.read_run_result(tmp_path, "replicate")
    assert {**again.to_dict(), "format": state.RESULT.version} == data  # the file carries its format
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_record_replication_keeps_last_success_through_failures(tmp_path):
    ok = run(OK)
    ok.items[0].to_snapshot = "zfsrep_hourly_2026-01-01T00:00:00Z"
    state.record_replication(tmp_path, ok)
    failed = RunResult(verb="replicate", started_at=200.0, finished_at=210.0,
                       items=[ItemResult(dataset="tank/d0", target="backup", status=FAILED, error="boom")])
    state.record_replication(tmp_path, failed)
    entry = state.read_replication(tmp_path)["backup"]["tank/d0"]
    assert entry["last_success"] == 110.0
    assert entry["last_attempt"] == 210.0
    assert entry["last_error"] == "boom"
    assert entry["newest_snapshot"] == "zfsrep_hourly_2026-01-01T00:00:00Z"


def test_dry_run_is_not_recorded(tmp_path):
    r = run(OK)
    r.dry_run = True
    state.record_replication(tmp_path, r)
    assert state.read_replication(tmp_path) == {}


def test_a_stored_note_of_an_older_zfsrep_is_read_as_one_of_the_notes(tmp_path):
    # restore, scrub and `systemd unallow` kept one string in details["note"] before issue 19
    old = run(OK).to_dict()
    old["items"][0]["details"] = {"note": "a scrub was already running; not restarted", "pool": "backup"}
    item = RunResult.from_dict(old).items[0]
    assert item.details == {"notes": ["a scrub was already running; not restarted"], "pool": "backup"}
    assert old["items"][0]["details"]["note"]  # the document read is left as it was
    item.add_note("and another")
    assert item.details["notes"] == ["a scrub was already running; not restarted", "and another"]


def test_writing_a_result_stamps_a_copy_with_the_runs_invocation_id(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    result = run(OK)
    state.write_run_result(tmp_path, result)
    assert result.invocation_id is None  # the caller's result is left as it was
    assert state.read_run_result(tmp_path, "replicate").invocation_id == "0123456789abcdef0123456789abcdef"


def test_a_verbs_json_shows_the_invocation_id_its_state_file_keeps_and_a_dry_run_none(tmp_path, monkeypatch, capsys):
    import pytest
    import typer

    from zfsrep.cli.common import finish

    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    for dry_run, shown in ((False, "0123456789abcdef0123456789abcdef"), (True, None)):
        result = run(OK)
        result.dry_run = dry_run
        with pytest.raises(typer.Exit):
            finish(result, json=True, render=str, state_dir=str(tmp_path))
        assert json.loads(capsys.readouterr().out)["invocation_id"] == shown and result.invocation_id is None
