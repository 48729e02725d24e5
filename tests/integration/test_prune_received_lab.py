"""`zfsrep prune-received` on the target, on real OpenZFS: the target thins the copies it
received by the retention its own `[receive]` config declares, keeps the newest (common)
snapshot, a held one and every snapshot zfsrep did not name, touches nothing outside the
root, and the source's next incremental still works (GUIDs and file checksums on the target).

Root push as in the other lab tests; replicate's own target pruning is given counts so large
that it prunes nothing, so every destroy seen here is prune-received's.
"""

from __future__ import annotations

import json

import pytest
import tomli_w

from tests.integration.test_replicate_lab import (
    PARENT,
    SEND_PATTERN,
    assert_same,
    item,
    replicate_and_kill,
    replicate_ok,
    snapshots,
    token_of,
    write_config,
)

pytestmark = pytest.mark.lab

DS, CHILD = "tank/data", "tank/data/sub"
TDS, TCHILD = f"{PARENT}/{DS}", f"{PARENT}/{CHILD}"
KEEP_ALL = {"frequent": 0, "hourly": 1000, "daily": 1000, "weekly": 0, "monthly": 0, "yearly": 0}
OUTSIDE = "backup/other"  # on the target, outside the root: never touched


def hourly(day, hour, labels="hourly"):
    return f"zfsrep_{labels}_2026-01-{day:02d}T{hour:02d}:00:00Z"


def take(lab, *names):
    """For each name: a new file in both datasets, then one `zfs snapshot -r` (one ssh call)."""
    lab.ssh("source", ["sh", "-c", """
set -e
for n; do
    for ds in tank/data tank/data/sub; do
        mp=$(zfs get -H -o value mountpoint "$ds"); head -c $((30000 + $(ls "$mp" | wc -l) * 991)) /dev/urandom > "$mp/$n.bin"
    done
    zfs snapshot -r "tank/data@$n"
done""", "take", *names])


def write_receive_config(lab, retention):
    doc = {"state_dir": "/var/lib/zfsrep", "lock_dir": "/run/zfsrep",
           "retention": {"frequent": 0, "hourly": 0, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0},
           "receive": {"sources": {"source": {"root": PARENT, "retention": retention}}}}
    lab.ssh("target", "mkdir -p /etc/zfsrep && cat > /etc/zfsrep/config.toml", input=tomli_w.dumps(doc))
    lab.run_zfsrep(["config", "check"], host="target")


def prune_received(lab, *args):
    proc = lab.run_zfsrep(["prune-received", "--json", *args], host="target", check=False)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def setup(lab):
    lab.ssh("source", f"rm -rf /var/lib/zfsrep && zfs create {DS} && zfs create {CHILD}")
    lab.ssh("target", f"rm -rf /var/lib/zfsrep && zfs create {OUTSIDE} && "
                      f"zfs snapshot {OUTSIDE}@{hourly(1, 0)} && zfs snapshot {OUTSIDE}@{hourly(1, 1)}")
    write_config(lab, [{"name": DS, "recursive": True}], target={"retention": KEEP_ALL})


