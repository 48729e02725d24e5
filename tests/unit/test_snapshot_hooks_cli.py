"""`zfsrep snapshot` with pre/post hooks and min_change, in-process over the fake zfs; the hooks
are real processes (small Python scripts) that append what they saw to a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.fake_zfs import FakeZfs
from tests.unit.test_snapshot_cli import T0, T0_EPOCH, config
from zfsrep.actions import snapshot as action
from zfsrep.cli import app
from zfsrep.core.names import format_name

NAME = format_name(["hourly"], T0_EPOCH)
RETENTION = "[retention]\nhourly = 2\ndaily = 0\nweekly = 0\nmonthly = 0\n"

HOOK = r'''
import os, sys, time
with open(sys.argv[1], "a") as log:
    log.write(" ".join([os.environ["ZFSREP_HOOK"], os.environ["ZFSREP_ENTRY"],
                        os.environ["ZFSREP_SNAPSHOTS"].replace("\n", "|"), os.environ["ZFSREP_LABELS"],
                        os.environ.get("ZFSREP_OUTCOME", "-"), *sys.argv[2:]]) + "\n")
if "sleep" in sys.argv:
    time.sleep(30)
if "fail" in sys.argv:
    print("database refused to freeze", file=sys.stderr)
    sys.exit(7)
'''


@pytest.fixture
def fake(monkeypatch):
    fake = FakeZfs().add("tank", "tank/db", "tank/db/wal", "tank/www", "data", "data/media")
    monkeypatch.setattr(action, "Runner", lambda: fake)
    return fake


@pytest.fixture
def hook(tmp_path):
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    log = tmp_path / "hooks.log"

    def argv(*words: str) -> str:
        return json.dumps([sys.executable, str(script), str(log), *words])
    argv.log = log  # type: ignore[attr-defined]
    return argv


def lines(hook) -> list[str]:
    return hook.log.read_text().splitlines() if hook.log.exists() else []


def run(cfg: Path, *args: str):
    return CliRunner().invoke(app, ["snapshot", "--config", str(cfg), "--now", T0, *args])


def entries(hook, db: str = "", www: str = "", extra: str = "") -> str:
    return (RETENTION + '[[datasets]]\nname = "tank/db"\nrecursive = true\n'
            f'pre_snapshot = {hook("db", *db.split())}\npost_snapshot = {hook("db")}\n'
            f'[[datasets]]\nname = "tank/www"\npre_snapshot = {hook("www", *www.split())}\n'
            f'post_snapshot = {hook("www")}\n{extra}'
            '[[datasets]]\nname = "data/media"\n')


def test_hooks_run_around_the_pools_one_snapshot_in_order_with_their_environment(tmp_path, fake, hook):
    out = run(config(tmp_path, entries(hook)))
    assert out.exit_code == 0, out.output
    snaps = f"tank/db@{NAME}|tank/db/wal@{NAME}"
    assert lines(hook) == [
        f"pre_snapshot tank/db {snaps} hourly - db",
        f"pre_snapshot tank/www tank/www@{NAME} hourly - www",
        f"post_snapshot tank/www tank/www@{NAME} hourly ok www",
        f"post_snapshot tank/db {snaps} hourly ok db",
    ]
    # still one atomic snapshot per pool
    assert fake.zfs_commands("snapshot") == [
        ["zfs", "snapshot", "-r", f"tank/db@{NAME}", f"tank/www@{NAME}"],
        ["zfs", "snapshot", f"data/media@{NAME}"],
    ]
    for ds in ("tank/db", "tank/db/wal", "tank/www", "data/media"):
        assert fake.names(ds) == [NAME]


def test_a_failed_pre_hook_skips_only_its_entrys_snapshots_runs_its_post_hook_and_is_partial(tmp_path, fake, hook):
    out = run(config(tmp_path, entries(hook, db="fail")), "--json")
    assert out.exit_code == 3, out.output
    assert fake.names("tank/db") == [] and fake.names("tank/db/wal") == []
    assert fake.names("tank/www") == [NAME] and fake.names("data/media") == [NAME]
    assert fake.zfs_commands("snapshot")[0] == ["zfs", "snapshot", f"tank/www@{NAME}"]
    assert lines(hook)[-1] == f"post_snapshot tank/db tank/db@{NAME}|tank/db/wal@{NAME} hourly skipped db"
    items = {i["dataset"]: i for i in json.loads(out.output)["items"]}
    error = items["tank/db"]["error"]
    assert items["tank/db"]["status"] == "failed" and items["tank/www"]["status"] == "ok"
    assert "pre_snapshot hook" in error and "for tank/db exited 7: database refused to freeze" in error
    assert "no snapshot taken of it" in error and "run it by hand" in error


def test_a_pre_hook_past_its_timeout_is_killed_and_skips_the_snapshot(tmp_path, fake, hook):
    cfg = config(tmp_path, entries(hook, www="sleep", extra='hook_timeout = "1s"\n'))
    out = run(cfg)
    assert out.exit_code == 3, out.output
    assert fake.names("tank/www") == [] and fake.names("tank/db") == [NAME]
    assert "for tank/www timed out after 1s and was killed" in out.output
    assert "raise hook_timeout of [[datasets]] tank/www" in out.output


def test_the_post_hook_runs_after_a_failed_snapshot_and_is_told_so(tmp_path, fake, hook):
    fake.fail_on = {f"tank/www@{NAME}": "cannot create snapshot: out of space"}
    out = run(config(tmp_path, entries(hook)))
    assert out.exit_code == 3, out.output  # data/media was done
    assert [line for line in lines(hook) if line.startswith("post")] == [
        f"post_snapshot tank/www tank/www@{NAME} hourly failed www",
        f"post_snapshot tank/db tank/db@{NAME}|tank/db/wal@{NAME} hourly failed db",
    ]


def test_a_failed_post_hook_fails_its_datasets_but_keeps_their_snapshot(tmp_path, fake, hook):
    body = entries(hook).replace(f'post_snapshot = {hook("www")}', f'post_snapshot = {hook("www", "fail")}')
    out = run(config(tmp_path, body), "--json")
    assert out.exit_code == 3, out.output
    items = {i["dataset"]: i for i in json.loads(out.output)["items"]}
    assert items["tank/www"]["status"] == "failed" and items["tank/www"]["created"] == [f"tank/www@{NAME}"]
    assert "post_snapshot hook" in items["tank/www"]["error"] and "may still be in effect" in items["tank/www"]["error"]
    assert items["tank/db"]["status"] == "ok"


def test_dry_run_shows_the_hooks_around_the_snapshot_and_runs_none(tmp_path, fake, hook):
    out = run(config(tmp_path, entries(hook)), "--dry-run")
    assert out.exit_code == 0, out.output
    assert not hook.log.exists() and fake.zfs_commands("snapshot") == []
    shown = [line.strip() for line in out.output.splitlines()]
    pre = [i for i, line in enumerate(shown) if line.endswith("# pre_snapshot hook")]
    post = [i for i, line in enumerate(shown) if line.endswith("# post_snapshot hook")]
    snap = next(i for i, line in enumerate(shown) if line.startswith("zfs snapshot") and "tank/" in line)
    assert len(pre) == 2 and len(post) == 2 and max(pre) < snap < min(post)
    assert " db    #" in shown[pre[0]] and " www    #" in shown[post[0]]


def test_nothing_due_runs_no_hook(tmp_path, fake, hook):
    cfg = config(tmp_path, entries(hook))
    assert run(cfg).exit_code == 0
    hook.log.unlink()
    assert run(cfg).exit_code == 0
    assert not hook.log.exists()


MIN_CHANGE = RETENTION + '''
[[datasets]]
name = "tank/db"
recursive = true
min_change = "1M"

[[datasets]]
name = "data/media"
'''


def test_min_change_skips_datasets_with_little_written_and_they_stay_due(tmp_path, fake):
    cfg = config(tmp_path, MIN_CHANGE)
    earlier = format_name(["hourly"], T0_EPOCH - 3600)
    for ds in ("tank/db", "tank/db/wal", "data/media"):
        fake.add_snapshot(f"{ds}@{earlier}")
    fake.write("tank/db", 5 * 1024 * 1024)
    fake.write("tank/db/wal", 1000)
    lists = len(fake.zfs_commands("list"))
    out = run(cfg, "--json")
    assert out.exit_code == 0, out.output
    assert len(fake.zfs_commands("list")) - lists == 4  # written came with the datasets' listing
    assert fake.names("tank/db") == [earlier, NAME] and fake.names("tank/db/wal") == [earlier]
    assert fake.names("data/media") == [earlier, NAME]
    items = {i["dataset"]: i for i in json.loads(out.output)["items"]}
    assert "below min_change 1.0 MiB" in items["tank/db/wal"]["details"]["skipped"]
    assert items["tank/db/wal"]["details"]["due"] == ["hourly"]
    # an hour on, the wal has been written to: the hourly still due is taken, named for now
    fake.write("tank/db/wal", 2 * 1024 * 1024)
    later = T0_EPOCH + 3600
    out = CliRunner().invoke(app, ["snapshot", "--config", str(cfg), "--now", str(later)])
    assert out.exit_code == 0, out.output
    assert fake.names("tank/db/wal") == [earlier, format_name(["hourly"], later)]
    assert fake.names("tank/db") == [earlier, NAME]  # nothing written there since


def test_min_change_dry_run_says_what_is_skipped_and_why(tmp_path, fake):
    for ds in ("tank/db", "tank/db/wal", "data/media"):
        fake.add_snapshot(f"{ds}@{format_name(['hourly'], T0_EPOCH - 3600)}")
    out = run(config(tmp_path, MIN_CHANGE), "--dry-run")
    assert out.exit_code == 0, out.output
    assert ("tank/db/wal: skipped (0 B written since the newest snapshot, below min_change 1.0 MiB); "
            "hourly stay due") in out.output
    assert f"zfs snapshot data/media@{NAME}" in out.output and "tank/db@" not in out.output


def test_the_post_hook_runs_even_when_the_run_breaks_between_pre_and_post(tmp_path, fake, hook, monkeypatch):
    from zfsrep.config.load import load_config

    def broken(*args, **kwargs):
        raise RuntimeError("bug")
    monkeypatch.setattr(action, "_create", broken)
    with pytest.raises(RuntimeError):
        action.run(load_config(config(tmp_path, entries(hook))), now=T0_EPOCH)
    assert [line.split()[:3] for line in lines(hook) if line.startswith("post")] == [
        ["post_snapshot", "tank/www", f"tank/www@{NAME}"], ["post_snapshot", "tank/db", f"tank/db@{NAME}|tank/db/wal@{NAME}"]]
    assert all(line.split()[4] == "failed" for line in lines(hook) if line.startswith("post"))
