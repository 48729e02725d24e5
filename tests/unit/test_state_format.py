"""State files carry a format version (`zfsrep.state.Kind`). For each kind: a file without one
(version 1, as zfsrep wrote before versions) is read as before and gets the version when it is
written again; a file a newer zfsrep wrote (a NixOS rollback to an older zfsrep) is refused with
one line naming the file, both versions, the fix and what moving it away loses, and its bytes
are left as they were — never overwritten."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from tests.unit.fake_zfs import FakeZfs
from tests.unit.getting_back_fakes import CONFIG as REPLICATE_CONFIG
from tests.unit.test_listing_cache import replicate_once, two_hosts
from tests.unit.test_state_dir_warnings import WARMUP
from zfsrep import state
from zfsrep.actions import replicate, snapshot
from zfsrep.cli import app
from zfsrep.core.names import format_name
from zfsrep.core.result import OK, ItemResult, RunResult
from zfsrep.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL
from zfsrep.targets import progress
from zfsrep.targets.access import ssh_host
from zfsrep.targets.readiness import Readiness
from zfsrep.targets.record import UP, WarmupRecord, read_record, record_path

NOW = 1_795_320_420  # 2026-11-22T04:07:00Z

CONFIG = """
state_dir = "{state}"
lock_dir = "{lock}"
[retention]
frequent = 0
hourly = 2
daily = 0
weekly = 0
monthly = 0
yearly = 0
[[datasets]]
name = "tank/home"
[targets.offsite]
host = "backup.example.org"
dataset = "backup/h"
"""


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), catch_exceptions=False, env=env)


def refusal(doing: str, path, kind: str, found: int = 2) -> str:
    """The start of the one line (the rest names what moving the file away loses)."""
    return (f"{doing} {path}: a newer zfsrep wrote it ({kind} format {found}; this zfsrep knows format 1 "
            f"at most); upgrade zfsrep to the version that wrote it, or move the file away (that loses ")


def newer(path, doc: dict) -> bytes:
    """Write ``doc`` (a newer zfsrep's file) at ``path``; its bytes, to compare afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path.read_bytes()


@pytest.fixture
def cfg(tmp_path):
    """A config file (one dataset, one target, and the command-warmup target `cold`) and its state dir."""
    state_dir = tmp_path / "state"
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(state=state_dir, lock=tmp_path / "lock") + WARMUP)
    return path, state_dir


@pytest.fixture
def zfs(monkeypatch):
    """tank/home with three hourly snapshots: the next `zfsrep snapshot` takes one and prunes two."""
    fake = FakeZfs().add("tank", "tank/home")
    for hours in (3, 2, 1):
        fake.add_snapshot(f"tank/home@{format_name(['hourly'], NOW - hours * 3600)}")
    monkeypatch.setattr(snapshot, "Runner", lambda: fake)
    return fake


def history(age: float = 60) -> dict:
    """replication.json as zfsrep wrote it before versions (no format anywhere)."""
    at = time.time() - age
    return {"offsite": {"tank/home": {"status": "ok", "bytes": 1, "seconds": 1.0, "last_error": None,
                                      "last_attempt": at, "last_success": at,
                                      "newest_snapshot": format_name(["hourly"], at)}}}


def old_result(verb: str, **kw) -> dict:
    """A last-<verb>.json as zfsrep wrote it before versions."""
    result = RunResult(verb=verb, started_at=NOW - 10.0, finished_at=float(NOW), host="web1", **kw)
    data = result.to_dict()
    assert "format" not in data
    return data


# --- last-<verb>.json ---------------------------------------------------------------------------

def test_an_old_result_is_read_as_before_and_rewritten_with_its_format(cfg, zfs):
    path, state_dir = cfg
    items = [ItemResult(dataset="tank/home", status=OK, created=["tank/home@x"])]
    state.write_json_atomic(state.result_path(state_dir, "snapshot"), old_result("snapshot", items=items))
    read = state.read_run_result(state_dir, "snapshot")
    assert read is not None and read.items[0].created == ["tank/home@x"]

    r = invoke("snapshot", "-c", str(path), "--now", str(NOW))
    assert r.exit_code == EXIT_OK, r.output
    written = json.loads(state.result_path(state_dir, "snapshot").read_text())
    assert written["format"] == 1 and written["verb"] == "snapshot" and written["started_at"] == NOW


def test_status_refuses_a_newer_snapshot_result_with_one_line(cfg):
    path, state_dir = cfg
    state.write_json_atomic(state.replication_path(state_dir), history())
    result_file = state.result_path(state_dir, "snapshot")
    before = newer(result_file, {**old_result("snapshot"), "format": 2, "items": {"moved": "elsewhere"}})
    r = invoke("status", "-c", str(path), "-t", "offsite")
    assert r.exit_code == 3  # status speaks Nagios: UNKNOWN
    assert r.stdout.startswith("ZFSREP UNKNOWN - " + refusal("cannot use", result_file, "run result"))
    assert len(r.stdout.strip().splitlines()) == 1
    assert result_file.read_bytes() == before


