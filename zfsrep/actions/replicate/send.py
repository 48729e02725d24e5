"""Sending one copy's plan: each step's send | receive pipeline (a resume, an aborted resume,
a full or an incremental stream), its progress events, and the size a dry run would send."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from zfsrep.actions.replicate.connect import Connection
from zfsrep.actions.replicate.copy import Copy, TargetTree
from zfsrep.actions.replicate.messages import pipeline_fix
from zfsrep.config.model import TargetConfig
from zfsrep.core import receive_properties
from zfsrep.core import replication_plan as rp
from zfsrep.errors import ZfsrepError
from zfsrep.phases import Phases
from zfsrep.pipeline import PipelineResult, Stage, replication_stages, run_pipeline
from zfsrep.zfs import ZfsClient
from zfsrep.zfs import stream as zs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    dataset: str
    target: str
    step: str  # the step being sent, e.g. "incremental tank/a@s1 -> tank/a@s4 (3 snapshot(s))"
    bytes: int
    estimated: int | None


ProgressFn = Callable[[ProgressEvent], None]


def estimate(local: ZfsClient, target: TargetConfig, copy: Copy) -> int | None:
    """The bytes the copy's plan would send (`zfs send -n -P` per step), None if unknown."""
    ds, plan = copy.source, copy.plan
    total = 0
    raw = target.raw and ds.encrypted
    for step in plan.sends:
        if step.kind == rp.RESUME:
            argv = zs.resume_probe_argv(step.token or "")
        else:
            argv = zs.estimate_argv(step.to or "", base=step.base, raw=raw)
        out = local.runner.run(argv, check=False)
        size = zs.parse_estimate(out.stdout + "\n" + out.stderr) if out.ok else None
        if size is None:
            return None
        total += size
    return total


@dataclass
class Sender:
    """Runs copies' plans to one target over its `Connection`."""

    target: TargetConfig
    link: Connection
    tree: TargetTree
    phases: Phases
    progress: ProgressFn | None

    def send(self, copy: Copy) -> bool:
        """Every step of the copy's plan, in order, into its item; False (the item says why)
        at the first step that fails."""
        item, tds = copy.item, copy.dataset
        for step in copy.plan.steps:
            if step.kind == rp.ABORT_RESUME:
                self.link.remote.runner.run(zs.recv_abort_argv(tds))
                continue
            stages, result = self._pipeline(copy, step, self.tree.datasets.get(tds))
            item.bytes += result.bytes
            if step.kind == rp.RESUME:
                item.resumed = True
            item.details.setdefault("steps", []).append(
                {"step": step.describe(), "bytes": result.bytes, "estimated": result.estimated,
                 "seconds": round(result.seconds, 3), "stages": [s.name for s in stages],
                 "remote": stages[-1].argv[-1]})
            if not result.ok:
                item.error = self._pipeline_error(copy, step, result)
                item.details["stages"] = [
                    {"name": s.name, "returncode": s.returncode, "stderr": s.stderr[-2000:]}
                    for s in result.stages]
                return False
            item.sent += [n for n in step.snapshots if n not in item.sent]
            item.to_snapshot = step.snapshots[-1] if step.snapshots else item.to_snapshot
            if step.kind in (rp.FULL, rp.RESUME):  # these set every configured property
                self.tree.received(copy, properties=self.target.properties)
        return True

    def _pipeline(self, copy: Copy, step: rp.Step, props: dict[str, str] | None,
                  ) -> tuple[list[Stage], PipelineResult]:
        """The step's stages (the last one's last word: what runs on the target) and how they ran."""
        t, ds, tds, session = self.target, copy.source, copy.dataset, self.link.session
        raw = t.raw and ds.encrypted
        # encryption properties make an encrypted copy of plain data: a full, not raw, receive
        properties = receive_properties.on_receive(t.properties, full=step.kind == rp.FULL, raw=raw)
        if step.kind == rp.INCREMENTAL and props is not None:
            # `-o` costs a sync task per received snapshot (~40 ms each in the lab), so an
            # incremental receive sets only what the copy (as the run listed it) lacks
            properties = {k: v for k, v in properties.items() if props.get(k) != v}
        if step.kind == rp.RESUME:
            send = zs.resume_send_argv(step.token or "", progress=True)
        else:
            send = zs.send_argv(step.to or "", base=step.base, raw=raw, progress=True)
        recv = zs.recv_argv(tds, force=t.force, properties=properties, filesystem=not ds.volume)
        stages = replication_stages(send, recv, ssh_prefix=session.argv_prefix,
                                    destination=session.destination, compress=t.compress,
                                    buffer=self.link.buffer, receive_buffer=t.mbuffer)
        description = step.describe()
        report = self.progress

        def progress(done: int, estimated: int | None) -> None:
            if report is not None:
                report(ProgressEvent(ds.name, t.name, description, done, estimated))

        log.info("%s -> %s:%s: %s", ds.name, t.name, tds, description)
        try:
            with self.phases.timed("sends"):
                return stages, run_pipeline(stages, progress=progress if report is not None else None)
        except FileNotFoundError as e:
            raise ZfsrepError(f"cannot start {e.filename}: not installed here "
                              f"({socket.gethostname()})") from None

    def _pipeline_error(self, copy: Copy, step: rp.Step, result: PipelineResult) -> str:
        t, host, tds = self.target, self.link.host, copy.dataset
        cause = result.failure
        text = cause.describe() if cause else "the pipeline failed"
        fix = pipeline_fix(result, tds=tds, host=host, target=t.name)
        return f"{copy.source.name} -> target {t.name} ({host}:{tds}), {step.describe()}: {text}; {fix}"
