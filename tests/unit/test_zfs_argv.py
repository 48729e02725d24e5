"""argv builders: every name is its own argv element; destroy batches respect the size cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfsrep.zfs import argv as za


def test_list_snapshots_recursive_one_invocation_for_all_roots():
    argv = za.list_snapshots(["tank/a b", "tank/-c"], recursive=True)
    assert argv == [
        "zfs", "list", "-H", "-p", "-t", "snapshot",
        "-o", "name,guid,createtxg,creation,used,userrefs", "-s", "createtxg", "-r",
        "tank/a b", "tank/-c",
    ]


def test_list_snapshots_non_recursive_is_depth_one():
    argv = za.list_snapshots(["tank/x"])
    assert argv[-3:] == ["-d", "1", "tank/x"]
    assert "-r" not in argv


def test_list_datasets_puts_name_first_once():
    argv = za.list_datasets(["tank"], recursive=True, props=["used", "name", "receive_resume_token"])
    assert argv == ["zfs", "list", "-H", "-p", "-t", "filesystem,volume",
                    "-o", "name,used,receive_resume_token", "-r", "tank"]


def test_snapshot_names_are_separate_elements():
    argv = za.snapshot(["tank/with space@zfsrep_hourly_2026-01-01T00:00:00Z", "tank/-dash@x"])
    assert argv == ["zfs", "snapshot", "tank/with space@zfsrep_hourly_2026-01-01T00:00:00Z", "tank/-dash@x"]
    assert za.snapshot(["tank@x"], recursive=True, props={"zfsrep:by": "t"}) == [
        "zfs", "snapshot", "-r", "-o", "zfsrep:by=t", "tank@x"]
    with pytest.raises(ValueError):
        za.snapshot([])


def test_destroy_one_batch_comma_joined():
    assert za.destroy_batches("tank/a b", ["s1", "s2", "s3"]) == [["zfs", "destroy", "tank/a b@s1,s2,s3"]]
    assert za.destroy_batches("tank/a", ["s1"], dry_run=True) == [["zfs", "destroy", "-n", "-v", "-p", "tank/a@s1"]]
    assert za.destroy_batches("tank/a", []) == []


def test_destroy_recursive_batches_put_dash_r_before_the_one_argument():
    assert za.destroy_batches("tank/-x", ["s1", "s2"], recursive=True) == [["zfs", "destroy", "-r", "tank/-x@s1,s2"]]
    assert za.destroy_batches("tank/a", ["s1", "s2"], recursive=True, max_chars=10) == [
        ["zfs", "destroy", "-r", "tank/a@s1"], ["zfs", "destroy", "-r", "tank/a@s2"]]
    assert za.destroy_batches("tank/a", ["s1"], recursive=True, dry_run=True) == [
        ["zfs", "destroy", "-r", "-n", "-v", "-p", "tank/a@s1"]]


@pytest.mark.parametrize("bad", ["", "a,b", "a@b"])
def test_destroy_rejects_names_that_would_change_meaning(bad):
    with pytest.raises(ValueError):
        za.destroy_batches("tank", [bad])


@given(st.lists(st.text(alphabet="abcz_:.-0123456789", min_size=1, max_size=40), min_size=1, max_size=200, unique=True),
       st.integers(min_value=60, max_value=2000))
def test_destroy_batches_cover_every_name_once_and_stay_under_cap(names, cap):
    batches = za.destroy_batches("pool/ds", names, max_chars=cap)
    seen = []
    for argv in batches:
        assert argv[:2] == ["zfs", "destroy"]
        arg = argv[-1]
        ds, _, joined = arg.partition("@")
        assert ds == "pool/ds"
        parts = joined.split(",")
        assert len(arg) <= cap or len(parts) == 1  # a single over-long name still gets its own batch
        seen += parts
    assert seen == names


def test_hold_release_get_holds():
    assert za.hold("zfsrep:t", ["p/a@s", "p/b c@s"]) == ["zfs", "hold", "zfsrep:t", "p/a@s", "p/b c@s"]
    assert za.release("zfsrep:t", ["p/a@s"]) == ["zfs", "release", "zfsrep:t", "p/a@s"]
    assert za.get(["receive_resume_token", "guid"], ["p/a"]) == [
        "zfs", "get", "-H", "-p", "-o", "name,property,value", "receive_resume_token,guid", "p/a"]
    assert za.holds(["p/a@s"]) == ["zfs", "holds", "-H", "p/a@s"]
