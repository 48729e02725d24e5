"""`zfsrep restore DATASET[@SNAPSHOT] --target NAME [--to NEW]`: bring a snapshot back from a
target over the same data path as replicate, reversed — `ssh target zfs send | zfs receive`
locally, joined by OS pipes, received with ``-s`` so an interrupted restore resumes when rerun.

Lands in a dataset that does not exist yet (DATASET itself on a fresh host, else ``--to``). A
live dataset is replaced only with ``force``: the copy is received next to it first
(``<dest>.zfsrep-restore``), and only then is the live one destroyed and the copy renamed.
Planning is `zfsrep.core.restore_plan`; `plan` lists (both sides), `apply` changes.
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zfsrep.config.model import Config, TargetConfig
from zfsrep.core import replication_plan as rp
from zfsrep.core.restore_plan import (
    REFUSE,
    REPLACE,
    LocalDataset,
    RestorePlan,
    missing_ancestors,
    plan_restore,
    temp_name,
)
from zfsrep.core.result import FAILED, OK, PLANNED, ItemResult, RunResult
from zfsrep.core.snapshot import Snapshot, is_descendant, pool_of
from zfsrep.errors import UsageError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.pipeline import COMPRESSORS, PipelineResult, Stage, run_pipeline
from zfsrep.targets.access import Connect, Session, connector
from zfsrep.targets.select import require_target, target_dataset
from zfsrep.zfs import ZfsClient
from zfsrep.zfs import parse as zparse
from zfsrep.zfs import stream as zs

VERB = "restore"
LOCAL_PROPS = ("type", "used", "receive_resume_token")
COPY_PROPS = ("type", "encryption", "keystatus")


@dataclass(frozen=True)
class Prepared:
    plan: RestorePlan
    raw: bool  # send raw (-w): the copy is encrypted and its key is not usable on the target
    volume: bool


def split_spec(spec: str) -> tuple[str, str | None]:
    dataset, at, snapshot = spec.partition("@")
    if not dataset or (at and not snapshot):
        raise UsageError(f"expected DATASET or DATASET@SNAPSHOT, got {spec!r}")
    return dataset.rstrip("/"), snapshot or None


def _local(client: ZfsClient, name: str, target: Session) -> LocalDataset:
    listed = client.list_datasets([name], recursive=True, props=LOCAL_PROPS, missing_ok=True)
    if name not in listed:
        return LocalDataset()
    snaps = [s for ss in client.list_snapshots([name], recursive=True, missing_ok=True).values() for s in ss]
    held = [s.full_name for s in snaps if s.held]
    token = listed[name].get("receive_resume_token", "-")
    resume = _probe(target, token) if token not in ("-", "") else None
    return LocalDataset(
        exists=True,
        descendants=tuple(d for d in listed if d != name and is_descendant(d, name)),
        snapshots=tuple(snaps),
        used=zparse.integer(listed[name].get("used", "-"), "used"),
        resume=resume,
        holds={k: frozenset(v) for k, v in (client.holds(held) if held else {}).items()},
    )


def _probe(session: Session, token: str) -> rp.ResumeState:
    """Ask the sender (the target) whether the token's snapshot still exists."""
    probe = session.runner.run(zs.resume_probe_argv(token), check=False)
    contents = zs.parse_token_contents(probe.stdout + "\n" + probe.stderr)
    last = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else ""
    return rp.ResumeState(token=token, valid=probe.ok, toname=contents.toname, toguid=contents.toguid,
                          reason="" if probe.ok else last)


