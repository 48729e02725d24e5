"""One target of a replicate run: take its lock, connect, list it once, plan each dataset,
apply the plans (holds, sends), release stale holds and prune the copies."""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from zfsrep.actions.replicate.holds import hold_tag
from zfsrep.actions.replicate.messages import first_line, one_line, pipeline_fix, unknown_property
from zfsrep.actions.replicate.send import ProgressEvent, ProgressFn
from zfsrep.actions.replicate.source import SourceDataset, SourceSide, source_holds
from zfsrep.actions.reused_listing import SideListing
from zfsrep.config.model import Config, TargetConfig
from zfsrep.core import receive_properties
from zfsrep.core import replication_plan as rp
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, SKIPPED, ItemResult
from zfsrep.core.snapshot import Snapshot, is_descendant, parent_of
from zfsrep.errors import CommandError, LockError, ZfsrepError
from zfsrep.lock import target_lock
from zfsrep.phases import Phases
from zfsrep.pipeline import COMPRESSORS, PipelineResult, buffer_stage, replication_stages, run_pipeline
from zfsrep.ssh import SshSession
from zfsrep.targets.access import ssh_host
from zfsrep.targets.select import TargetCopies, target_dataset
from zfsrep.zfs import ZfsClient
from zfsrep.zfs import stream as zs

log = logging.getLogger(__name__)


def begin_sessions(config: Config, names: Sequence[str]) -> dict[str, SshSession]:
    """One ssh master per target, begun now and waited for when the target's turn comes. A
    target whose host is not known yet is left to its `TargetRun`, which says why."""
    sessions: dict[str, SshSession] = {}
    for name in names:
        try:
            host = ssh_host(config.state_dir, config.targets[name])
        except ZfsrepError:
            continue
        if host:
            sessions[name] = SshSession(config.targets[name], host=host)
            sessions[name].begin()
    return sessions


