"""Replicating to two targets, each with its own retention, and to one that is down while the
others succeed. The second target is a second receiving dataset (`backup/second`) on the
`target` VM under another target name: zfsrep treats it as a target of its own (its own ssh
master, lock, listing and pruning). The one that is down is 127.0.0.1 on a closed port."""

from __future__ import annotations

import pytest
import tomli_w

from tests.integration.test_replicate_lab import CONFIG, PARENT, assert_same, replicate, replicate_ok, snapshots
from tests.integration.test_target_prune_lab import SOURCE_RETENTION, ZERO, expected, hourly, take

pytestmark = pytest.mark.lab

DS = "tank/data"
SECOND = "backup/second"
KEEP = {"backup": 2, "second": 4}  # hourly snapshots each target keeps


def write_config(lab, *, down=False):
    targets = {
        "backup": {"host": "target", "dataset": PARENT, "retention": {**ZERO, "hourly": KEEP["backup"]}},
        "second": {"host": "target", "dataset": SECOND, "compress": "lz4",
                   "retention": {**ZERO, "hourly": KEEP["second"]}},
    }
    if down:  # nothing listens on port 1: ssh fails at once with "connection refused"
        targets["down"] = {"host": "127.0.0.1", "port": 1, "dataset": "backup/down"}
    doc = {"state_dir": "/var/lib/zfsrep", "lock_dir": "/run/zfsrep", "retention": SOURCE_RETENTION,
           "datasets": [{"name": DS}], "targets": targets}
    lab.ssh("source", f"mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))


def items_by_target(data):
    return {i["target"]: i for i in data["items"] if i["dataset"] == DS}


def assert_kept(lab, names):
    """Each target holds what its own retention keeps of ``names``, equal to the source."""
    for target, parent in (("backup", PARENT), ("second", SECOND)):
        want = expected(names, {"hourly": KEEP[target]}, base=names[-1])
        got = snapshots(lab, "target", f"{parent}/{DS}")
        assert set(got) == want, f"{target}: {sorted(got)} != {sorted(want)}"
        assert_same(lab, DS, sorted(want), parent=parent)


def test_full_and_incremental_to_two_targets_then_one_down(clean_lab):
    lab = clean_lab
    lab.ssh("source", f"zfs create -o compression=off {DS}")
    write_config(lab)

    first = [hourly(1, h) for h in range(1, 4)]
    take(lab, *first)
    data = replicate_ok(lab)
    assert {t: i["status"] for t, i in items_by_target(data).items()} == {"backup": "ok", "second": "ok"}
    assert all(i["details"]["steps"][0]["step"].startswith("full") for i in items_by_target(data).values())
    assert_kept(lab, first)  # backup keeps 2 of 3, second all 3

    second = [hourly(1, h) for h in range(4, 8)]
    take(lab, *second)
    data = replicate_ok(lab)
    for target, i in items_by_target(data).items():
        assert [s["step"].split()[0] for s in i["details"]["steps"]] == ["incremental"], (target, i)
    assert_kept(lab, first + second)  # backup: h6, h7; second: h4..h7

    write_config(lab, down=True)
    third = [hourly(1, 8)]
    take(lab, *third)
    code, data, err = replicate(lab)
    assert code == 3, err
    by_target = items_by_target(data)
    assert by_target["backup"]["status"] == by_target["second"]["status"] == "ok", by_target
    assert by_target["down"]["status"] == "failed"
    error = by_target["down"]["error"]
    assert error.startswith("target down: cannot ssh to root@127.0.0.1:1") and "\n" not in error, error
    assert_kept(lab, first + second + third)
