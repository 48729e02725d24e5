"""Retention properties on generated histories: never more than N per label, the newest N kept,
foreign / held / protected snapshots never destroyed, idempotent, and a simulated year of
runs through DST changes and year ends."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.core.labels import LABELS
from zfsrep.core.names import format_name, parse_name
from zfsrep.core.retention import decide
from zfsrep.core.schedule import due_labels, period
from zfsrep.core.snapshot import Snapshot

counts_st = st.fixed_dictionaries({label: st.integers(0, 4) for label in LABELS})


@st.composite
def histories(draw):
    """A dataset's snapshots: zfsrep ones (random label sets at increasing times), foreign
    ones mixed in, some held."""
    n = draw(st.integers(0, 30))
    times = sorted(draw(st.lists(st.integers(0, 4_000_000_000), min_size=n, max_size=n, unique=True)))
    snaps = []
    for txg, t in enumerate(times, 1):
        if draw(st.integers(0, 5)) == 0:
            name = draw(st.sampled_from(["manual", "before-upgrade", "autosnap_x_hourly", "zfsrep_weird"])) + f"-{txg}"
        else:
            name = format_name(draw(st.sets(st.sampled_from(LABELS), min_size=1)), t)
        refs = 1 if draw(st.integers(0, 7)) == 0 else 0
        snaps.append(Snapshot("tank/a", name, guid=1000 + txg, createtxg=txg, creation=t, used=txg, userrefs=refs))
    return snaps


def labels_of(snap: Snapshot) -> tuple[str, ...]:
    parsed = parse_name(snap.name)
    return parsed.labels if parsed else ()


@given(histories(), counts_st, st.data())
def test_retention_properties(snaps, counts, data):
    protected = set(data.draw(st.lists(st.sampled_from([s.guid for s in snaps] or [0]), max_size=3)))
    d = decide(snaps, counts, protected=protected)
    destroyed = {s.name for s in d.destroy}
    kept = {s.name for s in d.keep}
    # a partition of the zfsrep snapshots; foreign ones are never in destroy
    assert not destroyed & kept
    assert {s.name for s in d.foreign} == {s.name for s in snaps if parse_name(s.name) is None}
    assert destroyed | kept | {s.name for s in d.foreign} == {s.name for s in snaps}
    for s in d.destroy:
        assert parse_name(s.name) is not None
        assert s.userrefs == 0 and s.guid not in protected
    ours = [s for s in snaps if parse_name(s.name)]
    for label in LABELS:
        with_label = sorted((s for s in ours if label in labels_of(s)), key=lambda s: parse_name(s.name).time)
        newest = with_label[-counts[label]:] if counts[label] else []
        # the newest N of each label are kept
        assert all(s.name in kept for s in newest)
        # beyond the newest N, only held or protected snapshots of that label survive...
        for s in with_label[: len(with_label) - len(newest)]:
            if s.name in kept:
                other_label = any(label2 in d.kept_because[s.name] for label2 in labels_of(s) if label2 != label)
                assert other_label or s.userrefs or s.guid in protected
        # ...so retention itself keeps at most N for the label
        assert sum(1 for s in with_label if label in d.kept_because.get(s.name, [])) <= counts[label]


@given(histories(), counts_st)
def test_idempotent(snaps, counts):
    first = decide(snaps, counts)
    remaining = [s for s in snaps if s not in first.destroy]
    assert decide(remaining, counts).destroy == []


def test_manual_snapshots_survive_any_counts():
    snaps = [Snapshot("tank/a", "my manual one", 1, 1, 0), Snapshot("tank/a", format_name(["hourly"], 0), 2, 2, 0)]
    d = decide(snaps, {label: 0 for label in LABELS})
    assert [s.name for s in d.destroy] == [format_name(["hourly"], 0)]
    assert [s.name for s in d.foreign] == ["my manual one"]


def test_multi_label_snapshot_kept_while_any_label_wants_it():
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    snaps = [Snapshot("p", format_name(["hourly", "daily"], t0), 1, 1, int(t0))] + [
        Snapshot("p", format_name(["hourly"], t0 + 3600 * i), 1 + i, 1 + i, int(t0) + 3600 * i) for i in range(1, 4)]
    d = decide(snaps, {"hourly": 2, "daily": 1})
    assert [s.name for s in d.destroy] == [snaps[1].name]
    assert d.kept_because[snaps[0].name] == ["daily"]


def simulate(counts: dict[str, int], start: int, end: int, step: int) -> tuple[list[Snapshot], int]:
    """Runs every ``step`` seconds from ``start`` to ``end``: take what is due, prune; check
    idempotence after every run. Returns the surviving snapshots and the last run's time."""
    snaps: list[Snapshot] = []
    t, last = start, start
    while t < end:
        due = due_labels(counts, [s.name for s in snaps], t)
        if due:
            snaps.append(Snapshot("tank/a", format_name(due, t), len(snaps) + t, t, t))
            d = decide(snaps, counts)
            assert decide(d.keep, counts).destroy == []
            snaps = d.keep
        last = t
        t += step
    return snaps, last


