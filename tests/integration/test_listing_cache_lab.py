"""The snapshot listing cache on real OpenZFS: with 2.3 (`snapshots_changed`), a replicate run
that finds nothing changed lists no snapshots on either side, and a change made between runs
(a new snapshot on the source, the target rolled back behind zfsrep's back) is seen
and acted on; with 2.1 (no such property) every run lists everything, as before.

What each run listed is read from its `-vv` log (every command zfsrep runs, on which host); what
it did is checked on the pools: snapshot GUIDs and file checksums on the target."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.test_replicate_lab import (
    PARENT,
    assert_same,
    held_by,
    item,
    snap,
    snapshots,
    write_config,
    write_files,
)

pytestmark = pytest.mark.lab

DATASETS = ["tank/a", "tank/b"]
SNAPSHOT_LISTING = re.compile(r"run(?: on (\S+))?: zfs list -H -p -t \S*snapshot")


def run(lab):
    """`zfsrep replicate --json -vv`: (parsed JSON, {"source"|"target": [datasets whose snapshots
    were listed]} from the log)."""
    proc = lab.run_zfsrep(["replicate", "--json", "-vv"], check=False, timeout=900)
    assert proc.returncode == 0, f"replicate exited {proc.returncode}: {proc.stderr[-3000:]}"
    listed: dict[str, list[str]] = {"source": [], "target": []}
    for line in proc.stderr.splitlines():
        m = SNAPSHOT_LISTING.search(line)
        if m:
            names = line.split(" -d 1 ", 1)[1].split() if " -d 1 " in line else line.split()[-1:]
            listed["target" if m.group(1) else "source"] += names
    return json.loads(proc.stdout), listed


def how(data):
    return {i["dataset"]: (i["details"]["listing"]["source"], i["details"]["listing"]["target"])
            for i in data["items"]}


def setup(lab):
    lab.ssh("source", "rm -rf /var/lib/zfsrep")
    for n, ds in enumerate(DATASETS):
        lab.ssh("source", ["zfs", "create", ds])
        write_files(lab, f"/{ds}/x", 3, 200_000, n)
        snap(lab, f"{ds}@s1")
        write_files(lab, f"/{ds}/y", 2, 100_000, 10 + n)
        snap(lab, f"{ds}@s2")
    write_config(lab, DATASETS)


def test_unchanged_runs_list_nothing_and_changes_between_runs_are_acted_on(clean_new_zfs_lab):
    lab = clean_new_zfs_lab
    assert lab.ssh("source", "zfs version").stdout.startswith("zfs-2.3")
    setup(lab)

    data, listed = run(lab)
    assert {i["status"] for i in data["items"]} == {"ok"}
    for ds in DATASETS:
        assert_same(lab, ds)
    # the target had nothing yet; after receiving, pruning knows what landed (no listing)
    assert listed == {"source": DATASETS, "target": []}
    # the received snapshots changed the target, so its copies are listed once more; the holds
    # placed on the source do not show in snapshots_changed: the run kept its listing with them
    # counted in, and asks their tags
    data, listed = run(lab)
    assert {i["status"] for i in data["items"]} == {"nothing-to-do"}
    assert listed == {"source": [], "target": [f"{PARENT}/{ds}" for ds in DATASETS]}
    assert {ds: held_by(lab, ds, "zfsrep:backup") for ds in DATASETS} == {ds: [f"{ds}@s2"] for ds in DATASETS}
    data, listed = run(lab)
    assert {i["status"] for i in data["items"]} == {"nothing-to-do"}
    assert listed == {"source": [], "target": []}
    assert how(data) == {ds: ("reused", "reused") for ds in DATASETS}
    assert [item(data, ds)["to_snapshot"] for ds in DATASETS] == ["s2", "s2"]

    # a new snapshot of tank/b: only tank/b is listed, and s3 is sent
    write_files(lab, "/tank/b/z", 2, 150_000, 20)
    snap(lab, "tank/b@s3")
    data, listed = run(lab)
    assert item(data, "tank/b")["status"] == "ok" and item(data, "tank/b")["sent"] == ["s3"]
    assert item(data, "tank/a")["status"] == "nothing-to-do"
    assert listed == {"source": ["tank/b"], "target": []}
    assert how(data)["tank/a"] == ("reused", "reused")
    assert_same(lab, "tank/b")

    # someone rolls tank/a back to s1 on the target (destroying s2 there): the next run sees it
    # and sends s2 again from s1; a stale listing would have said "up to date"
    lab.ssh("target", ["zfs", "rollback", "-r", f"{PARENT}/tank/a@s1"])
    assert list(snapshots(lab, "target", f"{PARENT}/tank/a")) == ["s1"]
    data, listed = run(lab)
    a = item(data, "tank/a")
    assert a["status"] == "ok" and a["from_snapshot"] == "s1" and a["sent"] == ["s2"], a
    # the plan's listing: tank/a (rolled back) and tank/b (s3 arrived last run)
    assert listed["target"] == [f"{PARENT}/tank/a", f"{PARENT}/tank/b"]
    assert_same(lab, "tank/a")

    # settled again: nothing listed, both up to date
    run(lab)  # lists what the last run received or held
    data, listed = run(lab)
    assert listed == {"source": [], "target": []}
    assert {item(data, ds)["to_snapshot"] for ds in DATASETS} == {"s2", "s3"}
    # the holds followed the newest common snapshots, through runs that reused the listings
    assert {ds: held_by(lab, ds, "zfsrep:backup") for ds in DATASETS} == {
        "tank/a": ["tank/a@s2"], "tank/b": ["tank/b@s3"]}


def test_openzfs_2_1_lists_everything_and_remembers_that_it_cannot_reuse(clean_lab):
    lab = clean_lab
    assert lab.ssh("source", "zfs version").stdout.startswith("zfs-2.1")
    setup(lab)
    run(lab)
    data, listed = run(lab)
    assert {i["status"] for i in data["items"]} == {"nothing-to-do"}
    assert how(data) == {ds: ("full", "full") for ds in DATASETS}
    assert listed["source"] and listed["target"]
    doc = json.loads(lab.ssh("source", "cat /var/lib/zfsrep/listings/source.json").stdout)
    assert doc["unsupported_until"] > data["started_at"]
