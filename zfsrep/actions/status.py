"""`zfsrep status`: per dataset × target, how old the copy is, from the state dir or (``live``)
from `zfs list` on the source and on each target over ssh. Never prints; never warms up an
on-demand target (a status check must not start a machine)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from zfsrep import state
from zfsrep.config.model import Config, DatasetConfig, TargetConfig
from zfsrep.core import freshness as fr
from zfsrep.core.names import parse_name
from zfsrep.core.snapshot import Snapshot
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner
from zfsrep.targets.select import check_targets, covers, pick_datasets, source_dataset, target_dataset
from zfsrep.zfs import ZfsClient


@dataclass
class StatusReport:
    verdicts: list[fr.Verdict]
    source: str  # "state" or "live"
    checked_at: float
    notes: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return fr.overall(self.verdicts)

    @property
    def exit_code(self) -> int:
        return fr.EXIT_CODES[self.state]

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "exit_code": self.exit_code, "source": self.source,
                "checked_at": self.checked_at, "summary": fr.summary_line(self.verdicts),
                "items": [v.to_dict() for v in self.verdicts], "notes": self.notes}


@dataclass
class _Pair:
    entry: DatasetConfig
    dataset: str
    target: TargetConfig


def run(
    config: Config,
    *,
    now: float,
    live: bool = False,
    targets: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    warn: float | None = None,
    crit: float | None = None,
    connect: Callable[[TargetConfig], AbstractContextManager[Any]] | None = None,
    local: Runner | None = None,
) -> StatusReport:
    check_targets(config, targets)
    chosen = set(targets or config.targets)
    entries = pick_datasets(config, datasets)
    try:
        history = state.read_replication(config.state_dir)
    except (ValueError, OSError) as e:
        raise ZfsrepError(f"cannot read {state.replication_path(config.state_dir)}: "
                          f"{getattr(e, 'strerror', None) or 'not valid JSON'}; the next replicate rewrites it") from None
    notes: list[str] = []
    if not live and not state.replication_path(config.state_dir).exists():
        notes.append(f"no replication history at {state.replication_path(config.state_dir)}: has "
                     "`zfsrep replicate` run on this host, with this state_dir?")
    wanted = [(e, t) for e in entries for t in config.targets_for(e) if t.name in chosen]

    source_snaps: dict[str, list[Snapshot]] = {}
    target_snaps: dict[str, dict[str, list[Snapshot]]] = {}
    problems: dict[str, str] = {}  # target name -> why it could not be checked live
    if live:
        # ssh and on-demand targets: only needed to look live
        from zfsrep.targets.access import connector

        try:
            source_snaps = _list(ZfsClient(local or Runner()), [(e.name, e.recursive) for e in entries])
        except ZfsrepError as e:
            problems = {t.name: f"cannot list snapshots on this host: {_first_line(e)}" for _, t in wanted}
        connect = connect or connector(config, warm=False, lock=False)
        for t in {t.name: t for _, t in wanted}.values():
            if t.name in problems:
                continue
            roots = [(target_dataset(t, e.name), e.recursive) for e, tt in wanted if tt.name == t.name]
            try:
                with connect(t) as session:
                    copies = _list(ZfsClient(session.runner), roots)
            except ZfsrepError as e:
                problems[t.name] = f"cannot check {t.name} live: {_first_line(e)}"
                continue
            target_snaps[t.name] = {src: snaps for copy, snaps in copies.items()
                                    if (src := source_dataset(t, copy)) is not None}
    last_snapshot = _newest_taken(config.state_dir)

    observations = []
    for pair in _pairs(wanted, history, source_snaps, target_snaps):
        warn_s, crit_s = _thresholds(config, pair.target, warn, crit)
        record = history.get(pair.target.name, {}).get(pair.dataset, {})
        obs: dict[str, Any] = {
            "dataset": pair.dataset, "target": pair.target.name, "warn": warn_s, "crit": crit_s,
            "last_success": record.get("last_success"), "last_attempt": record.get("last_attempt"),
            "last_status": record.get("status"), "last_error": record.get("last_error"),
            "bytes": record.get("bytes"), "seconds": record.get("seconds"), "recorded": bool(record),
        }
        if live:
            obs.update(_live_fields(source_snaps.get(pair.dataset, []),
                                    target_snaps.get(pair.target.name, {}).get(pair.dataset, [])))
            obs["problem"] = problems.get(pair.target.name)
        else:
            newest = record.get("newest_snapshot")
            parsed = parse_name(newest) if newest else None
            taken = last_snapshot.get(pair.dataset)
            obs.update(newest_target=newest, newest_target_time=parsed.time if parsed else None,
                       newest_source=taken[0] if taken else None, newest_source_time=taken[1] if taken else None)
            if notes:
                obs["problem"] = notes[0]
        observations.append(fr.Observation(**obs))
    verdicts = [fr.evaluate(o, now=now) for o in observations]
    return StatusReport(verdicts, "live" if live else "state", now, notes)


def _thresholds(config: Config, target: TargetConfig, warn: float | None, crit: float | None) -> tuple[float, float]:
    w = warn if warn is not None else target.warn if target.warn is not None else config.status.warn
    c = crit if crit is not None else target.crit if target.crit is not None else config.status.crit
    return w, max(c, w)


def _pairs(wanted, history, source_snaps, target_snaps) -> list[_Pair]:
    """Each configured dataset × target, plus the children of recursive entries that the state
    or a listing knows of (excluded children left out)."""
    out: dict[tuple[str, str], _Pair] = {}
    for entry, target in wanted:
        out[(entry.name, target.name)] = _Pair(entry, entry.name, target)
        if not entry.recursive:
            continue
        known = set(history.get(target.name, {})) | set(source_snaps) | set(target_snaps.get(target.name, {}))
        for name in sorted(known):
            if covers(entry, name):
                out.setdefault((name, target.name), _Pair(entry, name, target))
    return sorted(out.values(), key=lambda p: (p.dataset, p.target.name))


def _list(client: ZfsClient, roots: list[tuple[str, bool]]) -> dict[str, list[Snapshot]]:
    out: dict[str, list[Snapshot]] = {}
    for recursive in (False, True):
        names = [name for name, r in roots if r == recursive]
        if names:
            out.update(client.list_snapshots(names, recursive=recursive, missing_ok=True))
    return out


def _live_fields(source: list[Snapshot], copy: list[Snapshot]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if source:
        fields.update(newest_source=source[-1].name, newest_source_time=float(source[-1].creation))
    if copy:
        newest = copy[-1]
        fields.update(newest_target=newest.name, newest_target_time=float(newest.creation))
        at = next((i for i, s in enumerate(source) if s.guid == newest.guid), None)
        if at is not None:
            fields["behind"] = len(source) - 1 - at
    return fields


def _newest_taken(state_dir: str) -> dict[str, tuple[str, float]]:
    """The newest snapshot `zfsrep snapshot` last took per dataset (name, time), from its result."""
    try:
        result = state.read_run_result(state_dir, "snapshot")
    except (ValueError, OSError, KeyError, TypeError):
        return {}
    out: dict[str, tuple[str, float]] = {}
    for item in result.items if result else []:
        for full in item.created:
            dataset, _, name = full.partition("@")
            parsed = parse_name(name)
            if parsed and (dataset not in out or parsed.time > out[dataset][1]):
                out[dataset] = (name, float(parsed.time))
    return out


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
