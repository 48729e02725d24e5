"""`zfsrep replicate`: send every configured dataset to each of its targets, safely.

Every target's multiplexed ssh master is begun first, and the source is listed (with its
`zfs holds`) in a worker thread meanwhile (`SourceSide`), so the handshakes and the first
target's listing overlap the source's. Then per target (one after the other): take the
target's lock, wait for its master, list it once (reusing earlier snapshot listings that
`snapshots_changed` shows are still exact: `listing_cache`), plan each dataset
(`zfsrep.core.replication_plan`), then for each plan: create missing parents on the target,
hold the snapshot being sent on the source (``zfsrep:<target>``), run the send/receive
pipeline(s), and on success release the tag from older snapshots and prune the target by its
retention (never the newest common snapshot).

Nothing here prints; the CLI renders the RunResult (and `progress` events on a terminal).

The parts, one idea each: `source` (listing the source), `target_run` (one target, start to
end), `connect` (ssh sessions, the tools a pipeline needs), `listing_cache` (each side's
listing through the state dir's cache), `copy` (one source dataset on one target: its plan
and item; the target's tree as listed), `holds` (the ``zfsrep:<target>`` tag and its ledger),
`send` (one plan's pipelines), `prune` (the target's retention), `messages` (failure lines).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from zfsrep.actions.replicate.connect import begin_sessions
from zfsrep.actions.replicate.holds import HOLD_PREFIX, hold_tag
from zfsrep.actions.replicate.listing_cache import ListingCache
from zfsrep.actions.replicate.messages import pipeline_fix
from zfsrep.actions.replicate.send import ProgressEvent, ProgressFn
from zfsrep.actions.replicate.source import SourceListingFailed, SourceSide
from zfsrep.actions.replicate.target_run import TargetRun
from zfsrep.config.model import Config
from zfsrep.core.result import RunResult
from zfsrep.execute import Runner
from zfsrep.phases import Phases
from zfsrep.targets.select import check_targets, pick_datasets
from zfsrep.zfs import ZfsClient

__all__ = ["HOLD_PREFIX", "VERB", "ProgressEvent", "ProgressFn", "hold_tag", "pipeline_fix", "run"]

log = logging.getLogger(__name__)

VERB = "replicate"


def run(config: Config, *, now: float | None = None, dry_run: bool = False,
        targets: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
        progress: ProgressFn | None = None, local: Runner | None = None,
        listing_cache: bool = True) -> RunResult:
    """Replicate; returns the RunResult (items per dataset × target). Never prints.
    ``listing_cache``: reuse earlier snapshot listings where `snapshots_changed` allows
    (`listing_cache`); off, every snapshot is listed on both sides."""
    started = time.time() if now is None else now
    result = RunResult(verb=VERB, started_at=started, host=socket.gethostname(), dry_run=dry_run)
    check_targets(config, targets)
    chosen = pick_datasets(config, datasets)
    chosen = [d for d in chosen if [t for t in config.targets_for(d) if not targets or t.name in targets]]
    if not chosen:
        result.errors.append("nothing to replicate: no configured dataset has a target"
                             + (" among --target" if targets else "; add [targets.NAME]"))
        result.finished_at = time.time()
        return result
    client = ZfsClient(local or Runner())
    source_cache = ListingCache(config.state_dir, "source", result.host, started, enabled=listing_cache)
    names = sorted({t.name for d in chosen for t in config.targets_for(d)
                    if not targets or t.name in targets})
    # The ssh handshakes start first, the source is listed in a worker thread meanwhile, and
    # the first target is listed while that runs; each target waits for its own connection.
    phases = Phases()
    with phases.timed("ssh_begin"):
        sessions = begin_sessions(config, names)
    source = SourceSide(config, chosen, client, source_cache, result.host, phases=phases)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="source-listing") as pool:
            source.begin(pool)
            try:
                for name in names:
                    run_ = TargetRun(config, config.targets[name], source, client, dry_run,
                                     progress, source_cache, started, listing_cache,
                                     session=sessions.get(name), phases=phases)
                    result.items += run_.run()
                source.get()
            except SourceListingFailed as e:
                result.errors.append(str(e))
                result.finished_at = time.time()
                result.phases = phases.as_dict()
                return result
    finally:
        with phases.timed("ssh_close"):
            for session in sessions.values():
                session.close()
    result.items[:0] = source.failed
    warning = None if dry_run else source_cache.save()
    if warning:
        for item in result.items:
            item.details.setdefault("warnings", []).append(warning)
    if targets:
        result.items = [i for i in result.items if i.target in targets]
    result.finished_at = time.time()
    result.phases = phases.as_dict()
    log.info("where the time went (s): %s", ", ".join(f"{k} {v:.2f}" for k, v in result.phases.items()))
    return result
