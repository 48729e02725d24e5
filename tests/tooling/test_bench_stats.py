"""The arithmetic behind bench/RESULTS.md: medians, ratios, the issue's targets, the table."""

from __future__ import annotations

import re

import pytest

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


@pytest.mark.parametrize("raw_s,zfsrep_s,measured", [
    # the f2df1a0 bulk runs: the medians say yes, two of three rounds say no
    ([106.1, 99.1, 106.0], [110.9, 105.8, 106.6],
     "0.994 x raw; not decisive: per round 0.957, 0.937, 0.994 x raw"),
    # every round on the same side of the limit
    ([100.0, 100.5, 101.0], [102.0, 102.5, 103.0], "0.980 x raw; per round 0.980, 0.980, 0.981 x raw"),
    ([100.0, 100.5, 101.0], [110.0, 111.0, 112.0], "0.905 x raw; per round 0.909, 0.905, 0.902 x raw"),
    # a slow spell of the host in round 2 slows both tools: their spreads overlap the limit,
    # the rounds do not
    ([100.0, 110.0, 100.5], [101.0, 111.5, 102.0], "0.985 x raw; per round 0.990, 0.987, 0.985 x raw"),
])
def test_a_bulk_verdict_pairs_the_tools_runs_round_by_round(raw_s, zfsrep_s, measured):
    data = (runs("bulk", RAW, raw_s, bytes=1_000_000) + runs("bulk", ZFSREP, zfsrep_s, bytes=1_000_000))
    (verdict,) = stats.verdicts({"bulk": stats.summarize(data, "bulk", [RAW, ZFSREP])})
    assert verdict.measured == measured


def test_a_failed_run_leaves_its_round_unpaired():
    data = (runs("bulk", RAW, [100.0, 100.0, 100.0], bytes=1_000_000)
            + [Run("bulk", ZFSREP, 1, 101.0, True, bytes=1_000_000),
               Run("bulk", ZFSREP, 2, 5.0, False, error="exit 1"),
               Run("bulk", ZFSREP, 3, 102.0, True, bytes=1_000_000)])
    (verdict,) = stats.verdicts({"bulk": stats.summarize(data, "bulk", [RAW, ZFSREP])})
    assert verdict.measured.endswith("; per round 0.990, 0.980 x raw")


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


LEGACY = """\
# zfsrep benchmarks

Generated by `python -m bench --quick` on 2026-11-22 07:02 UTC (benchmark took 105 min). **Do not edit by hand**: run the benchmark again (see [bench/README.md](README.md)).

## Machine and versions

| | |
|---|---|
| host load (1/5/15 min), start → end | 7.3 → 1.0 |
| zfsrep | zfsrep 0.1.0 (checkout 5fce2f5-dirty) |

## Targets

| scenario | target | met | measured |
|---|---|---|---|
| bulk | throughput >= 0.97 x raw pipe | **NO** | 0.510 x raw |
| snap | zfs invocations O(pools): <= 8 for 1 pool(s) | **NO** | 104 zfs invocations |

## 1. Bulk: one dataset, full send of incompressible data (throughput)

Sizes: old bulk.

| tool | ok runs |
|---|---|
| zfsrep | 3/3 |

## 4. Snapshot + prune over many datasets (wall time, zfs calls)

Sizes: old snap.

## How it was measured

- method
"""


OLD_ZFS, NEW_ZFS = "zfs-2.1.11-1+deb12u1", "zfs-2.3.2-2~bpo12+2"


def _env(command, date, checkout, openzfs):
    return report.Environment(
        command, date, True,
        [("host load (1/5/15 min), start → end", "2.5 → 3.0"),
         ("zfsrep", f"zfsrep 0.1.0 (checkout {checkout})"),
         ("OpenZFS", f"{openzfs} (lab image variant x)")])


def _snap_run(checkout="abc1234", zfs_source=3, openzfs=OLD_ZFS):
    sums = stats.summarize(runs("snap", ZFSREP, [5.0], zfs_source=zfs_source), "snap", [ZFSREP])
    env = _env("python -m bench --quick --only snap", "2026-11-23 08:00 UTC", checkout, openzfs)
    return env, [report.Scenario("snap", "new snap", {ZFSREP: "zfsrep snapshot"}, sums)], \
        stats.verdicts({"snap": sums})


