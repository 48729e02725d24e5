"""ZfsClient over the in-memory fake: batching (one listing per pool), missing datasets,
destroy batches, idempotent holds."""

from __future__ import annotations

import pytest

from tests.unit.fake_zfs import FakeZfs
from zfsrep.errors import CommandError
from zfsrep.zfs import DestroyError, ZfsClient, by_pool


def lab() -> FakeZfs:
    fake = FakeZfs().add("tank", "tank/a b", "tank/a b/-c", "tank/d", "data", "data/x")
    fake.add_snapshot("tank/a b@one")
    fake.add_snapshot("tank/a b/-c@one")
    fake.add_snapshot("data/x@two", used=4096, userrefs=1)
    return fake


def test_by_pool_groups_and_dedups():
    assert by_pool(["tank/a", "data/x", "tank/b", "tank/a", "tank@s"]) == {
        "tank": ["tank/a", "tank/b", "tank@s"], "data": ["data/x"]}


def test_one_snapshot_listing_per_pool_for_all_roots():
    fake = lab()
    got = ZfsClient(fake).list_snapshots(["tank/a b", "tank/d", "data"], recursive=True)
    assert len(fake.zfs_commands("list")) == 2
    assert {d: [s.name for s in snaps] for d, snaps in got.items()} == {
        "tank/a b": ["one"], "tank/a b/-c": ["one"], "data/x": ["two"]}
    assert got["data/x"][0].used == 4096 and got["data/x"][0].held


def test_missing_root_fails_unless_missing_ok():
    fake = lab()
    client = ZfsClient(fake)
    with pytest.raises(CommandError, match="dataset does not exist"):
        client.list_datasets(["tank/nope", "tank/d"])
    assert list(client.list_datasets(["tank/nope", "tank/d"], missing_ok=True)) == ["tank/d"]


def test_list_datasets_with_props():
    got = ZfsClient(lab()).list_datasets(["tank/a b"], recursive=True, props=["used"])
    assert got == {"tank/a b": {"used": "0"}, "tank/a b/-c": {"used": "0"}}


def test_snapshot_refuses_two_pools():
    with pytest.raises(ValueError, match="one pool"):
        ZfsClient(lab()).snapshot(["tank@x", "data@x"])


def test_destroy_in_batches_and_report_partial():
    fake = lab()
    for i in range(5):
        fake.add_snapshot(f"tank/d@s{i}")
    client = ZfsClient(fake)
    assert client.destroy("tank/d", ["s0", "s1"]) == ["s0", "s1"]
    assert fake.zfs_commands("destroy") == [["zfs", "destroy", "tank/d@s0,s1"]]
    fake.add_snapshot("tank/d@held", userrefs=1)
    with pytest.raises(DestroyError) as err:  # 12 chars: "tank/d@s2,s3" fits, then "held" alone
        ZfsClient(fake).destroy("tank/d", ["s2", "s3", "held", "s4"], max_chars=12)
    assert err.value.destroyed == ["s2", "s3"]
    assert "dataset is busy" in str(err.value)
    assert fake.names("tank/d") == ["s4", "held"]


def test_reclaimable_changes_nothing():
    fake = lab()
    fake.add_snapshot("tank/d@a", used=100)
    fake.add_snapshot("tank/d@b", used=50)
    assert ZfsClient(fake).reclaimable("tank/d", ["a", "b"]) == 150
    assert fake.names("tank/d") == ["a", "b"]


def test_hold_and_release_are_idempotent():
    fake = lab()
    client = ZfsClient(fake)
    client.hold("zfsrep:backup", ["tank/a b@one"])
    client.hold("zfsrep:backup", ["tank/a b@one", "tank/a b/-c@one"])  # first already held
    assert fake.tags == {"tank/a b@one": {"zfsrep:backup"}, "tank/a b/-c@one": {"zfsrep:backup"}}
    client.release("zfsrep:backup", ["tank/a b@one", "tank/a b/-c@one"])
    client.release("zfsrep:backup", ["tank/a b@one"])
    assert all(not tags for tags in fake.tags.values())
    with pytest.raises(CommandError):
        client.hold("t", ["tank/d@nope"])


def test_list_tree_is_one_listing_per_pool_for_datasets_and_snapshots():
    fake = lab()
    client = ZfsClient(fake)
    listed, snaps = client.list_tree(["tank/a b", "data"], recursive=True, props=["used"])
    assert len(fake.zfs_commands("list")) == 2
    assert list(listed) == ["tank/a b", "tank/a b/-c", "data", "data/x"]
    assert all(p["type"] == "filesystem" and p["used"] == "0" for p in listed.values())
    assert {d: [s.name for s in v] for d, v in snaps.items()} == {
        "tank/a b": ["one"], "tank/a b/-c": ["one"], "data/x": ["two"]}
    # the same answers as the two separate listings
    assert listed.keys() == client.list_datasets(["tank/a b", "data"], recursive=True).keys()
    assert snaps == client.list_snapshots(["tank/a b", "data"], recursive=True)


def test_list_tree_without_recursion_is_the_roots_and_their_own_snapshots():
    fake = lab()
    listed, snaps = ZfsClient(fake).list_tree(["tank/a b", "tank/nope"], missing_ok=True)
    assert list(listed) == ["tank/a b"] and list(snaps) == ["tank/a b"]
