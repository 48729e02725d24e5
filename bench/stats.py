"""Pure: measured runs -> per-tool summaries (medians, ratios) and the issue's targets.

No I/O here, so the arithmetic that ends up in RESULTS.md is unit-tested
(tests/unit/test_bench_stats.py).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

RAW = "raw pipe"
ZFSREP = "zfsrep"

# The targets (same run, ratios).
BULK_MIN_RATIO = 0.97  # zfsrep throughput >= 0.97 x the raw pipe
NOOP_MIN_SPEEDUP = 3.0  # zfsrep no-op >= 3x faster than the fastest peer ...
NOOP_SSH_CONNECTIONS = 1  # ... with exactly one ssh connection
SNAP_MAX_ZFS_PER_POOL = 8  # "O(pools)": a small constant per pool, whatever the dataset count


@dataclass(frozen=True)
class Run:
    """One timed run of one tool in one scenario (counts are None when not measured)."""

    scenario: str
    tool: str
    index: int
    seconds: float
    ok: bool
    zfs_source: int | None = None
    zfs_target: int | None = None
    ssh_connections: int | None = None
    bytes: int | None = None
    error: str = ""
    # zfs subcommands seen, e.g. (("source list", 2), ("target receive", 20))
    profile: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Summary:
    scenario: str
    tool: str
    runs: int
    ok_runs: int
    median_s: float | None
    min_s: float | None
    max_s: float | None
    zfs_source: float | None
    zfs_target: float | None
    ssh_connections: float | None
    throughput: float | None  # bytes/s from the median time (bulk only)
    vs_raw: float | None  # bulk: throughput / raw's; others: time / raw's time
    vs_zfsrep: float | None  # same, relative to zfsrep
    errors: tuple[str, ...] = ()
    profile: tuple[tuple[str, int], ...] = ()  # of the last successful run
    rounds: tuple[tuple[int, float], ...] = ()  # (round, seconds) of each successful run


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _median_of(runs: list[Run], attr: str) -> float | None:
    return median([getattr(r, attr) for r in runs if getattr(r, attr) is not None])


def _ratio(scenario: str, mine: float | None, ref: float | None) -> float | None:
    """Throughput ratio for bulk (higher is better), time ratio otherwise (lower is better)."""
    if mine is None or ref is None or mine <= 0 or ref <= 0:
        return None
    return ref / mine if scenario == "bulk" else mine / ref


def summarize(runs: list[Run], scenario: str, tools: list[str]) -> list[Summary]:
    """One Summary per tool (in the given order); only successful runs count for times."""
    base: dict[str, tuple[list[Run], list[Run]]] = {}
    for tool in tools:
        mine = [r for r in runs if r.scenario == scenario and r.tool == tool]
        base[tool] = (mine, [r for r in mine if r.ok])
    medians = {tool: median([r.seconds for r in ok]) for tool, (_, ok) in base.items()}
    out = []
    for tool, (mine, ok) in base.items():
        med = medians[tool]
        size = _median_of(ok, "bytes")
        out.append(Summary(
            scenario=scenario, tool=tool, runs=len(mine), ok_runs=len(ok), median_s=med,
            min_s=min((r.seconds for r in ok), default=None),
            max_s=max((r.seconds for r in ok), default=None),
            zfs_source=_median_of(ok, "zfs_source"), zfs_target=_median_of(ok, "zfs_target"),
            ssh_connections=_median_of(ok, "ssh_connections"),
            throughput=(size / med) if size and med else None,
            vs_raw=_ratio(scenario, med, medians.get(RAW)),
            vs_zfsrep=_ratio(scenario, med, medians.get(ZFSREP)),
            errors=tuple(dict.fromkeys(r.error for r in mine if not r.ok and r.error)),
            profile=ok[-1].profile if ok else (),
            rounds=tuple((r.index, r.seconds) for r in ok),
        ))
    return out


@dataclass(frozen=True)
class Verdict:
    scenario: str
    target: str
    met: bool | None  # None: not measurable in this run (a tool failed or was not run)
    measured: str


def _find(summaries: list[Summary], tool: str) -> Summary | None:
    return next((s for s in summaries if s.tool == tool and s.median_s is not None), None)


def _per_round(raw: Summary | None, z: Summary, limit: float) -> str:
    """The throughput ratio of each round, pairing the raw pipe's run with zfsrep's of the same
    round (the tools alternate within a round, so a round's pair ran minutes apart, under the
    same load; a slow spell of the host moves both). If the rounds fall on both sides of the
    limit, the medians' verdict could go either way: it says so."""
    if raw is None:
        return ""
    mine = dict(z.rounds)
    ratios = [raw_s / mine[i] for i, raw_s in raw.rounds if i in mine and mine[i] > 0]
    if not ratios:
        return ""
    listed = ", ".join(f"{r:.3f}" for r in ratios)
    if min(ratios) < limit <= max(ratios):
        return f"; not decisive: per round {listed} x raw"
    return f"; per round {listed} x raw"


