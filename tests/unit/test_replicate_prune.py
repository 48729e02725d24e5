"""Replicate's pruning of a target copy when one of the snapshots its retention would destroy
is held: kept and named (``details["kept_held"]`` and a note), whether the run's listing showed
the hold or the hold came after it (then `zfs destroy` refuses the batch, the copy is listed
again and pruned without it). Fakes of both hosts; the lab's test_target_prune_lab runs the
same on real ZFS."""

from __future__ import annotations

import pytest

from tests.unit.getting_back_fakes import CONFIG, config, copy_to, target_zfs
from tests.unit.test_listing_cache import T0, FakeSession, SourceZfs, hourly, replicate_once
from zfsrep.actions import replicate
from zfsrep.pipeline import PipelineResult, StageResult

COPY = "backup/h/tank/home"


@pytest.mark.parametrize("held", ["before the listing", "after the listing"])
def test_a_held_snapshot_the_targets_retention_would_destroy_is_kept_and_named(tmp_path, monkeypatch, held):
    source = SourceZfs().add("tank", "tank/home")
    target = target_zfs("backup", "backup/h", "backup/h/tank", COPY)
    source.clock = target.clock = T0
    for n in (1, 2, 3):
        copy_to(target, source.add_snapshot(f"tank/home@{hourly(n)}"), COPY)
    source.add_snapshot(f"tank/home@{hourly(4)}")
    if held == "before the listing":
        target.run(["zfs", "hold", "mine", f"{COPY}@{hourly(1)}"])
    FakeSession.target, FakeSession.source, FakeSession.events = target, source, []
    monkeypatch.setattr(replicate.connect, "SshSession", FakeSession)

    def pipeline(stages, **_kw):
        copy_to(target, next(s for s in source.snaps if s.name == hourly(4)), COPY)
        if held == "after the listing":
            target.run(["zfs", "hold", "mine", f"{COPY}@{hourly(1)}"])
        return PipelineResult([StageResult("send", list(stages[0].argv), 0)], 1.0)

    monkeypatch.setattr(replicate.send, "run_pipeline", pipeline)
    cfg = config(tmp_path, CONFIG.replace("[[datasets]]\nname = \"tank/vm\"\nrecursive = true\n", "")
                 + "retention = {{ hourly = 1 }}\n")
    result, _, _ = replicate_once(cfg, source, target)
    (item,) = result.items
    assert item.status == "ok", item.error
    assert item.destroyed == [hourly(2), hourly(3)]
    assert target.names(COPY) == [hourly(1), hourly(4)]
    assert item.details["kept_held"] == [hourly(1)]
    assert item.details["notes"][-1] == (
        f"{COPY} on backup.example.org: kept @{hourly(1)} although the target's retention would destroy it: held "
        f"(`zfs holds {COPY}@{hourly(1)}` shows by whom)")
