"""Parsers of `zfs -H -p` output. Files named `*.lab.txt` in tests/unit/data were captured from
real OpenZFS in the lab (see the capture command at the top of each); the inline strings cover
edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfsrep.core.snapshot import Snapshot
from zfsrep.zfs import parse
from zfsrep.zfs.parse import ZfsOutputError

DATA = Path(__file__).parent / "data"


def test_snapshots_keeps_spaces_and_dashes_in_names():
    text = (
        "tank/with space@zfsrep_hourly_2026-01-01T00:00:00Z\t12345678901234567890\t17\t1767225600\t8192\t0\n"
        "tank/with space/-dash@manual one\t42\t18\t1767225601\t0\t2\n"
    )
    snaps = parse.snapshots(text)
    assert snaps == [
        Snapshot("tank/with space", "zfsrep_hourly_2026-01-01T00:00:00Z", 12345678901234567890, 17, 1767225600, 8192, 0),
        Snapshot("tank/with space/-dash", "manual one", 42, 18, 1767225601, 0, 2),
    ]
    assert snaps[1].held and not snaps[0].held
    assert snaps[0].full_name == "tank/with space@zfsrep_hourly_2026-01-01T00:00:00Z"


def test_empty_output_is_no_snapshots():
    assert parse.snapshots("") == []
    assert parse.snapshots("\n") == []


@pytest.mark.parametrize("bad", [
    "tank@a\t1\t2\t3\t4\n",  # a column missing
    "tank@a 1 2 3 4 5\n",  # spaces are not separators
    "tank\t1\t2\t3\t4\t5\n",  # not a snapshot
    "tank@a\tx\t2\t3\t4\t5\n",  # not a number
])
def test_malformed_output_is_an_error_naming_the_line(bad):
    with pytest.raises(ZfsOutputError):
        parse.snapshots(bad)


def test_dash_means_zero():
    assert parse.snapshots("p@s\t1\t2\t3\t-\t-\n")[0].used == 0


def test_datasets_and_properties():
    text = "tank\t1000\t-\ntank/a b\t20\t1-abc\n"
    assert parse.datasets(text, ["name", "used", "receive_resume_token"]) == {
        "tank": {"used": "1000", "receive_resume_token": "-"},
        "tank/a b": {"used": "20", "receive_resume_token": "1-abc"},
    }
    got = parse.properties("tank/a b\tguid\t99\ntank/a b\tused\t5\ntank\tguid\t1\n")
    assert got == {"tank/a b": {"guid": "99", "used": "5"}, "tank": {"guid": "1"}}


def test_holds():
    text = "tank/a@s1\tzfsrep:backup\tSun Nov 22 04:00 2026\ntank/a@s1\tkeep\tSun Nov 22 04:01 2026\n"
    assert parse.holds(text) == {"tank/a@s1": {"zfsrep:backup", "keep"}}


def test_missing_datasets_from_stderr():
    err = "cannot open 'tank/gone': dataset does not exist\ncannot open 'tank/a b': dataset does not exist\n"
    assert parse.missing_datasets(err) == {"tank/gone", "tank/a b"}
    assert parse.unexplained_errors(err) == []
    assert parse.unexplained_errors(err + "internal error: out of memory\n") == ["internal error: out of memory"]


_component = st.text(alphabet="abcXYZ019_-.: ", min_size=1, max_size=12).filter(lambda s: s.strip() == s)


@given(st.lists(st.tuples(st.lists(_component, min_size=1, max_size=4), _component,
                          st.integers(0, 2**64 - 1), st.integers(0, 2**40), st.integers(0, 2**33),
                          st.integers(0, 2**50), st.integers(0, 5)), max_size=20))
def test_snapshots_round_trip(records):
    snaps = [Snapshot("/".join(["tank", *path]), name, guid, txg, creation, used, refs)
             for path, name, guid, txg, creation, used, refs in records]
    text = "".join(
        f"{s.full_name}\t{s.guid}\t{s.createtxg}\t{s.creation}\t{s.used}\t{s.userrefs}\n" for s in snaps
    )
    assert parse.snapshots(text) == snaps


# -- real output captured in the lab (OpenZFS 2.1.11): tests/unit/data/*.lab.txt --------------

def lab_capture(name: str) -> str:
    """A capture without its leading `# ...` provenance lines."""
    text = (DATA / name).read_text()
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# "))


def test_lab_snapshot_listing():
    snaps = parse.snapshots(lab_capture("zfs-list-snapshots.lab.txt"))
    assert len(snaps) == 12
    assert {s.dataset for s in snaps} == {"tank/cap", "tank/cap/a b", "tank/cap/a b/-dash", "tank/cap/vol"}
    assert {s.name for s in snaps} == {"manual one", "zfsrep_hourly.daily_2026-11-22T00:00:00Z",
                                       "zfsrep_hourly_2026-11-22T01:00:00Z"}
    held = [s.full_name for s in snaps if s.held]
    assert held == ["tank/cap/a b/-dash@zfsrep_hourly.daily_2026-11-22T00:00:00Z"]
    dash = next(s for s in snaps if s.full_name == held[0])
    assert (dash.guid, dash.createtxg, dash.creation, dash.used) == (4716695179230897763, 203, 1795324472, 0)
    assert next(s for s in snaps if s.full_name == "tank/cap/a b@zfsrep_hourly.daily_2026-11-22T00:00:00Z").used == 335872
    txgs = [s.createtxg for s in snaps]
    assert txgs == sorted(txgs)
    assert len({s.guid for s in snaps}) == 12


def test_lab_dataset_listing_and_get():
    got = parse.datasets(lab_capture("zfs-list-datasets.lab.txt"), ["name", "used", "receive_resume_token"])
    assert list(got) == ["tank/cap", "tank/cap/a b", "tank/cap/a b/-dash", "tank/cap/vol"]
    assert got["tank/cap/a b"] == {"used": "598016", "receive_resume_token": "-"}
    props = parse.properties(lab_capture("zfs-get.lab.txt"))
    assert props == {"tank/cap/a b": {"guid": "9955531469200232197", "receive_resume_token": "-"},
                     "tank/cap/vol": {"guid": "8365649422324580190", "receive_resume_token": "-"}}


def test_lab_holds():
    assert parse.holds(lab_capture("zfs-holds.lab.txt")) == {
        "tank/cap/a b/-dash@zfsrep_hourly.daily_2026-11-22T00:00:00Z": {"keep"}}


def test_lab_missing_dataset_stderr():
    err = lab_capture("zfs-list-missing.stderr.lab.txt").replace("exit=1\n", "")
    assert parse.missing_datasets(err) == {"tank/cap/nope"}
    assert parse.unexplained_errors(err) == []


def test_lab_destroy_dry_run_reclaim_through_the_client():
    from zfsrep.execute import CommandResult, Runner
    from zfsrep.zfs import ZfsClient

    class Replay(Runner):
        def run(self, argv, **kw):
            assert argv == ["zfs", "destroy", "-n", "-v", "-p",
                            "tank/cap/a b@manual one,zfsrep_hourly.daily_2026-11-22T00:00:00Z"]
            return CommandResult(tuple(argv), 0, lab_capture("zfs-destroy-nvp.lab.txt"), "")

    client = ZfsClient(Replay())
    assert client.reclaimable("tank/cap/a b", ["manual one", "zfsrep_hourly.daily_2026-11-22T00:00:00Z"]) == 401408


def test_lab_tree_listing_keeps_only_the_roots_at_depth_one():
    # `zfs list -t filesystem,volume,snapshot -o name,guid,createtxg,creation,used,userrefs,type,
    # encryption -s createtxg -d 1 tank/b/d1 tank/b` in the lab (trimmed): the roots' children
    # come with `-d 1` and are dropped
    text = (DATA / "zfs-list-tree-depth1.lab.txt").read_text()
    columns = ["name", "guid", "createtxg", "creation", "used", "userrefs", "type", "encryption"]
    found, snaps = parse.tree(text, columns, roots=["tank/b", "tank/b/d1"])
    assert list(found) == ["tank/b", "tank/b/d1"]
    assert found["tank/b/d1"]["type"] == "filesystem" and found["tank/b/d1"]["encryption"] == "off"
    assert [s.full_name for s in snaps] == ["tank/b@s1", "tank/b@s2"]
    assert snaps[0].guid == 14582339404041603148 and snaps[0].createtxg == 331 and snaps[0].userrefs == 0
    everything, _ = parse.tree(text, columns)
    assert len(everything) == 10
