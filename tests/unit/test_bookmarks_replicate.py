"""Replicate's bookmarks in process (fake zfs on both sides): one per dataset and target,
replaced as the newest common snapshot moves, the base of the plan when that snapshot is gone."""

from __future__ import annotations

from tests.unit.getting_back_fakes import CONFIG, config, copy_to
from tests.unit.test_listing_cache import replicate_once, two_hosts
from zfsrep.core.result import NOTHING_TO_DO, PLANNED


def by_dataset(result):
    return {i.dataset: i for i in result.items}


def txg(source, full):
    return next(s.createtxg for s in source.snaps if s.full_name == full)


def test_each_copy_bookmarks_its_newest_snapshot_and_replaces_the_older_bookmark(tmp_path, monkeypatch):
    cfg, source, target = two_hosts(tmp_path, monkeypatch)
    first, _, _ = replicate_once(cfg, source, target)
    s2 = f"tank/home#zfsrep_offsite_{txg(source, 'tank/home@s2')}"
    assert s2 in source.marks and by_dataset(first)["tank/home"].details["bookmark"] == s2
    source.clock += 10
    copy_to(target, source.add_snapshot("tank/home@s3"), "backup/h/tank/home")
    replicate_once(cfg, source, target)
    s3 = f"tank/home#zfsrep_offsite_{txg(source, 'tank/home@s3')}"
    assert {m for m in source.marks if m.startswith("tank/home#")} == {s3}
    # nothing new: no bookmark made, none destroyed
    _, _, _ = replicate_once(cfg, source, target)
    assert not [c for c in source.commands if c[:2] in (["zfs", "bookmark"], ["zfs", "destroy"])]


def test_a_base_destroyed_on_the_source_is_sent_from_its_bookmark(tmp_path, monkeypatch):
    cfg, source, target = two_hosts(tmp_path, monkeypatch)
    replicate_once(cfg, source, target)
    source.clock += 10
    source.run(["zfs", "release", "zfsrep:offsite", "tank/home@s2"])
    source.run(["zfs", "destroy", "tank/home@s2"])
    source.add_snapshot("tank/home@s3")
    source.add_snapshot("tank/home@s4")
    result, _, _ = replicate_once(cfg, source, target, dry_run=True)
    home = by_dataset(result)["tank/home"]
    assert home.status == PLANNED and home.sent == ["s3", "s4"]
    mark = f"tank/home#zfsrep_offsite_{txg(source, 'tank/home@s1') + 1}"
    assert home.from_snapshot == "#" + mark.partition("#")[2]
    assert home.details["plan"] == [f"incremental from bookmark {mark} -> tank/home@s3 (1 snapshot(s))",
                                    "incremental tank/home@s3 -> tank/home@s4 (1 snapshot(s))"]


def test_without_the_destroy_permission_older_bookmarks_stay_with_a_note(tmp_path, monkeypatch):
    cfg, source, target = two_hosts(tmp_path, monkeypatch)
    replicate_once(cfg, source, target)
    source.clock += 10
    copy_to(target, source.add_snapshot("tank/home@s3"), "backup/h/tank/home")
    source.fail_on["destroy"] = "cannot destroy 'tank/home#x': permission denied\n"
    result, _, _ = replicate_once(cfg, source, target)
    home = by_dataset(result)["tank/home"]
    assert home.status == NOTHING_TO_DO and not home.details.get("warnings")
    assert len([m for m in source.marks if m.startswith("tank/home#")]) == 2
    assert any("destroy" in n and "permission" in n for n in home.details["notes"])


def test_bookmarks_false_lists_and_makes_none(tmp_path, monkeypatch):
    _, source, target = two_hosts(tmp_path, monkeypatch)
    cfg = config(tmp_path, CONFIG.replace("[targets.offsite]", "[targets.offsite]\nbookmarks = false"))
    replicate_once(cfg, source, target)
    assert not source.marks
    assert not [c for c in source.commands if "bookmark" in c]
