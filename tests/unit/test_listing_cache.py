"""The snapshot listing cache: replicate reuses a dataset's earlier snapshot listing when its
`guid` and `snapshots_changed` (OpenZFS >= 2.2) are as they were, and only then.

The pure rules (`core.listing_cache`), then whole replicate runs against in-process fakes of both
hosts, counting the `zfs list -t snapshot` commands each side gets. The fakes prove nothing about
real ZFS; `tests/integration/test_listing_cache_lab.py` runs the same on OpenZFS 2.3."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.unit.getting_back_fakes import CONFIG, MoreZfs, config, copy_to, target_zfs
from zfsrep.actions import replicate
from zfsrep.actions.replicate.listing_cache import RETRY_UNSUPPORTED_S
from zfsrep.cli import app
from zfsrep.core import listing_cache as lc
from zfsrep.core.result import NOTHING_TO_DO, PLANNED
from zfsrep.core.snapshot import Snapshot
from zfsrep.errors import CommandError
from zfsrep.execute import CommandResult
from zfsrep.pipeline import PipelineResult, StageResult
from zfsrep.state import listing_cache_path

T0 = 1_795_000_000


def snap(ds: str, name: str, n: int, userrefs: int = 0) -> Snapshot:
    return Snapshot(ds, name, guid=1000 + n, createtxg=n, creation=T0 + n, used=n, userrefs=userrefs)


# -- the pure rules -----------------------------------------------------------------------------

def test_a_listing_is_reused_only_while_guid_and_snapshots_changed_are_unchanged():
    cached = {"a": lc.Entry(1, T0, (snap("a", "s1", 1),)), "b": lc.Entry(2, T0, ()),
              "c": lc.Entry(3, T0, ()), "d": lc.Entry(4, T0, ()), "f": lc.Entry(6, T0, (), "x@k")}
    seen = {"a": lc.Seen(1, T0),       # unchanged
            "b": lc.Seen(2, T0 + 5),   # a snapshot made or destroyed since
            "c": lc.Seen(99, T0),      # another dataset under the same name
            "d": lc.Seen(4, None),     # "-": nothing known
            "e": lc.Seen(5, T0),       # not cached
            "f": lc.Seen(6, T0, "-")}  # promoted: it gained its origin's older snapshots, and
    # OpenZFS 2.3 leaves its snapshots_changed as it was (measured in the lab)
    reused, again = lc.split(seen, cached)
    assert reused == {"a": [snap("a", "s1", 1)]}
    assert again == ["b", "c", "d", "e", "f"]


def test_only_changes_from_a_second_before_the_hosts_clock_are_remembered():
    seen = {"old": lc.Seen(1, T0 - 1), "now": lc.Seen(2, T0), "unknown": lc.Seen(3, None),
            "held": lc.Seen(4, T0 - 9)}
    snaps = {"old": [snap("old", "s1", 1)], "held": [snap("held", "s1", 2)]}
    kept = lc.remember(seen, T0, snaps, drop={"held"})
    # a change in the clock's own second may still be followed by one the listing missed
    assert kept == {"old": lc.Entry(1, T0 - 1, (snap("old", "s1", 1),))}


names = st.text(st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="-_. :"),
                min_size=1, max_size=12)


@given(st.dictionaries(names, st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**40),
                                        st.lists(st.tuples(names, st.integers(0, 2**64 - 1)),
                                                 max_size=4),
                                        st.sampled_from(["-", "tank/o@k"])), max_size=5))
def test_the_state_dir_form_keeps_every_field(raw):
    entries = {f"tank/{k}": lc.Entry(guid, changed, tuple(
        Snapshot(f"tank/{k}", name, g, i, T0 + i, 7 * i, i % 2) for i, (name, g) in enumerate(snaps)),
        origin) for k, (guid, changed, snaps, origin) in raw.items()}
    doc = json.loads(json.dumps(lc.to_doc(entries, "host")))
    assert lc.from_doc(doc) == entries


@pytest.mark.parametrize("doc", [
    None, [], "x", {"version": 2, "datasets": {}},
    {"version": 1, "datasets": {"tank/a": {"guid": 1}}},
    {"version": 1, "datasets": {"tank/a": {"guid": "x", "snapshots_changed": 1, "snapshots": []}}},
    {"version": 1, "datasets": {"tank/a": {"guid": 1, "snapshots_changed": 1, "snapshots": [["s1", 1]]}}},
    {"version": 1, "datasets": {"tank/a": {"guid": 1, "snapshots_changed": 1,
                                           "snapshots": [["", 1, 2, 3, 4, 5]]}}},
])
def test_a_damaged_or_foreign_cache_is_not_used(doc):
    assert lc.from_doc(doc) == {}


def test_the_holds_a_run_placed_and_released_are_counted_into_what_it_keeps():
    entries = {"a": lc.Entry(1, T0, (snap("a", "s1", 1, userrefs=1), snap("a", "s2", 2))),
               "b": lc.Entry(2, T0, (snap("b", "s1", 3, userrefs=2),))}
    moved = lc.with_holds(entries, {"a@s1": -1, "a@s2": +1, "b@s1": -1, "c@s1": +1, "a@gone": 1})
    assert [s.userrefs for s in moved["a"].snapshots] == [0, 1]
    assert [s.userrefs for s in moved["b"].snapshots] == [1]
    assert set(moved) == {"a", "b"}
    # a count never goes below 0 (a release ZFS called harmless: the hold was not there)
    assert lc.with_holds(entries, {"a@s2": -1})["a"].snapshots[1].userrefs == 0
    assert entries["a"].snapshots[0].userrefs == 1  # the input is left as it was


# -- replicate runs against fakes of both hosts -------------------------------------------------

class SourceZfs(MoreZfs):
    def _send(self, args: list[str]) -> tuple[int, str, str]:  # only `zfs send -n -P` (dry run)
        assert "-n" in args
        return 0, "size\t4096\n", ""


class FakeSession:
    """Stands in for `SshSession`: no ssh, the target fake answers."""

    target: MoreZfs

    def __init__(self, target, *, host=None, **_kw) -> None:
        self.destination = host
        self.argv_prefix = ["ssh", "--", host]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def begin(self) -> None:
        FakeSession.events.append(("begin", list(FakeSession.source.commands)))

    def start(self, **_kw) -> None:
        FakeSession.events.append(("start", list(FakeSession.source.commands)))

    def close(self) -> None:
        FakeSession.events.append(("close", []))

    def runner(self):
        return FakeSession.target


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    return two_hosts(tmp_path, monkeypatch)


def two_hosts(tmp_path, monkeypatch):
    """(config, source fake, target fake): getting_back_fakes.CONFIG (tank/home, and tank/vm
    recursive, without children), both replicated to backup/h up to @s2."""
    source = SourceZfs(snapshots_changed=True).add("tank", "tank/home", "tank/vm")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home", "backup/h/tank/vm")
    target.snapshots_changed = True
    source.clock = target.clock = T0
    for ds in ("tank/home", "tank/vm"):
        for name in ("s1", "s2"):
            copy_to(target, source.add_snapshot(f"{ds}@{name}"), f"backup/h/{ds}")
    FakeSession.target, FakeSession.source, FakeSession.events = target, source, []
    monkeypatch.setattr(replicate.connect, "SshSession", FakeSession)
    return config(tmp_path), source, target


def snapshot_listings(fake: MoreZfs) -> list[list[str]]:
    return [c for c in fake.commands if c[:2] == ["zfs", "list"] and "snapshot" in c[c.index("-t") + 1]]


def replicate_once(cfg, source, target, *, tick: int = 10, **kw):
    """One run `tick` seconds after the last; returns (result, source listings, target listings)."""
    source.clock += tick
    target.clock += tick
    source.commands.clear()
    target.commands.clear()
    result = replicate.run(cfg, now=float(source.clock), local=source, **kw)
    return result, snapshot_listings(source), snapshot_listings(target)


def how(result) -> set[tuple[str, str]]:
    return {(i.details["listing"]["source"], i.details["listing"]["target"]) for i in result.items}


def test_an_unchanged_run_lists_no_snapshots_on_either_side(hosts):
    cfg, source, target = hosts
    first, src, tgt = replicate_once(cfg, source, target)
    assert [i.status for i in first.items] == [NOTHING_TO_DO] * 2
    assert src and tgt and how(first) == {("listed", "listed")}
    # the first run held each newest snapshot (zfsrep:offsite): holds leave snapshots_changed
    # alone, so the run kept its listing with those holds counted in
    second, src, tgt = replicate_once(cfg, source, target)
    assert [i.status for i in second.items] == [NOTHING_TO_DO] * 2
    assert how(second) == {("reused", "reused")}
    assert src == [] and tgt == []
    assert [i.to_snapshot for i in second.items] == ["s2", "s2"]
    assert source.tags["tank/home@s2"] == {"zfsrep:offsite"}
    # the held snapshots' tags are asked (so the next release finds them), nothing is held again
    assert [c[:2] for c in source.commands if c[:2] in (["zfs", "holds"], ["zfs", "hold"])] == [
        ["zfs", "holds"]]
    assert {"tank/home@s2", "tank/vm@s2"} <= set(next(c for c in source.commands if c[:2] == ["zfs", "holds"]))


def test_the_target_is_connected_and_listed_while_the_source_is_being_listed(hosts, monkeypatch):
    """The master connection is begun before anything is listed; the source is listed in a
    worker thread while the target connects and lists. The source's listing here waits (up to
    10 s) for the target's to start: run one after the other, it would wait in vain."""
    cfg, source, target = hosts
    replicate_once(cfg, source, target)
    FakeSession.events.clear()
    target_listing = threading.Event()
    waited: list[bool] = []
    source_run, target_run = source.run, target.run

    def source_side(argv, **kw):
        if not waited:
            waited.append(target_listing.wait(10))
        return source_run(argv, **kw)

    def target_side(argv, **kw):
        target_listing.set()
        return target_run(argv, **kw)

    monkeypatch.setattr(source, "run", source_side)
    monkeypatch.setattr(target, "run", target_side)
    result, src, tgt = replicate_once(cfg, source, target)
    assert waited == [True]
    assert [i.status for i in result.items] == [NOTHING_TO_DO] * 2
    assert FakeSession.events[0] == ("begin", [])
    assert FakeSession.events[-1][0] == "close"
    # asked once, with the listing (then only the bookmarks of the newest snapshots are made)
    assert [c for c in source.commands if c[:2] != ["zfs", "bookmark"]][-1][:2] == ["zfs", "holds"]


