"""The target's own pruning plan (`core.received_prune_plan`): hypothesis over random trees of
received snapshots proves the safety rules, applying the grouped destroy commands as ZFS would
(``-r`` reaches every descendant that has the name); examples show each rule by itself."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.core.labels import LABELS
from zfsrep.core.names import format_name, parse_name
from zfsrep.core.received_prune_plan import ReceivedSource, plan_received_prune
from zfsrep.core.snapshot import Snapshot, is_descendant

ROOT = "backup/hosts/web1"
# the root's tree, and datasets outside it that share its snapshot names (a sibling whose name
# starts like the root's, the root's parent): the plan must never reach them
INSIDE = [ROOT, f"{ROOT}/tank", f"{ROOT}/tank/home", f"{ROOT}/tank/home/a b", f"{ROOT}/tank/db"]
OUTSIDE = ["backup", "backup/hosts", "backup/hosts/web10", "backup/hosts/web10/tank"]
T0 = 1_795_320_000
DAY = 86_400


def snap(ds: str, name: str, txg: int, *, refs: int = 0, guid: int | None = None) -> Snapshot:
    return Snapshot(ds, name, guid=guid if guid is not None else hash((ds, name)) & 0xFFFFFFFF,
                    createtxg=txg, creation=T0, used=10, userrefs=refs)


def daily(n: int) -> str:
    return format_name(["daily"], T0 + n * DAY)


@st.composite
def trees(draw):
    """Every dataset in INSIDE + OUTSIDE gets a random history drawn from one pool of names
    (so names repeat across datasets, as recursive snapshots do), some foreign, some held,
    some datasets with a pending partial receive."""
    times = sorted(draw(st.lists(st.integers(0, 400), min_size=1, max_size=14, unique=True)))
    pool = []
    for t in times:
        if draw(st.integers(0, 5)) == 0:
            pool.append(f"manual-{t}")
        else:
            pool.append(format_name(draw(st.sets(st.sampled_from(LABELS), min_size=1)), T0 + t * 3600))
    datasets, snapshots, guid = {}, {}, iter(range(1, 10**6))
    for ds in INSIDE + OUTSIDE:
        token = "1-abc-def" if draw(st.integers(0, 6)) == 0 else "-"
        datasets[ds] = {"receive_resume_token": token}
        picked = [i for i in range(len(pool)) if draw(st.booleans())]
        snapshots[ds] = [Snapshot(ds, pool[i], next(guid), createtxg=i + 1, creation=T0,
                                  userrefs=1 if draw(st.integers(0, 6)) == 0 else 0) for i in picked]
    counts = draw(st.fixed_dictionaries({label: st.integers(0, 3) for label in LABELS}))
    return datasets, snapshots, counts


def apply(commands, snapshots):
    """What ZFS would destroy: {dataset: names}, -r reaching every descendant with the name."""
    gone: dict[str, set[str]] = {}
    for c in commands:
        reach = [d for d in snapshots if is_descendant(d, c.root)] if c.recursive else [c.root]
        for d in reach:
            gone.setdefault(d, set()).update(n for n in c.names if n in {s.name for s in snapshots[d]})
    return gone


@settings(max_examples=300, deadline=None)
@given(trees())
def test_safety_rules_hold_for_any_tree(tree):
    datasets, snapshots, counts = tree
    plan = plan_received_prune([ReceivedSource("web1", ROOT, counts)], datasets, snapshots, T0)
    gone = apply(plan.destroys, snapshots)
    planned = {p.dataset: {s.name for s in p.destroy} for p in plan.datasets}
    for ds, names in gone.items():
        assert is_descendant(ds, ROOT), f"{ds} is outside the root"
        assert names == planned.get(ds, set()), "the commands destroy exactly the plan"
    for ds, snaps in snapshots.items():
        doomed = gone.get(ds, set())
        if not snaps or not doomed:
            continue
        by_name = {s.name: s for s in snaps}
        assert all(parse_name(n) for n in doomed), "only zfsrep-named snapshots"
        assert all(by_name[n].userrefs == 0 for n in doomed), "never a held one"
        assert max(snaps, key=lambda s: s.createtxg).name not in doomed, "never the newest"
        ours = [s for s in snaps if parse_name(s.name)]
        assert max(ours, key=lambda s: s.createtxg).name not in doomed, "never the newest zfsrep one"
        assert datasets[ds]["receive_resume_token"] == "-", "never one with a partial receive"
    # idempotent: planning again over what is left destroys nothing
    left = {ds: [s for s in snaps if s.name not in gone.get(ds, set())] for ds, snaps in snapshots.items()}
    again = plan_received_prune([ReceivedSource("web1", ROOT, counts)], datasets, left, T0)
    assert again.destroys == []


def test_thins_by_retention_and_keeps_the_newest_even_with_zero_counts():
    snaps = {ROOT: [snap(ROOT, daily(i), i) for i in range(1, 6)]}
    plan = plan_received_prune([ReceivedSource("web1", ROOT, {"daily": 2})], {ROOT: {}}, snaps, T0)
    assert [s.name for s in plan.datasets[0].destroy] == [daily(1), daily(2), daily(3)]
    none = plan_received_prune([ReceivedSource("web1", ROOT, {})], {ROOT: {}}, snaps, T0)
    assert [s.name for s in none.datasets[0].destroy] == [daily(i) for i in range(1, 5)]
    assert none.datasets[0].newest == daily(5)


def test_newest_zfsrep_snapshot_is_kept_behind_a_newer_foreign_one():
    snaps = {ROOT: [snap(ROOT, daily(1), 1), snap(ROOT, daily(2), 2), snap(ROOT, "manual", 3)]}
    plan = plan_received_prune([ReceivedSource("web1", ROOT, {})], {ROOT: {}}, snaps, T0)
    assert [s.name for s in plan.datasets[0].destroy] == [daily(1)]
    assert plan.datasets[0].foreign == 1


def test_held_snapshot_is_kept_and_named():
    snaps = {ROOT: [snap(ROOT, daily(1), 1, refs=1), snap(ROOT, daily(2), 2), snap(ROOT, daily(3), 3)]}
    plan = plan_received_prune([ReceivedSource("web1", ROOT, {"daily": 1})], {ROOT: {}}, snaps, T0)
    assert [s.name for s in plan.datasets[0].destroy] == [daily(2)]
    assert plan.datasets[0].kept_held == (daily(1),)


def test_partial_receive_is_skipped_with_a_line_and_blocks_recursive_destroy_over_it():
    child = f"{ROOT}/tank"
    names = [daily(i) for i in range(1, 4)]
    snaps = {ROOT: [snap(ROOT, n, i) for i, n in enumerate(names, 1)],
             child: [snap(child, n, i) for i, n in enumerate(names, 1)]}
    datasets = {ROOT: {"receive_resume_token": "-"}, child: {"receive_resume_token": "1-e3a-c8-789c"}}
    plan = plan_received_prune([ReceivedSource("web1", ROOT, {})], datasets, snaps, T0)
    skipped = next(p for p in plan.datasets if p.dataset == child)
    assert skipped.destroy == () and "partial receive" in skipped.skipped
    assert [(c.root, c.names, c.recursive) for c in plan.destroys] == [(ROOT, (daily(1), daily(2)), False)]


def test_whole_tree_pruned_alike_takes_one_recursive_command_inside_the_root():
    names = [daily(i) for i in range(1, 4)]
    tree = [ROOT, f"{ROOT}/tank", f"{ROOT}/tank/home"]
    snaps = {d: [snap(d, n, i) for i, n in enumerate(names, 1)] for d in tree + ["backup/hosts"]}
    datasets = {d: {} for d in tree + ["backup/hosts"]}
    plan = plan_received_prune([ReceivedSource("web1", ROOT, {"daily": 1})], datasets, snaps, T0)
    assert [(c.root, c.names, c.recursive) for c in plan.destroys] == [(ROOT, (daily(1), daily(2)), True)]
    assert {p.dataset for p in plan.datasets} == set(tree)


def test_missing_root_is_reported_not_planned():
    plan = plan_received_prune([ReceivedSource("web1", ROOT, {})], {"backup": {}}, {}, T0)
    assert plan.missing == ["web1"] and plan.datasets == [] and plan.destroys == []
