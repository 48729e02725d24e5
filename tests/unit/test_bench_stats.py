"""The arithmetic behind bench/RESULTS.md: medians, ratios, the issue's targets, the table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench import report, stats
from bench.stats import RAW, ZFSREP, Run


def runs(scenario, tool, seconds, ok=True, **kw):
    return [Run(scenario, tool, i, s, ok, **kw) for i, s in enumerate(seconds, 1)]


def test_bulk_ratio_is_throughput_relative_to_raw():
    data = (runs("bulk", RAW, [10.0, 12.0, 11.0], bytes=1_000_000)
            + runs("bulk", ZFSREP, [11.0, 13.0, 12.0], bytes=1_000_000))
    raw, z = stats.summarize(data, "bulk", [RAW, ZFSREP])
    assert raw.median_s == 11.0 and z.median_s == 12.0
    assert z.vs_raw == 11.0 / 12.0  # slower -> below 1
    assert z.throughput == 1_000_000 / 12.0
    (verdict,) = stats.verdicts({"bulk": [raw, z]})
    assert verdict.met is False and "0.917" in verdict.measured


def test_time_ratio_and_failed_runs_do_not_count():
    data = (runs("incr", RAW, [2.0]) + runs("incr", ZFSREP, [4.0, 100.0])
            + [Run("incr", ZFSREP, 3, 1.0, False, error="exit 1: boom")])
    _, z = stats.summarize(data, "incr", [RAW, ZFSREP])
    assert (z.runs, z.ok_runs, z.median_s) == (3, 2, 52.0)
    assert z.vs_raw == 26.0 and z.vs_zfsrep == 1.0
    assert z.errors == ("exit 1: boom",)


def test_noop_target_needs_speedup_and_exactly_one_connection():
    peers = runs("noop", "syncoid", [9.0], ssh_connections=1) + runs("noop", "zab", [30.0])
    fast_one = runs("noop", ZFSREP, [3.0], ssh_connections=1)
    fast_two = runs("noop", ZFSREP, [3.0], ssh_connections=2)
    slow_one = runs("noop", ZFSREP, [3.5], ssh_connections=1)
    tools = [ZFSREP, "syncoid", "zab"]
    met = [stats.verdicts({"noop": stats.summarize(z + peers, "noop", tools)})[0].met
           for z in (fast_one, fast_two, slow_one)]
    assert met == [True, False, False]


def test_snap_target_counts_zfs_invocations_per_pool():
    few = stats.summarize(runs("snap", ZFSREP, [1.0], zfs_source=3), "snap", [ZFSREP])
    many = stats.summarize(runs("snap", ZFSREP, [1.0], zfs_source=1001), "snap", [ZFSREP])
    assert stats.verdicts({"snap": few})[0].met is True
    assert stats.verdicts({"snap": many})[0].met is False
    assert stats.verdicts({"snap": many}, pools=200)[0].met is True


def test_a_tool_that_never_succeeded_is_reported_as_failed_not_measurable():
    data = runs("noop", ZFSREP, [1.0, 1.0], ok=False, error="exit 2: bad config")
    (z,) = stats.summarize(data, "noop", [ZFSREP])
    assert z.median_s is None and z.vs_raw is None
    (verdict,) = stats.verdicts({"noop": [z]})
    assert verdict.met is None
    sc = report.Scenario("noop", "tiny", {ZFSREP: "zfsrep replicate"}, [z])
    text = report.render(report.Environment("python -m bench", "today", True, [("host", "x")]),
                         [sc], [verdict])
    assert "FAILED: exit 2: bad config" in text and "Quick run" in text


@given(st.lists(st.floats(min_value=0.01, max_value=1e4), min_size=1, max_size=9))
def test_median_is_bounded_and_order_free(values):
    m = stats.median(values)
    assert min(values) <= m <= max(values)
    assert m == stats.median(list(reversed(values)))


def test_table_has_one_row_per_tool_with_ratios():
    data = (runs("bulk", RAW, [10.0], bytes=10_000_000, zfs_source=1, zfs_target=1,
                 ssh_connections=1)
            + runs("bulk", ZFSREP, [10.0], bytes=10_000_000, zfs_source=4, zfs_target=3,
                   ssh_connections=1, profile=(("source send", 2),)))
    sums = stats.summarize(data, "bulk", [RAW, ZFSREP])
    lines = report.scenario_table(report.Scenario("bulk", "s", {}, sums))
    assert len(lines) == 4
    assert lines[3].split("|")[1:-1] == [" zfsrep ", " 1/1 ", " 10.0 ", " 10.0–10.0 ", " 1.0 ",
                                         " 1.00 ", " 1.00 ", " 4 ", " 3 ", " 1 "]
    assert "- zfsrep: source send ×2" in report.profile_lines(report.Scenario("bulk", "s", {}, sums))


def test_cpu_profile_counts_only_what_was_used_during_the_run():
    from bench.guest import cpu_by_command
    samples = ("1 ssh 00:00:10\n2 zfs 00:00:01\n--\n"
               "1 ssh 00:00:30\n3 python3 00:00:07\n--\n"
               "3 python3 01:00\n4 ssh 1-00:00:00\n")
    assert cpu_by_command(samples) == (("ssh", 86420.0), ("python3", 60.0))
