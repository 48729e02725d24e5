"""`zfsrep snapshot`'s pre/post_snapshot hooks and min_change on real OpenZFS in the `source`
VM: the hooks run around the pool's one real `zfs snapshot` (the pre-hook sees no new snapshot,
the post-hook sees it) in the documented order with their environment; a failing or timed-out
pre-hook skips exactly its entry's snapshot (exit 3) and its post-hook still runs, told
"skipped"; min_change skips a dataset nothing was written to and snapshots one with a few MB
written, by the real `written` property."""

from __future__ import annotations

import json

import pytest
import tomli_w

from tests.integration.test_snapshot_lab import Z, history, snapshot_names, zfsrep_snapshot

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"
LOG = "/root/zfsrep-hooks.log"
HOOK = "/root/zfsrep-hook.sh"
# what the hook saw: phase, entry, outcome, labels, how many snapshots the entry's dataset has
# right now (so a line shows whether it ran before or after the real snapshot), the snapshots
SCRIPT = r'''n=$(zfs list -H -t snapshot -o name -d 1 "$ZFSREP_ENTRY" | wc -l)
echo "$ZFSREP_HOOK $ZFSREP_ENTRY ${ZFSREP_OUTCOME:--} $ZFSREP_LABELS has=$n $(printf '%s' "$ZFSREP_SNAPSHOTS" | tr '\n' '|') $1" >> ''' + LOG + r'''
if [ "$2" = fail ]; then echo "cannot freeze $1" >&2; exit 5; fi
exit 0
'''
RETENTION = {"frequent": 0, "hourly": 3, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0}


