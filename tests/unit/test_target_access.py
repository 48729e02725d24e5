"""Reaching an on-demand target for the getting-data-back verbs (`targets.access.connector`): the
warnings of its warmup and teardown reach the verb's result (and the CLI's stderr and --json once
each), the address warmup reported is used without reading it back from the state dir, and a
warmup record that is needed but cannot be read fails that target with one line, no traceback.
ssh is faked (the lab tests reach real targets)."""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.getting_back_fakes import MoreZfs, copy_to, target_zfs
from tests.unit.test_state_dir_warnings import WARMUP
from zfsrep.actions import verify
from zfsrep.cli import app
from zfsrep.config.load import parse_config
from zfsrep.config.model import TargetConfig
from zfsrep.core.result import OK, ItemResult
from zfsrep.errors import ZfsrepError
from zfsrep.targets import access, lifecycle, progress
from zfsrep.targets.access import ssh_host
from zfsrep.targets.readiness import Readiness
from zfsrep.targets.record import UP, WarmupRecord, load_record, record_path, write_record

CONFIG = """
state_dir = "{state}"
lock_dir = "{lock}"
[[datasets]]
name = "tank/home"
[[datasets]]
name = "tank/db"
""" + WARMUP  # target cold: host cold.example.org, warmup and teardown commands `true`


class FakeSsh:
    """Stands in for `SshSession`: records where it was asked to go, runs the target fake."""

    hosts: list[str] = []

    def __init__(self, target, *, host=None, **_kw) -> None:
        self.host = host
        FakeSsh.hosts.append(host)

    def __enter__(self) -> FakeSsh:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def runner(self):
        return FakeSsh.target


@pytest.fixture
def sides(monkeypatch):
    source = MoreZfs().add("tank", "tank/home", "tank/db")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home", "backup/h/tank/db")
    source.clock = int(time.time()) - 60
    for ds in ("tank/home", "tank/db"):
        copy_to(target, source.add_snapshot(f"{ds}@s1"), f"backup/h/{ds}")
    FakeSsh.target, FakeSsh.hosts = target, []
    monkeypatch.setattr(access, "SshSession", FakeSsh)
    monkeypatch.setattr(progress, "wait_for_ssh",
                        lambda target, address, **k: Readiness(host=address, attempts=1, seconds=0.0))
    monkeypatch.setattr(verify, "Runner", lambda: source)
    return source, target


def blocked_config(tmp_path: Path) -> tuple[Path, Path]:
    """A config whose state_dir is a regular file: warmup cannot keep its record."""
    state_file = tmp_path / "state"
    state_file.write_text("not a directory\n")
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(state=state_file, lock=tmp_path / "lock"))
    return path, state_file


def test_warmup_warnings_reach_every_item_of_the_verb(tmp_path, sides):
    path, state_file = blocked_config(tmp_path)
    cfg = parse_config(path.read_text(), path=str(path))
    result = verify.run(cfg, now=time.time(), targets=["cold"], runner=sides[0])
    assert [i.status for i in result.items] == [OK, OK], [i.error for i in result.items]
    for item in result.items:
        assert item.details["access"] == ["warmed up cold", "tore cold down"]
        (line,) = item.details["warnings"]
        assert line.startswith(f"cannot write the warmup record of target cold in state_dir {state_file}")
    assert FakeSsh.hosts == ["cold.example.org"]


