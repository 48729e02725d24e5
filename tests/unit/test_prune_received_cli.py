"""`zfsrep prune-received` in-process over the fake zfs: one listing per pool, thinning by the
target's retention with every safety rule, --dry-run, --json, --source, exit codes 0/1/2/3.
(tests/integration/test_prune_received_lab.py shows it on ZFS.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.fake_zfs import FakeZfs
from zfsrep.actions import prune_received as action
from zfsrep.cli import app
from zfsrep.core.names import format_name

T0 = 1_795_320_000
DAY = 86_400
WEB = "backup/hosts/web1"
DB = "backup/hosts/db"


def daily(n: int) -> str:
    return format_name(["daily"], T0 + n * DAY)


def config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\nlock_dir = "{tmp_path / "lock"}"\n'
                    "[retention]\nhourly = 0\nweekly = 0\nmonthly = 0\n" + (body or f'''
[receive.sources.web1]
root = "{WEB}"
retention = {{ daily = 2 }}
[receive.sources.db]
root = "{DB}"
retention = {{ daily = 3 }}
'''))
    return path


@pytest.fixture
def fake(monkeypatch):
    fake = FakeZfs().add("backup", "backup/hosts", WEB, f"{WEB}/tank", f"{WEB}/tank/home",
                         "backup/hosts/web10", DB)
    for ds in (WEB, f"{WEB}/tank", f"{WEB}/tank/home", "backup/hosts/web10", "backup/hosts"):
        for i in range(1, 6):
            fake.add_snapshot(f"{ds}@{daily(i)}")
    for i in range(1, 3):
        fake.add_snapshot(f"{DB}@{daily(i)}")
    monkeypatch.setattr(action, "Runner", lambda: fake)
    return fake


def run(cfg: Path, *args: str):
    return CliRunner().invoke(app, ["prune-received", "--config", str(cfg), *args])


def test_thins_each_source_by_its_retention_in_one_listing_and_one_recursive_destroy(tmp_path, fake):
    out = run(config(tmp_path))
    assert out.exit_code == 0, out.output
    for ds in (WEB, f"{WEB}/tank", f"{WEB}/tank/home"):
        assert fake.names(ds) == [daily(4), daily(5)]
    assert fake.names(DB) == [daily(1), daily(2)]
    for outside in ("backup/hosts/web10", "backup/hosts"):
        assert len(fake.names(outside)) == 5  # outside every root: untouched
    assert len(fake.zfs_commands("list")) == 1  # both roots are in one pool
    assert fake.zfs_commands("destroy") == [["zfs", "destroy", "-r", f"{WEB}@{daily(1)},{daily(2)},{daily(3)}"]]
    assert "destroyed 3" in out.output and "destroyed 9" in out.output
    state = json.loads((tmp_path / "state" / "last-prune-received.json").read_text())
    assert state["verb"] == "prune-received" and state["exit_code"] == 0


def test_dry_run_prints_the_commands_and_changes_nothing(tmp_path, fake):
    before = list(fake.snaps)
    out = run(config(tmp_path), "--dry-run")
    assert out.exit_code == 0, out.output
    assert fake.snaps == before and fake.zfs_commands("destroy") == []
    assert f"  zfs destroy -r {WEB}@{daily(1)},{daily(2)},{daily(3)}" in out.output
    assert "would destroy 9" in out.output
    assert not (tmp_path / "state" / "last-prune-received.json").exists()


def test_json_and_source_limit(tmp_path, fake):
    out = run(config(tmp_path), "--json", "--source", "db")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [(i["dataset"], i["status"], i["details"]["source"]) for i in doc["items"]] == [
        (DB, "nothing-to-do", "db")]
    assert doc["items"][0]["details"]["newest"] == daily(2)
    assert len(fake.names(WEB)) == 5


def test_held_newest_and_foreign_snapshots_survive(tmp_path, fake):
    fake.run(["zfs", "hold", "keep", f"{DB}@{daily(1)}"])
    for i in range(3, 6):
        fake.add_snapshot(f"{DB}@{daily(i)}")
    fake.add_snapshot(f"{DB}@manual-before-upgrade")
    out = run(config(tmp_path, f'[receive.sources.db]\nroot = "{DB}"\nretention = {{ daily = 0 }}\n'))
    assert out.exit_code == 0, out.output
    # daily=0 keeps nothing by count: still the held one, the newest zfsrep one, the foreign one
    assert fake.names(DB) == [daily(1), daily(5), "manual-before-upgrade"]
    assert f"kept @{daily(1)} although retention would destroy it: held" in out.output


def test_partial_receive_is_skipped_with_a_line(tmp_path, fake):
    fake.datasets[DB]["receive_resume_token"] = "1-e3a-c8-789c"
    out = run(config(tmp_path, f'[receive.sources.db]\nroot = "{DB}"\nretention = {{ daily = 0 }}\n'))
    assert out.exit_code == 0, out.output
    assert fake.names(DB) == [daily(1), daily(2)]
    assert f"{DB} on " in out.output and "skipped: a partial receive is pending" in out.output


def test_missing_root_is_skipped_and_says_why(tmp_path, fake):
    out = run(config(tmp_path, '[receive.sources.new]\nroot = "backup/hosts/new"\n'))
    assert out.exit_code == 0, out.output
    assert "backup/hosts/new on " in out.output and "nothing received from new yet" in out.output


def test_no_receive_table_and_unknown_source_are_usage_errors(tmp_path, fake):
    out = run(config(tmp_path, '[[datasets]]\nname = "tank"\n'))
    assert out.exit_code == 2 and "no [receive.sources.NAME] in" in out.output
    out = run(config(tmp_path), "--source", "nope")
    assert out.exit_code == 2 and "no receive source named 'nope'" in out.output and "known: db, web1" in out.output
    assert fake.zfs_commands("destroy") == []


def test_one_failing_dataset_is_partial_and_names_the_fix(tmp_path, fake):
    fake.fail_on[f"{DB}@{daily(1)}"] = f"cannot destroy snapshot {DB}@{daily(1)}: permission denied"
    body = f'[receive.sources.web1]\nroot = "{WEB}"\nretention = {{ daily = 2 }}\n' \
           f'[receive.sources.db]\nroot = "{DB}"\nretention = {{ daily = 0 }}\n'
    out = run(config(tmp_path, body))
    assert out.exit_code == 3, out.output
    assert f"{DB}: FAILED: zfs destroy on" in out.output and "zfs allow <user> destroy,mount" in out.output
    assert fake.names(WEB) == [daily(4), daily(5)]


def test_listing_failure_fails_the_run(tmp_path, fake):
    fake.fail_on["list"] = "cannot open 'backup': pool I/O is currently suspended"
    out = run(config(tmp_path))
    assert out.exit_code == 1, out.output
    assert "check `zpool status backup`" in out.output


def test_a_hold_splits_the_recursive_destroy_and_each_dataset_reports_oldest_first(tmp_path, fake):
    fake.run(["zfs", "hold", "keep", f"{WEB}@{daily(2)}"])
    out = run(config(tmp_path), "--json", "--source", "web1")
    assert out.exit_code == 0, out.output
    assert fake.zfs_commands("destroy") == [
        ["zfs", "destroy", "-r", f"{WEB}@{daily(1)},{daily(3)}"],
        ["zfs", "destroy", "-r", f"{WEB}/tank@{daily(2)}"],
    ]
    items = {i["dataset"]: i for i in json.loads(out.output)["items"]}
    assert items[f"{WEB}/tank"]["destroyed"] == [f"{WEB}/tank@{daily(n)}" for n in (1, 2, 3)]
    assert items[WEB]["details"]["kept_held"] == [daily(2)]
    assert fake.names(WEB) == [daily(2), daily(4), daily(5)]