def _bulk_run(openzfs=NEW_ZFS):
    data = (runs("bulk", RAW, [10.0], bytes=10_000_000)
            + runs("bulk", ZFSREP, [10.0], bytes=10_000_000))
    sums = stats.summarize(data, "bulk", [RAW, ZFSREP])
    env = _env("python -m bench --zfs backports --only bulk", "2026-11-24 09:00 UTC", "fff0000",
               openzfs)
    return env, [report.Scenario("bulk", "new bulk", {ZFSREP: "zfsrep replicate"}, sums)], \
        stats.verdicts({"bulk": sums})


def test_a_report_without_markers_is_split_by_its_headings_and_dated_by_its_header():
    prev = report.parse_previous(LEGACY)
    assert set(prev) == {"bulk", "snap"}
    bulk = prev["bulk"]
    assert bulk.origin == report.Origin("python -m bench --quick",
                                        "2026-11-22 07:02 UTC (benchmark took 105 min)",
                                        "5fce2f5-dirty", "7.3 → 1.0")
    assert bulk.body == ("Sizes: old bulk.", "", "| tool | ok runs |", "|---|---|",
                         "| zfsrep | 3/3 |")  # up to the next heading, nothing after
    assert bulk.target == ("throughput >= 0.97 x raw pipe", "**NO**", "0.510 x raw")


def test_only_some_scenarios_carries_the_others_over_labelled_and_targets_from_this_run():
    env, scenarios, verdicts = _snap_run()
    text = report.render(env, scenarios, verdicts, report.parse_previous(LEGACY))
    assert "Sizes: old snap." not in text and "Sizes: new snap." in text
    assert "104 zfs invocations" not in text
    lines = text.splitlines()
    assert ("| snap | zfs invocations O(pools): <= 8 for 1 pool(s) | **yes** | "
            f"3 zfs invocations | this run, OpenZFS {OLD_ZFS} |") in lines
    # LEGACY's machine table has no OpenZFS row: unknown, not guessed
    assert ("| bulk | throughput >= 0.97 x raw pipe | **NO** | 0.510 x raw | carried over: "
            "2026-11-22 07:02 UTC (benchmark took 105 min), checkout 5fce2f5-dirty, "
            "**OpenZFS ?** |") in lines
    bulk = lines.index("## 1. Bulk: one dataset, full send of incompressible data (throughput)")
    assert lines[bulk + 2].startswith("> **Carried over** from an earlier run")
    assert "5fce2f5-dirty" in lines[bulk + 2] and "7.3 → 1.0" in lines[bulk + 2]
    assert lines[bulk + 4:bulk + 9] == ["Sizes: old bulk.", "", "| tool | ok runs |",
                                        "|---|---|", "| zfsrep | 3/3 |"]
    # sections stay in scenario order: bulk before snap
    assert bulk < lines.index("## 4. Snapshot + prune over many datasets (wall time, zfs calls)")
    assert f"> **Partial run**: snap measured now on OpenZFS {OLD_ZFS}; bulk carried over" in text
    assert (f"> **OpenZFS differs** (this run: {OLD_ZFS}): OpenZFS not recorded: bulk. "
            in text)


def test_carried_sections_keep_their_own_run_through_later_partial_runs():
    env, scenarios, verdicts = _snap_run()
    first = report.render(env, scenarios, verdicts, report.parse_previous(LEGACY))
    prev = report.parse_previous(first)
    assert prev["snap"].origin.checkout == "abc1234"  # from its marker, not the header
    assert prev["bulk"] == report.parse_previous(LEGACY)["bulk"]  # label not taken as body
    # measuring snap again replaces only snap; bulk still says 2026-11-22, written once
    env2, sc2, v2 = _snap_run(checkout="def5678", zfs_source=4)
    second = report.render(env2, sc2, v2, prev)
    assert second.count("> **Carried over**") == 1 and "4 zfs invocations | this run" in second
    assert report.parse_previous(second)["bulk"] == prev["bulk"]
    # a run of nothing new carries everything, snap now labelled with its own checkout
    third = report.render(env2, [], [], report.parse_previous(second))
    assert "| snap | zfs invocations O(pools): <= 8 for 1 pool(s) | **yes** | 4 zfs invocations " \
           f"| carried over: 2026-11-23 08:00 UTC, checkout def5678, OpenZFS {OLD_ZFS} |" in third
    # snap: same OpenZFS as this run, not flagged; bulk's is still unknown
    assert (f"> **OpenZFS differs** (this run: {OLD_ZFS}): OpenZFS not recorded: bulk. Compare "
            "those sections with this run's with care.") in third.splitlines()