def verdicts(by_scenario: dict[str, list[Summary]], pools: int = 1) -> list[Verdict]:
    """The issue's targets, judged on this run's numbers."""
    out = []
    bulk = by_scenario.get("bulk")
    if bulk is not None:
        z = _find(bulk, ZFSREP)
        met = None if z is None or z.vs_raw is None else z.vs_raw >= BULK_MIN_RATIO
        out.append(Verdict("bulk", f"throughput >= {BULK_MIN_RATIO} x raw pipe", met,
                           "n/a" if met is None else f"{z.vs_raw:.3f} x raw"
                           + _per_round(_find(bulk, RAW), z, BULK_MIN_RATIO)))
    noop = by_scenario.get("noop")
    if noop is not None:
        z = _find(noop, ZFSREP)
        peers = [s for s in noop if s.tool not in (RAW, ZFSREP) and s.median_s is not None]
        if z is None or not peers:
            out.append(Verdict("noop", f">= {NOOP_MIN_SPEEDUP:g}x faster than the fastest peer, "
                               f"{NOOP_SSH_CONNECTIONS} ssh connection", None, "n/a"))
        else:
            fastest = min(peers, key=lambda s: s.median_s)
            speedup = fastest.median_s / z.median_s
            one_conn = z.ssh_connections == NOOP_SSH_CONNECTIONS
            out.append(Verdict(
                "noop", f">= {NOOP_MIN_SPEEDUP:g}x faster than the fastest peer, "
                f"exactly {NOOP_SSH_CONNECTIONS} ssh connection",
                speedup >= NOOP_MIN_SPEEDUP and one_conn,
                f"{speedup:.2f}x faster than {fastest.tool}; "
                f"{_num(z.ssh_connections)} ssh connection(s)"))
    snap = by_scenario.get("snap")
    if snap is not None:
        z = _find(snap, ZFSREP)
        limit = SNAP_MAX_ZFS_PER_POOL * pools
        met = None if z is None or z.zfs_source is None else z.zfs_source <= limit
        out.append(Verdict("snap", f"zfs invocations O(pools): <= {limit} for {pools} pool(s)",
                           met, "n/a" if met is None else f"{_num(z.zfs_source)} zfs invocations"))
    return out


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:g}" if x == int(x) else f"{x:.1f}"


def phase_profile(runs: list[dict[str, float]], wall: list[float]) -> str:
    """zfsrep's own account of its runs (`phases` of each run's result, plus the wall time the
    benchmark measured), as medians: "wall W s: startup a, sends b, … (other c)", largest
    first. Phases that ran beside others (the source listing in its worker thread) are marked
    and left out of "other": what the main thread's phases and the wall time do not cover."""
    if not runs or not wall:
        return ""
    names = sorted({n for r in runs for n in r})
    med = {n: statistics.median(r.get(n, 0.0) for r in runs) for n in names}
    total = statistics.median(wall)
    parallel = {"source_listing", "source_holds"}  # the worker thread's, overlapped by `ssh_connect` etc.
    other = total - sum(v for n, v in med.items() if n not in parallel)
    parts = [f"{n} {v:.2f}" + (" (beside the others)" if n in parallel else "")
             for n, v in sorted(med.items(), key=lambda kv: -kv[1])]
    return f"wall {total:.1f} s: " + ", ".join(parts) + f" (other {max(0.0, other):.2f})"