def check_policy(snaps: list[Snapshot], counts: dict[str, int], start: int, last: int, step: int) -> None:
    """Retention keeps, for each label, min(N, periods elapsed) snapshots, one per period, the
    newest being the current period's. (A snapshot carrying several labels may also be kept by
    another label; it then does not count here.)"""
    because = decide(snaps, counts).kept_because
    for label in LABELS:
        periods = {period(label, x) for x in range(start, last + 1, step)} if counts[label] else set()
        mine = [parse_name(s.name).time for s in snaps if label in because.get(s.name, [])]
        assert len(mine) == min(counts[label], len(periods)), label
        assert len({period(label, x) for x in mine}) == len(mine), label
        if counts[label]:
            assert period(label, max(mine)) == period(label, last), label


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 23), st.fixed_dictionaries({
    "frequent": st.just(0), "hourly": st.integers(0, 30), "daily": st.integers(0, 10),
    "weekly": st.integers(0, 6), "monthly": st.integers(0, 14), "yearly": st.integers(0, 3)}))
def test_two_years_hourly_through_dst_and_year_ends(start_hour, counts):
    start = int(datetime(2025, 6, 1, start_hour, tzinfo=UTC).timestamp())
    end = int(datetime(2027, 7, 1, tzinfo=UTC).timestamp())
    snaps, last = simulate(counts, start, end, 3600)
    check_policy(snaps, counts, start, last, 3600)


@settings(max_examples=4, deadline=None)
@given(st.fixed_dictionaries({label: st.integers(0, 6) for label in LABELS}))
def test_ten_days_every_15_minutes_over_a_year_end(counts):
    start = int(datetime(2026, 12, 26, tzinfo=UTC).timestamp())
    end = int(datetime(2027, 1, 5, tzinfo=UTC).timestamp())
    snaps, last = simulate(counts, start, end, 900)
    check_policy(snaps, counts, start, last, 900)


@settings(max_examples=200, deadline=None)
@given(histories(), counts_st, st.data())
def test_held_only_is_what_the_same_snapshots_unheld_would_destroy(snaps, counts, data):
    # replicate's prune names these (details["kept_held"]) instead of planning a second time
    protected = set(data.draw(st.lists(st.sampled_from([s.guid for s in snaps]), max_size=2))) if snaps else set()
    unheld = decide([Snapshot(s.dataset, s.name, s.guid, s.createtxg, s.creation, s.used) for s in snaps],
                    counts, protected=protected)
    d = decide(snaps, counts, protected=protected)
    held = {s.name for s in snaps if s.userrefs > 0}
    assert d.held_only() == [s.name for s in unheld.destroy if s.name in held]
