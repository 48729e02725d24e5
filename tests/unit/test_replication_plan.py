"""The replication planner: pure, so every rule is checked on generated histories."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.core import replication_plan as rp


@dataclass(frozen=True)
class S:
    dataset: str
    name: str
    guid: int
    createtxg: int

    @property
    def full_name(self) -> str:
        return f"{self.dataset}@{self.name}"


def source_snaps(n: int, *, start_guid: int = 1000) -> list[S]:
    return [S("tank/a", f"s{i}", start_guid + i, 10 * (i + 1)) for i in range(n)]


def received(snaps: list[S], *, txg0: int = 5) -> list[S]:
    """Copies as the target holds them: same names and GUIDs, the target's own txgs."""
    return [S("backup/tank/a", s.name, s.guid, txg0 + i) for i, s in enumerate(snaps)]


def plan(src, dst, **kw):
    kw.setdefault("target_exists", bool(dst))
    return rp.plan_replication("tank/a", "t", "backup/tank/a", src, dst, **kw)


def test_first_run_is_full_of_oldest_then_one_incremental_to_newest():
    src = source_snaps(4)
    p = plan(src, [], target_exists=False)
    assert p.action == rp.SEND
    assert [s.kind for s in p.steps] == [rp.FULL, rp.INCREMENTAL]
    assert p.steps[0].to == "tank/a@s0"
    assert (p.steps[1].base, p.steps[1].to) == ("tank/a@s0", "tank/a@s3")
    assert p.snapshots_landing == ("s0", "s1", "s2", "s3")
    assert p.newest_guid == 1003


def test_single_snapshot_first_run_is_one_full():
    p = plan(source_snaps(1), [], target_exists=False)
    assert [s.kind for s in p.steps] == [rp.FULL]


def test_incremental_from_newest_common_by_guid_even_when_names_differ():
    src = source_snaps(5)
    dst = [S("backup/tank/a", "renamed", src[2].guid, 7)]
    p = plan(src, dst)
    assert p.action == rp.SEND
    (step,) = p.steps
    assert (step.kind, step.base, step.to) == (rp.INCREMENTAL, "tank/a@s2", "tank/a@s4")
    assert step.snapshots == ("s3", "s4")


def test_same_name_different_guid_is_not_common():
    src = source_snaps(3)
    dst = [S("backup/tank/a", "s2", 99, 7)]
    p = plan(src, dst)
    assert p.action == rp.REFUSE
    assert "none in common" in p.message and "zfs rename" in p.message


def test_up_to_date_is_nothing_to_do():
    src = source_snaps(3)
    p = plan(src, received(src))
    assert p.action == rp.NOTHING and not p.steps
    assert p.base == p.newest == "tank/a@s2"


def test_diverged_target_is_refused_naming_snapshots_and_repairs():
    src = source_snaps(3)
    dst = received(src[:2]) + [S("backup/tank/a", "local", 5555, 50)]
    p = plan(src, dst)
    assert p.action == rp.REFUSE and not p.steps
    assert "@local" in p.message and "@s1" in p.message
    assert "zfs destroy backup/tank/a@local" in p.message and "zfs rename" in p.message
    assert "nothing was changed" in p.message


def test_existing_target_without_snapshots_is_refused_unless_forced():
    src = source_snaps(2)
    assert plan(src, [], target_exists=True).action == rp.REFUSE
    forced = plan(src, [], target_exists=True, force=True)
    assert forced.action == rp.SEND and forced.steps[0].kind == rp.FULL


def test_no_source_snapshots_is_empty():
    p = plan([], [], target_exists=False)
    assert p.action == rp.EMPTY and "zfsrep snapshot" in p.message


def test_valid_resume_token_resumes_then_continues_incrementally():
    src = source_snaps(4)
    dst = received(src[:1])
    token = rp.ResumeState("1-abc-def", valid=True, toname="tank/a@s2", toguid=src[2].guid)
    p = plan(src, dst, resume=token)
    assert [s.kind for s in p.steps] == [rp.RESUME, rp.INCREMENTAL]
    assert p.steps[0].token == "1-abc-def"
    assert (p.steps[1].base, p.steps[1].to) == ("tank/a@s2", "tank/a@s3")


def test_resume_of_interrupted_first_full():
    src = source_snaps(1)
    token = rp.ResumeState("tok", valid=True, toname="tank/a@s0", toguid=src[0].guid)
    p = plan(src, [], target_exists=True, resume=token)
    assert [s.kind for s in p.steps] == [rp.RESUME]


def test_stale_token_aborts_and_falls_back_to_incremental():
    src = source_snaps(4)
    dst = received(src[:2])
    stale = rp.ResumeState("tok", valid=False, reason="snapshot gone")
    p = plan(src, dst, resume=stale)
    assert [s.kind for s in p.steps] == [rp.ABORT_RESUME, rp.INCREMENTAL]
    assert p.steps[1].base == "tank/a@s1"
    assert any("stale resume token" in n for n in p.notes)


def test_stale_token_of_first_full_aborts_then_full():
    src = source_snaps(2)
    stale = rp.ResumeState("tok", valid=False, reason="gone")
    p = plan(src, [], target_exists=True, resume=stale)
    assert [s.kind for s in p.steps] == [rp.ABORT_RESUME, rp.FULL, rp.INCREMENTAL]