@dataclass
class TargetRun:
    config: Config
    target: TargetConfig
    source: SourceSide
    local: ZfsClient
    dry_run: bool
    progress: ProgressFn | None
    source_listing: SideListing
    now: float
    listing_cache: bool = True
    # begun by `run` before the source listing, so the handshake overlaps it (closed there)
    session: SshSession | None = None
    items: list[ItemResult] = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)
    # holds of this target's tag to release once every dataset is through: (dataset, names, item)
    _releases: list[tuple[SourceDataset, list[str], ItemResult]] = field(default_factory=list)

    @functools.cached_property
    def datasets(self) -> list[SourceDataset]:
        """This target's source datasets (waits for the source listing)."""
        name = self.target.name
        return [s for s in self.source.get()[0]
                if name in {t.name for t in self.config.targets_for(s.config)}]

    def fail_all(self, message: str) -> list[ItemResult]:
        return [ItemResult(dataset=d.name, target=self.target.name, status=FAILED, error=message)
                for d in self.datasets]

    def run(self) -> list[ItemResult]:
        t = self.target
        try:
            host = ssh_host(self.config.state_dir, t)  # the configured host, or warmup's address
        except ZfsrepError as e:  # a warmup record that cannot be read: this target only
            return self.fail_all(str(e))
        if not host:
            return self.fail_all(f"target {t.name}: no host to ssh to; set targets.{t.name}.host "
                                 "or run `zfsrep warmup` first")
        try:
            if self.dry_run:
                return self._connected(host)
            with contextlib.ExitStack() as held_lock:
                with self.phases.timed("target_lock"):
                    held_lock.enter_context(target_lock(self.config.lock_dir, t.name, t.lock_timeout))
                return self._connected(host)
        except LockError as e:
            return self.fail_all(str(e))

    def _connected(self, host: str) -> list[ItemResult]:
        t = self.target
        own = self.session is None or self.session.destination != host
        session = SshSession(t, host=host) if own else self.session
        with session if own else contextlib.nullcontext(session):
            try:
                with self.phases.timed("ssh_connect"):
                    session.start()
                remote = ZfsClient(session.runner())
                stage_tools = self._check_tools(remote, host)
                target_listing = SideListing(self.config.state_dir, f"target-{t.name}", host,
                                             self.now, enabled=self.listing_cache)
                with self.phases.timed("target_listing"):
                    listed, target_snaps = target_listing.list_tree(
                        remote, [t.dataset], recursive=True,
                        props=["receive_resume_token", *sorted(t.properties)],
                        missing_ok=True, only=TargetCopies.of(t, self.source.chosen, self.config))
                with self.phases.timed("waiting_for_source"):
                    datasets = self.datasets  # the source listing, made meanwhile
                    held = self.source.get()[1]
                with self.phases.timed("source_holds"):
                    held = self._our_holds() if held is None else {k: set(v) for k, v in held.items()}
            except ZfsrepError as e:
                return self.fail_all(unknown_property(e, t, host) or one_line(e, t, host))
            sent: list[tuple[SourceDataset, rp.ReplicationPlan, ItemResult]] = []
            plans: dict[str, rp.ReplicationPlan | ZfsrepError] = {}
            for ds in datasets:
                try:
                    plans[ds.name] = self._plan(ds, listed, target_snaps, remote)
                except ZfsrepError as e:
                    plans[ds.name] = e
            if not self.dry_run:
                self._hold_ahead(plans.values(), held)
            for ds in datasets:
                started = time.monotonic()
                item = ItemResult(dataset=ds.name, target=t.name, status=FAILED)
                item.details["target_dataset"] = target_dataset(t, ds.name)
                try:
                    plan = plans[ds.name]
                    if isinstance(plan, ZfsrepError):
                        raise plan
                    self._apply(ds, plan, item, remote, listed, held, session, stage_tools, host)
                    if item.status in (OK, PLANNED):
                        sent.append((ds, plan, item))
                except ZfsrepError as e:
                    item.status, item.error = FAILED, f"{ds.name} -> {t.name} ({host}): {first_line(e)}"
                item.seconds = round(time.monotonic() - started, 3)
                self.items.append(item)
            self._release_queued(held, host)
            sent = [s for s in sent if s[2].status != FAILED]
            if sent:
                with self.phases.timed("target_prune"):
                    self._prune_targets(remote, sent, host, target_snaps)
            if t.append_only and self.items:
                self.items[0].details.setdefault("notes", []).append(
                    f"target {t.name} is append-only: it prunes itself, replicate destroys nothing there")
            for item in self.items:
                item.details["listing"] = {
                    "source": self.source_listing.how(item.dataset),
                    "target": target_listing.how(item.details["target_dataset"])}
            warning = None if self.dry_run else target_listing.save()
            if warning:
                for item in self.items:
                    item.details.setdefault("warnings", []).append(warning)
        return self.items

    # -- checks and listings ----------------------------------------------------------------

    def _check_tools(self, remote: ZfsClient, host: str):
        t = self.target
        if t.compress != "none":
            tool = COMPRESSORS[t.compress][0][0]
            if shutil.which(tool) is None:
                raise ZfsrepError(f"target {t.name}: compress = \"{t.compress}\" but {tool} is not "
                                  f"installed here ({socket.gethostname()}); install it or set "
                                  f"targets.{t.name}.compress = \"none\"")
            check = remote.runner.run(["sh", "-c", 'command -v "$1"', "sh", tool], check=False)
            if not check.ok:
                raise ZfsrepError(f"target {t.name}: compress = \"{t.compress}\" but {tool} is not "
                                  f"installed on {host}; install it there or set "
                                  f"targets.{t.name}.compress = \"none\"")
        try:
            return buffer_stage(t.mbuffer, t.rate_limit, have=lambda x: shutil.which(x) is not None)
        except LookupError as e:
            what = "mbuffer" if t.mbuffer else "rate_limit"
            raise ZfsrepError(f"target {t.name}: {what} is set but {e} is not installed here "
                              f"({socket.gethostname()}); install it or unset "
                              f"targets.{t.name}.{what}") from None

    def _our_holds(self) -> dict[str, set[str]]:
        return source_holds(self.local, self.datasets)

    def _plan(self, ds: SourceDataset, listed, target_snaps, remote) -> rp.ReplicationPlan:
        tds = target_dataset(self.target, ds.name)
        token = listed.get(tds, {}).get("receive_resume_token", "-")
        resume = None
        if token not in ("-", ""):
            probe = self.local.runner.run(zs.resume_probe_argv(token), check=False)
            if probe.ok:
                c = zs.parse_token_contents(probe.stdout + "\n" + probe.stderr)
                resume = rp.ResumeState(token, valid=True, toname=c.toname, toguid=c.toguid)
            else:
                why = (probe.stderr.strip().splitlines() or ["zfs send -t failed"])[-1]
                resume = rp.ResumeState(token, valid=False, reason=why)
        return rp.plan_replication(
            ds.name, self.target.name, tds, ds.snapshots, target_snaps.get(tds, []),
            target_exists=tds in listed, resume=resume, force=self.target.force,
        )

    # -- applying a plan ----------------------------------------------------------------------

    def _apply(self, ds, plan, item, remote, listed, held, session, stage_tools, host) -> None:
        t = self.target
        item.details["plan"] = [s.describe() for s in plan.steps]
        if plan.notes:
            item.details["notes"] = list(plan.notes)
        item.from_snapshot = rp.short(plan.base) if plan.base else None
        item.to_snapshot = item.from_snapshot
        if plan.action == rp.REFUSE:
            item.error = f"{ds.name} -> {t.name} ({host}): {plan.message}"
            return
        if plan.action == rp.EMPTY:
            item.status = FAILED if ds.top else SKIPPED
            item.error = f"{ds.name} -> {t.name} ({host}): {plan.message}"
            return
        if plan.action == rp.NOTHING:
            item.status = NOTHING_TO_DO
            if not self.dry_run:
                self._hold_and_release(ds, plan.newest, item, held)
            return
        if self.dry_run:
            item.status = PLANNED
            item.sent = list(plan.snapshots_landing)
            item.to_snapshot = rp.short(plan.newest) if plan.newest else None
            item.details["estimated_bytes"] = self._estimate(ds, plan)
            return
        tds = target_dataset(t, ds.name)
        self._create_parents(remote, listed, tds)
        if plan.newest:
            # Held before sending: the snapshot a resume needs cannot be pruned meanwhile.
            self._hold(plan.newest, held)
        for step in plan.steps:
            if step.kind == rp.ABORT_RESUME:
                remote.runner.run(zs.recv_abort_argv(tds))
                continue
            result = self._send(ds, step, tds, session, stage_tools, listed.get(tds))
            item.bytes += result.bytes
            if step.kind == rp.RESUME:
                item.resumed = True
            item.details.setdefault("steps", []).append(
                {"step": step.describe(), "bytes": result.bytes, "estimated": result.estimated,
                 "seconds": round(result.seconds, 3)})
            if not result.ok:
                item.error = self._pipeline_error(ds, step, tds, result, host)
                item.details["stages"] = [
                    {"name": s.name, "returncode": s.returncode, "stderr": s.stderr[-2000:]}
                    for s in result.stages]
                return
            item.sent += [n for n in step.snapshots if n not in item.sent]
            item.to_snapshot = step.snapshots[-1] if step.snapshots else item.to_snapshot
            if step.kind in (rp.FULL, rp.RESUME):  # these set every configured property
                listed.setdefault(tds, {"type": "volume" if ds.volume else "filesystem"}).update(
                    t.properties, receive_resume_token="-")
        item.status = OK
        listed.setdefault(tds, {"type": "volume" if ds.volume else "filesystem",
                                "receive_resume_token": "-"})
        item.to_snapshot = rp.short(plan.newest) if plan.newest else item.to_snapshot
        self._hold_and_release(ds, plan.newest, item, held)

    def _estimate(self, ds: SourceDataset, plan: rp.ReplicationPlan) -> int | None:
        total = 0
        raw = self.target.raw and ds.encrypted
        for step in plan.sends:
            if step.kind == rp.RESUME:
                argv = zs.resume_probe_argv(step.token or "")
            else:
                argv = zs.estimate_argv(step.to or "", base=step.base, raw=raw)
            out = self.local.runner.run(argv, check=False)
            size = zs.parse_estimate(out.stdout + "\n" + out.stderr) if out.ok else None
            if size is None:
                return None
            total += size
        return total

    def _create_parents(self, remote: ZfsClient, listed: dict, tds: str) -> None:
        missing: list[str] = []
        parent = parent_of(tds)
        ours = {target_dataset(self.target, d.name): d.name for d in self.datasets}
        while parent and parent not in listed and is_descendant(parent, self.target.dataset):
            if parent in ours:
                raise ZfsrepError(f"its parent {ours[parent]} is not on the target yet (see its "
                                  "error); fix that and rerun")
            missing.append(parent)
            parent = parent_of(parent)
        for name in reversed(missing):
            # the configured receiving parent may itself need parents (created with defaults)
            with self.phases.timed("target_parents"):
                remote.runner.run(zs.create_placeholder_argv(name, parents=name == self.target.dataset))
            listed[name] = {"type": "filesystem", "receive_resume_token": "-"}

    def _send(self, ds: SourceDataset, step: rp.Step, tds: str, session: SshSession,
              stage_tools, copy: dict[str, str] | None) -> PipelineResult:
        t = self.target
        raw = t.raw and ds.encrypted
        # encryption properties make an encrypted copy of plain data: a full, not raw, receive
        properties = receive_properties.on_receive(t.properties, full=step.kind == rp.FULL, raw=raw)
        if step.kind == rp.INCREMENTAL and copy is not None:
            # `-o` costs a sync task per received snapshot (~40 ms each in the lab), so an
            # incremental receive sets only what the copy (as the run listed it) lacks
            properties = {k: v for k, v in properties.items() if copy.get(k) != v}
        if step.kind == rp.RESUME:
            send = zs.resume_send_argv(step.token or "", progress=True)
        else:
            send = zs.send_argv(step.to or "", base=step.base, raw=raw, progress=True)
        recv = zs.recv_argv(tds, force=t.force, properties=properties, filesystem=not ds.volume)
        stages = replication_stages(send, recv, ssh_prefix=session.argv_prefix,
                                    destination=session.destination, compress=t.compress,
                                    buffer=stage_tools)
        description = step.describe()
        report = self.progress

        def progress(done: int, estimated: int | None) -> None:
            if report is not None:
                report(ProgressEvent(ds.name, t.name, description, done, estimated))

        log.info("%s -> %s:%s: %s", ds.name, t.name, tds, description)
        try:
            with self.phases.timed("sends"):
                return run_pipeline(stages, progress=progress if report is not None else None)
        except FileNotFoundError as e:
            raise ZfsrepError(f"cannot start {e.filename}: not installed here "
                              f"({socket.gethostname()})") from None

    def _pipeline_error(self, ds, step, tds, result: PipelineResult, host: str) -> str:
        t = self.target
        cause = result.failure
        text = cause.describe() if cause else "the pipeline failed"
        fix = pipeline_fix(result, tds=tds, host=host, target=t.name)
        return f"{ds.name} -> target {t.name} ({host}:{tds}), {step.describe()}: {text}; {fix}"

    def _hold(self, snapshot: str, held: dict[str, set[str]]) -> None:
        tag = hold_tag(self.target.name)
        if tag not in held.get(snapshot, set()):
            with self.phases.timed("holds"):
                self.local.hold(tag, [snapshot])
            self.source_listing.holds_changed([snapshot], +1)
            held.setdefault(snapshot, set()).add(tag)

    def _hold_ahead(self, plans, held: dict[str, set[str]]) -> None:
        """One `zfs hold` (per pool) for the snapshot every plan sends up to or keeps as its
        base, before anything is sent. If it fails (a snapshot destroyed meanwhile, say), each
        dataset holds its own in `_apply` and a failure is that dataset's."""
        tag = hold_tag(self.target.name)
        names = [p.newest for p in plans if isinstance(p, rp.ReplicationPlan)
                 and p.action in (rp.SEND, rp.NOTHING) and p.newest
                 and tag not in held.get(p.newest, set())]
        if len(names) < 2:
            return  # `_hold` does one as cheaply
        try:
            with self.phases.timed("holds"):
                self.local.hold(tag, names)
        except ZfsrepError:
            # some may be held now: those datasets' remembered hold counts are not kept
            self.source_listing.touch([n.partition("@")[0] for n in names])
            return
        self.source_listing.holds_changed(names, +1)
        for name in names:
            held.setdefault(name, set()).add(tag)

    def _hold_and_release(self, ds: SourceDataset, newest: str | None, item: ItemResult, held) -> None:
        """Hold the newest common snapshot for this target; queue the release of the tag
        everywhere else (`_release_queued`, once every dataset is through)."""
        if not newest:
            return
        tag = hold_tag(self.target.name)
        self._hold(newest, held)
        stale = [s.full_name for s in ds.snapshots
                 if s.full_name != newest and tag in held.get(s.full_name, set())]
        if stale:
            self._releases.append((ds, stale, item))

    def _release_queued(self, held: dict[str, set[str]], host: str) -> None:
        """Release the queued holds: one `zfs release` per pool; if that fails, dataset by
        dataset, so a failure is the dataset's own (its item fails, naming it)."""
        queued, self._releases = self._releases, []
        if not queued:
            return
        tag = hold_tag(self.target.name)
        with self.phases.timed("holds"):
            try:
                self.local.release(tag, [n for _, names, _ in queued for n in names])
            except ZfsrepError:
                for ds, names, item in queued:
                    try:
                        self.local.release(tag, names)
                    except ZfsrepError as e:
                        self.source_listing.touch([ds.name])
                        item.status = FAILED
                        item.error = (f"{ds.name} -> {self.target.name} ({host}): {first_line(e)}")
                        continue
                    self._released(tag, names, held)
                return
        self._released(tag, [n for _, names, _ in queued for n in names], held)

    def _released(self, tag: str, names: list[str], held: dict[str, set[str]]) -> None:
        self.source_listing.holds_changed(names, -1)
        for name in names:
            held[name].discard(tag)

    def _prune_targets(self, remote: ZfsClient, sent, host: str, listed_snaps) -> None:
        """After successful receives: prune each received copy by the target's retention,
        protecting the newest common snapshot. What is on the target comes from the run's
        listing plus what each plan landed (`_landed`). A held snapshot is kept and named
        (``details["kept_held"]`` and a note). ZFS destroys `ds@a,b,c` all-or-nothing, so if
        that fails because of a hold the run did not know of, the copy is listed and pruned
        once more without it. A dry run plans the same (``details["would_prune"]``) and
        destroys nothing."""
        where = f"{self.target.name} ({host}"
        try:
            now_snaps = self._landed(remote, sent, listed_snaps)
        except ZfsrepError as e:
            for _, _, item in sent:
                item.details["prune_error"] = str(e)
            return
        for ds, plan, item in sent:
            tds = target_dataset(self.target, ds.name)
            snaps = now_snaps.get(tds, [])
            if (not self.dry_run and plan.newest_guid is not None
                    and plan.newest_guid not in {s.guid for s in snaps}):
                item.status = FAILED
                item.error = (f"{ds.name} -> {where}:{tds}): the receive reported success "
                              f"but {rp.short(plan.newest or '')} is not on {host}; rerun")
                continue
            if self.target.append_only:  # it prunes itself: `zfsrep serve` refuses zfs destroy
                continue
            counts = self.config.target_retention(self.target, ds.config).counts()

            def prune_plan(snaps) -> tuple[list[str], list[str]]:
                """(names retention destroys, names it would destroy but for a hold)."""
                doomed = [s.name for s in rp.target_prune(snaps, counts, plan.newest_guid)]
                unheld = rp.target_prune([replace(s, userrefs=0) for s in snaps], counts, plan.newest_guid)
                return doomed, [s.name for s in snaps if s.userrefs > 0 and s.name in {u.name for u in unheld}]

            doomed, spared = prune_plan(snaps)
            try:
                if self.dry_run:
                    item.details["would_prune"] = doomed
                elif doomed:
                    try:
                        item.destroyed = remote.destroy(tds, doomed)
                    except CommandError as e:
                        item.destroyed = list(getattr(e, "destroyed", []))
                        again = remote.list_snapshots([tds], missing_ok=True).get(tds, [])
                        if not any(s.userrefs > 0 and s.name in doomed for s in again):
                            raise
                        doomed, spared = prune_plan(again)
                        item.destroyed += remote.destroy(tds, [n for n in doomed if n not in item.destroyed])
            except ZfsrepError as e:
                item.destroyed += [n for n in getattr(e, "destroyed", []) if n not in item.destroyed]
                item.status = FAILED
                item.error = (f"{ds.name} -> {where}:{tds}): replicated, but pruning the "
                              f"target failed: {first_line(e)}; fix that on {host} and rerun")
            if spared:
                item.details["kept_held"] = spared
                item.details.setdefault("notes", []).append(
                    f"{tds} on {host}: kept {', '.join('@' + n for n in spared)} although the target's "
                    f"retention would destroy {'it' if len(spared) == 1 else 'them'}: held "
                    f"(`zfs holds {tds}@{spared[0]}` shows by whom)")


    def _landed(self, remote: ZfsClient, sent, listed_snaps) -> dict[str, list[Snapshot]]:
        """{target copy: its snapshots now}: the run's listing plus the snapshots each plan
        landed. Not the receive's word alone: one `zfs get guid` of every copy's newest
        snapshot checks that it is there (a copy where it is not is left as listed, so the
        caller fails it). With `force`, `recv -F` may have destroyed target snapshots newer
        than the base: those copies are listed again instead."""
        copies = {target_dataset(self.target, ds.name): (ds, plan) for ds, plan, _ in sent}
        if self.target.force and not self.dry_run:
            return remote.list_snapshots(list(copies), missing_ok=True)
        arrived: dict[str, dict[str, str]] = {}
        if not self.dry_run:
            newest = [f"{tds}@{rp.short(plan.newest)}" for tds, (_, plan) in copies.items() if plan.newest]
            arrived = remote.get(["guid"], newest, missing_ok=True) if newest else {}
        out: dict[str, list[Snapshot]] = {}
        for tds, (ds, plan) in copies.items():
            before = listed_snaps.get(tds, [])
            seen = arrived.get(f"{tds}@{rp.short(plan.newest or '')}", {}).get("guid")
            if not self.dry_run and plan.newest and seen != str(plan.newest_guid):
                out[tds] = list(before)
                continue
            landing = [s for s in ds.snapshots if s.name in plan.snapshots_landing]
            out[tds] = rp.after_receive(before, landing, tds)
        return out

