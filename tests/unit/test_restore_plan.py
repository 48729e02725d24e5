from hypothesis import given
from hypothesis import strategies as st

from zfsrep.core.replication_plan import ABORT_RESUME, FULL, RESUME, ResumeState
from zfsrep.core.restore_plan import (
    NEW,
    REFUSE,
    REPLACE,
    LocalDataset,
    missing_ancestors,
    plan_restore,
)
from zfsrep.core.snapshot import Snapshot

COPY = "backup/h/tank/home"
SNAPS = [Snapshot(COPY, "a", 1, 10, 100), Snapshot(COPY, "b", 2, 11, 200), Snapshot(COPY, "c", 3, 12, 300)]
LIVE = LocalDataset(exists=True, descendants=("tank/home/sub",),
                    snapshots=(Snapshot("tank/home", "a", 1, 5, 100), Snapshot("tank/home", "x", 8, 6, 150)),
                    used=5 << 20)


def plan(local=LocalDataset(), wanted=None, force=False, temp=None, snaps=SNAPS, dest="tank/home", **kw):
    return plan_restore("tank/home", "offsite", COPY, snaps, dest=dest, wanted=wanted, local=local,
                        temp=temp, force=force, **kw)


def test_newest_snapshot_into_a_missing_dataset_is_one_full_receive():
    p = plan(missing_parents=("tank/a",))
    assert p.action == NEW and p.snapshot.name == "c" and p.receive_into == "tank/home"
    assert [s.kind for s in p.steps] == [FULL] and p.steps[0].to == f"{COPY}@c"
    assert p.create_parents == ("tank/a",) and not p.destroys


def test_a_named_snapshot_short_or_full():
    assert plan(wanted="a").snapshot.guid == 1
    assert plan(wanted="tank/home@b").snapshot.guid == 2
    bad = plan(wanted="nope")
    assert bad.action == REFUSE and "no snapshot 'nope'" in bad.message and "c" in bad.message


def test_no_copy_or_no_snapshots_on_the_target_refuses():
    assert "does not exist" in plan(snaps=None).message
    assert "no snapshots" in plan(snaps=[]).message


def test_live_destination_is_refused_without_force_and_says_what_would_be_destroyed():
    p = plan(local=LIVE)
    assert p.action == REFUSE and not p.steps
    assert "tank/home exists and is live" in p.message
    assert "--to tank/home-restored" in p.message
    assert "1 child dataset(s) with 2 snapshot(s), 5.0 MiB" in p.message


def test_force_receives_next_to_the_live_dataset_then_replaces_it():
    holds = {"tank/home@a": frozenset({"zfsrep:offsite"})}
    p = plan(local=LocalDataset(**{**LIVE.__dict__, "holds": holds}), force=True)
    assert p.action == REPLACE and p.receive_into == "tank/home.zfsrep-restore"
    assert p.destroys == ("tank/home", "tank/home/sub") and p.destroys_snapshots == 2
    assert p.releases == (("zfsrep:offsite", "tank/home@a"),)
    text = "\n".join(p.describe())
    assert "DESTROY tank/home, tank/home/sub" in text and "rename tank/home.zfsrep-restore to tank/home" in text


def test_foreign_holds_and_pool_roots_block_replacement():
    held = LocalDataset(**{**LIVE.__dict__, "holds": {"tank/home@x": frozenset({"keep"})}})
    assert "held by other tools" in plan(local=held, force=True).message
    assert "pool's root" in plan(local=LIVE, force=True, dest="tank").message


def test_resume_matching_token_else_abort_and_start_over():
    partial = LocalDataset(exists=True, resume=ResumeState("tok", True, f"{COPY}@c", 3))
    p = plan(local=partial)
    assert p.action == NEW and [s.kind for s in p.steps] == [RESUME] and p.steps[0].token == "tok"
    other = LocalDataset(exists=True, resume=ResumeState("tok", True, f"{COPY}@a", 1))
    assert [s.kind for s in plan(local=other).steps] == [ABORT_RESUME, FULL]
    stale = LocalDataset(exists=True, resume=ResumeState("tok", False, reason="gone"))
    assert [s.kind for s in plan(local=stale).steps] == [ABORT_RESUME, FULL]


def test_replacement_already_received_skips_the_receive():
    done = LocalDataset(exists=True, snapshots=(Snapshot("tank/home.zfsrep-restore", "c", 3, 9, 300),))
    p = plan(local=LIVE, force=True, temp=done)
    assert p.action == REPLACE and p.steps == ()
    wrong = LocalDataset(exists=True, snapshots=(Snapshot("tank/home.zfsrep-restore", "a", 1, 9, 100),))
    assert plan(local=LIVE, force=True, temp=wrong).action == REFUSE


def test_missing_ancestors_outermost_first():
    assert missing_ancestors("tank/a/b/c", {"tank"}) == ("tank/a", "tank/a/b")
    assert missing_ancestors("tank/a/b/c", {"tank/a"}) == ("tank/a/b",)
    assert missing_ancestors("tank/c", set()) == ()


@given(st.booleans(), st.booleans(), st.booleans(), st.sampled_from([None, "a", "b", "c", "zz"]))
def test_nothing_live_is_ever_destroyed_without_force(exists, has_snaps, force, wanted):
    local = LocalDataset(exists=exists, snapshots=LIVE.snapshots if has_snaps and exists else ())
    p = plan(local=local, force=force, wanted=wanted)
    if not force:
        assert not p.destroys
    if p.destroys:
        assert p.action == REPLACE and p.receive_into != p.dest
    if p.action != REFUSE:
        assert p.snapshot.name == (wanted or "c")