def plan(spec: str, target: TargetConfig, session: Session, *, runner: Runner, to: str | None = None,
         force: bool = False) -> Prepared:
    dataset, wanted = split_spec(spec)
    dest = (to or dataset).rstrip("/")
    local = ZfsClient(runner)
    pool = pool_of(dest)
    if pool not in local.list_datasets([pool], missing_ok=True):
        raise UsageError(f"pool {pool} is not imported on {runner.host or socket.gethostname()}; create or "
                         f"import it first (`zpool import {pool}`), or restore elsewhere with --to POOL/NAME")
    remote = ZfsClient(session.runner)
    copy = target_dataset(target, dataset)
    copy_props = remote.list_datasets([copy], props=COPY_PROPS, missing_ok=True).get(copy)
    target_snaps: Sequence[Snapshot] | None = None
    if copy_props is not None:
        target_snaps = remote.list_snapshots([copy]).get(copy, [])
    state = _local(local, dest, session)
    temp = _local(local, temp_name(dest), session) if state.exists and not state.partial and force else None
    ancestors = [a for a in _ancestors(dest)]
    existing = set(local.list_datasets(ancestors, missing_ok=True)) if ancestors else set()
    p = plan_restore(dataset, target.name, copy, target_snaps, dest=dest, wanted=wanted, local=state,
                     temp=temp, missing_parents=missing_ancestors(dest, existing), force=force)
    props = copy_props or {}
    encrypted = props.get("encryption", "off") not in ("off", "-", "")
    raw = encrypted and (target.raw or props.get("keystatus") != "available")
    return Prepared(p, raw=raw, volume=props.get("type") == "volume")


def _ancestors(dest: str) -> list[str]:
    parts = dest.split("/")
    return ["/".join(parts[:i]) for i in range(2, len(parts))]


def restore_stages(send: Sequence[str], recv: Sequence[str], *, ssh_prefix: Sequence[str], destination: str,
                   compress: str = "none") -> list[Stage]:
    """ssh (remote: zfs send [| compress]) → [decompress] → zfs receive: replicate's data path reversed.

    ``ssh_prefix`` ends with the destination; the remote side is one shell word of `shlex.join`-ed
    argv lists (``("sh", "-c")`` runs it locally, for a target on this host)."""
    remote = shlex.join(send)
    stages = []
    if compress != "none":
        comp, decomp = COMPRESSORS[compress]
        remote = f"{remote} | {shlex.join(comp)}"
        stages = [Stage(decomp[0], decomp)]
    return [Stage(f"ssh to {destination} (zfs send)", [*ssh_prefix, remote]), *stages, Stage("zfs receive", list(recv))]


def apply(prepared: Prepared, target: TargetConfig, session: Session, *, runner: Runner, now: float,
          dry_run: bool = False, mount: bool = True) -> RunResult:
    p = prepared.plan
    clock = time.monotonic()
    host = runner.host or socket.gethostname()
    result = RunResult(verb=VERB, started_at=float(now), host=host, dry_run=dry_run)
    item = ItemResult(dataset=p.dest, target=target.name, status=PLANNED if dry_run else OK,
                      to_snapshot=p.snapshot.name if p.snapshot else None,
                      details={"plan": p.describe(), "source_dataset": p.dataset, "copy": p.target_dataset,
                               "access": session.steps})
    result.items.append(item)
    if p.action == REFUSE:
        item.status, item.error = FAILED, p.message
    elif not dry_run:
        try:
            _apply(prepared, target, session, runner, item, mount=mount)
        except ZfsrepError as e:
            item.status, item.error = FAILED, str(e)
    item.seconds = round(time.monotonic() - clock, 3)
    result.finished_at = float(now) + (time.monotonic() - clock)
    return result