def test_target_thins_its_copies_keeps_base_held_and_foreign_and_the_next_incremental_works(clean_lab):
    lab = clean_lab
    setup(lab)
    first = [hourly(1, 0, "hourly.daily"), hourly(1, 1), hourly(1, 2), "manual-before-upgrade",
             hourly(2, 0, "hourly.daily"), hourly(2, 1)]
    take(lab, *first)
    replicate_ok(lab)
    assert list(snapshots(lab, "target", TDS)) == first and list(snapshots(lab, "target", TCHILD)) == first
    lab.ssh("target", ["zfs", "hold", "keep-for-audit", f"{TDS}@{hourly(1, 1)}"])
    write_receive_config(lab, {"daily": 1})
    source_before = {d: snapshots(lab, "source", d) for d in (DS, CHILD)}
    outside_before = snapshots(lab, "target", OUTSIDE)

    # a dry run plans and destroys nothing
    code, plan, err = prune_received(lab, "--dry-run")
    assert code == 0, err
    planned = {i["dataset"]: i for i in plan["items"]}
    assert planned[TDS]["status"] == "planned"
    assert planned[TDS]["destroyed"] == [f"{TDS}@{n}" for n in (hourly(1, 0, "hourly.daily"), hourly(1, 2))]
    assert list(snapshots(lab, "target", TDS)) == first

    code, data, err = prune_received(lab)
    assert code == 0, f"{err}\n{json.dumps(data, indent=1)[:3000]}"
    # daily = 1 keeps the newest daily; the newest snapshot (the next base), the held one and
    # the foreign one stay whatever the counts; the child has no hold
    want = [hourly(1, 1), "manual-before-upgrade", hourly(2, 0, "hourly.daily"), hourly(2, 1)]
    assert list(snapshots(lab, "target", TDS)) == want
    assert list(snapshots(lab, "target", TCHILD)) == [n for n in want if n != hourly(1, 1)]
    got = {i["dataset"]: i for i in data["items"]}
    assert got[TDS]["details"]["kept_held"] == [hourly(1, 1)] and got[TDS]["status"] == "ok"
    assert got[TCHILD]["destroyed"] == [f"{TCHILD}@{n}" for n in (hourly(1, 0, "hourly.daily"), hourly(1, 1), hourly(1, 2))]
    assert snapshots(lab, "target", OUTSIDE) == outside_before, "outside the root: untouched"
    assert {d: snapshots(lab, "source", d) for d in (DS, CHILD)} == source_before
    assert_same(lab, DS, want)
    last = json.loads(lab.ssh("target", "cat /var/lib/zfsrep/last-prune-received.json").stdout)
    assert last["verb"] == "prune-received" and last["exit_code"] == 0

    # the source's next incremental starts from the base the target kept
    second = [hourly(2, 2), hourly(3, 0, "hourly.daily")]
    take(lab, *second)
    it = item(replicate_ok(lab), DS)
    assert it["status"] == "ok" and it["from_snapshot"] == hourly(2, 1) and it["to_snapshot"] == second[-1]
    assert [s["step"].split()[0] for s in it["details"]["steps"]] == ["incremental"]
    assert_same(lab, DS, want + second)
    assert_same(lab, CHILD, [n for n in want if n != hourly(1, 1)] + second)

    # and again: the old base goes now, the new one stays, and replication goes on
    code, data, err = prune_received(lab)
    assert code == 0, err
    want2 = [hourly(1, 1), "manual-before-upgrade", hourly(3, 0, "hourly.daily")]
    assert list(snapshots(lab, "target", TDS)) == want2
    take(lab, hourly(3, 1))
    it = item(replicate_ok(lab), DS)
    assert it["from_snapshot"] == hourly(3, 0, "hourly.daily") and it["to_snapshot"] == hourly(3, 1)
    assert_same(lab, DS, want2 + [hourly(3, 1)])
    assert_same(lab, CHILD, want2[1:] + [hourly(3, 1)])


def test_a_copy_with_a_partial_receive_is_skipped_and_the_receive_then_resumes(clean_lab):
    lab = clean_lab
    lab.ssh("source", f"rm -rf /var/lib/zfsrep && zfs create -o compression=off {DS}")
    write_config(lab, [DS], target={"retention": KEEP_ALL, "rate_limit": "2M"})
    take_one = ["sh", "-c", f'head -c 100000 /dev/urandom > /{DS}/$1 && zfs snapshot "{DS}@$1"', "s"]
    names = [hourly(1, h) for h in range(3)]
    for n in names:
        lab.ssh("source", [*take_one, n])
    replicate_ok(lab)
    lab.ssh("source", f"head -c 40000000 /dev/urandom > /{DS}/big")
    lab.ssh("source", [*take_one, hourly(1, 3)])
    rc, data, killed = replicate_and_kill(lab, SEND_PATTERN, f"{TDS}/%recv", 4_000_000)
    assert killed and rc == 1 and token_of(lab, TDS)
    write_receive_config(lab, {"hourly": 1})

    code, data, err = prune_received(lab)
    assert code == 0, err
    (it,) = [i for i in data["items"] if i["dataset"] == TDS]
    assert it["status"] == "skipped" and "partial receive" in it["details"]["skipped"]
    assert list(snapshots(lab, "target", TDS)) == names, "nothing pruned under a pending receive"
    human = lab.run_zfsrep(["prune-received"], host="target")
    assert f"{TDS} on " in human.stdout and "skipped: a partial receive is pending" in human.stdout

    it = item(replicate_ok(lab), DS)
    assert it["resumed"] is True and token_of(lab, TDS) is None
    code, data, err = prune_received(lab)
    assert code == 0, err
    assert list(snapshots(lab, "target", TDS)) == [hourly(1, 3)]
    assert_same(lab, DS, [hourly(1, 3)])
