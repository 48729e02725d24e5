"""Pruning a target after its receives: each received copy by the target's retention, never
its newest common snapshot, never a held one (named in the item instead)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zfsrep.actions.replicate.copy import Copy, TargetTree
from zfsrep.actions.replicate.messages import first_line
from zfsrep.config.model import Config, TargetConfig
from zfsrep.core import replication_plan as rp
from zfsrep.core.result import FAILED
from zfsrep.core.snapshot import Snapshot
from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.zfs import ZfsClient


@dataclass
class Pruner:
    config: Config
    target: TargetConfig
    remote: ZfsClient
    host: str
    dry_run: bool

    def prune(self, copies: Sequence[Copy], tree: TargetTree) -> None:
        """After successful receives: prune each received copy by the target's retention,
        protecting the newest common snapshot. What is on the target comes from the run's
        listing plus what each plan landed (`_landed`). A held snapshot is kept and named
        (``details["kept_held"]`` and a note). ZFS destroys `ds@a,b,c` all-or-nothing, so if
        that fails because of a hold the run did not know of, the copy is listed and pruned
        once more without it. A dry run plans the same (``details["would_prune"]``) and
        destroys nothing."""
        host, remote = self.host, self.remote
        where = f"{self.target.name} ({host}"
        try:
            now_snaps = self._landed(copies, tree)
        except ZfsrepError as e:
            for copy in copies:
                copy.item.details["prune_error"] = str(e)
            return
        for copy in copies:
            ds, plan, item, tds = copy.source, copy.plan, copy.item, copy.dataset
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
                decision = rp.target_retention(snaps, counts, plan.newest_guid)
                held_only = set(decision.held_only())
                return [s.name for s in decision.destroy], [s.name for s in snaps if s.name in held_only]

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

    def _landed(self, copies: Sequence[Copy], tree: TargetTree) -> dict[str, list[Snapshot]]:
        """{target copy: its snapshots now}: the run's listing plus the snapshots each plan
        landed. Not the receive's word alone: one `zfs get guid` of every copy's newest
        snapshot checks that it is there (a copy where it is not is left as listed, so the
        caller fails it). With `force`, `recv -F` may have destroyed target snapshots newer
        than the base: those copies are listed again instead."""
        by_name = {copy.dataset: copy for copy in copies}
        if self.target.force and not self.dry_run:
            return self.remote.list_snapshots(list(by_name), missing_ok=True)
        arrived: dict[str, dict[str, str]] = {}
        if not self.dry_run:
            newest = [f"{tds}@{rp.short(c.plan.newest)}" for tds, c in by_name.items() if c.plan.newest]
            arrived = self.remote.get(["guid"], newest, missing_ok=True) if newest else {}
        out: dict[str, list[Snapshot]] = {}
        for tds, copy in by_name.items():
            plan = copy.plan
            before = tree.snapshots.get(tds, [])
            seen = arrived.get(f"{tds}@{rp.short(plan.newest or '')}", {}).get("guid")
            if not self.dry_run and plan.newest and seen != str(plan.newest_guid):
                out[tds] = list(before)
                continue
            landing = [s for s in copy.source.snapshots if s.name in plan.snapshots_landing]
            out[tds] = rp.after_receive(before, landing, tds)
        return out