def test_a_source_that_cannot_be_listed_ends_the_run_with_one_error(hosts, monkeypatch):
    cfg, source, target = hosts
    source_run = source.run

    def broken(argv, **kw):
        if argv[:2] in (["sh", "-c"], ["zfs", "list"]):
            raise CommandError(list(argv), 1, "cannot open 'tank': pool I/O is currently suspended")
        return source_run(argv, **kw)

    monkeypatch.setattr(source, "run", broken)
    result = replicate.run(cfg, now=float(T0), local=source)
    assert result.items == []
    assert len(result.errors) == 1 and result.errors[0].startswith("listing datasets on ")
    assert "pool I/O is currently suspended" in result.errors[0]
    assert FakeSession.events[-1][0] == "close"


def warm(hosts):
    cfg, source, target = hosts
    for _ in range(3):
        replicate_once(cfg, source, target)
    return cfg, source, target


def test_a_snapshot_made_after_the_cached_run_is_seen_and_planned(hosts):
    cfg, source, target = warm(hosts)
    source.clock += 10
    source.add_snapshot("tank/vm@s3")
    result, src, tgt = replicate_once(cfg, source, target, dry_run=True)
    by_ds = {i.dataset: i for i in result.items}
    assert by_ds["tank/vm"].status == PLANNED and by_ds["tank/vm"].sent == ["s3"]
    assert by_ds["tank/vm"].details["listing"] == {"source": "listed", "target": "reused"}
    assert by_ds["tank/home"].status == NOTHING_TO_DO
    assert by_ds["tank/home"].details["listing"] == {"source": "reused", "target": "reused"}
    assert [c[-1] for c in src] == ["tank/vm"] and tgt == []