@pytest.mark.parametrize("exit_status, ping, word", [("1", "would send fail ping", "failed"),
                                                     ("0", "would send success ping", "ok")])
def test_report_result_sends_the_line_about_a_newer_result_along(cfg, exit_status, ping, word):
    path, state_dir = cfg
    with path.open("a") as f:
        f.write('[report.healthchecks]\nurl = "http://127.0.0.1:9/ping/x"\n')
    result_file = state.result_path(state_dir, "replicate")
    before = newer(result_file, {**old_result("replicate"), "format": 2})
    r = invoke("report-result", "-c", str(path), "--exit-status", exit_status, "--dry-run",
               env={"INVOCATION_ID": None, "SERVICE_RESULT": None})
    assert r.exit_code == EXIT_OK, r.output  # report-result reports; it does not fail the backup
    assert r.stdout.startswith("zfsrep replicate on ") and f": {word} (exit status {exit_status})" in r.stdout
    line = refusal("cannot use", result_file, "run result")
    assert f"  note: {line}" in r.stdout, r.stdout
    assert ping in r.stdout and f"note: {line}" in r.stdout.split(ping, 1)[1]  # what the sink gets
    assert result_file.read_bytes() == before


def test_a_run_leaves_a_newer_result_as_it_is_and_warns_but_keeps_its_exit_code(cfg, zfs):
    path, state_dir = cfg
    result_file = state.result_path(state_dir, "snapshot")
    before = newer(result_file, {**old_result("snapshot"), "format": 2})
    r = invoke("snapshot", "-c", str(path), "--now", str(NOW))
    assert r.exit_code == EXIT_OK, r.output
    assert format_name(["hourly"], NOW) in zfs.names("tank/home")  # the snapshot was taken
    warnings = [line for line in r.stderr.splitlines() if line.startswith("zfsrep: warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith(
        "zfsrep: warning: " + refusal("did not overwrite", result_file, "run result")), r.stderr
    assert result_file.read_bytes() == before


# --- replication.json ---------------------------------------------------------------------------

def test_an_old_history_is_read_as_before_and_rewritten_with_its_format(tmp_path):
    old = history()
    state.write_json_atomic(state.replication_path(tmp_path), old)
    assert state.read_replication(tmp_path) == old
    result = RunResult(verb="replicate", started_at=100.0, finished_at=110.0, items=[
        ItemResult(dataset="tank/vm", target="offsite", status=OK, to_snapshot="s9")])
    state.record_replication(tmp_path, result)
    written = json.loads(state.replication_path(tmp_path).read_text())
    assert set(written["offsite"]) == {"tank/home", "tank/vm"}  # merged, as before
    assert {e["format"] for per in written.values() for e in per.values()} == {1}
    # each entry carries it: a zfsrep from before versions reads every top-level key as a target
    assert set(written) == {"offsite"}
    assert written["offsite"]["tank/home"]["newest_snapshot"] == old["offsite"]["tank/home"]["newest_snapshot"]


@pytest.mark.parametrize("layout", ["entry", "top"])
def test_status_refuses_a_newer_history_with_one_line(cfg, layout):
    path, state_dir = cfg
    doc = history()
    if layout == "entry":
        doc["offsite"]["tank/home"]["format"] = 2
    else:  # a later layout may wrap the targets and put the version at the top
        doc = {"format": 2, "targets": doc}
    history_file = state.replication_path(state_dir)
    before = newer(history_file, doc)
    r = invoke("status", "-c", str(path), "-t", "offsite")
    assert r.exit_code == 3, r.output  # UNKNOWN
    assert r.stdout.startswith("ZFSREP UNKNOWN - " + refusal("cannot use", history_file, "replication history"))
    assert "the replication history `zfsrep status` reports from" in r.stdout
    assert len(r.stdout.strip().splitlines()) == 1
    assert history_file.read_bytes() == before


def test_snapshot_takes_but_prunes_nothing_against_a_newer_history(cfg, zfs):
    path, state_dir = cfg
    doc = history()
    doc["offsite"]["tank/home"]["format"] = 2
    history_file = state.replication_path(state_dir)
    before = newer(history_file, doc)
    existing = zfs.names("tank/home")
    r = invoke("snapshot", "-c", str(path), "--now", str(NOW))
    assert r.exit_code == EXIT_PARTIAL, r.output
    assert zfs.names("tank/home") == [*existing, format_name(["hourly"], NOW)]  # taken, none destroyed
    assert not zfs.zfs_commands("destroy")
    errors = [line for line in r.stdout.splitlines() if line.startswith("error: ")]
    assert errors == [line for line in errors if line.startswith(
        "error: nothing pruned: " + refusal("cannot use", history_file, "replication history"))]
    assert len(errors) == 1, r.stdout
    assert history_file.read_bytes() == before


def test_replicate_leaves_a_newer_history_as_it_is_and_still_keeps_its_result(tmp_path):
    doc = history()
    doc["offsite"]["tank/home"]["format"] = 2
    history_file = state.replication_path(tmp_path)
    before = newer(history_file, doc)
    result = RunResult(verb="replicate", started_at=100.0, finished_at=110.0, items=[
        ItemResult(dataset="tank/home", target="offsite", status=OK, to_snapshot="s9")])
    warning = state.save_run(tmp_path, result, replication=True)
    assert warning is not None and warning.startswith(
        refusal("did not overwrite", history_file, "replication history"))
    assert history_file.read_bytes() == before
    assert json.loads(state.result_path(tmp_path, "replicate").read_text())["format"] == 1


# --- warmup-<target>.json ------------------------------------------------------------------------

def old_record(**kw) -> dict:
    data = WarmupRecord(target="cold", kind="command", status=UP, address="cold.example.org", **kw).to_dict()
    assert "format" not in data
    return data


def test_an_old_warmup_record_is_read_as_before_and_rewritten_with_its_format(cfg):
    path, state_dir = cfg
    state.write_json_atomic(record_path(state_dir, "cold"), old_record(up_at=NOW))
    assert read_record(state_dir, "cold") == WarmupRecord.from_dict(old_record(up_at=NOW))
    r = invoke("teardown", "-c", str(path), "-t", "cold")
    assert r.exit_code == EXIT_OK, r.output
    written = json.loads(record_path(state_dir, "cold").read_text())
    assert written["format"] == 1 and written["status"] == "down" and written["up_at"] == NOW


def test_warmup_writes_its_record_with_its_format(cfg, monkeypatch):
    path, state_dir = cfg
    monkeypatch.setattr(progress, "wait_for_ssh", lambda *a, **k: Readiness(host="cold.example.org", attempts=1,
                                                                           seconds=0.0))
    r = invoke("warmup", "-c", str(path), "-t", "cold")
    assert r.exit_code == EXIT_OK, r.output
    written = json.loads(record_path(state_dir, "cold").read_text())
    assert written["format"] == 1 and written["status"] == "up"


def newer_record(state_dir) -> tuple[object, bytes]:
    return record_path(state_dir, "cold"), newer(record_path(state_dir, "cold"), {
        **old_record(), "format": 2, "instances": ["i-0123"]})


def test_teardown_refuses_a_newer_warmup_record_and_undoes_nothing(cfg, tmp_path):
    path, state_dir = cfg
    marker = tmp_path / "torn-down"
    path.write_text(path.read_text().replace('teardown_command = ["true"]',
                                             f'teardown_command = ["touch", "{marker}"]'))
    record_file, before = newer_record(state_dir)
    r = invoke("teardown", "-c", str(path), "-t", "cold")
    assert r.exit_code == EXIT_FAILED, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("zfsrep: ")]
    assert lines == [line for line in lines if line.startswith(
        "zfsrep: " + refusal("cannot use", record_file, "warmup record"))] and len(lines) == 1, r.stderr
    assert "what the last warmup did to the target" in lines[0]
    assert not marker.exists()
    assert record_file.read_bytes() == before