def test_teardown_warnings_are_carried_too(tmp_path, sides, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", lock=tmp_path / "lock"))
    cfg = parse_config(path.read_text(), path=str(path))
    said = "target cold: torn down without its lock: cannot open /x: Permission denied; set lock_dir to ..."

    def down(config, target):
        return ItemResult(dataset="backup/h", target="cold", status=OK, details={"warnings": [said]})

    monkeypatch.setattr(lifecycle, "down", down)
    result = verify.run(cfg, now=time.time(), targets=["cold"], runner=sides[0])
    assert [i.details.get("warnings") for i in result.items] == [[said], [said]]
    assert all(i.status == OK for i in result.items)


def test_the_cli_prints_a_carried_warning_once_and_lists_it_in_json(tmp_path, sides):
    path, state_file = blocked_config(tmp_path)
    r = CliRunner().invoke(app, ["verify", "-c", str(path), "-t", "cold", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    warned = [line for line in r.stderr.splitlines() if line.startswith("zfsrep: warning: ")]
    record = [line for line in warned if "warmup record of target cold" in line]
    assert len(record) == 1  # two verified datasets, one warning
    data = json.loads(r.stdout)
    assert record[0].removeprefix("zfsrep: warning: ") in data["warnings"]
    assert any("cannot write the verify result" in w for w in data["warnings"])
    assert len(data["warnings"]) == len(warned) == 2


def test_the_address_warmup_reports_is_used_without_the_state_dir(tmp_path, sides, monkeypatch):
    # an EC2 target has no host: its address comes from warmup; here the state dir is unusable
    path, _ = blocked_config(tmp_path)
    cfg = parse_config(path.read_text(), path=str(path))
    nameless = TargetConfig(name="cold", host=None, dataset="backup/h", warmup=cfg.targets["cold"].warmup)

    def up(config, target):
        return ItemResult(dataset="backup/h", target="cold", status=OK, details={"address": "10.0.0.7"})

    monkeypatch.setattr(lifecycle, "up", up)
    monkeypatch.setattr(lifecycle, "down", lambda config, target: ItemResult(dataset="backup/h", target="cold",
                                                                             status=OK))
    with access.connector(cfg)(nameless) as session:
        assert session.steps == ["warmed up cold"]
    assert FakeSsh.hosts == ["10.0.0.7"]


# --- access.ssh_host ---------------------------------------------------------------------------

NAMELESS = TargetConfig(name="cold", host=None, dataset="backup/h")


def deny_reading(monkeypatch) -> None:
    """Permission denied on the record (tests run as root, for whom a mode-0000 file is readable)."""
    real = Path.read_text

    def read_text(self, *a, **k):
        if self.name.startswith("warmup-"):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", read_text)


def test_an_unreadable_record_is_one_actionable_line(tmp_path, monkeypatch):
    write_record(tmp_path, WarmupRecord(target="cold", kind="ec2", status=UP, address="10.0.0.7"))
    assert ssh_host(tmp_path, NAMELESS) == "10.0.0.7"
    deny_reading(monkeypatch)
    with pytest.raises(ZfsrepError) as e:
        ssh_host(tmp_path, NAMELESS)
    line = str(e.value)
    assert "\n" not in line
    assert line.startswith(f"cannot read the warmup record of target cold in state_dir {tmp_path}: "
                           "permission denied for user")
    assert f"install -d -o" in line and "targets.cold.host" in line
    # not needed, not read: a configured host, or the address a warmup just reported
    assert ssh_host(tmp_path, TargetConfig(name="cold", host="nas", dataset="backup/h")) == "nas"
    assert ssh_host(tmp_path, NAMELESS, warmed="10.0.0.9") == "10.0.0.9"


def test_a_damaged_record_names_the_file_and_the_fix(tmp_path):
    record_path(tmp_path, "cold").write_text("{not json")
    with pytest.raises(ZfsrepError) as e:
        ssh_host(tmp_path, NAMELESS)
    assert str(e.value).startswith(f"target cold: its warmup record {record_path(tmp_path, 'cold')} is damaged")
    assert "remove it and run `zfsrep warmup --target cold` again" in str(e.value)
    record_path(tmp_path, "cold").write_text('{"target": "cold"}')  # JSON, but no kind
    with pytest.raises(ZfsrepError, match="is damaged"):
        ssh_host(tmp_path, NAMELESS)


def test_an_unreadable_record_fails_only_the_target_that_needs_it(tmp_path, sides, monkeypatch):
    # status --live reaches targets without warming them up: an EC2 target's address (it has no
    # host) must come from the record; another target is reached all the same
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", lock=tmp_path / "lock"))
    cfg = parse_config(path.read_text(), path=str(path))
    write_record(cfg.state_dir, WarmupRecord(target="cold", kind="ec2", status=UP, address="10.0.0.7"))
    deny_reading(monkeypatch)
    connect = access.connector(cfg, warm=False, lock=False)
    with pytest.raises(ZfsrepError, match="cannot read the warmup record of target cold"):
        with connect(NAMELESS):
            pass
    with connect(cfg.targets["cold"]) as session:  # the command target has a host: nothing to read
        assert session.warnings == []
    assert FakeSsh.hosts == ["cold.example.org"]


def test_replicate_to_a_target_whose_record_cannot_be_read_fails_that_target_with_the_line(tmp_path, monkeypatch):
    # replicate asks ssh_host for an EC2 target's address (zfsrep/actions/replicate.py); the error
    # fails that target's items with the one line, instead of a traceback or ending the run
    from tests.unit.fake_zfs import FakeZfs
    from zfsrep.actions import replicate

    path = tmp_path / "config.toml"
    path.write_text(f"""
state_dir = "{tmp_path / 'state'}"
lock_dir = "{tmp_path / 'lock'}"
[[datasets]]
name = "tank/home"
[targets.cold]
dataset = "backup/h"
[targets.cold.warmup]
type = "ec2"
region = "eu-west-1"
instance_id = "i-0123456789abcdef0"
""")
    write_record(tmp_path / "state", WarmupRecord(target="cold", kind="ec2", status=UP, address="10.0.0.7"))
    deny_reading(monkeypatch)
    monkeypatch.setattr(replicate, "Runner", lambda: FakeZfs().add("tank", "tank/home"))
    r = CliRunner().invoke(app, ["replicate", "-c", str(path), "--json"], catch_exceptions=False)
    assert r.exit_code == 1
    (failed,) = json.loads(r.stdout)["items"]
    assert failed["dataset"] == "tank/home" and failed["target"] == "cold" and failed["status"] == "failed"
    assert failed["error"].startswith(
        f"cannot read the warmup record of target cold in state_dir {tmp_path / 'state'}")
    assert "\n" not in failed["error"]


def test_a_damaged_warmup_record_is_a_warning_for_warmup_and_teardown(tmp_path):
    record_path(tmp_path, "cold").write_text("{not json")
    warnings: list[str] = []
    assert load_record(str(tmp_path), "cold", warnings) is None
    (line,) = warnings
    assert line.startswith(f"the warmup record of target cold in {tmp_path} is damaged") and "\n" not in line
