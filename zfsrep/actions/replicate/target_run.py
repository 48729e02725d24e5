"""One target of a replicate run: take its lock, connect, list it once, plan each copy, apply
the plans (holds, sends), release stale holds and prune the copies."""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field

from zfsrep.actions.replicate.bookmarks import keep_bookmark
from zfsrep.actions.replicate.connect import Connection, check_tools, session_for
from zfsrep.actions.replicate.copy import Copy, TargetTree
from zfsrep.actions.replicate.holds import HoldLedger, hold_tag
from zfsrep.actions.replicate.listing_cache import ListingCache
from zfsrep.actions.replicate.messages import first_line, one_line, unknown_property
from zfsrep.actions.replicate.prune import Pruner
from zfsrep.actions.replicate.send import ProgressFn, Sender, estimate
from zfsrep.actions.replicate.source import SourceDataset, SourceSide, source_holds
from zfsrep.config.model import Config, TargetConfig
from zfsrep.core import replication_plan as rp
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, SKIPPED, ItemResult
from zfsrep.core.snapshot import is_descendant, parent_of
from zfsrep.errors import LockError, ZfsrepError
from zfsrep.lock import target_lock
from zfsrep.phases import Phases
from zfsrep.ssh import SshSession
from zfsrep.targets.access import ssh_host
from zfsrep.targets.select import TargetCopies, target_dataset
from zfsrep.zfs import ZfsClient
from zfsrep.zfs import stream as zs


@dataclass(frozen=True)
class Turn:
    """What a target's turn works with once it is connected and listed."""

    link: Connection
    tree: TargetTree
    holds: HoldLedger
    sender: Sender