def test_a_full_run_carries_nothing_over():
    env, scenarios, verdicts = _snap_run()
    prev = {k: c for k, c in report.parse_previous(LEGACY).items() if k == "snap"}
    text = report.render(env, scenarios, verdicts, prev)
    assert "Carried over" not in text and "Partial run" not in text
    assert "Sizes: old snap." not in text


def test_each_section_records_its_openzfs_and_a_carried_one_from_another_shows_it():
    first = report.render(*_snap_run(openzfs=OLD_ZFS))
    assert f'"openzfs": "{OLD_ZFS}"' in first.splitlines()[first.splitlines().index(
        "## 4. Snapshot + prune over many datasets (wall time, zfs calls)") - 1]
    second = report.render(*_bulk_run(openzfs=NEW_ZFS), report.parse_previous(first))
    lines = second.splitlines()
    assert (f"> **OpenZFS differs** (this run: {NEW_ZFS}): carried over from another OpenZFS: "
            f"snap (OpenZFS {OLD_ZFS}). Compare those sections with this run's with care.") in lines
    assert any(ln.startswith("| bulk |") and ln.endswith(f"| this run, OpenZFS {NEW_ZFS} |")
               for ln in lines)
    assert any(ln.startswith("| snap |") and ln.endswith(
        f"| carried over: 2026-11-23 08:00 UTC, checkout abc1234, **OpenZFS {OLD_ZFS}** |")
        for ln in lines)
    snap = lines.index("## 4. Snapshot + prune over many datasets (wall time, zfs calls)")
    assert lines[snap + 2].endswith(f"host load (1/5/15 min, start → end) 2.5 → 3.0, "
                                    f"**OpenZFS {OLD_ZFS}** (this run: {NEW_ZFS}).")
    prev = report.parse_previous(second)
    assert (prev["snap"].origin.openzfs, prev["bulk"].origin.openzfs) == (OLD_ZFS, NEW_ZFS)
    # back on the old OpenZFS: bulk is now the one from another version, snap is not flagged
    third = report.render(*_snap_run(openzfs=OLD_ZFS), prev)
    assert f"carried over from another OpenZFS: bulk (OpenZFS {NEW_ZFS})." in third


def test_markers_written_before_openzfs_take_it_from_their_own_runs_machine_table_only():
    env, scenarios, verdicts = _snap_run(openzfs=OLD_ZFS)
    text = report.render(env, scenarios, verdicts, report.parse_previous(LEGACY))
    old = re.sub(r', "openzfs": "[^"]*"', "", text)  # as the bench wrote them before
    assert '"openzfs"' not in old and text != old
    prev = report.parse_previous(old)
    # snap was measured by the run whose machine table the file has; bulk by an earlier one
    assert prev["snap"].origin.openzfs == OLD_ZFS
    assert prev["bulk"].origin.openzfs == "?"
    assert prev["bulk"].origin.checkout == "5fce2f5-dirty"
    again = report.render(*_bulk_run(openzfs=OLD_ZFS), prev)
    assert ("checkout abc1234, OpenZFS zfs-2.1.11-1+deb12u1 |" in again
            and "OpenZFS differs" not in again)
    # a marker with fields this version does not know is still read
    extra = old.replace('"checkout": "abc1234"', '"checkout": "abc1234", "later": 1')
    assert report.parse_previous(extra)["snap"].origin == prev["snap"].origin


def test_phase_profile_gives_medians_largest_first_and_what_is_left():
    runs = [{"startup": 2.0, "sends": 100.0, "source_listing": 0.5, "target_prune": 0.5},
            {"startup": 2.2, "sends": 104.0, "source_listing": 0.7, "target_prune": 0.7},
            {"startup": 2.4, "sends": 102.0, "source_listing": 0.6}]
    text = stats.phase_profile(runs, [106.0, 108.0, 110.0])
    assert text.startswith("wall 108.0 s: sends 102.00, startup 2.20, ")
    # a phase missing from a run counts 0 there; the worker thread's phases are not subtracted
    assert "source_listing 0.60 (beside the others)" in text and "target_prune 0.50" in text
    assert text.endswith("(other 3.30)")
    assert stats.phase_profile([], []) == ""
