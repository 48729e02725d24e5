"""The planner's bookmark fallback: when the target's newest snapshot is gone from the source,
a bookmark of the source dataset with that snapshot's GUID is the incremental base."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_replication_plan import S
from zfsrep.core import replication_plan as rp
from zfsrep.zfs import argv as za
from zfsrep.zfs import parse
from zfsrep.zfs import stream as zs


@dataclass(frozen=True)
class B(S):
    """A bookmark: as a snapshot record, named ``dataset#name``."""

    @property
    def full_name(self) -> str:
        return f"{self.dataset}#{self.name}"


SRC = [S("tank/a", f"s{i}", 1000 + i, 10 * (i + 1)) for i in range(6)]


def on_target(snaps):
    return [S("backup/tank/a", s.name, s.guid, 5 + i) for i, s in enumerate(snaps)]


def plan(src, dst, marks=(), **kw):
    return rp.plan_replication("tank/a", "t", "backup/tank/a", src, dst,
                               target_exists=bool(dst), source_bookmarks=marks, **kw)


def test_gone_base_with_its_bookmark_sends_i_from_the_bookmark_then_I_to_the_newest():
    dst = on_target(SRC[:3])  # the target has s0..s2; s2 is gone from the source
    src = SRC[:2] + SRC[3:]
    mark = B("tank/a", "zfsrep_t", SRC[2].guid, SRC[2].createtxg)
    p = plan(src, dst, [mark])
    assert p.action == rp.SEND
    assert [(s.base, s.to) for s in p.steps] == [("tank/a#zfsrep_t", "tank/a@s3"),
                                                 ("tank/a@s3", "tank/a@s5")]
    assert p.snapshots_landing == ("s3", "s4", "s5")
    assert (p.base, p.base_guid, p.newest_guid) == ("tank/a#zfsrep_t", SRC[2].guid, SRC[5].guid)
    assert "bookmark" in p.steps[0].describe() and "bookmark" in p.message
    assert rp.short(p.base) == "#zfsrep_t"
    assert zs.send_argv(p.steps[0].to, base=p.steps[0].base)[-3:] == ["-i", "tank/a#zfsrep_t", "tank/a@s3"]
    assert zs.send_argv(p.steps[1].to, base=p.steps[1].base)[-3:] == ["-I", "tank/a@s3", "tank/a@s5"]


def test_one_snapshot_after_the_bookmark_is_one_step():
    mark = B("tank/a", "m", SRC[4].guid, SRC[4].createtxg)
    p = plan([SRC[5]], on_target(SRC[:5]), [mark])
    assert [(s.base, s.to, s.snapshots) for s in p.steps] == [("tank/a#m", "tank/a@s5", ("s5",))]


def test_nothing_newer_than_the_bookmark_is_nothing_to_do():
    mark = B("tank/a", "m", SRC[5].guid, SRC[5].createtxg)
    p = plan(SRC[:2], on_target(SRC), [mark])
    assert p.action == rp.NOTHING and p.newest is None and p.base == "tank/a#m"


def test_a_bookmark_of_another_dataset_is_never_used():
    mark = B("tank/b", "zfsrep_t", SRC[2].guid, SRC[2].createtxg)
    p = plan(SRC[:2] + SRC[3:], on_target(SRC[:3]), [mark])
    assert p.action == rp.REFUSE and "diverged" in p.message


def test_the_snapshot_itself_wins_over_its_bookmark():
    mark = B("tank/a", "m", SRC[2].guid, SRC[2].createtxg)
    p = plan(SRC, on_target(SRC[:3]), [mark])
    assert [(s.base, s.to) for s in p.steps] == [("tank/a@s2", "tank/a@s5")]


@given(st.integers(1, 5), st.lists(st.integers(0, 5), max_size=4), st.booleans(), st.booleans())
def test_bookmark_only_for_the_guid_of_the_targets_newest_and_divergence_still_refused(
        on, marked, diverged, gone):
    """The target has SRC[:on] (plus a snapshot of its own when ``diverged``); the source lost
    SRC[on-1] when ``gone``; bookmarks mark the snapshots at ``marked``."""
    dst = on_target(SRC[:on])
    if diverged:
        dst.append(S("backup/tank/a", "mine", 99, 50))
    src = [s for i, s in enumerate(SRC) if not (gone and i == on - 1)]
    marks = [B("tank/a", f"m{i}", SRC[i].guid, SRC[i].createtxg) for i in marked]
    p = plan(src, dst, marks)
    from_mark = p.base is not None and "#" in p.base
    if diverged:
        assert p.action == rp.REFUSE
    elif not gone:
        assert not from_mark and p.base_guid == SRC[on - 1].guid
    elif on - 1 in marked:
        assert from_mark and p.base_guid == SRC[on - 1].guid
        assert p.action in (rp.SEND, rp.NOTHING)
        assert all(s.snapshots for s in p.steps)
        assert all("@" in (s.base or "") for s in p.steps[1:])  # -I never from a bookmark
    else:
        assert p.action == rp.REFUSE
    for step in p.steps:
        assert step.kind != rp.FULL  # a target with snapshots never gets a full send
        if step.base and "#" in step.base:
            assert step.base.startswith("tank/a#") and len(step.snapshots) == 1


def test_parse_bookmarks_by_dataset_oldest_first():
    text = "tank/a#new\t12\t300\ntank/a b#x\t7\t5\ntank/a#old\t11\t100\n"
    got = parse.bookmarks(text)
    assert [b.full_name for b in got["tank/a"]] == ["tank/a#old", "tank/a#new"]
    assert got["tank/a b"][0] == parse.Bookmark("tank/a b", "x", 7, 5)


def test_parse_bookmarks_refuses_a_snapshot_line():
    with pytest.raises(parse.ZfsOutputError):
        parse.bookmarks("tank/a@s\t1\t2\n")


def test_bookmark_argv():
    assert za.list_bookmarks(["tank/a", "tank/b"]) == [
        "zfs", "list", "-H", "-p", "-t", "bookmark", "-o", "name,guid,createtxg", "-d", "1",
        "tank/a", "tank/b"]
    assert za.list_bookmarks(["tank"], recursive=True)[-2:] == ["-r", "tank"]
    assert za.bookmark("tank/a@s1", "tank/a#zfsrep_t") == ["zfs", "bookmark", "tank/a@s1", "tank/a#zfsrep_t"]
    assert za.destroy_bookmark("tank/a#zfsrep_t") == ["zfs", "destroy", "tank/a#zfsrep_t"]
    with pytest.raises(ValueError):
        za.destroy_bookmark("tank/a@s1")  # never a snapshot through this door