def test_warmup_refuses_to_overwrite_a_newer_warmup_record_and_does_nothing(cfg, tmp_path, monkeypatch):
    path, state_dir = cfg
    marker = tmp_path / "warmed"
    path.write_text(path.read_text().replace('command = ["true"]', f'command = ["touch", "{marker}"]', 1))
    monkeypatch.setattr(progress, "wait_for_ssh", lambda *a, **k: pytest.fail("went on to wait for ssh"))
    record_file, before = newer_record(state_dir)
    r = invoke("warmup", "-c", str(path), "-t", "cold")
    assert r.exit_code == EXIT_FAILED, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "zfsrep: " + refusal("did not overwrite", record_file, "warmup record")), r.stderr
    assert not marker.exists()
    assert record_file.read_bytes() == before


def test_replicate_to_a_target_without_host_refuses_a_newer_warmup_record(cfg):
    from zfsrep.config.load import load_config

    path, state_dir = cfg
    path.write_text(path.read_text().replace('host = "cold.example.org"\n', ""))
    record_file, before = newer_record(state_dir)
    target = load_config(path).targets["cold"]
    with pytest.raises(state.StateFormatError) as refused:
        ssh_host(state_dir, target)  # what replicate (and verify, scrub, ...) asks for the address
    assert str(refused.value).startswith(refusal("cannot use", record_file, "warmup record"))
    assert record_file.read_bytes() == before


