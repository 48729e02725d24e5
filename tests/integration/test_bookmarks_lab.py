"""Bookmarks as the incremental base, on real OpenZFS: replicate bookmarks the newest sent
snapshot on the source; when that snapshot is destroyed there by hand, the next run sends
incrementally from the bookmark (only the delta crosses) instead of refusing the target."""

from __future__ import annotations

import pytest

from tests.integration.test_replicate_lab import (
    PARENT,
    assert_same,
    item,
    replicate,
    replicate_ok,
    snap,
    write_config,
    write_files,
)

pytestmark = pytest.mark.lab

DS = "tank/bm"


def bookmarks(lab):
    """{bookmark name after '#': guid} of DS on the source."""
    out = lab.ssh("source", ["zfs", "list", "-H", "-p", "-t", "bookmark", "-o", "name,guid",
                             "-d", "1", DS]).stdout
    return {ln.split("\t")[0].split("#", 1)[1]: ln.split("\t")[1] for ln in out.splitlines()}


def guid(lab, name):
    return lab.ssh("source", ["zfs", "get", "-H", "-p", "-o", "value", "guid", name]).stdout.strip()


def snapshots_changed(lab):
    """The property's value, or "n/a" where zfs lacks it (OpenZFS < 2.2, the default lab)."""
    out = lab.ssh("source", ["zfs", "get", "-H", "-p", "-o", "value", "snapshots_changed", DS],
                  check=False)
    return out.stdout.strip() if out.returncode == 0 else "n/a"


@pytest.fixture(params=["clean_lab", "clean_new_zfs_lab"], ids=["openzfs-2.1", "openzfs-2.3"])
def any_lab(request):
    """Both OpenZFS versions: on 2.3 the source's snapshot listing comes through the listing
    cache, which bookmarks bypass."""
    return request.getfixturevalue(request.param)


def test_a_base_destroyed_on_the_source_is_sent_from_its_bookmark(any_lab):
    lab = any_lab
    lab.ssh("source", f"zfs create {DS}")
    write_config(lab, [DS])
    write_files(lab, f"/{DS}/a", 10, 800_000, 1)
    snap(lab, f"{DS}@a")
    first = item(replicate_ok(lab), DS)
    assert first["status"] == "ok" and first["sent"] == ["a"]
    assert set(bookmarks(lab).values()) == {guid(lab, f"{DS}@a")}
    assert first["details"]["bookmark"].split("#", 1)[1] in bookmarks(lab)

    write_files(lab, f"/{DS}/b", 2, 100_000, 2)
    snap(lab, f"{DS}@b")
    second = item(replicate_ok(lab), DS)
    assert second["status"] == "ok" and second["sent"] == ["b"]
    # replaced: one bookmark per dataset and target, of the newest snapshot the target has
    (mark,) = bookmarks(lab)
    assert bookmarks(lab)[mark] == guid(lab, f"{DS}@b") and mark.startswith("zfsrep_backup_")

    # does a bookmark move snapshots_changed? (replicate does not rely on it; printed for the record)
    before = snapshots_changed(lab)
    lab.ssh("source", ["zfs", "bookmark", f"{DS}@b", f"{DS}#probe"])
    print(f"snapshots_changed before/after zfs bookmark: {before} {snapshots_changed(lab)}")
    lab.ssh("source", ["zfs", "destroy", f"{DS}#probe"])

    # the common snapshot is destroyed on the source by hand (zfsrep's hold released first)
    lab.ssh("source", ["zfs", "release", "zfsrep:backup", f"{DS}@b"])
    lab.ssh("source", ["zfs", "destroy", f"{DS}@b"])
    write_files(lab, f"/{DS}/c", 2, 100_000, 3)
    snap(lab, f"{DS}@c")
    write_files(lab, f"/{DS}/d", 1, 50_000, 4)
    snap(lab, f"{DS}@d")

    code, dry, err = replicate(lab, "--dry-run")
    assert code == 0, err
    planned = item(dry, DS)
    assert planned["status"] == "planned" and planned["sent"] == ["c", "d"]
    assert planned["from_snapshot"] == f"#{mark}"
    assert planned["details"]["plan"][0].startswith(f"incremental from bookmark {DS}#{mark} -> {DS}@c")

    third = item(replicate_ok(lab), DS)
    assert third["status"] == "ok" and third["sent"] == ["c", "d"], third
    size = int(lab.ssh("source", ["zfs", "get", "-H", "-p", "-o", "value", "referenced", DS]).stdout)
    assert 0 < third["bytes"] < size / 10, (third["bytes"], size)  # only the delta crossed
    assert_same(lab, DS, ["a", "c", "d"])
    on_target = lab.ssh("target", ["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-d", "1",
                                   f"{PARENT}/{DS}"]).stdout.split()
    assert [n.split("@")[1] for n in on_target] == ["a", "b", "c", "d"]
    assert set(bookmarks(lab).values()) == {guid(lab, f"{DS}@d")}
