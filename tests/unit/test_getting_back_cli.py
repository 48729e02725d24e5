"""The snapshots/verify/rollback/restore/scrub commands end to end in-process (fake zfs behind
the runners): exit codes, what is printed, what is stored in the state dir."""

import json

import pytest
from typer.testing import CliRunner

from tests.unit.getting_back_fakes import CONFIG, MoreZfs, connect_to, copy_to, target_zfs
from zfsrep.actions import restore, rollback, snapshots, verify
from zfsrep.cli import app
from zfsrep.state import read_run_result


@pytest.fixture
def env(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    source = MoreZfs().add("tank", "tank/home")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home")
    import time
    source.clock = int(time.time()) - 60
    for name in ("s1", "s2"):
        copy_to(target, source.add_snapshot(f"tank/home@{name}"), "backup/h/tank/home")
    for module in (verify, snapshots, restore):
        monkeypatch.setattr(module, "Runner", lambda: source)
        monkeypatch.setattr(module, "connector", lambda *a, **k: connect_to(target))
    monkeypatch.setattr(rollback, "Runner", lambda: source)
    return path, source, target, tmp_path / "state"


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_verify_stores_its_result_and_exit_code_says_verified(env):
    path, source, target, state = env
    r = invoke("verify", "-c", str(path), "-d", "tank/home")
    assert r.exit_code == 0, r.output
    assert "tank/home -> offsite: verified at @s2" in r.output
    assert read_run_result(state, "verify").items[0].status == "ok"

    target.add_snapshot("backup/h/tank/home@written")
    r = invoke("verify", "-c", str(path), "-d", "tank/home", "--json")
    assert r.exit_code == 1
    data = json.loads(r.output)
    assert data["status"] == "failed" and "never had" in data["items"][0]["error"]
    assert read_run_result(state, "verify").items[0].status == "failed"


def test_snapshots_table(env):
    path, source, *_ = env
    source.add_snapshot("tank/home@s3")
    r = invoke("snapshots", "-c", str(path), "tank/home")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["tank/home", "source", "offsite"]
    assert lines[1].split()[:3] == ["s1", "*", "*"] and lines[1].endswith("common")
    assert lines[3].split()[:3] == ["s3", "*", "-"] and not lines[3].endswith("common")


def test_rollback_asks_then_does_it(env):
    path, source, *_ = env
    r = invoke("rollback", "-c", str(path), "tank/home@s1")
    assert r.exit_code == 2 and "destroy @s2" in r.output and "--yes" in r.output
    assert source.names("tank/home") == ["s1", "s2"]
    r = invoke("rollback", "-c", str(path), "tank/home@s1", "--yes")
    assert r.exit_code == 0, r.output
    assert source.names("tank/home") == ["s1"]


def test_rollback_refuses_a_replication_base(env):
    path, source, *_ = env
    source.run(["zfs", "hold", "zfsrep:offsite", "tank/home@s2"])
    r = invoke("rollback", "-c", str(path), "tank/home@s1", "--yes")
    assert r.exit_code == 1 and "replication base of offsite" in r.output
    assert source.names("tank/home") == ["s1", "s2"]


def test_restore_onto_a_live_dataset_is_refused(env):
    path, source, *_ = env
    r = invoke("restore", "-c", str(path), "tank/home", "--target", "offsite")
    assert r.exit_code == 1 and "exists and is live" in r.output and "--force" in r.output
    r = invoke("restore", "-c", str(path), "tank/home@s1", "--target", "offsite", "--force", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "DESTROY tank/home" in r.output and "dry run: nothing changed" in r.output
    assert source.names("tank/home") == ["s1", "s2"]


def test_unknown_target_is_a_usage_error(env):
    path, *_ = env
    r = invoke("scrub", "-c", str(path), "--target", "nope")
    assert r.exit_code == 2 and "no target named 'nope'" in r.output


def test_restore_and_scrub_print_each_note_of_an_item():
    from zfsrep.cli import restore as restore_cli
    from zfsrep.cli import scrub as scrub_cli
    from zfsrep.core.result import OK, ItemResult, RunResult

    restored = ItemResult(dataset="tank/back", target="offsite", status=OK, to_snapshot="s2",
                          details={"copy": "backup/h/tank/home"})
    restored.add_note("tank/back is encrypted: `zfs load-key tank/back` then `zfs mount tank/back`")
    text = restore_cli.render(RunResult(verb="restore", started_at=0.0, items=[restored]))
    assert text.endswith("\n  tank/back is encrypted: `zfs load-key tank/back` then `zfs mount tank/back`\n")
    scrubbed = ItemResult(dataset="backup", target="offsite", status=OK,
                          details={"pool": "backup", "status": {"scrubbing": True}})
    scrubbed.add_note("a scrub was already running; not restarted")
    text = scrub_cli.render(RunResult(verb="scrub", started_at=0.0, items=[scrubbed]))
    assert text.splitlines()[0] == "offsite: pool backup: a scrub was already running; not restarted"