def _apply(prepared: Prepared, target: TargetConfig, session: Session, runner: Runner, item: ItemResult, *,
           mount: bool) -> None:
    p = prepared.plan
    assert p.snapshot is not None and p.receive_into is not None
    local = ZfsClient(runner)
    for parent in p.create_parents:
        runner.run(zs.create_placeholder_argv(parent))
        item.created.append(parent)
    for step in p.steps:
        if step.kind == rp.ABORT_RESUME:
            runner.run(zs.recv_abort_argv(p.receive_into))
            continue
        if step.kind == rp.RESUME:
            send = zs.resume_send_argv(step.token or "", progress=True)
            item.resumed = True
        else:
            send = zs.send_argv(p.snapshot.full_name, raw=prepared.raw, progress=True)
        recv = zs.recv_argv(p.receive_into, filesystem=not prepared.volume)
        stages = restore_stages(send, recv, ssh_prefix=session.runner.prefix or ("sh", "-c"),
                                destination=session.runner.host or target.name, compress=target.compress)
        try:
            piped = run_pipeline(stages)
        except FileNotFoundError as e:
            raise ZfsrepError(f"cannot start {e.filename}: not installed on {socket.gethostname()}") from None
        item.bytes += piped.bytes
        if not piped.ok:
            raise ZfsrepError(_pipeline_error(p, target, piped))
    item.sent.append(p.snapshot.name)
    if p.action == REPLACE:
        for tag, name in p.releases:
            local.release(tag, [name])
        runner.run(["zfs", "destroy", "-r", p.dest])
        item.destroyed += list(p.destroys)
        runner.run(["zfs", "rename", p.receive_into, p.dest])
    item.created.append(p.dest)
    item.details["mounted"] = _mount(runner, p.dest, item) if mount and not prepared.volume else False


def _mount(runner: Runner, dest: str, item: ItemResult) -> bool:
    props = ZfsClient(runner).get(["canmount", "keystatus", "mounted"], [dest]).get(dest, {})
    if props.get("mounted") == "yes":
        return True
    if props.get("keystatus") == "unavailable":
        item.add_note(f"{dest} is encrypted: `zfs load-key {dest}` then `zfs mount {dest}`")
        return False
    if props.get("canmount") == "off":
        return False
    done = runner.run(["zfs", "mount", dest], check=False)
    if not done.ok:
        item.add_note(f"restored, but `zfs mount {dest}` failed: {done.stderr.strip()}")
    return done.ok


def _pipeline_error(p: RestorePlan, target: TargetConfig, piped: PipelineResult) -> str:
    cause = piped.failure
    text = cause.describe() if cause else "the pipeline failed"
    stderr = " ".join(s.stderr for s in piped.stages).lower()
    if "no space" in stderr or "out of space" in stderr:
        fix = f"pool {pool_of(p.dest)} is full here; free space, then rerun to resume"
    elif cause is not None and cause.name.startswith("ssh") and cause.returncode == 255:
        fix = f"the ssh connection to target {target.name} failed; check it, then rerun the same command to resume"
    elif zs.receive_saved_partial(stderr):
        fix = "rerun the same command: the partial receive is kept and resumed"
    elif zs.receive_refused(stderr):
        fix = "zfs here refused the stream; fix what it says, then rerun"
    else:
        fix = "rerun the same command: a partial receive, if any, is kept and resumed"
    return (f"restore of {target.name}:{p.target_dataset}@{p.snapshot.name if p.snapshot else '?'} into "
            f"{p.receive_into} failed: {text}; {fix}")


def run(config: Config, spec: str, *, target: str, now: float, to: str | None = None, force: bool = False,
        dry_run: bool = False, mount: bool = True, runner: Runner | None = None, connect: Connect | None = None,
        on_plan: Callable[[RestorePlan], None] | None = None) -> RunResult:
    """Plan and (unless ``dry_run``) apply one restore; ``on_plan`` sees the plan before anything changes."""
    t = require_target(config, target)
    runner = runner or Runner()
    # Replacing a live dataset: no replicate to this target may run meanwhile (it reads the source).
    connect = connect or connector(config, lock=True if force else None)
    with connect(t) as session:
        prepared = plan(spec, t, session, runner=runner, to=to, force=force)
        if on_plan is not None:
            on_plan(prepared.plan)
        result = apply(prepared, t, session, runner=runner, now=now, dry_run=dry_run, mount=mount)
    session.annotate(result.items[0])  # now including the teardown
    return result
