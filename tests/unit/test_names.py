"""zfsrep snapshot names: UTC, sortable by time within a label, strict parse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfsrep.core.labels import LABELS
from zfsrep.core.names import format_name, is_zfsrep_name, parse_name

times = st.integers(min_value=0, max_value=4102444800)  # 1970 .. 2100
label_sets = st.sets(st.sampled_from(LABELS), min_size=1)


def test_format_is_utc_iso_with_z():
    t = datetime(2026, 3, 29, 1, 30, 5, tzinfo=UTC).timestamp()  # the EU DST night
    assert format_name(["hourly"], t) == "zfsrep_hourly_2026-03-29T01:30:05Z"
    assert format_name(["daily", "hourly"], t) == "zfsrep_hourly.daily_2026-03-29T01:30:05Z"


@given(label_sets, times)
def test_round_trip(labels, t):
    parsed = parse_name(format_name(labels, t))
    assert parsed is not None
    assert set(parsed.labels) == labels and parsed.time == t


@given(st.sampled_from(LABELS), times, times)
def test_names_of_one_label_sort_by_time(label, a, b):
    assert (format_name([label], a) < format_name([label], b)) == (a < b)


@pytest.mark.parametrize("name", [
    "manual", "zfsrep_hourly", "zfsrep_hourly_2026-01-01T00:00:00", "zfsrep_hourly_2026-01-01T00:00:00Z ",
    "zfsrep_hourly_2026-13-01T00:00:00Z", "zfsrep_hourly_2026-02-30T00:00:00Z", "zfsrep_minutely_2026-01-01T00:00:00Z",
    "zfsrep_daily.hourly_2026-01-01T00:00:00Z",  # not in canonical order: not ours
    "zfsrep_hourly.hourly_2026-01-01T00:00:00Z", "xzfsrep_hourly_2026-01-01T00:00:00Z",
    "autosnap_2026-01-01_00:00:00_hourly", "zfs-auto-snap_hourly-2026-01-01-00h00U", "syncoid_host_2026",
])
def test_foreign_names_do_not_parse(name):
    assert parse_name(name) is None and not is_zfsrep_name(name)


@given(st.text(max_size=60))
def test_anything_that_parses_formats_back_identically(name):
    parsed = parse_name(name)
    if parsed is not None:
        assert format_name(parsed.labels, parsed.time) == name


def test_no_labels_or_unknown_label_is_an_error():
    with pytest.raises(ValueError):
        format_name([], 0)
    with pytest.raises(ValueError):
        format_name(["minutely"], 0)