# --- listings/<side>.json ------------------------------------------------------------------------

@pytest.fixture
def hosts(tmp_path, monkeypatch):
    """test_listing_cache's two fakes (OpenZFS >= 2.2), with the config as a file for the CLI."""
    cfg, source, target = two_hosts(tmp_path, monkeypatch)
    monkeypatch.setattr(replicate, "Runner", lambda: source)
    with open(cfg.path, "w") as f:
        f.write(REPLICATE_CONFIG.format(state=cfg.state_dir))
    return cfg, source, target


def test_a_version_1_cache_is_reused_and_a_newer_one_ignored_and_left_as_it_is(hosts):
    cfg, source, target = hosts
    for _ in range(2):
        replicate_once(cfg, source, target)
    cache = state.listing_cache_path(cfg.state_dir, "source")
    doc = json.loads(cache.read_text())
    assert doc["version"] == 1 and "format" not in doc  # the listing cache's key is `version`
    cache.write_text(json.dumps(doc))  # as a zfsrep from before versions wrote it
    result, src, _ = replicate_once(cfg, source, target)
    assert src == [] and {i.details["listing"]["source"] for i in result.items} == {"reused"}

    before = newer(cache, {**doc, "version": 2, "datasets": {"tank/home": "a newer form"}})
    source.clock += 10
    r = invoke("replicate", "-c", cfg.path, "--json")
    assert r.exit_code == EXIT_OK, r.output
    items = json.loads(r.stdout)["items"]
    assert {i["details"]["listing"]["source"] for i in items} == {"listed"}  # not used
    line = refusal("did not overwrite", cache, "listing cache")
    assert all(any(w.startswith(line) for w in i["details"]["warnings"]) for i in items), r.stdout
    assert "only the listing cache; the next replicate lists every snapshot once" in r.stdout
    warnings = [w for w in r.stderr.splitlines() if w.startswith("zfsrep: warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith("zfsrep: warning: " + line), r.stderr
    assert cache.read_bytes() == before
    # the target side's cache, a version this zfsrep knows, is kept as before
    assert json.loads(state.listing_cache_path(cfg.state_dir, "target-offsite").read_text())["version"] == 1


# --- the one place ------------------------------------------------------------------------------

def test_a_newer_file_is_never_replaced_by_a_write(tmp_path):
    for kind in (state.RESULT, state.WARMUP, state.LISTING_CACHE):
        path = tmp_path / f"{kind.name}.json"
        before = newer(path, {kind.key: kind.version + 1, "x": 1})
        with pytest.raises(state.StateFormatError, match="did not overwrite"):
            state.write_versioned(path, kind, {"x": 2})
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file


def test_a_damaged_file_is_replaced_and_a_bad_version_is_damage(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    state.write_versioned(path, state.WARMUP, {"target": "cold"})
    assert json.loads(path.read_text()) == {"target": "cold", "format": 1}
    path.write_text('{"format": "two"}')
    with pytest.raises(ValueError, match="not a format version"):
        state.read_versioned(path, state.WARMUP)


def test_replicate_sets_a_damaged_history_aside_and_starts_a_new_one(tmp_path):
    history_file = state.replication_path(tmp_path)
    history_file.write_text('{"offsite": {"tank/home": {"status": "ok",')  # cut short
    before = history_file.read_bytes()
    result = RunResult(verb="replicate", started_at=100.0, finished_at=110.0, items=[
        ItemResult(dataset="tank/home", target="offsite", status=OK, to_snapshot="s9")])
    warning = state.save_run(tmp_path, result, replication=True)
    damaged = history_file.with_name("replication.json.damaged")
    assert warning is not None and warning.startswith(f"{history_file} was damaged (")
    assert f"moved it to {damaged}" in warning
    assert damaged.read_bytes() == before  # nothing lost
    assert state.read_replication(tmp_path)["offsite"]["tank/home"]["newest_snapshot"] == "s9"
    assert json.loads(state.result_path(tmp_path, "replicate").read_text())["format"] == 1


def test_status_says_a_damaged_history_is_damaged(cfg):
    path, state_dir = cfg
    history_file = state.replication_path(state_dir)
    history_file.parent.mkdir(parents=True, exist_ok=True)
    history_file.write_text("{not json")
    r = invoke("status", "-c", str(path))
    assert r.exit_code != EXIT_OK
    assert f"cannot use {history_file}: it is damaged (not JSON: " in r.output, r.output
    assert "Traceback" not in r.output
    assert history_file.read_text() == "{not json"