# --- properties ------------------------------------------------------------------------------

@st.composite
def histories(draw):
    """A source history, a target that received some prefix-consistent subset of it, and maybe
    target-only snapshots (divergence) or a source that pruned old ones."""
    n = draw(st.integers(0, 12))
    src = source_snaps(n)
    chosen = sorted(draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n)) if n else [])
    dst = received([src[i] for i in chosen])
    extra = draw(st.integers(0, 2)) if draw(st.booleans()) else 0
    dst += [S("backup/tank/a", f"local{j}", 9000 + j, 500 + j) for j in range(extra)]
    # the source may have pruned some snapshots the target still has
    pruned = draw(st.sets(st.sampled_from(range(n)), max_size=n)) if n else set()
    src = [s for i, s in enumerate(src) if i not in pruned]
    return src, dst


@settings(max_examples=400, deadline=None)
@given(histories())
def test_plan_is_incremental_from_newest_common_guid_or_refused(h):
    src, dst = h
    p = plan(src, dst)
    src_guids = {s.guid for s in src}
    dst_sorted = sorted(dst, key=lambda s: s.createtxg)
    if not src:
        assert p.action == rp.EMPTY
        return
    if not dst:
        assert p.steps[0].kind == rp.FULL
        return
    newest_target = dst_sorted[-1]
    if newest_target.guid not in src_guids:
        assert p.action == rp.REFUSE and not p.steps  # diverged or no common: refused, no change
        return
    base = next(s for s in src if s.guid == newest_target.guid)
    newest_src = max(src, key=lambda s: s.createtxg)
    if base is newest_src:
        assert p.action == rp.NOTHING
        return
    assert p.action == rp.SEND
    (step,) = p.steps
    assert step.kind == rp.INCREMENTAL
    assert step.base == base.full_name and p.base_guid == base.guid
    assert step.to == newest_src.full_name
    # exactly the source snapshots after the base land, in order
    assert step.snapshots == tuple(s.name for s in sorted(src, key=lambda s: s.createtxg)
                                   if s.createtxg > base.createtxg)


@settings(max_examples=300, deadline=None)
@given(histories(), st.booleans())
def test_plan_never_destroys_and_keeps_the_base(h, force):
    src, dst = h
    p = plan(src, dst, force=force)
    kinds = {s.kind for s in p.steps}
    assert kinds <= {rp.FULL, rp.INCREMENTAL, rp.RESUME, rp.ABORT_RESUME}
    if dst and p.action == rp.SEND:
        # an existing target with history is only ever extended from its newest snapshot:
        # never a full (which would need a rollback/overwrite), so the base survives
        assert rp.FULL not in kinds
        assert p.steps[0].base == p.base
        ok, guid = rp.common_after(p, succeeded=False)
        assert guid == p.base_guid


# --- target pruning after a receive ------------------------------------------------------------

@dataclass(frozen=True)
class T:
    name: str
    guid: int
    createtxg: int
    userrefs: int = 0


def _hourly(h: int) -> str:
    return f"zfsrep_hourly_2026-01-{1 + h // 24:02d}T{h % 24:02d}:00:00Z"


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 30), st.integers(0, 29), st.integers(0, 5), st.booleans(),
       st.lists(st.integers(0, 29), max_size=3))
def test_target_pruning_never_destroys_the_newest_common_snapshot(n, base_index, keep, manual, held):
    snaps = [T(_hourly(i), 100 + i, 10 + i, userrefs=1 if i in held else 0) for i in range(n)]
    if manual:
        snaps.append(T("manual-before-upgrade", 999, 5))
    base = snaps[min(base_index, n - 1)]
    doomed = rp.target_prune(snaps, {"hourly": keep}, base.guid)
    names = {s.name for s in doomed}
    assert base.name not in names
    assert "manual-before-upgrade" not in names  # only zfsrep-made names
    assert not any(s.userrefs for s in doomed)
    # it does prune: everything zfsrep made beyond the kept, held and base ones goes
    expected = n - len({i for i in range(n) if i >= n - keep} | {i for i in held if i < n}
                       | {min(base_index, n - 1)})
    assert len(doomed) == expected


def test_after_a_receive_the_landed_snapshots_are_the_copys_youngest_and_unheld():
    from zfsrep.core.snapshot import Snapshot
    before = [Snapshot("backup/a", "s1", 11, 500, 100, userrefs=1),
              Snapshot("backup/a", "s2", 12, 700, 200)]
    # from the source: its own createtxg (lower than the target's here), a hold of its own
    landing = [Snapshot("tank/a", "s3", 13, 40, 300, userrefs=1),
               Snapshot("tank/a", "s4", 14, 41, 300)]
    now = rp.after_receive(before, landing, "backup/a")
    assert [(s.dataset, s.name, s.guid, s.createtxg, s.creation, s.userrefs) for s in now] == [
        ("backup/a", "s1", 11, 500, 100, 1), ("backup/a", "s2", 12, 700, 200, 0),
        ("backup/a", "s3", 13, 701, 300, 0), ("backup/a", "s4", 14, 702, 300, 0)]
    # same-second names are ordered by createtxg: the landed ones come after what was there
    assert rp.after_receive([], landing, "backup/a")[0].createtxg == 1
