"""`zfsrep snapshot` on real OpenZFS in the `source` VM: exact snapshot sets after runs at
advancing simulated times (hidden `--now`), manual and held snapshots surviving pruning, names
with spaces and a child starting with a dash, one `zfs snapshot` per pool and one recursive
`zfs destroy` per uniformly pruned subtree (counted in `zpool history`), never reaching a held or
excluded snapshot, --dry-run changing nothing, --json, exit codes and the per-config run lock."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import tomli_w

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"
HOME_TREE = ["tank/home", "tank/home/a b", "tank/home/a b/deep", "tank/home/-dash"]
RETENTION = {"frequent": 0, "hourly": 3, "daily": 2, "weekly": 1, "monthly": 1, "yearly": 0}


def write_config(lab, datasets):
    doc = {"state_dir": "/var/lib/zfsrep-snapshot-test", "retention": RETENTION, "datasets": datasets}
    lab.ssh("source", f"mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))


def zfsrep_snapshot(lab, now, *extra):
    proc = lab.run_zfsrep(["snapshot", "--now", now, "--json", *extra], check=False)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc


def snapshot_names(lab, dataset):
    out = lab.ssh("source", ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name", "-s", "createtxg",
                             "-d", "1", dataset])
    return [line.split("@", 1)[1] for line in out.stdout.splitlines()]


def history(lab, pool, verb):
    """`zfs <verb>` command lines zfsrep ran in this pool (zpool history logs each invocation)."""
    out = lab.ssh("source", ["zpool", "history", pool])
    return [line for line in out.stdout.splitlines() if f" zfs {verb} " in line and "zfsrep_" in line]


def wait_until_used(lab, snapshot, at_least):
    """ZFS frees a removed file's blocks over the next transaction groups; until then the
    snapshot that still holds them does not show them in `used`. Wait for the accounting (a
    precondition of the test, not a timing assertion)."""
    script = (
        f"for i in $(seq 120); do zpool sync tank; "
        f"[ \"$(zfs get -H -p -o value used {shlex.quote(snapshot)})\" -ge {at_least} ] && exit 0; sleep 1; done; "
        f"zfs get -H -p -o value used {shlex.quote(snapshot)}; exit 1"
    )
    proc = lab.ssh("source", script, check=False, timeout=300)
    assert proc.returncode == 0, f"{snapshot} used stayed at {proc.stdout.strip()} bytes"


def Z(stamp, *labels):
    return f"zfsrep_{'.'.join(labels)}_{stamp}"


def test_runs_at_advancing_times_create_and_prune_exactly_by_policy(clean_lab):
    lab = clean_lab
    for ds in ["tank/data", *HOME_TREE]:
        lab.ssh("source", ["zfs", "create", ds])
    lab.ssh("source", ["zfs", "snapshot", "tank/data@manual keep"])
    write_config(lab, [{"name": "tank/data"}, {"name": "tank/home", "recursive": True}])

    d = "2026-01-05T00:10:00Z"  # a Monday, first week of January: every label with a count is due
    steps = [
        ("2026-01-05T00:10:00Z", [Z(d, "hourly", "daily", "weekly", "monthly")], []),
        ("2026-01-05T01:10:00Z", [Z("2026-01-05T01:10:00Z", "hourly")], []),
        ("2026-01-05T01:50:00Z", [], []),  # same hour: nothing due
        ("2026-01-05T02:10:00Z", [Z("2026-01-05T02:10:00Z", "hourly")], []),
        ("2026-01-05T03:10:00Z", [Z("2026-01-05T03:10:00Z", "hourly")], []),  # 4 hourly, the first kept by daily
        ("2026-01-05T04:10:00Z", [Z("2026-01-05T04:10:00Z", "hourly")], [Z("2026-01-05T01:10:00Z", "hourly")]),
        ("2026-01-06T00:30:00Z", [Z("2026-01-06T00:30:00Z", "hourly", "daily")], [Z("2026-01-05T02:10:00Z", "hourly")]),
        ("2026-01-12T00:30:00Z", [Z("2026-01-12T00:30:00Z", "hourly", "daily", "weekly")],
         [Z("2026-01-05T03:10:00Z", "hourly")]),
        ("2026-02-02T00:30:00Z", [Z("2026-02-02T00:30:00Z", "hourly", "daily", "weekly", "monthly")],
         [Z("2026-01-05T04:10:00Z", "hourly"), Z(d, "hourly", "daily", "weekly", "monthly")]),
    ]
    expected: list[str] = []
    snapshot_lines = len(history(lab, "tank", "snapshot"))
    for now, created, destroyed in steps:
        code, result, proc = zfsrep_snapshot(lab, now)
        assert code == 0, proc.stdout + proc.stderr
        expected = [n for n in expected + created if n not in destroyed]
        assert snapshot_names(lab, "tank/data") == ["manual keep", *expected], now
        for ds in HOME_TREE:
            assert snapshot_names(lab, ds) == expected, (now, ds)
        items = {i["dataset"]: i for i in result["items"]}
        assert set(items) == {"tank/data", *HOME_TREE}
        assert items["tank/home/-dash"]["created"] == [f"tank/home/-dash@{n}" for n in created]
        assert sorted(items["tank/home/a b"]["destroyed"]) == sorted(f"tank/home/a b@{n}" for n in destroyed)
        # one `zfs snapshot` for the whole pool when anything is due, none otherwise
        lines = history(lab, "tank", "snapshot")
        assert len(lines) - snapshot_lines == (1 if created else 0), lines[snapshot_lines:]
        snapshot_lines = len(lines)

    # last run: one invocation covered both configured roots (-r: every child had the same name)
    assert "zfs snapshot -r tank/data@" in lines[-1] or "zfs snapshot -r tank/home@" in lines[-1]
    # destroys: the home tree prunes alike, so one `zfs destroy -r tank/home@a,b` per run
    # (tank/data its own ds@a,b batch); never one per dataset
    destroys = history(lab, "tank", "destroy")
    assert not [line for line in destroys if "tank/home/" in line], destroys
    batch = [line for line in destroys if "zfs destroy -r tank/home@" in line][-1]
    assert f"{Z('2026-01-05T04:10:00Z', 'hourly')}," in batch or f",{Z('2026-01-05T04:10:00Z', 'hourly')}" in batch

    # the same time again: nothing to do, nothing changes
    code, result, _ = zfsrep_snapshot(lab, "2026-02-02T00:30:00Z")
    assert code == 0 and {i["status"] for i in result["items"]} == {"nothing-to-do"}
    assert snapshot_names(lab, "tank/home/-dash") == expected


def test_held_snapshot_survives_and_dry_run_changes_nothing(clean_lab):
    lab = clean_lab
    lab.ssh("source", ["zfs", "create", "tank/db"])
    write_config(lab, [{"name": "tank/db", "retention": {"hourly": 1, "daily": 0, "weekly": 0, "monthly": 0}}])
    assert zfsrep_snapshot(lab, "2026-03-29T00:05:00Z")[0] == 0  # the EU DST night, in UTC
    first = Z("2026-03-29T00:05:00Z", "hourly")
    lab.ssh("source", ["zfs", "hold", "keep-me", f"tank/db@{first}"])
    lab.ssh("source", "dd if=/dev/urandom of=/tank/db/blob bs=64k count=16 status=none && sync")
    assert zfsrep_snapshot(lab, "2026-03-29T01:05:00Z")[0] == 0
    second = Z("2026-03-29T01:05:00Z", "hourly")
    assert snapshot_names(lab, "tank/db") == [first, second]  # the held one stays

    lab.ssh("source", ["zfs", "release", "keep-me", f"tank/db@{first}"])
    lab.ssh("source", "rm /tank/db/blob && sync")
    wait_until_used(lab, f"tank/db@{second}", 1024 * 1024)
    before = snapshot_names(lab, "tank/db")
    code, plan, _ = zfsrep_snapshot(lab, "2026-03-29T02:05:00Z", "--dry-run")
    assert code == 0 and plan["dry_run"] is True
    (item,) = plan["items"]
    assert item["status"] == "planned"
    assert item["created"] == [f"tank/db@{Z('2026-03-29T02:05:00Z', 'hourly')}"]
    assert sorted(item["destroyed"]) == sorted([f"tank/db@{first}", f"tank/db@{second}"])
    assert item["details"]["freed_bytes_at_least"] >= 1024 * 1024  # the blob lives only in `second`
    assert snapshot_names(lab, "tank/db") == before
    text = lab.run_zfsrep(["snapshot", "--now", "2026-03-29T02:05:00Z", "--dry-run"]).stdout
    assert "dry run" in text and "zfs snapshot tank/db@" in text
    assert re.search(r"freeing at least 1\.\d MiB", text), text

    assert zfsrep_snapshot(lab, "2026-03-29T02:05:00Z")[0] == 0
    assert snapshot_names(lab, "tank/db") == [Z("2026-03-29T02:05:00Z", "hourly")]


def test_exclude_missing_dataset_and_two_pools(clean_lab):
    lab = clean_lab
    for ds in ["tank/home", "tank/home/keep", "tank/home/cache", "tank/home/cache/sub"]:
        lab.ssh("source", ["zfs", "create", ds])
    lab.ssh("source", "zpool destroy second 2>/dev/null; rm -f /var/tmp/second.img; "
                      "truncate -s 128M /var/tmp/second.img && zpool create -O mountpoint=/second second /var/tmp/second.img "
                      "&& zfs create 'second/v m'")
    tank_before = len(history(lab, "tank", "snapshot"))  # the pool (and its history) outlives clean_lab
    try:
        write_config(lab, [
            {"name": "tank/home", "recursive": True, "exclude": ["tank/home/cache"]},
            {"name": "second/v m"},
            {"name": "tank/missing"},
        ])
        code, result, proc = zfsrep_snapshot(lab, "2026-06-01T10:00:00Z")
        assert code == 3, proc.stdout
        items = {i["dataset"]: i for i in result["items"]}
        assert items["tank/missing"]["status"] == "failed"
        assert "tank/missing does not exist" in items["tank/missing"]["error"]
        name = Z("2026-06-01T10:00:00Z", "hourly", "daily", "weekly", "monthly")
        for ds in ["tank/home", "tank/home/keep", "second/v m"]:
            assert snapshot_names(lab, ds) == [name]
        for ds in ["tank/home/cache", "tank/home/cache/sub"]:
            assert snapshot_names(lab, ds) == []
        # one invocation per pool; the excluded child forces an explicit list in tank
        (tank_line,) = history(lab, "tank", "snapshot")[tank_before:]
        assert "-r" not in tank_line.split() and f"tank/home@{name} tank/home/keep@{name}" in tank_line
        assert len(history(lab, "second", "snapshot")) == 1
        text = lab.run_zfsrep(["snapshot", "--now", "2026-06-01T10:00:00Z"], check=False)
        assert text.returncode == 3
        assert ("tank/missing: FAILED: dataset tank/missing does not exist on source; create it (zfs create) "
                f"or remove it from [[datasets]] in {CONFIG}") in text.stdout
        state = json.loads(lab.ssh("source", "cat /var/lib/zfsrep-snapshot-test/last-snapshot.json").stdout)
        assert state["exit_code"] == 3
    finally:
        lab.ssh("source", "zpool destroy second; rm -f /var/tmp/second.img", check=False)


MANY = [f"tank/lab/many/c{i:02}" for i in range(30)]
HOURLY_ONLY = {"frequent": 0, "hourly": 2, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0}


def test_thirty_datasets_prune_with_one_recursive_destroy_never_reaching_held_or_excluded(clean_lab):
    lab = clean_lab
    tree = ["tank/lab", "tank/lab/many", *MANY]
    lab.ssh("source", "set -e; zfs create tank/lab; zfs create tank/lab/skip; zfs create tank/lab/many; "
                      "for i in $(seq -w 0 29); do zfs create tank/lab/many/c$i; done")
    write_config(lab, [{"name": "tank/lab", "recursive": True, "exclude": ["tank/lab/skip"],
                        "retention": HOURLY_ONLY}])
    at = [f"2026-04-01T{h:02}:05:00Z" for h in range(6)]
    name = [Z(t, "hourly") for t in at]
    destroys = len(history(lab, "tank", "destroy"))
    expected: list[str] = []
    for hour, now in enumerate(at):
        code, result, proc = zfsrep_snapshot(lab, now)
        assert code == 0, proc.stdout + proc.stderr
        assert "destroyed per dataset instead" not in proc.stderr  # no -r ever failed
        expected = [*expected, name[hour]][-2:]
        for ds in tree:
            want = [name[1], *expected] if ds == "tank/lab/many/c07" and hour >= 3 else expected
            assert snapshot_names(lab, ds) == want, (now, ds)
        lines = history(lab, "tank", "destroy")
        run_lines, destroys = lines[destroys:], len(lines)
        if hour == 0:
            # an excluded child holding a snapshot of the same name (e.g. an old `zfs snapshot -r`)
            lab.ssh("source", ["zfs", "snapshot", f"tank/lab/skip@{name[0]}"])
        if hour == 1:
            lab.ssh("source", ["zfs", "hold", "keep", f"tank/lab/many/c07@{name[1]}"])
        if hour < 2:
            assert run_lines == []
        elif hour == 3:
            # the held name: no -r may reach c07, so its 31 other holders each get their own command
            assert not [line for line in run_lines if " -r " in line], run_lines
            assert sorted(line.split(" zfs destroy ", 1)[1] for line in run_lines) == sorted(
                f"{ds}@{name[1]}" for ds in tree if ds != "tank/lab/many/c07")
        else:
            # tank/lab cannot take -r (skip's snapshots are not zfsrep's to know), its subtree can
            assert sorted(line.split(" zfs destroy ", 1)[1] for line in run_lines) == sorted([
                f"tank/lab@{name[hour - 2]}", f"-r tank/lab/many@{name[hour - 2]}"]), run_lines
        items = {i["dataset"]: i for i in result["items"]}
        assert set(items) == set(tree)
        gone = [name[hour - 2]] if hour >= 2 else []
        assert items["tank/lab/many/c29"]["destroyed"] == [f"tank/lab/many/c29@{n}" for n in gone]
    assert snapshot_names(lab, "tank/lab/skip") == [name[0]]
    assert items["tank/lab/many/c07"]["destroyed"] == [f"tank/lab/many/c07@{name[3]}"]

    # a second run while another holds the per-config lock fails at once and changes nothing
    lock = "/run/zfsrep/snapshot-_etc_zfsrep_config.toml.lock"
    holder = lab.ssh("source", f"mkdir -p /run/zfsrep; setsid flock {lock} sleep 120 </dev/null >/dev/null 2>&1 & "
                               "echo $!; sleep 1").stdout.strip()
    try:
        proc = lab.run_zfsrep(["snapshot", "--now", "2026-04-01T09:05:00Z"], check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        # flock(1) writes no pid: the message names the lock and config (a zfsrep holder adds its pid)
        assert re.search(rf"another zfsrep snapshot is running( \(pid \d+\))? with config {CONFIG} "
                         rf"\(lock {re.escape(lock)}\); this run changed nothing", proc.stderr), proc.stderr
        assert snapshot_names(lab, "tank/lab/many/c00") == expected
    finally:
        lab.ssh("source", ["kill", "--", f"-{holder}"], check=False)
