from hypothesis import given
from hypothesis import strategies as st

from zfsrep.core.snapshot import Snapshot
from zfsrep.core.verify_plan import compare, side_by_side

NOW = 1_800_000_000
HOUR = 3600


def snap(ds, name, guid, txg, age_h=0.0):
    return Snapshot(ds, name, guid, txg, int(NOW - age_h * HOUR))


def src(*specs):
    return [snap("tank/home", n, g, t, a) for n, g, t, a in specs]


def dst(*specs):
    return [snap("backup/h/tank/home", n, g, t, a) for n, g, t, a in specs]


def cmp(source, target, max_age=26 * HOUR):
    return compare("tank/home", "backup/h/tank/home", source, target, now=NOW, max_age=max_age,
                   target_name="offsite")


def test_identical_lists_are_verified():
    c = cmp(src(("a", 1, 10, 3), ("b", 2, 11, 2)), dst(("a", 1, 500, 3), ("b", 2, 501, 2)))
    assert c.verified and not c.diverged
    assert c.common == ("a", "b") and c.newest_common.name == "b"
    assert c.to_dict()["missing"] == [] and c.to_dict()["extra"] == []


def test_target_written_to_is_diverged_and_names_the_rollback():
    c = cmp(src(("a", 1, 10, 3), ("b", 2, 11, 2)),
            dst(("a", 1, 500, 3), ("b", 2, 501, 2), ("manual", 99, 502, 1)))
    assert not c.verified and c.diverged
    assert c.target_only_newer == ("manual",)
    assert "offsite:backup/h/tank/home" in c.problems[0]
    assert "zfs rollback -r backup/h/tank/home@b" in c.problems[0]


def test_same_name_different_guid_is_diverged():
    c = cmp(src(("a", 1, 10, 3), ("b", 2, 11, 2)), dst(("a", 1, 500, 3), ("b", 77, 501, 2)))
    assert c.name_clashes == ("b",) and c.diverged and not c.verified
    assert c.newest_common.name == "a"


def test_no_common_snapshot_is_diverged():
    c = cmp(src(("a", 1, 10, 3)), dst(("x", 5, 500, 3)))
    assert c.diverged and not c.verified and "no snapshot in common" in c.problems[0]


def test_old_snapshots_on_one_side_only_are_notes_not_problems():
    c = cmp(src(("b", 2, 11, 5), ("c", 3, 12, 1)),
            dst(("old", 9, 400, 900), ("b", 2, 501, 5), ("c", 3, 502, 1)))
    assert c.verified and c.kept_on_target == ("old",)
    c = cmp(src(("a", 1, 10, 50), ("b", 2, 11, 5)), dst(("b", 2, 501, 5)))
    assert c.verified and c.pruned_on_target == ("a",) and c.notes


def test_recent_lag_is_tolerated_but_an_old_base_is_behind():
    fresh = cmp(src(("a", 1, 10, 3), ("b", 2, 11, 0.5)), dst(("a", 1, 500, 3)))
    assert fresh.verified and fresh.not_replicated == ("b",)
    stale = cmp(src(("a", 1, 10, 30), ("b", 2, 11, 0.5)), dst(("a", 1, 500, 30)))
    assert not stale.verified and "behind" in stale.problems[0] and "1d6h old" in stale.problems[0]
    idle = cmp(src(("a", 1, 10, 30)), dst(("a", 1, 500, 30)))
    assert idle.verified and "is `zfsrep snapshot` running?" in idle.notes[0]


def test_missing_copies_and_empty_sides():
    assert "never replicated" in cmp(src(("a", 1, 10, 1)), None).problems[0]
    assert "no snapshots on the source" in cmp([], dst(("a", 1, 5, 1))).problems[0]
    assert "no snapshots on offsite" in cmp(src(("a", 1, 10, 1)), []).problems[0]
    c = compare("tank/x", "backup/x", None, dst(("a", 1, 5, 1)), now=NOW, target_name="t")
    assert "zfsrep restore tank/x --target t" in c.problems[0]


def test_renamed_snapshot_still_counts_by_guid():
    c = cmp(src(("a", 1, 10, 3), ("b", 2, 11, 2)), dst(("a", 1, 500, 3), ("b-renamed", 2, 501, 2)))
    assert c.verified and c.common == ("a", "b")


names = st.sampled_from([f"s{i}" for i in range(8)])


# Within one dataset both snapshot names and GUIDs are unique (as in ZFS); across the two sides
# they may coincide or differ freely.
@given(st.lists(st.tuples(names, st.integers(1, 6)), max_size=8, unique_by=(lambda t: t[0], lambda t: t[1])),
       st.lists(st.tuples(names, st.integers(1, 12)), max_size=8, unique_by=(lambda t: t[0], lambda t: t[1])))
def test_verified_means_the_target_holds_the_newest_common_data(s_specs, d_specs):
    source = [snap("tank/home", n, g, i, 1) for i, (n, g) in enumerate(s_specs)]
    target = [snap("backup/x", n, g, 100 + i, 1) for i, (n, g) in enumerate(d_specs)]
    c = compare("tank/home", "backup/x", source, target, now=NOW, max_age=None)
    if c.verified:
        assert c.newest_common is not None
        assert c.newest_common.guid in {t.guid for t in target}
        # nothing on the target after the common one that the source lacks
        tguids = [t.guid for t in target]
        after = tguids[tguids.index(c.newest_common.guid) + 1:]
        assert set(after) <= {s.guid for s in source}
        # and no name means different data on the two sides
        by_name = {s.name: s.guid for s in source}
        assert all(by_name.get(t.name, t.guid) == t.guid for t in target)


def test_side_by_side_marks_common_rows_and_clashes():
    rows = side_by_side({
        "source": src(("a", 1, 10, 3), ("b", 2, 11, 2), ("c", 3, 12, 1)),
        "offsite": dst(("old", 9, 400, 90), ("a", 1, 500, 3), ("c", 33, 502, 1)),
        "cold": None,
    })
    assert [r.name for r in rows] == ["old", "a", "b", "c", "c"]
    by = {(r.name, r.guid): r for r in rows}
    assert by[("a", 1)].common and set(by[("a", 1)].on) == {"source", "offsite"}
    assert not by[("b", 2)].common and not by[("old", 9)].common
    assert by[("c", 3)].clash == ("offsite",) and by[("c", 33)].clash == ("source",)