def test_a_snapshot_destroyed_on_the_target_out_of_band_is_seen(hosts):
    cfg, source, target = warm(hosts)
    target.clock += 10
    target.run(["zfs", "destroy", "backup/h/tank/home@s2"])
    result, _, tgt = replicate_once(cfg, source, target, dry_run=True)
    home = next(i for i in result.items if i.dataset == "tank/home")
    assert home.status == PLANNED and home.sent == ["s2"]
    assert home.details["listing"]["target"] == "listed"
    assert [c[-1] for c in tgt] == ["backup/h/tank/home"]


def test_a_change_in_the_same_second_as_the_listing_is_not_trusted(hosts):
    cfg, source, target = warm(hosts)
    # the last run read the clock at T; a snapshot now made in that same second T (after the
    # listing) leaves snapshots_changed == T: that value was never remembered, so it is listed
    source.add_snapshot("tank/vm@s3")
    assert source.changed["tank/vm"] == source.clock
    result, src, _ = replicate_once(cfg, source, target, tick=0, dry_run=True)
    db = next(i for i in result.items if i.dataset == "tank/vm")
    assert db.sent == ["s3"] and [c[-1] for c in src] == ["tank/vm"]


def test_a_dry_run_keeps_no_cache(hosts):
    cfg, source, target = hosts
    replicate_once(cfg, source, target, dry_run=True)
    assert not listing_cache_path(cfg.state_dir, "source").exists()
    assert not listing_cache_path(cfg.state_dir, "target-offsite").exists()


