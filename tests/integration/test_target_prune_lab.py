"""`zfsrep replicate` prunes the target by the target's own retention, on real OpenZFS.

After a successful send the target keeps, per label, the N newest zfsrep snapshots carrying it
(its own `targets.NAME.retention`, smaller than the source's), and always: every snapshot
zfsrep did not name, the newest common snapshot (the next incremental's base), and any
snapshot someone holds. The expected set is computed here from the names alone (`expected`),
not by zfsrep's retention code; every assertion is on what `zfs list` shows on both pools,
the GUIDs and file checksums of what is kept, and the run's JSON.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.test_replicate_lab import (
    PARENT,
    assert_same,
    item,
    replicate,
    replicate_ok,
    snapshots,
    write_config,
)

pytestmark = pytest.mark.lab

DS = "tank/data"
TDS = f"{PARENT}/{DS}"
SOURCE_RETENTION = {"frequent": 4, "hourly": 48, "daily": 14, "weekly": 4, "monthly": 0, "yearly": 0}
ZERO = {"frequent": 0, "hourly": 0, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0}
OURS = re.compile(r"zfsrep_((?:frequent|hourly|daily|weekly|monthly|yearly)(?:\.[a-z]+)*)"
                  r"_(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")


def expected(names, counts, base, held=()):
    """What the target must hold after pruning ``names`` with ``counts``: per label the N
    newest (by the UTC time in the name; ISO times sort as strings), every name zfsrep did
    not make, the newest common snapshot ``base`` and the ``held`` ones."""
    keep = {n for n in names if not OURS.fullmatch(n)} | {base, *held}
    for label, n in counts.items():
        carrying = sorted((OURS.fullmatch(x).group(2), x) for x in names
                          if OURS.fullmatch(x) and label in OURS.fullmatch(x).group(1).split("."))
        keep |= {x for _, x in carrying[max(0, len(carrying) - n):]} if n else set()
    return keep


def setup(lab, target_retention):
    lab.ssh("source", f"rm -rf /var/lib/zfsrep && zfs create {DS}")
    write_config(lab, [DS], retention=SOURCE_RETENTION,
                 target={"retention": {**ZERO, **target_retention}})


def take(lab, *names):
    """Each snapshot after writing a new file (and dropping an older one), so every snapshot's
    content differs: one ssh call for all of them."""
    lab.ssh("source", ["sh", "-c", """
set -e
ds=$1; shift; mp=$(zfs get -H -o value mountpoint "$ds"); i=$(ls "$mp" | wc -l)
for n; do
    i=$((i + 1)); head -c $((20000 + i * 997)) /dev/urandom > "$mp/f$i.bin"
    [ $i -le 3 ] || rm -f "$mp/f$((i - 3)).bin"
    zfs snapshot "$ds@$n"
