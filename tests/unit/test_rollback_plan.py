from zfsrep.core.rollback_plan import REFUSE, ROLLBACK, plan_rollback
from zfsrep.core.snapshot import Snapshot

SNAPS = [Snapshot("tank/vm", n, g, t, 0, used=1024 * g) for n, g, t in
         [("a", 1, 10), ("b", 2, 11), ("c", 3, 12), ("d", 4, 13)]]


def test_lists_what_rollback_r_destroys():
    p = plan_rollback("tank/vm", "b", SNAPS, holds={}, bookmarks=[("bm-c", 12), ("bm-a", 10)])
    assert p.action == ROLLBACK
    assert [s.name for s in p.destroys] == ["c", "d"] and p.destroys_bookmarks == ("bm-c",)
    assert p.destroys_bytes == 7 * 1024
    text = "\n".join(p.describe())
    assert "destroy @c" in text and "destroy @d" in text and "#bm-c" in text and "@a" not in text


def test_newest_snapshot_destroys_nothing():
    p = plan_rollback("tank/vm", "d", SNAPS, holds={})
    assert p.action == ROLLBACK and p.destroys == ()


def test_replication_base_is_refused_unless_forced():
    holds = {"tank/vm@d": {"zfsrep:offsite"}}
    p = plan_rollback("tank/vm", "b", SNAPS, holds=holds)
    assert p.action == REFUSE and "@d is the replication base of offsite" in p.message
    assert "--force" in p.message
    forced = plan_rollback("tank/vm", "b", SNAPS, holds=holds, force=True)
    assert forced.action == ROLLBACK and forced.releases == (("zfsrep:offsite", "tank/vm@d"),)
    assert "target offsite holds @d" in forced.notes[0]
    # a base that is kept (the snapshot rolled back to, or older) is no obstacle
    assert plan_rollback("tank/vm", "b", SNAPS, holds={"tank/vm@b": {"zfsrep:offsite"}}).action == ROLLBACK


def test_foreign_holds_and_clones_always_block():
    p = plan_rollback("tank/vm", "a", SNAPS, holds={"tank/vm@c": {"backup-tool"}}, force=True)
    assert p.action == REFUSE and "held by other tools" in p.message and "@c (backup-tool)" in p.message
    p = plan_rollback("tank/vm", "a", SNAPS, holds={}, clones={"tank/vm@b": ["tank/vm-test"]}, force=True)
    assert p.action == REFUSE and "tank/vm-test" in p.message


def test_unknown_snapshot():
    p = plan_rollback("tank/vm", "zz", SNAPS, holds={})
    assert p.action == REFUSE and "no snapshot @zz" in p.message and "d" in p.message