@dataclass
class TargetRun:
    config: Config
    target: TargetConfig
    source: SourceSide
    local: ZfsClient
    dry_run: bool
    progress: ProgressFn | None
    source_cache: ListingCache
    now: float
    listing_cache: bool = True
    # begun by `run` before the source listing, so the handshake overlaps it (closed there)
    session: SshSession | None = None
    items: list[ItemResult] = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)

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
        with session_for(t, host, self.session) as session:
            try:
                with self.phases.timed("ssh_connect"):
                    session.start()
                remote = ZfsClient(session.runner())
                link = Connection(host, session, remote, check_tools(t, remote, host))
                target_cache = ListingCache(self.config.state_dir, f"target-{t.name}", host,
                                            self.now, enabled=self.listing_cache)
                with self.phases.timed("target_listing"):
                    tree = TargetTree(*target_cache.list_tree(
                        remote, [t.dataset], recursive=True,
                        props=["receive_resume_token", *sorted(t.properties)],
                        missing_ok=True, only=TargetCopies.of(t, self.source.chosen, self.config)))
                with self.phases.timed("waiting_for_source"):
                    datasets = self.datasets  # the source listing, made meanwhile
                    held = self.source.get()[1]
                with self.phases.timed("source_holds"):
                    held = self._our_holds() if held is None else {k: set(v) for k, v in held.items()}
                holds = HoldLedger(hold_tag(t.name), self.local, self.source_cache, self.phases, held)
            except ZfsrepError as e:
                return self.fail_all(unknown_property(e, t, host) or one_line(e, t, host))
            copies = [self._planned(ds, host, tree) for ds in datasets]
            if not self.dry_run:
                holds.hold_ahead(copies)
            turn = Turn(link, tree, holds, Sender(t, link, tree, self.phases, self.progress))
            sent = self._apply_all(copies, turn)
            holds.release_stale(copies)
            sent = [c for c in sent if c.item.status != FAILED]
            if sent:
                with self.phases.timed("target_prune"):
                    Pruner(self.config, t, remote, host, self.dry_run).prune(sent, tree)
            if t.append_only and self.items:
                self.items[0].details.setdefault("notes", []).append(
                    f"target {t.name} is append-only: it prunes itself, replicate destroys nothing there")
            self._note_listings(target_cache)
            return self.items

    def _note_listings(self, target_cache: ListingCache) -> None:
        """How each item's two sides were listed (``details["listing"]``); keep the target's
        listing cache (a warning on every item if the state dir refused it)."""
        for item in self.items:
            item.details["listing"] = {
                "source": self.source_cache.how(item.dataset),
                "target": target_cache.how(item.details["target_dataset"])}
        warning = None if self.dry_run else target_cache.save()
        if warning:
            for item in self.items:
                item.details.setdefault("warnings", []).append(warning)

    def _our_holds(self) -> dict[str, set[str]]:
        return source_holds(self.local, self.datasets)

    # -- planning -------------------------------------------------------------------------------

    def _planned(self, ds: SourceDataset, host: str, tree: TargetTree) -> Copy:
        """The copy of ``ds`` on this target with its plan, or the error that kept it from one."""
        tds = target_dataset(self.target, ds.name)
        copy = Copy(ds, self.target.name, host, tds,
                    ItemResult(dataset=ds.name, target=self.target.name, status=FAILED))
        copy.item.details["target_dataset"] = tds
        try:
            copy.plan = self._plan(copy, tree)
        except ZfsrepError as e:
            copy.error = e
        return copy

    def _plan(self, copy: Copy, tree: TargetTree) -> rp.ReplicationPlan:
        ds, tds = copy.source, copy.dataset
        token = tree.datasets.get(tds, {}).get("receive_resume_token", "-")
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
            ds.name, self.target.name, tds, ds.snapshots, tree.snapshots.get(tds, []),
            target_exists=tds in tree.datasets, resume=resume, force=self.target.force,
            source_bookmarks=ds.bookmarks if self.target.bookmarks else (),
        )

    # -- applying the plans ---------------------------------------------------------------------

    def _apply_all(self, copies: list[Copy], turn: Turn) -> list[Copy]:
        """Each copy's plan in turn, into its item; the copies sent (or, dry, planned)."""
        sent: list[Copy] = []
        for copy in copies:
            started = time.monotonic()
            try:
                if copy.error is not None:
                    raise copy.error
                self._apply(copy, turn)
                if copy.item.status in (OK, PLANNED):
                    sent.append(copy)
            except ZfsrepError as e:
                copy.fail(first_line(e))
            copy.item.seconds = round(time.monotonic() - started, 3)
            self.items.append(copy.item)
        return sent

    def _apply(self, copy: Copy, turn: Turn) -> None:
        ds, plan, item = copy.source, copy.plan, copy.item
        item.details["plan"] = [s.describe() for s in plan.steps]
        if plan.notes:
            item.details["notes"] = list(plan.notes)
        item.from_snapshot = rp.short(plan.base) if plan.base else None
        item.to_snapshot = item.from_snapshot
        if plan.action == rp.REFUSE:
            copy.fail(plan.message)
            return
        if plan.action == rp.EMPTY:
            copy.fail(plan.message)
            item.status = FAILED if ds.top else SKIPPED
            return
        if plan.action == rp.NOTHING:
            item.status = NOTHING_TO_DO
            if not self.dry_run:
                turn.holds.keep_newest(copy)
                self._keep_bookmark(copy)
            return
        if self.dry_run:
            item.status = PLANNED
            item.sent = list(plan.snapshots_landing)
            item.to_snapshot = rp.short(plan.newest) if plan.newest else None
            item.details["estimated_bytes"] = estimate(self.local, self.target, copy)
            return
        self._create_parents(turn.link.remote, turn.tree, copy.dataset)
        if plan.newest:
            # Held before sending: the snapshot a resume needs cannot be pruned meanwhile.
            turn.holds.hold(plan.newest)
        if not turn.sender.send(copy):
            return
        item.status = OK
        turn.tree.received(copy)
        item.to_snapshot = rp.short(plan.newest) if plan.newest else item.to_snapshot
        turn.holds.keep_newest(copy)
        self._keep_bookmark(copy)

    def _keep_bookmark(self, copy: Copy) -> None:
        if self.target.bookmarks:
            keep_bookmark(self.local, copy, self.phases)

    def _create_parents(self, remote: ZfsClient, tree: TargetTree, tds: str) -> None:
        missing: list[str] = []
        parent = parent_of(tds)
        ours = {target_dataset(self.target, d.name): d.name for d in self.datasets}
        while parent and parent not in tree.datasets and is_descendant(parent, self.target.dataset):
            if parent in ours:
                raise ZfsrepError(f"its parent {ours[parent]} is not on the target yet (see its "
                                  "error); fix that and rerun")
            missing.append(parent)
            parent = parent_of(parent)
        for name in reversed(missing):
            # the configured receiving parent may itself need parents (created with defaults)
            with self.phases.timed("target_parents"):
                remote.runner.run(zs.create_placeholder_argv(name, parents=name == self.target.dataset))
            tree.created(name)