def test_openzfs_without_snapshots_changed_is_listed_fully_and_asked_again_a_day_later(hosts):
    cfg, source, target = hosts
    source.snapshots_changed = target.snapshots_changed = False
    first, src, tgt = replicate_once(cfg, source, target)
    assert how(first) == {("full", "full")} and src and tgt
    probes = [c for c in source.commands if c[:2] == ["sh", "-c"]]
    assert len(probes) == 1  # refused: "invalid property 'snapshots_changed'"
    doc = json.loads(listing_cache_path(cfg.state_dir, "source").read_text())
    assert doc["unsupported_until"] == source.clock + RETRY_UNSUPPORTED_S
    for _ in range(23):  # hourly runs within the day: not asked again, and the day not moved on
        hourly, _, _ = replicate_once(cfg, source, target, tick=3600)
        assert how(hourly) == {("full", "full")}
        assert not [c for c in source.commands + target.commands if c[:2] == ["sh", "-c"]]
    assert json.loads(listing_cache_path(cfg.state_dir, "source").read_text()) == doc
    source.snapshots_changed = target.snapshots_changed = True  # upgraded
    later, _, _ = replicate_once(cfg, source, target, tick=3600)  # a day after the refusal
    assert how(later) == {("listed", "listed")}


def test_a_damaged_cache_file_is_listed_afresh_and_replaced(hosts):
    cfg, source, target = warm(hosts)
    path = listing_cache_path(cfg.state_dir, "target-offsite")
    path.write_text("{not json")
    result, _, tgt = replicate_once(cfg, source, target)
    assert how(result) == {("reused", "listed")} and tgt
    # replaced by this run's listing: the configured datasets' copies, not their parents
    assert sorted(json.loads(path.read_text())["datasets"]) == ["backup/h/tank/home", "backup/h/tank/vm"]