def write_config(lab, datasets):
    doc = {"state_dir": "/var/lib/zfsrep-hooks-test", "retention": RETENTION, "datasets": datasets}
    lab.ssh("source", f"mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))


def hook(*words):
    return ["/bin/sh", HOOK, *words]


def hook_lines(lab):
    return lab.ssh("source", f"cat {LOG} 2>/dev/null; rm -f {LOG}").stdout.splitlines()


def test_hooks_wrap_the_real_snapshot_and_a_failing_pre_hook_skips_only_its_entry(clean_lab):
    lab = clean_lab
    for ds in ("tank/db", "tank/db/wal", "tank/www", "tank/other"):
        lab.ssh("source", ["zfs", "create", ds])
    lab.ssh("source", f"cat > {HOOK} && rm -f {LOG}", input=SCRIPT)

    def entries(www_pre, **www):
        return [{"name": "tank/db", "recursive": True, "pre_snapshot": hook("db"), "post_snapshot": hook("db")},
                {"name": "tank/www", "pre_snapshot": www_pre, "post_snapshot": hook("www"), **www},
                {"name": "tank/other"}]

    write_config(lab, entries(hook("www")))
    t1 = "2026-04-01T10:05:00Z"
    code, result, proc = zfsrep_snapshot(lab, t1)
    assert code == 0, proc.stdout + proc.stderr
    s1 = Z(t1, "hourly")
    db = f"tank/db@{s1}|tank/db/wal@{s1}"
    assert hook_lines(lab) == [
        f"pre_snapshot tank/db - hourly has=0 {db} db",
        f"pre_snapshot tank/www - hourly has=0 tank/www@{s1} www",
        f"post_snapshot tank/www ok hourly has=1 tank/www@{s1} www",
        f"post_snapshot tank/db ok hourly has=1 {db} db",
    ]
    for ds in ("tank/db", "tank/db/wal", "tank/www", "tank/other"):
        assert snapshot_names(lab, ds) == [s1]
    snapshots_before = len(history(lab, "tank", "snapshot"))
    assert snapshots_before >= 1

    # the www pre-hook fails: only tank/www is left out, the pool still gets one `zfs snapshot`
    write_config(lab, entries(hook("www", "fail")))
    t2 = "2026-04-01T11:05:00Z"
    code, result, proc = zfsrep_snapshot(lab, t2)
    assert code == 3, proc.stdout + proc.stderr
    s2 = Z(t2, "hourly")
    assert snapshot_names(lab, "tank/www") == [s1]
    for ds in ("tank/db", "tank/db/wal", "tank/other"):
        assert snapshot_names(lab, ds) == [s1, s2]
    assert len(history(lab, "tank", "snapshot")) == snapshots_before + 1
    items = {i["dataset"]: i for i in result["items"]}
    assert items["tank/www"]["status"] == "failed" and items["tank/db"]["status"] == "ok"
    assert "for tank/www exited 5: cannot freeze www; no snapshot taken of it" in items["tank/www"]["error"]
    assert hook_lines(lab) == [
        f"pre_snapshot tank/db - hourly has=1 tank/db@{s2}|tank/db/wal@{s2} db",
        f"pre_snapshot tank/www - hourly has=1 tank/www@{s2} www",  # the script prints $1 only
        f"post_snapshot tank/www skipped hourly has=1 tank/www@{s2} www",
        f"post_snapshot tank/db ok hourly has=2 tank/db@{s2}|tank/db/wal@{s2} db",
    ]

    # a pre-hook past its timeout is killed and counts as failed; tank/www's hourly stayed due
    write_config(lab, entries(["/bin/sh", "-c", "exec sleep 60"], hook_timeout="2s"))
    t3 = "2026-04-01T11:35:00Z"  # same hour: only tank/www is due
    code, result, proc = zfsrep_snapshot(lab, t3)
    assert code == 3, proc.stdout + proc.stderr  # the others had nothing due
    assert snapshot_names(lab, "tank/www") == [s1]
    items = {i["dataset"]: i for i in result["items"]}
    assert "timed out after 2s" in items["tank/www"]["error"]
    assert hook_lines(lab) == [f"post_snapshot tank/www skipped hourly has=1 tank/www@{Z(t3, 'hourly')} www"]

    # dry run: the plan shows the hooks, none runs
    write_config(lab, entries(hook("www")))
    proc = lab.run_zfsrep(["snapshot", "--now", "2026-04-01T12:05:00Z", "--dry-run"])
    assert f"/bin/sh {HOOK} db    # pre_snapshot hook" in proc.stdout
    assert f"/bin/sh {HOOK} db    # post_snapshot hook" in proc.stdout
    assert hook_lines(lab) == []


def test_min_change_skips_an_idle_dataset_and_snapshots_one_written_to(clean_lab):
    lab = clean_lab
    for ds in ("tank/busy", "tank/idle"):
        lab.ssh("source", ["zfs", "create", ds])
    write_config(lab, [{"name": "tank/busy", "min_change": "1M"}, {"name": "tank/idle", "min_change": "1M"}])
    t1, t2 = "2026-04-02T10:05:00Z", "2026-04-02T11:05:00Z"
    assert zfsrep_snapshot(lab, t1)[0] == 0  # no snapshot yet: both taken, whatever was written
    assert snapshot_names(lab, "tank/idle") == [Z(t1, "hourly")]

    lab.ssh("source", "dd if=/dev/urandom of=/tank/busy/blob bs=1M count=4 status=none && sync && zpool sync tank")
    written = lab.ssh("source", ["zfs", "get", "-H", "-p", "-o", "value", "written", "tank/busy", "tank/idle"])
    busy, idle = (int(v) for v in written.stdout.split())
    assert busy >= 4 * 1024 * 1024 and idle < 1024 * 1024

    code, plan, proc = zfsrep_snapshot(lab, t2, "--dry-run")
    assert code == 0, proc.stdout + proc.stderr
    items = {i["dataset"]: i for i in plan["items"]}
    assert items["tank/busy"]["created"] == [f"tank/busy@{Z(t2, 'hourly')}"]
    assert items["tank/idle"]["created"] == [] and "below min_change" in items["tank/idle"]["details"]["skipped"]

    code, result, proc = zfsrep_snapshot(lab, t2)
    assert code == 0, proc.stdout + proc.stderr
    assert snapshot_names(lab, "tank/busy") == [Z(t1, "hourly"), Z(t2, "hourly")]
    assert snapshot_names(lab, "tank/idle") == [Z(t1, "hourly")]
    items = {i["dataset"]: i for i in result["items"]}
    assert items["tank/idle"]["details"]["due"] == ["hourly"]
    assert json.dumps(items["tank/idle"]["details"]["skipped"]).count("min_change") == 1