done""", "take", DS, *names])


def hold(lab, tag, name, release=False):
    lab.ssh("target", ["zfs", "release" if release else "hold", tag, f"{TDS}@{name}"])


def hourly(day, hour, labels="hourly"):
    return f"zfsrep_{labels}_2026-01-{day:02d}T{hour:02d}:00:00Z"


# --- tests -----------------------------------------------------------------------------------------

def test_target_keeps_its_retention_foreign_names_and_the_base_then_prunes_further(clean_lab):
    lab = clean_lab
    counts = {"hourly": 2, "daily": 1}  # frequent = 0 on the target: only the base keeps one
    setup(lab, counts)
    first = ["zfsrep_hourly.daily_2025-12-30T00:00:00Z", "zfsrep_hourly_2025-12-30T01:00:00Z",
             "zfsrep_hourly.daily_2025-12-31T00:00:00Z", "manual-before-upgrade",
             "zfsrep_hourly_2025-12-31T01:00:00Z", "zfsrep_hourly_2025-12-31",  # not zfsrep's form
             hourly(1, 0, "hourly.daily"), hourly(1, 1), hourly(1, 2),
             "zfsrep_frequent_2026-01-01T02:15:00Z"]
    take(lab, *first)
    base1 = first[-1]
    source_before = snapshots(lab, "source", DS)

    data = replicate_ok(lab)
    it = item(data, DS)
    want = expected(first, counts, base1)
    assert want == {"manual-before-upgrade", "zfsrep_hourly_2025-12-31", hourly(1, 0, "hourly.daily"),
                    hourly(1, 1), hourly(1, 2), base1}  # the helper itself, checked by hand
    on_target = snapshots(lab, "target", TDS)
    assert set(on_target) == want, f"target holds {sorted(on_target)}"
    assert it["status"] == "ok" and it["to_snapshot"] == base1 and it["sent"] == first
    assert it["destroyed"] == [n for n in first if n not in want]  # oldest first, exactly these
    assert snapshots(lab, "source", DS) == source_before, "the source is never pruned by replicate"
    assert_same(lab, DS, sorted(want))

    # advancing: the old base (frequent, count 0 here) is no longer protected; a snapshot that
    # arrives in this run and falls outside the retention at once is pruned too
    second = [hourly(1, 3), hourly(2, 0, "hourly.daily"), hourly(2, 1)]
    take(lab, *second)
    source_before = snapshots(lab, "source", DS)
    data = replicate_ok(lab)
    it = item(data, DS)
    assert it["from_snapshot"] == base1, "the incremental starts at the base the first prune kept"
    assert [s["step"].split()[0] for s in it["details"]["steps"]] == ["incremental"]
    assert it["sent"] == second and it["to_snapshot"] == second[-1]
    want2 = expected(set(want) | set(second), counts, second[-1])
    assert want2 == {"manual-before-upgrade", "zfsrep_hourly_2025-12-31",
                     hourly(2, 0, "hourly.daily"), hourly(2, 1)}
    on_target = snapshots(lab, "target", TDS)
    assert set(on_target) == want2, f"target holds {sorted(on_target)}"
    assert set(it["destroyed"]) == (set(want) | set(second)) - want2
    assert base1 in it["destroyed"] and hourly(1, 3) in it["destroyed"]
    assert snapshots(lab, "source", DS) == source_before
    assert_same(lab, DS, sorted(want2))


def test_a_held_target_snapshot_survives_pruning_and_is_reported(clean_lab):
    lab = clean_lab
    counts = {"hourly": 1}
    setup(lab, counts)
    take(lab, hourly(1, 0), hourly(1, 1))
    assert item(replicate_ok(lab), DS)["destroyed"] == [hourly(1, 0)]
    hold(lab, "keep-for-audit", hourly(1, 1))  # someone else's hold on the current base

    take(lab, hourly(1, 2), hourly(1, 3))
    proc = lab.run_zfsrep(["replicate"], check=False)  # human output; the JSON from the state file
    it = item(json.loads(lab.ssh("source", "cat /var/lib/zfsrep/last-replicate.json").stdout), DS)
    assert proc.returncode == 0 and it["status"] == "ok", \
        f"a harmless hold failed the run: {it}\n{proc.stdout}{proc.stderr}"
    assert re.search(rf"^note: .*@{re.escape(hourly(1, 1))}.*held", proc.stderr, re.M), proc.stderr
    on_target = snapshots(lab, "target", TDS)
    assert set(on_target) == expected([hourly(1, h) for h in (1, 2, 3)], counts, hourly(1, 3),
                                      held=[hourly(1, 1)]) == {hourly(1, 1), hourly(1, 3)}
    assert it["destroyed"] == [hourly(1, 2)]
    assert it["details"]["kept_held"] == [hourly(1, 1)]
    assert_same(lab, DS, sorted(on_target))

    # released: the next run prunes it like any other
    hold(lab, "keep-for-audit", hourly(1, 1), release=True)
    take(lab, hourly(1, 4))
    it = item(replicate_ok(lab), DS)
    assert it["destroyed"] == [hourly(1, 1), hourly(1, 3)] and "kept_held" not in it["details"]
    assert set(snapshots(lab, "target", TDS)) == {hourly(1, 4)}


RACER = r"""#!/bin/sh
# lab test stand-in: another admin holds a snapshot just before zfsrep's first `zfs destroy`
if [ "$1" = destroy ] && [ ! -e /run/zfsrep-test-raced ]; then
    for a; do last=$a; done
    first=${last#*@}; first=${first%%,*}
    touch /run/zfsrep-test-raced
    /usr/sbin/zfs hold racer "${last%@*}@$first"
fi
exec /usr/sbin/zfs "$@"
"""


def test_a_hold_placed_after_the_listing_does_not_fail_the_replication(clean_lab):
    """ZFS destroys `ds@a,b,c` all-or-nothing, so one snapshot held between zfsrep's listing and
    its `zfs destroy` makes that command fail: the replication itself succeeded, and the
    snapshots nobody holds must still be pruned."""
    lab = clean_lab
    counts = {"hourly": 1}
    setup(lab, counts)
    take(lab, hourly(1, 0))
    replicate_ok(lab)
    take(lab, hourly(1, 1), hourly(1, 2), hourly(1, 3))
    lab.ssh("target", "rm -f /run/zfsrep-test-raced && cat > /usr/local/sbin/zfs && "
                      "chmod +x /usr/local/sbin/zfs", input=RACER)
    try:
        code, data, err = replicate(lab)
    finally:
        lab.ssh("target", "rm -f /usr/local/sbin/zfs")
    assert lab.ssh("target", "test -e /run/zfsrep-test-raced", check=False).returncode == 0, \
        "the stand-in never saw a zfs destroy"
    it = item(data, DS)
    assert code == 0 and it["status"] == "ok", f"{it}\n{err}"
    assert set(snapshots(lab, "target", TDS)) == {hourly(1, 0), hourly(1, 3)}
    assert it["destroyed"] == [hourly(1, 1), hourly(1, 2)] and it["details"]["kept_held"] == [hourly(1, 0)]
    assert_same(lab, DS, [hourly(1, 0), hourly(1, 3)])


def test_dry_run_shows_what_the_target_would_prune_and_destroys_nothing(clean_lab):
    lab = clean_lab
    counts = {"hourly": 1, "daily": 1}
    setup(lab, counts)
    take(lab, hourly(1, 0, "hourly.daily"), hourly(1, 1), "manual", hourly(1, 2))
    replicate_ok(lab)
    assert set(snapshots(lab, "target", TDS)) == {hourly(1, 0, "hourly.daily"), "manual", hourly(1, 2)}
    hold(lab, "keep", hourly(1, 2))
    take(lab, hourly(1, 3), hourly(2, 0, "hourly.daily"), hourly(2, 1))
    source_before, target_before = snapshots(lab, "source", DS), snapshots(lab, "target", TDS)
    holds_before = lab.ssh("source", ["sh", "-c", f"zfs list -H -o name -t snapshot {DS} | xargs zfs holds -H"]).stdout

    data = replicate_ok(lab, "--dry-run")
    it = item(data, DS)
    after = {hourly(1, 0, "hourly.daily"), "manual", hourly(1, 2), hourly(1, 3),
             hourly(2, 0, "hourly.daily"), hourly(2, 1)}
    want = expected(after, counts, hourly(2, 1), held=[hourly(1, 2)])
    assert it["status"] == "planned"
    # in time order: one still on the target, then one this run would send
    assert it["details"]["would_prune"] == sorted(after - want) == [hourly(1, 0, "hourly.daily"), hourly(1, 3)]
    assert it["details"]["kept_held"] == [hourly(1, 2)]
    assert it["destroyed"] == []
    human = lab.run_zfsrep(["replicate", "--dry-run"])
    assert "would prune 2 on the target" in human.stdout and hourly(1, 3) in human.stdout, human.stdout
    assert snapshots(lab, "source", DS) == source_before
    assert snapshots(lab, "target", TDS) == target_before, "a dry run destroys (and sends) nothing"
    assert lab.ssh("source", ["sh", "-c", f"zfs list -H -o name -t snapshot {DS} | xargs zfs holds -H"]).stdout \
        == holds_before

    # the real run then does exactly that
    hold(lab, "keep", hourly(1, 2), release=True)
    it = item(replicate_ok(lab), DS)
    assert it["destroyed"] == [hourly(1, 0, "hourly.daily"), hourly(1, 2), hourly(1, 3)]
    assert set(snapshots(lab, "target", TDS)) == expected(after, counts, hourly(2, 1))
