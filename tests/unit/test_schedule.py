"""Which labels are due: UTC calendar periods, count 0 never due, idempotent, DST-proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from zfsrep.core.labels import LABELS
from zfsrep.core.names import format_name
from zfsrep.core.schedule import due_labels, period

ALL = {label: 1 for label in LABELS}
times = st.integers(min_value=0, max_value=4102444800)


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_nothing_taken_everything_with_a_count_is_due():
    counts = {"frequent": 0, "hourly": 24, "daily": 7, "weekly": 0, "monthly": 1, "yearly": 0}
    assert due_labels(counts, [], ts(2026, 11, 22, 4, 7)) == ("hourly", "daily", "monthly")


def test_due_again_only_in_the_next_period():
    counts = {"frequent": 4, "hourly": 1}
    taken = [format_name(["frequent", "hourly"], ts(2026, 11, 22, 4, 0))]
    assert due_labels(counts, taken, ts(2026, 11, 22, 4, 14, 59)) == ()
    assert due_labels(counts, taken, ts(2026, 11, 22, 4, 15)) == ("frequent",)
    assert due_labels(counts, taken, ts(2026, 11, 22, 5, 0)) == ("frequent", "hourly")


def test_weekly_uses_iso_weeks_across_the_year_end():
    # 2026-12-31 is a Thursday in ISO week 53 of 2026; 2027-01-03 (Sunday) is still week 53.
    taken = [format_name(["weekly"], ts(2026, 12, 31, 12))]
    assert due_labels({"weekly": 1}, taken, ts(2027, 1, 3, 23, 59)) == ()
    assert due_labels({"weekly": 1}, taken, ts(2027, 1, 4, 0, 0)) == ("weekly",)
    assert due_labels({"yearly": 1}, [format_name(["yearly"], ts(2026, 12, 31, 23, 59, 59))],
                      ts(2027, 1, 1)) == ("yearly",)


def test_foreign_snapshots_do_not_count():
    assert due_labels({"hourly": 1}, ["hourly-manual", "autosnap_2026-11-22_04:00:00_hourly"],
                      ts(2026, 11, 22, 4, 30)) == ("hourly",)


@given(times, st.dictionaries(st.sampled_from(LABELS), st.integers(0, 5)))
def test_after_taking_what_is_due_nothing_is_due_at_the_same_now(now, counts):
    due = due_labels(counts, [], now)
    assert all(counts.get(label, 0) > 0 for label in due)
    taken = [format_name(due, now)] if due else []
    assert due_labels(counts, taken, now) == ()


@given(times, st.integers(min_value=1, max_value=400 * 86400))
def test_period_keys_are_monotonic(t, delta):
    for label in LABELS:
        assert period(label, t) <= period(label, t + delta)


def test_dst_nights_take_one_hourly_per_utc_hour():
    """Every 5 minutes through both 2026 DST changes in Berlin and New York: exactly one hourly
    snapshot per UTC hour, one daily per UTC day; nothing doubles or goes missing."""
    for zone, day in (("Europe/Berlin", (2026, 3, 29)), ("Europe/Berlin", (2026, 10, 25)),
                      ("America/New_York", (2026, 3, 8)), ("America/New_York", (2026, 11, 1))):
        # Local midnight of the DST day minus 6 h, then 36 h of real (epoch) time in 5-minute
        # steps: what a timer firing every 5 minutes on that machine sees.
        start = int((datetime(*day, tzinfo=ZoneInfo(zone)) - timedelta(hours=6)).timestamp())
        taken: list[str] = []
        for t in range(start, start + 36 * 3600, 300):
            due = due_labels({"hourly": 100, "daily": 10}, taken, t)
            if due:
                taken.append(format_name(due, t))
        hourly = [n for n in taken if "hourly" in n]
        daily = [n for n in taken if "daily" in n]
        assert len(hourly) == 36, zone
        assert len(set(hourly)) == len(hourly)
        utc_days = {datetime.fromtimestamp(x, UTC).date() for x in range(start, start + 36 * 3600, 300)}
        assert len(daily) == len(utc_days), zone
