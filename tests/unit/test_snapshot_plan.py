"""The snapshot run plan: which datasets, one create per pool (with -r only when exact),
retention per dataset including the new snapshot, foreign/held untouched, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.config.model import DatasetConfig, Retention
from zfsrep.core.names import format_name, parse_name
from zfsrep.core.snapshot import Snapshot
from zfsrep.core.snapshot_plan import (
    destroy_commands,
    managed_datasets,
    plan_snapshots,
    pool_creates,
)

NOW = datetime(2026, 11, 22, 4, 7, tzinfo=UTC).timestamp()
HOURLY = Retention(frequent=0, hourly=2, daily=0, weekly=0, monthly=0, yearly=0)


def snap(ds: str, name: str, txg: int, *, used: int = 0, refs: int = 0, guid: int | None = None) -> Snapshot:
    return Snapshot(ds, name, guid or txg * 7 + len(ds), txg, 0, used, refs)


def test_managed_resolves_recursive_exclude_and_most_specific_entry():
    listed = ["tank", "tank/home", "tank/home/a b", "tank/home/-x", "tank/home/cache", "tank/home/cache/y",
              "tank/vm", "tank/vm/disk"]
    entries = [
        DatasetConfig("tank", recursive=True, exclude=("tank/home/cache",)),
        DatasetConfig("tank/vm", recursive=True, snapshot=False),
        DatasetConfig("tank/home/-x", retention=HOURLY),
        DatasetConfig("tank/gone"),
    ]
    managed, missing = managed_datasets(entries, listed)
    assert {d: e.name for d, e in managed.items()} == {
        "tank": "tank", "tank/home": "tank", "tank/home/a b": "tank", "tank/home/-x": "tank/home/-x"}
    assert [(e.name, m) for e, m in missing] == [("tank/gone", "dataset tank/gone does not exist")]


def test_recursive_subtree_uses_one_zfs_snapshot_dash_r():
    listed = ["tank", "tank/home", "tank/home/a b", "tank/home/-c", "data", "data/x"]
    entries = [DatasetConfig("tank/home", recursive=True, retention=HOURLY),
               DatasetConfig("data/x", retention=HOURLY)]
    plan = plan_snapshots(entries, listed, {}, NOW)
    name = format_name(["hourly"], NOW)
    assert [(c.pool, c.names, c.recursive) for c in plan.creates] == [
        ("tank", (f"tank/home@{name}",), True),
        ("data", (f"data/x@{name}",), False),
    ]
    assert set(plan.creates[0].datasets) == {"tank/home", "tank/home/a b", "tank/home/-c"}


def test_excluded_child_forces_an_explicit_list_in_one_invocation():
    listed = ["tank/home", "tank/home/a", "tank/home/cache", "tank/other"]
    entries = [DatasetConfig("tank/home", recursive=True, exclude=("tank/home/cache",), retention=HOURLY),
               DatasetConfig("tank/other", retention=HOURLY)]
    plan = plan_snapshots(entries, listed, {}, NOW)
    name = format_name(["hourly"], NOW)
    assert len(plan.creates) == 1
    create = plan.creates[0]
    assert not create.recursive
    assert create.names == (f"tank/home@{name}", f"tank/home/a@{name}", f"tank/other@{name}")


def test_different_due_labels_in_a_subtree_fall_back_to_explicit_names():
    listed = ["tank/h", "tank/h/new"]
    retention = Retention(frequent=0, hourly=2, daily=1, weekly=0, monthly=0, yearly=0)
    today = format_name(["hourly", "daily"], NOW - 3600)
    plan = plan_snapshots([DatasetConfig("tank/h", recursive=True, retention=retention)], listed,
                          {"tank/h": [snap("tank/h", today, 1)]}, NOW)
    (create,) = plan.creates
    assert not create.recursive
    assert create.names == (f"tank/h@{format_name(['hourly'], NOW)}", f"tank/h/new@{format_name(['hourly', 'daily'], NOW)}")


def test_pool_creates_minimal_roots():
    creates = pool_creates({"p/a": "s", "p/a/b": "s", "p/c": "s"}, ["p", "p/a", "p/a/b", "p/c"])
    assert [(c.names, c.recursive) for c in creates] == [(("p/a@s", "p/c@s"), True)]
    # the pool root itself is listed but not wanted: p/a and p/c are still whole subtrees
    creates = pool_creates({"p/a": "s"}, ["p/a", "p/a/b"])
    assert creates[0].names == ("p/a@s",) and not creates[0].recursive


def test_prunes_oldest_beyond_count_counting_the_new_one_and_sums_used():
    old = [snap("tank/a", format_name(["hourly"], NOW - 3600 * i), 10 - i, used=100 * i) for i in (3, 2, 1)]
    manual = snap("tank/a", "manual", 1)
    held = snap("tank/a", format_name(["hourly"], NOW - 3600 * 9), 2, refs=1)
    plan = plan_snapshots([DatasetConfig("tank/a", retention=HOURLY)], ["tank/a"],
                          {"tank/a": [manual, held, *old]}, NOW)
    (dp,) = plan.datasets
    assert dp.create == format_name(["hourly"], NOW)
    assert [s.name for s in dp.destroy] == [old[0].name, old[1].name]  # keeps -1h and the new one
    assert dp.freed == 500 and plan.freed == 500
    assert dp.foreign == 1 and dp.kept == 3  # -1h, new, held


def test_protected_guid_survives():
    old = [snap("tank/a", format_name(["hourly"], NOW - 3600 * i), 10 - i) for i in (5, 4, 3)]
    plan = plan_snapshots([DatasetConfig("tank/a", retention=HOURLY)], ["tank/a"], {"tank/a": old}, NOW,
                          protected={old[0].guid})
    assert [s.name for s in plan.datasets[0].destroy] == [old[1].name]


def test_missing_dataset_is_an_error_item_and_others_still_planned():
    plan = plan_snapshots([DatasetConfig("tank/gone"), DatasetConfig("tank/a", retention=HOURLY)], ["tank/a"], {}, NOW)
    assert [(d.dataset, d.error is not None, d.create is not None) for d in plan.datasets] == [
        ("tank/gone", True, False), ("tank/a", False, True)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 400), max_size=12, unique=True),
       st.fixed_dictionaries({"hourly": st.integers(0, 4), "daily": st.integers(0, 3), "weekly": st.integers(0, 2)}))
def test_applying_the_plan_then_planning_again_at_the_same_now_does_nothing(hours_ago, counts):
    retention = Retention(frequent=0, monthly=0, yearly=0, **counts)
    existing = [snap("tank/a", format_name(["hourly", "daily"], NOW - 3600 * h), 1000 - h) for h in sorted(hours_ago, reverse=True)]
    entries = [DatasetConfig("tank/a", retention=retention)]
    plan = plan_snapshots(entries, ["tank/a"], {"tank/a": existing}, NOW)
    (dp,) = plan.datasets
    after = [s for s in existing if s not in dp.destroy]
    if dp.create:
        after.append(snap("tank/a", dp.create, 2000))
        assert parse_name(dp.create).time == int(NOW)
    again = plan_snapshots(entries, ["tank/a"], {"tank/a": after}, NOW)
    assert again.creates == [] and again.datasets[0].destroy == ()


def _hourly_tree(tree, hours):
    """Every dataset of ``tree`` with the same hourly snapshots (as `zfs snapshot -r` made them)."""
    names = [format_name(["hourly"], NOW - 3600 * h) for h in hours]
    return names, {d: [snap(d, n, 10 + i, guid=1000 * i + j) for i, n in enumerate(names)]
                   for j, d in enumerate(tree)}


def test_uniform_prune_is_one_recursive_destroy_and_held_or_protected_names_are_not():
    tree = ["tank/h", "tank/h/a", "tank/h/b", "tank/h/b/c"]
    names, existing = _hourly_tree(tree, (6, 5, 4, 3))
    entries = [DatasetConfig("tank/h", recursive=True, retention=HOURLY)]
    plan = plan_snapshots(entries, tree, existing, NOW)
    assert [(c.root, c.names, c.recursive) for c in plan.destroys] == [("tank/h", tuple(names[:3]), True)]
    assert set(plan.destroys[0].datasets) == set(tree)

    held = dict(existing, **{"tank/h/b": [snap("tank/h/b", names[0], 10, refs=1), *existing["tank/h/b"][1:]]})
    base = existing["tank/h/a"][1].guid  # a replication base of tank/h/a
    plan = plan_snapshots(entries, tree, held, NOW, protected={base})
    assert [(c.root, c.names, c.recursive) for c in plan.destroys] == [
        ("tank/h", (names[2],), True),
        ("tank/h", (names[0], names[1]), False),
        ("tank/h/a", (names[0],), False),
        ("tank/h/b", (names[1],), True),  # reaches tank/h/b/c; tank/h/b's own names[0] is held
        ("tank/h/b/c", (names[0],), False),
    ]


def test_skipped_dataset_prunes_nothing_and_blocks_r_over_it():
    tree = ["tank/h", "tank/h/a"]
    names, existing = _hourly_tree(tree, (6, 5, 4))
    plan = plan_snapshots([DatasetConfig("tank/h", recursive=True, retention=HOURLY)], tree, existing, NOW)
    assert [(c.root, c.recursive) for c in plan.destroys] == [("tank/h", True)]
    again = destroy_commands(plan, tree, existing, skip={"tank/h/a"})  # its new snapshot failed
    assert [(c.root, c.names, c.recursive) for c in again] == [("tank/h", tuple(names[:2]), False)]


def test_excluded_child_is_unknown_so_its_parent_is_never_a_recursive_root():
    tree = ["tank/h", "tank/h/a", "tank/h/tmp"]
    _, existing = _hourly_tree(["tank/h", "tank/h/a"], (6, 5, 4))
    entries = [DatasetConfig("tank/h", recursive=True, exclude=("tank/h/tmp",), retention=HOURLY)]
    plan = plan_snapshots(entries, tree, existing, NOW)
    assert [(c.root, c.recursive) for c in plan.destroys] == [("tank/h", False), ("tank/h/a", False)]
