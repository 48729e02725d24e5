"""`zfsrep snapshot` in-process over the fake zfs: exit codes, --json, --dry-run, state file,
one `zfs snapshot` per pool, per-dataset failures → exit 3. (The lab test shows it on ZFS.)"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.fake_zfs import FakeZfs
from zfsrep.actions import snapshot as action
from zfsrep.cli import app
from zfsrep.core.names import format_name, parse_name

T0 = "2026-11-22T04:07:00Z"
T0_EPOCH = 1795320420  # T0 as epoch seconds


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n' + body)
    return path


BODY = '''
[retention]
frequent = 0
hourly = 2
daily = 1
weekly = 0
monthly = 0
yearly = 0

[[datasets]]
name = "tank/home"
recursive = true

[[datasets]]
name = "data/db"
'''


@pytest.fixture
def fake(monkeypatch):
    fake = FakeZfs().add("tank", "tank/home", "tank/home/a b", "tank/home/-c", "data", "data/db")
    monkeypatch.setattr(action, "Runner", lambda: fake)
    return fake


def run(cfg: Path, *args: str):
    return CliRunner().invoke(app, ["snapshot", "--config", str(cfg), *args])


def test_first_run_creates_one_snapshot_per_dataset_in_one_command_per_pool(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    out = run(cfg, "--now", T0)
    assert out.exit_code == 0, out.output
    name = format_name(["hourly", "daily"], T0_EPOCH)
    assert fake.zfs_commands("snapshot") == [
        ["zfs", "snapshot", "-r", f"tank/home@{name}"],
        ["zfs", "snapshot", f"data/db@{name}"],
    ]
    for ds in ("tank/home", "tank/home/a b", "tank/home/-c", "data/db"):
        assert fake.names(ds) == [name]
    assert len(fake.zfs_commands("list")) == 4  # datasets + snapshots, per pool
    assert "tank/home/a b: created " + name in out.output
    state = json.loads((tmp_path / "state" / "last-snapshot.json").read_text())
    assert state["exit_code"] == 0 and len(state["items"]) == 4


def test_second_run_same_time_does_nothing(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    assert run(cfg, "--now", T0).exit_code == 0
    before = list(fake.snaps)
    fake.commands.clear()
    out = run(cfg, "--now", T0, "--json")
    assert out.exit_code == 0
    data = json.loads(out.output)
    assert data["status"] == "ok" and all(i["status"] == "nothing-to-do" for i in data["items"])
    assert fake.snaps == before and fake.zfs_commands("snapshot") == [] and fake.zfs_commands("destroy") == []


def test_advancing_time_prunes_by_retention_and_spares_manual_and_held(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    fake.add_snapshot("data/db@before upgrade")
    for hour in range(5):
        out = run(cfg, "--now", str(T0_EPOCH + 3600 * hour))
        assert out.exit_code == 0, out.output
        if hour == 1:
            fake.run(["zfs", "hold", "keep", f"data/db@{format_name(['hourly'], T0_EPOCH + 3600)}"])
    names = fake.names("data/db")
    assert names == [
        "before upgrade",
        format_name(["hourly", "daily"], T0_EPOCH),  # the day's daily
        format_name(["hourly"], T0_EPOCH + 3600),  # held
        format_name(["hourly"], T0_EPOCH + 3 * 3600),
        format_name(["hourly"], T0_EPOCH + 4 * 3600),
    ]
    # destroys come in ds@a,b,c batches, one command per dataset per run
    for cmd in fake.zfs_commands("destroy"):
        assert len(cmd) == 3 and "@" in cmd[2]


def test_dry_run_changes_nothing_and_shows_plan_and_space(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    fake.add_snapshot(f"data/db@{format_name(['hourly'], T0_EPOCH - 7200)}", used=3 * 1024 * 1024)
    fake.add_snapshot(f"data/db@{format_name(['hourly'], T0_EPOCH - 3600)}", used=1024)
    before = list(fake.snaps)
    out = run(cfg, "--now", T0, "--dry-run")
    assert out.exit_code == 0, out.output
    assert fake.snaps == before
    assert [c[1] for c in fake.commands] == ["list"] * 4
    assert "dry run" in out.output
    assert f"zfs snapshot -r tank/home@{format_name(['hourly', 'daily'], T0_EPOCH)}\n" in out.output
    assert "data/db: create " in out.output and "destroy 1: " + format_name(["hourly"], T0_EPOCH - 7200) in out.output
    assert "freeing at least 3.0 MiB" in out.output
    assert not (tmp_path / "state" / "last-snapshot.json").exists()
    data = json.loads(run(cfg, "--now", T0, "--dry-run", "--json").output)
    db = next(i for i in data["items"] if i["dataset"] == "data/db")
    assert db["status"] == "planned" and db["details"]["freed_bytes_at_least"] == 3 * 1024 * 1024
    assert data["dry_run"] is True


def test_failed_pool_is_partial_and_the_other_pool_is_done(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    fake.fail_on = {"data/db@" + format_name(["hourly", "daily"], T0_EPOCH): "cannot create snapshot 'data/db@x': out of space"}
    out = run(cfg, "--now", T0, "--json")
    assert out.exit_code == 3, out.output
    data = json.loads(out.output)
    db = next(i for i in data["items"] if i["dataset"] == "data/db")
    assert db["status"] == "failed"
    assert "pool data" in db["error"] and "out of space" in db["error"] and "free space" in db["error"]
    assert fake.names("tank/home/-c") == [format_name(["hourly", "daily"], T0_EPOCH)]


def test_missing_dataset_is_partial_with_actionable_message(tmp_path, fake):
    cfg = config(tmp_path, BODY + '\n[[datasets]]\nname = "tank/nope"\n')
    out = run(cfg, "--now", T0)
    assert out.exit_code == 3
    assert (f"tank/nope: FAILED: dataset tank/nope does not exist on {socket.gethostname()}; create it (zfs create) "
            f"or remove it from [[datasets]] in {cfg}") in out.output


def test_everything_failing_is_exit_1(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    fake.fail_on = {"list": "internal error: zfs module not loaded"}
    out = run(cfg, "--now", T0)
    assert out.exit_code == 1
    assert "cannot list pool tank" in out.output and "zpool status tank" in out.output


def test_config_error_is_exit_2(tmp_path, fake):
    cfg = config(tmp_path, BODY.replace("hourly = 2", 'hourly = "x"'))
    out = run(cfg, "--now", T0)
    assert out.exit_code == 2
    assert 'retention.hourly: expected a non-negative integer, got "x"' in out.output


def test_bad_now_is_exit_2(tmp_path, fake):
    assert run(config(tmp_path, BODY), "--now", "yesterday").exit_code == 2


def test_created_names_parse_as_ours(tmp_path, fake):
    run(config(tmp_path, BODY), "--now", T0)
    assert all(parse_name(s.name) for s in fake.snaps)


def test_human_output_summarises_idle_datasets(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    run(cfg, "--now", T0)
    out = run(cfg, "--now", T0)
    assert out.exit_code == 0
    assert out.output == "4 dataset(s): nothing due\ncreated 0, destroyed 0\n"
