"""`zfsrep snapshot` in-process over the fake zfs: exit codes, --json, --dry-run, state file,
one `zfs snapshot` per pool, per-dataset failures → exit 3. (The lab test shows it on ZFS.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
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
    path.write_text(f'state_dir = "{tmp_path / "state"}"\nlock_dir = "{tmp_path / "lock"}"\n' + body)
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
    # the tank/home tree prunes alike: one `zfs destroy -r tank/home@...` per run; data/db (held
    # snapshot, manual one) in its own ds@a,b,c batch
    home = [format_name(["hourly"], T0_EPOCH + 3600 * h) for h in (3, 4)]
    for ds in ("tank/home", "tank/home/a b", "tank/home/-c"):
        assert fake.names(ds) == [format_name(["hourly", "daily"], T0_EPOCH), *home]
    assert fake.zfs_commands("destroy") == [
        ["zfs", "destroy", "-r", f"tank/home@{format_name(['hourly'], T0_EPOCH + 3600)}"],
        ["zfs", "destroy", "-r", f"tank/home@{format_name(['hourly'], T0_EPOCH + 2 * 3600)}"],
        ["zfs", "destroy", f"data/db@{format_name(['hourly'], T0_EPOCH + 2 * 3600)}"],
    ]


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


def hourly(hour: int) -> str:
    return format_name(["hourly"], T0_EPOCH + 3600 * hour)


def three_runs(cfg: Path, fake) -> None:
    """Hours 0..2: tank/home's tree has the daily and hourly 1, 2; hour 3 will prune hourly 1."""
    for hour in range(3):
        assert run(cfg, "--now", str(T0_EPOCH + 3600 * hour)).exit_code == 0
    fake.commands.clear()


def test_held_snapshot_in_one_child_keeps_r_away_from_that_name_only(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    three_runs(cfg, fake)
    fake.run(["zfs", "hold", "keep", f"tank/home/-c@{hourly(1)}"])
    fake.commands.clear()
    out = run(cfg, "--now", str(T0_EPOCH + 3 * 3600), "--json")
    assert out.exit_code == 0, out.output
    assert fake.zfs_commands("destroy") == [
        ["zfs", "destroy", f"tank/home@{hourly(1)}"],
        ["zfs", "destroy", f"tank/home/a b@{hourly(1)}"],
        ["zfs", "destroy", f"data/db@{hourly(1)}"],
    ]
    daily = format_name(["hourly", "daily"], T0_EPOCH)
    assert fake.names("tank/home/-c") == [daily, hourly(1), hourly(2), hourly(3)]
    assert fake.names("tank/home/a b") == [daily, hourly(2), hourly(3)]


def test_failed_recursive_destroy_is_retried_per_dataset_and_only_the_bad_one_fails(tmp_path, fake, monkeypatch):
    cfg = config(tmp_path, BODY)
    three_runs(cfg, fake)
    real_run = fake.run

    def hold_after_listing(argv, **kw):  # someone holds a snapshot between listing and destroy
        if argv[:3] == ["zfs", "destroy", "-r"] and not fake.tags:
            real_run(["zfs", "hold", "backup", f"tank/home/a b@{hourly(1)}"])
        return real_run(argv, **kw)
    monkeypatch.setattr(fake, "run", hold_after_listing)
    out = run(cfg, "--now", str(T0_EPOCH + 3 * 3600), "--json")
    assert out.exit_code == 3, out.output
    assert "zfs destroy -r tank/home@... on" in out.stderr and "destroyed per dataset instead" in out.stderr
    items = {i["dataset"]: i for i in json.loads(out.stdout)["items"]}
    bad = items["tank/home/a b"]
    assert bad["status"] == "failed" and bad["destroyed"] == []
    assert f"cannot destroy snapshot tank/home/a b@{hourly(1)}: dataset is busy" in bad["error"]
    assert "zfs holds" in bad["error"]
    for ds in ("tank/home", "tank/home/-c", "data/db"):
        assert items[ds]["status"] == "ok" and items[ds]["destroyed"] == [f"{ds}@{hourly(1)}"], ds
    assert "failed" in items["tank/home/-c"]["details"]["destroy_retried"]
    assert [c[2:] for c in fake.zfs_commands("destroy")] == [
        ["-r", f"tank/home@{hourly(1)}"],
        [f"tank/home@{hourly(1)}"], [f"tank/home/a b@{hourly(1)}"], [f"tank/home/-c@{hourly(1)}"],
        [f"data/db@{hourly(1)}"],
    ]
    assert hourly(1) in fake.names("tank/home/a b") and hourly(1) not in fake.names("tank/home/-c")


def test_dry_run_lists_grouped_destroy_commands_and_per_dataset_lists(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    three_runs(cfg, fake)
    out = run(cfg, "--now", str(T0_EPOCH + 3 * 3600), "--dry-run")
    assert out.exit_code == 0, out.output
    assert f"\n  zfs destroy -r tank/home@{hourly(1)}\n" in out.output
    assert f"\n  zfs destroy data/db@{hourly(1)}\n" in out.output
    assert f"tank/home/-c: create {hourly(3)}; destroy 1: {hourly(1)}" in out.output
    data = json.loads(run(cfg, "--now", str(T0_EPOCH + 3 * 3600), "--dry-run", "--json").output)
    child = next(i for i in data["items"] if i["dataset"] == "tank/home/-c")
    assert child["destroyed"] == [f"tank/home/-c@{hourly(1)}"]
    assert child["details"]["destroy_commands"] == [["zfs", "destroy", "-r", f"tank/home@{hourly(1)}"]]
    assert fake.zfs_commands("destroy") == []


def test_excluded_child_with_a_same_named_snapshot_is_never_reached(tmp_path, fake):
    fake.add("tank/home/cache")
    cfg = config(tmp_path, BODY.replace("recursive = true", 'recursive = true\nexclude = ["tank/home/cache"]'))
    for hour in range(4):
        if hour == 1:
            fake.add_snapshot(f"tank/home/cache@{hourly(1)}")  # e.g. an old `zfs snapshot -r` by hand
        assert run(cfg, "--now", str(T0_EPOCH + 3600 * hour)).exit_code == 0
    assert fake.names("tank/home/cache") == [hourly(1)]
    assert hourly(1) not in fake.names("tank/home/-c")
    assert not any("-r" in c for c in fake.zfs_commands("destroy"))


LOCK_HOLDER = """
import sys, time
from zfsrep.lock import config_lock
with config_lock(sys.argv[1], "snapshot", sys.argv[2]):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_overlapping_run_fails_fast_naming_the_running_one_and_changes_nothing(tmp_path, fake):
    cfg = config(tmp_path, BODY)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "lock"), str(cfg)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        out = run(cfg, "--now", T0)
        assert out.exit_code == 1
        assert time.monotonic() - start < 5  # at once, not after a wait
        assert f"another zfsrep snapshot is running (pid {holder.pid}) with config {cfg}" in out.output
        assert fake.commands == [] and fake.snaps == []
        assert not (tmp_path / "state" / "last-snapshot.json").exists()  # the running one records its run
        assert run(cfg, "--now", T0, "--dry-run").exit_code == 0  # a dry run needs no lock
        other = tmp_path / "other.toml"
        other.write_text(cfg.read_text())  # same lock_dir, another file: another lock
        assert run(other, "--now", T0).exit_code == 0
    finally:
        holder.kill()
        holder.wait()
    out = run(cfg, "--now", str(T0_EPOCH + 3600))
    assert out.exit_code == 0 and "data/db: created " + hourly(1) in out.output