def test_no_listing_cache_lists_everything(hosts, monkeypatch):
    cfg, source, target = warm(hosts)
    monkeypatch.setattr(replicate, "Runner", lambda: source)
    cfg_path = cfg.path
    with open(cfg_path, "w") as fh:
        fh.write(CONFIG.format(state=cfg.state_dir))  # the same config, now as a file
    r = CliRunner().invoke(app, ["replicate", "-c", cfg_path, "--no-listing-cache", "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    items = json.loads(r.stdout)["items"]
    assert {(i["details"]["listing"]["source"], i["details"]["listing"]["target"]) for i in items} \
        == {("full", "full")}
    assert snapshot_listings(source) and snapshot_listings(target)


def test_a_run_for_one_dataset_keeps_the_others_entries(hosts):
    cfg, source, target = warm(hosts)
    replicate_once(cfg, source, target, datasets=["tank/home"])
    for side, ds in (("source", "tank/vm"), ("target-offsite", "backup/h/tank/vm")):
        assert ds in json.loads(listing_cache_path(cfg.state_dir, side).read_text())["datasets"]
    result, src, tgt = replicate_once(cfg, source, target)
    assert how(result) == {("reused", "reused")} and src == [] and tgt == []


def test_a_dataset_destroyed_between_the_two_listings_is_left_out():
    from zfsrep.zfs import ZfsClient

    class Racing(MoreZfs):
        def _list(self, args):
            if args[args.index("-t") + 1] == "snapshot":  # after the dataset listing
                self.datasets.pop("tank/gone", None)
                self.snaps = [s for s in self.snaps if s.dataset != "tank/gone"]
            return super()._list(args)

    fake = Racing(snapshots_changed=True).add("tank", "tank/a", "tank/gone")
    fake.add_snapshot("tank/a@s1")
    fake.add_snapshot("tank/gone@s1")
    tree = ZfsClient(fake).list_tree_cached(["tank"], {}, recursive=True)
    assert sorted(tree.datasets) == ["tank", "tank/a"]
    assert [s.name for s in tree.snapshots["tank/a"]] == ["s1"]
    assert "tank/gone" not in tree.snapshots and "tank/gone" not in tree.listed
    assert "tank/gone" not in tree.remember()


def test_a_targets_copies_are_known_from_the_config_before_the_source_is_listed():
    from zfsrep.config.load import parse_config
    cfg = parse_config(
        'datasets = [{name = "tank/home", recursive = true, exclude = ["tank/home/cache"]},\n'
        '  {name = "tank/vm"}, {name = "tank/elsewhere", targets = ["other"]}]\n'
        'targets.offsite = {host = "b", dataset = "backup/h"}\n'
        'targets.other = {host = "c", dataset = "backup/o"}\n')
    from zfsrep.targets.select import TargetCopies
    copies = TargetCopies.of(cfg.targets["offsite"], cfg.datasets, cfg)
    inside = ["backup/h/tank/home", "backup/h/tank/home/a", "backup/h/tank/home/a/b",
              "backup/h/tank/vm"]
    outside = ["backup/h", "backup/h/tank", "backup/h/tank/home/cache",
               "backup/h/tank/home/cache/x", "backup/h/tank/vm/child", "backup/h/tank/homework",
               "backup/h/tank/elsewhere", "backup/o/tank/elsewhere"]
    assert [n for n in inside + outside if n in copies] == inside


def test_the_result_says_where_the_time_went(hosts):
    cfg, source, target = hosts
    source.add_snapshot("tank/home@s3")
    result, _, _ = replicate_once(cfg, source, target, dry_run=True)
    phases = result.phases
    assert {"ssh_begin", "source_listing", "source_holds", "ssh_connect", "target_listing",
            "waiting_for_source"} <= set(phases)
    assert all(isinstance(v, float) and v >= 0 for v in phases.values())
    # a dry run sends nothing and takes no lock
    assert "sends" not in phases and "target_lock" not in phases
    result, _, _ = replicate_once(cfg, source, target)
    assert "target_lock" in result.phases


def tag_commands(fake: MoreZfs) -> list[list[str]]:
    return [c for c in fake.commands if c[:2] in (["zfs", "hold"], ["zfs", "release"])]


def test_holds_move_in_one_zfs_hold_and_one_zfs_release_for_all_datasets(hosts):
    cfg, source, target = hosts
    replicate_once(cfg, source, target)
    assert tag_commands(source) == [["zfs", "hold", "zfsrep:offsite", "tank/home@s2", "tank/vm@s2"]]
    # both datasets move on to s3 (here copied by hand): s3 is held, s2 let go, each in one call
    source.clock += 10
    for ds in ("tank/home", "tank/vm"):
        copy_to(target, source.add_snapshot(f"{ds}@s3"), f"backup/h/{ds}")
    result, _, _ = replicate_once(cfg, source, target)
    assert [i.status for i in result.items] == [NOTHING_TO_DO] * 2
    assert tag_commands(source) == [
        ["zfs", "hold", "zfsrep:offsite", "tank/home@s3", "tank/vm@s3"],
        ["zfs", "release", "zfsrep:offsite", "tank/home@s2", "tank/vm@s2"]]
    assert {k: v for k, v in source.tags.items() if v} == {
        "tank/home@s3": {"zfsrep:offsite"}, "tank/vm@s3": {"zfsrep:offsite"}}
    # the next run reuses that listing with the moved holds counted: it asks the tags of s3
    # alone, and holds and releases nothing
    third, src, _ = replicate_once(cfg, source, target)
    assert how(third) == {("reused", "reused")} and src == []
    assert tag_commands(source) == []
    asked = [c for c in source.commands if c[:2] == ["zfs", "holds"]]
    assert len(asked) == 1 and sorted(asked[0][-2:]) == ["tank/home@s3", "tank/vm@s3"]


def test_a_release_that_fails_fails_its_own_dataset_only(hosts, monkeypatch):
    cfg, source, target = hosts
    replicate_once(cfg, source, target)
    source.clock += 10
    for ds in ("tank/home", "tank/vm"):
        copy_to(target, source.add_snapshot(f"{ds}@s3"), f"backup/h/{ds}")
    source_run = source.run

    def refusing(argv, **kw):
        if argv[:2] == ["zfs", "release"] and "tank/vm@s2" in argv:
            source.commands.append(list(argv))
            err = "cannot release hold from snapshot 'tank/vm@s2': permission denied\n"
            if kw.get("check", True):
                raise CommandError(list(argv), 1, err)
            return CommandResult(tuple(argv), 1, "", err)
        return source_run(argv, **kw)

    monkeypatch.setattr(source, "run", refusing)
    result, _, _ = replicate_once(cfg, source, target)
    by_ds = {i.dataset: i for i in result.items}
    assert by_ds["tank/home"].status == NOTHING_TO_DO
    assert by_ds["tank/vm"].status == "failed"
    assert by_ds["tank/vm"].error.startswith("tank/vm -> offsite (")
    assert "permission denied" in by_ds["tank/vm"].error
    assert source.tags["tank/home@s2"] == set()
    assert source.tags["tank/vm@s2"] == {"zfsrep:offsite"}
    # the batch was refused, then each dataset released its own
    assert [c[-1] for c in tag_commands(source)] == ["tank/vm@s3", "tank/vm@s2", "tank/home@s2",
                                                     "tank/vm@s2"]
    # the dataset whose release failed is listed again next run; the other is reused, its
    # holds counted
    again, src, _ = replicate_once(cfg, source, target, dry_run=True)
    assert {i.dataset: i.details["listing"]["source"] for i in again.items} == {
        "tank/home": "reused", "tank/vm": "listed"}
    assert [c[-1] for c in src] == ["tank/vm"]


def hourly(n: int) -> str:
    from zfsrep.core.names import format_name
    return format_name(["hourly"], T0 + 3600 * n)


@pytest.mark.parametrize("canmount", ["noauto", "on"])
def test_pruning_after_a_receive_knows_what_landed_without_listing_the_copy(tmp_path, monkeypatch, canmount):
    """The target copy is pruned from the run's listing plus what the plan landed; one
    `zfs get guid` of its newest snapshot checks the arrival. An incremental receive sets
    (`-o`) only the configured properties the copy lacks. (The pipeline is simulated here:
    the lab tests send for real.)"""
    source = SourceZfs(snapshots_changed=True).add("tank", "tank/home")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home")
    target.snapshots_changed = True
    target.datasets["backup/h/tank/home"]["canmount"] = canmount
    source.clock = target.clock = T0
    for n in (1, 2, 3):
        copy_to(target, source.add_snapshot(f"tank/home@{hourly(n)}"), "backup/h/tank/home")
    for n in (4, 5):
        source.add_snapshot(f"tank/home@{hourly(n)}")
    FakeSession.target, FakeSession.source, FakeSession.events = target, source, []
    monkeypatch.setattr(replicate.connect, "SshSession", FakeSession)
    cfg = config(tmp_path, CONFIG.replace("[[datasets]]\nname = \"tank/vm\"\nrecursive = true\n", "")
                 + "retention = {{ hourly = 2 }}\n")
    landed, received = [], []

    def pipeline(stages, **_kw):
        send = stages[0].argv
        received.append(stages[-1].argv[-1])
        base, newest = send[send.index("-I") + 1], send[-1]
        names = [s.name for s in source.snaps if s.dataset == "tank/home"]
        for name in names[names.index(base.partition("@")[2]) + 1:names.index(newest.partition("@")[2]) + 1]:
            src = next(s for s in source.snaps if s.full_name == f"tank/home@{name}")
            landed.append(copy_to(target, src, "backup/h/tank/home").name)
        return PipelineResult([StageResult("send", list(send), 0)], 1.0)

    monkeypatch.setattr(replicate.send, "run_pipeline", pipeline)
    result, _, tgt = replicate_once(cfg, source, target)
    (item,) = result.items
    assert item.status == "ok" and landed == [hourly(4), hourly(5)]
    assert received == [{"noauto": "zfs receive -u -s backup/h/tank/home",
                         "on": "zfs receive -u -s -o canmount=noauto backup/h/tank/home"}[canmount]]
    # listed once to plan; after the receive only the newest snapshot's guid is asked
    assert [c[-1] for c in tgt] == ["backup/h/tank/home"]
    assert [c for c in target.commands if c[:2] == ["zfs", "get"]] == [
        ["zfs", "get", "-H", "-p", "-o", "name,property,value", "guid",
         f"backup/h/tank/home@{hourly(5)}"]]
    assert item.destroyed == [hourly(1), hourly(2), hourly(3)]
    assert [s.name for s in target.snaps if s.dataset == "backup/h/tank/home"] == [hourly(4), hourly(5)]


def test_a_receive_that_reports_success_without_the_snapshot_fails_the_item(tmp_path, monkeypatch):
    source = SourceZfs(snapshots_changed=True).add("tank", "tank/home")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home")
    source.clock = target.clock = T0
    copy_to(target, source.add_snapshot(f"tank/home@{hourly(1)}"), "backup/h/tank/home")
    source.add_snapshot(f"tank/home@{hourly(2)}")
    FakeSession.target, FakeSession.source, FakeSession.events = target, source, []
    monkeypatch.setattr(replicate.connect, "SshSession", FakeSession)
    monkeypatch.setattr(replicate.send, "run_pipeline", lambda stages, **_kw: PipelineResult(
        [StageResult("send", list(stages[0].argv), 0)], 1.0))
    cfg = config(tmp_path, CONFIG.replace("[[datasets]]\nname = \"tank/vm\"\nrecursive = true\n", ""))
    result, _, _ = replicate_once(cfg, source, target)
    (item,) = result.items
    assert item.status == "failed"
    assert f"the receive reported success but {hourly(2)} is not on" in item.error
    assert item.destroyed == []
