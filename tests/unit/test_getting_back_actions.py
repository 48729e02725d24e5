"""In-process tests of the snapshots/verify/rollback/restore actions over fake zfs runners."""

import pytest

from tests.unit.getting_back_fakes import MoreZfs, config, connect_to, copy_to, target_zfs
from zfsrep.actions import restore, rollback, snapshots, verify
from zfsrep.core.restore_plan import NEW, REFUSE, REPLACE
from zfsrep.core.result import FAILED, OK
from zfsrep.errors import UsageError

NOW = 1_767_225_600 + 3600


@pytest.fixture
def sides():
    source = MoreZfs().add("tank", "tank/home", "tank/vm", "tank/vm/disk1")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home", "backup/h/tank/vm",
                           "backup/h/tank/vm/disk1")
    for ds in ("tank/home", "tank/vm", "tank/vm/disk1"):
        for name in ("s1", "s2"):
            copy_to(target, source.add_snapshot(f"{ds}@{name}"), f"backup/h/{ds}")
    return source, target


def test_verify_clean_then_target_written_to(tmp_path, sides):
    source, target = sides
    cfg = config(tmp_path)
    result = verify.run(cfg, now=NOW, runner=source, connect=connect_to(target))
    assert [(i.dataset, i.status) for i in result.items] == [
        ("tank/home", OK), ("tank/vm", OK), ("tank/vm/disk1", OK)]
    assert result.exit_code == 0 and result.items[0].to_snapshot == "s2"

    target.add_snapshot("backup/h/tank/vm/disk1@oops")  # someone wrote to the copy and snapshotted it
    result = verify.run(cfg, now=NOW, runner=source, connect=connect_to(target))
    bad = [i for i in result.items if i.status == FAILED]
    assert [i.dataset for i in bad] == ["tank/vm/disk1"] and result.exit_code == 3
    assert "snapshot(s) the source never had" in bad[0].error and "oops" in bad[0].error
    assert bad[0].details["comparison"]["target_only_newer"] == ["oops"]


def test_verify_reports_a_child_missing_on_the_target(tmp_path, sides):
    source, target = sides
    source.add("tank/vm/disk2")
    source.add_snapshot("tank/vm/disk2@s1")
    result = verify.run(config(tmp_path), now=NOW, runner=source, connect=connect_to(target))
    item = next(i for i in result.items if i.dataset == "tank/vm/disk2")
    assert item.status == FAILED and "never replicated" in item.error


def test_snapshots_side_by_side(tmp_path, sides):
    source, target = sides
    source.add_snapshot("tank/home@s3")
    result = snapshots.run(config(tmp_path), now=NOW, dataset="tank/home", runner=source,
                           connect=connect_to(target))
    (item,) = result.items
    assert item.details["sides"] == ["source", "offsite"]
    rows = {r["name"]: r for r in item.details["rows"]}
    assert rows["s1"]["common"] and rows["s2"]["common"] and not rows["s3"]["common"]
    assert rows["s3"]["on"] == {"source": "s3"}


def test_snapshots_on_a_fresh_host_show_the_target_only(tmp_path, sides):
    _, target = sides
    fresh = MoreZfs().add("tank")
    result = snapshots.run(config(tmp_path), now=NOW, dataset="tank/home", runner=fresh,
                           connect=connect_to(target))
    (item,) = result.items
    assert item.details["missing_on"] == ["source"]
    assert [r["on"] for r in item.details["rows"]] == [{"offsite": "s1"}, {"offsite": "s2"}]


def test_rollback_lists_refuses_a_base_and_forced_releases_it(tmp_path, sides):
    source, _ = sides
    cfg = config(tmp_path)
    source.add_snapshot("tank/home@s3")
    source.run(["zfs", "hold", "zfsrep:offsite", "tank/home@s3"])
    plan = rollback.plan(cfg, "tank/home@s1", runner=source)
    assert [s.name for s in plan.destroys] == ["s2", "s3"] and plan.action == "refuse"
    result = rollback.apply(plan, runner=source, now=NOW)
    assert result.exit_code == 1 and source.names("tank/home") == ["s1", "s2", "s3"]

    forced = rollback.plan(cfg, "tank/home@s1", runner=source, force=True)
    result = rollback.apply(forced, runner=source, now=NOW)
    assert result.exit_code == 0 and source.names("tank/home") == ["s1"]
    assert result.items[0].destroyed == ["s2", "s3"]
    with pytest.raises(UsageError):
        rollback.plan(cfg, "tank/nope@s1", runner=source)
    with pytest.raises(UsageError):
        rollback.plan(cfg, "tank/home", runner=source)


def test_rollback_on_the_target_copy(tmp_path, sides):
    source, target = sides
    target.add_snapshot("backup/h/tank/home@oops")
    cfg = config(tmp_path)
    with rollback.side(cfg, now=NOW, target="offsite", runner=source, connect=connect_to(target)) as (runner, where):
        plan = rollback.plan(cfg, "tank/home@s2", runner=runner, target="offsite")
        result = rollback.apply(plan, runner=runner, now=NOW)
    assert where == "target offsite" and result.exit_code == 0
    assert target.names("backup/h/tank/home") == ["s1", "s2"]


def test_restore_plans_new_refuse_and_replace(tmp_path, sides):
    source, target = sides
    cfg = config(tmp_path)
    t = cfg.targets["offsite"]
    with connect_to(target)(t) as session:
        fresh = MoreZfs().add("tank")
        p = restore.plan("tank/vm/disk1@s1", t, session, runner=fresh)
        assert p.plan.action == NEW and p.plan.dest == "tank/vm/disk1"
        assert p.plan.create_parents == ("tank/vm",) and p.plan.snapshot.name == "s1"

        live = restore.plan("tank/home", t, session, runner=source)
        assert live.plan.action == REFUSE and "exists and is live" in live.plan.message

        forced = restore.plan("tank/home", t, session, runner=source, force=True)
        assert forced.plan.action == REPLACE and forced.plan.receive_into == "tank/home.zfsrep-restore"
        assert forced.plan.destroys == ("tank/home",) and forced.plan.destroys_snapshots == 2

        dry = restore.apply(forced, t, session, runner=source, now=NOW, dry_run=True)
        assert dry.exit_code == 0 and source.names("tank/home") == ["s1", "s2"]
        assert not [c for c in source.commands if c[:2] in (["zfs", "destroy"], ["zfs", "receive"])]

        with pytest.raises(UsageError, match="pool rpool is not imported"):
            restore.plan("tank/home", t, session, runner=source, to="rpool/home")
