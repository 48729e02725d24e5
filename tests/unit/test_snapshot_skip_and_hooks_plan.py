"""The plan's min_change skips (a skipped label stays due, retention never destroys more) and
which hooks run around which pool's snapshot (`core.snapshot_hooks`)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_snapshot_plan import NOW, snap
from zfsrep.config.model import DatasetConfig, Retention
from zfsrep.core.names import format_name
from zfsrep.core.snapshot_hooks import POST, PRE, plan_hooks, post_order, without
from zfsrep.core.snapshot_plan import plan_snapshots

MIB = 1024 * 1024


@given(st.lists(st.integers(1, 400), min_size=1, max_size=12, unique=True),
       st.fixed_dictionaries({"hourly": st.integers(0, 4), "daily": st.integers(0, 3), "weekly": st.integers(0, 2)}),
       st.integers(0, 3 * MIB), st.integers(1, 2 * MIB))
def test_a_skip_keeps_the_labels_due_and_never_destroys_more(hours_ago, counts, written, min_change):
    retention = Retention(frequent=0, monthly=0, yearly=0, **counts)
    existing = [snap("tank/a", format_name(["hourly", "daily", "weekly"], NOW - 3600 * h), 1000 - h)
                for h in sorted(hours_ago, reverse=True)]
    plain = DatasetConfig("tank/a", retention=retention)
    gated = replace(plain, min_change=min_change)
    always = plan_snapshots([plain], ["tank/a"], {"tank/a": existing}, NOW).datasets[0]
    maybe = plan_snapshots([gated], ["tank/a"], {"tank/a": existing}, NOW, written={"tank/a": written}).datasets[0]
    assert maybe.due == always.due  # still due: the next run asks again
    if written >= min_change or not always.due:
        assert maybe == always
    else:
        assert maybe.create is None and maybe.skipped and "below min_change" in maybe.skipped
        assert set(maybe.destroy) <= set(always.destroy)


def test_no_snapshot_yet_or_written_unknown_is_never_skipped():
    entry = DatasetConfig("tank/a", min_change=MIB)
    first = plan_snapshots([entry], ["tank/a"], {}, NOW, written={"tank/a": 0})
    assert first.datasets[0].create and not first.datasets[0].skipped
    old = {"tank/a": [snap("tank/a", format_name(["hourly"], NOW - 7200), 5)]}
    unknown = plan_snapshots([entry], ["tank/a"], old, NOW)
    assert unknown.datasets[0].create


def test_a_skipped_child_takes_the_pool_off_dash_r_but_keeps_one_command():
    entry = DatasetConfig("tank/db", recursive=True, min_change=MIB)
    old = {d: [snap(d, format_name(["hourly"], NOW - 7200), 5)] for d in ("tank/db", "tank/db/wal")}
    plan = plan_snapshots([entry], ["tank", "tank/db", "tank/db/wal"], old, NOW,
                          written={"tank/db": 2 * MIB, "tank/db/wal": 10})
    (create,) = plan.creates
    assert create.datasets == ("tank/db",) and not create.recursive


ENTRIES = [
    DatasetConfig("tank/db", recursive=True, pre_snapshot=("freeze", "db"), post_snapshot=("thaw", "db")),
    DatasetConfig("tank/www", post_snapshot=("notify",), hook_timeout=5.0),
    DatasetConfig("tank/plain"),
    DatasetConfig("data/x", pre_snapshot=("freeze", "x")),
]
LISTED = ["tank", "tank/db", "tank/db/wal", "tank/www", "tank/plain", "data", "data/x"]


def test_hooks_are_per_pool_in_config_order_and_posts_unwind_in_reverse():
    plan = plan_snapshots(ENTRIES, LISTED, {}, NOW)
    hooks = plan_hooks(plan, ENTRIES)
    name = format_name(["hourly", "daily", "weekly", "monthly"], NOW)
    assert [h.entry for h in hooks["tank"]] == ["tank/db", "tank/www"]
    assert [h.entry for h in post_order(hooks["tank"])] == ["tank/www", "tank/db"]
    db = hooks["tank"][0]
    assert db.datasets == ("tank/db", "tank/db/wal") and db.timeout == 300.0
    assert db.env(PRE) == {"ZFSREP_HOOK": "pre_snapshot", "ZFSREP_ENTRY": "tank/db",
                           "ZFSREP_DATASETS": "tank/db\ntank/db/wal",
                           "ZFSREP_SNAPSHOTS": f"tank/db@{name}\ntank/db/wal@{name}",
                           "ZFSREP_LABELS": "hourly,daily,weekly,monthly"}
    assert db.env(POST, "skipped")["ZFSREP_OUTCOME"] == "skipped"
    assert hooks["tank"][1].argv(PRE) is None and hooks["tank"][1].argv(POST) == ("notify",)
    assert [h.entry for h in hooks["data"]] == ["data/x"]


def test_an_entry_with_nothing_to_create_has_no_hooks():
    plan = plan_snapshots(ENTRIES, LISTED, {}, NOW)
    done = plan_snapshots(ENTRIES, LISTED, {d: [snap(d, dp.create, 9)] for dp in plan.datasets
                                            for d in [dp.dataset] if dp.create}, NOW)
    assert plan_hooks(done, ENTRIES) == {}


def test_without_leaves_the_failed_entrys_datasets_out_of_the_one_command():
    plan = plan_snapshots(ENTRIES, LISTED, {}, NOW)
    (tank,) = [c for c in plan.creates if c.pool == "tank"]
    rest = without(tank, {"tank/db", "tank/db/wal"}, plan, LISTED)
    assert rest is not None and set(rest.datasets) == {"tank/www", "tank/plain"}
    assert all(not n.startswith("tank/db") for n in rest.names)
    assert without(tank, set(tank.datasets), plan, LISTED) is None


def test_config_reads_hooks_as_argv_lists_and_min_change_as_bytes():
    from zfsrep.config.load import parse_config, render_config
    from zfsrep.errors import ConfigError

    cfg = parse_config('[[datasets]]\nname = "tank/db"\npre_snapshot = ["/usr/local/bin/db-freeze", "tank/db"]\n'
                       'post_snapshot = ["/usr/local/bin/db-thaw"]\nhook_timeout = "2m"\nmin_change = "1M"\n')
    (entry,) = cfg.datasets
    assert entry.pre_snapshot == ("/usr/local/bin/db-freeze", "tank/db") and entry.hook_timeout == 120.0
    assert entry.min_change == MIB and parse_config(render_config(cfg)) == cfg
    try:
        parse_config('[[datasets]]\nname = "tank/db"\npre_snapshot = "db-freeze tank/db"\nmin_change = "1 MB"\n'
                     '[[datasets]]\nname = "tank/vm"\nsnapshot = false\npost_snapshot = ["thaw"]\n')
    except ConfigError as e:
        text = str(e)
    else:
        raise AssertionError("a shell string and a bad size were accepted")
    assert "datasets[0].pre_snapshot: expected a command as an array of arguments" in text
    assert 'datasets[0].min_change: expected a size like "512K" or "1M", got "1 MB"' in text
    assert "datasets[1].post_snapshot: only makes sense with snapshot = true" in text
