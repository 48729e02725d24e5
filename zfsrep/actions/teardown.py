"""`zfsrep teardown`: put on-demand targets back to rest — export the pool, stop or terminate
the instance per ``after`` (terminate only what zfsrep launched), detach the volume where
configured, or run the command type's ``teardown_command``. Idempotent and safe after a failed
warmup or replicate (it is meant for ``ExecStopPost``). Reports each instance's up-time.

Each target is torn down under its lock (`zfsrep.lock.teardown_lock`, the one replicate, verify,
scrub, restore and rollback hold), so a run still using an on-demand target is not left without
it. As an ``ExecStopPost`` teardown runs after its own unit's run has let go of the lock; another
unit may still hold it: teardown waits up to the target's ``lock_timeout``, at most
`TEARDOWN_LOCK_WAIT` (systemd's stop timeout, ``TimeoutStopSec=``, is 90 s by default), then
fails for that target, leaving it up.

`reap`: stop/terminate instances tagged for a configured target that have run longer than its
``max_uptime`` (a safety net for crashes; it takes no lock, so a run hung past max_uptime cannot
keep an instance alive).
"""

from __future__ import annotations

import shlex
import socket
from contextlib import nullcontext

from zfsrep.actions.ondemand import target_item
from zfsrep.actions.warmup import Clocks, _current_instance
from zfsrep.config.model import CommandWarmup, Config, Ec2Warmup, TargetConfig
from zfsrep.core.durations import format_duration
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, ItemResult, RunResult
from zfsrep.core.warmup_plan import (
    GONE, RUNNING, STOPPED, TAG_TARGET, Step, plan_reap, plan_teardown,
)
from zfsrep.errors import ZfsrepError
from zfsrep.lock import teardown_lock
from zfsrep.targets.pool import export_at
from zfsrep.targets.record import DOWN, UP, WarmupRecord, load_record, mark_down
from zfsrep.targets.select import warmup_targets
from zfsrep.targets.user_commands import run_local_command

TEARDOWN_LOCK_WAIT = 60.0  # at most, for another run to let go of the target's lock


def run(
    config: Config, *, now: float, dry_run: bool = False, targets: list[str] | None = None,
    clocks: Clocks | None = None,
) -> RunResult:
    clocks = clocks or Clocks()
    result = RunResult(verb="teardown", started_at=now, host=socket.gethostname(), dry_run=dry_run)
    for target in warmup_targets(config, targets):
        started = clocks.clock()
        warnings: list[str] = []
        wait = min(target.lock_timeout, TEARDOWN_LOCK_WAIT)
        try:
            with nullcontext() if dry_run else teardown_lock(config.lock_dir, target.name, wait, warnings=warnings):
                if isinstance(target.warmup, Ec2Warmup):
                    item = _down_ec2(config, target, target.warmup, now=now, dry_run=dry_run, clocks=clocks,
                                     warnings=warnings)
                else:
                    item = _down_command(config, target, target.warmup, now=now, dry_run=dry_run, clocks=clocks,
                                         warnings=warnings)
        except ZfsrepError as e:
            item = ItemResult(dataset=target.dataset, target=target.name, status=FAILED, error=str(e))
        if warnings:
            item.details["warnings"] = warnings
        item.seconds = round(clocks.clock() - started, 3)
        result.items.append(item)
    result.finished_at = clocks.wall()
    return result


def reap(config: Config, *, now: float, dry_run: bool = False, targets: list[str] | None = None,
         clocks: Clocks | None = None) -> RunResult:
    clocks = clocks or Clocks()
    result = RunResult(verb="teardown", started_at=now, host=socket.gethostname(), dry_run=dry_run)
    for target in warmup_targets(config, targets):
        w = target.warmup
        if not isinstance(w, Ec2Warmup):
            continue
        try:
            from zfsrep.ec2 import Ec2

            ec2 = Ec2(target.name, w.region, w.endpoint_url, sleep=clocks.sleep, clock=clocks.clock)
            reaps = plan_reap(target.name, ec2.tagged_instances(TAG_TARGET, target.name), after=w.after,
                              max_uptime=w.max_uptime, now=now)
        except ZfsrepError as e:
            result.items.append(ItemResult(dataset=target.dataset, target=target.name, status=FAILED, error=str(e)))
            continue
        if not reaps:
            result.items.append(ItemResult(
                dataset=target.dataset, target=target.name, status=NOTHING_TO_DO,
                details={"steps": [f"no instance tagged {TAG_TARGET}={target.name} has run longer than "
                                   f"{format_duration(w.max_uptime)}"]}))
        for r in reaps:
            text = f"{r.action} {r.instance.id}: up {format_duration(r.uptime)}, longer than max_uptime {format_duration(w.max_uptime)}"
            item = ItemResult(dataset=target.dataset, target=target.name, status=PLANNED if dry_run else OK,
                              details={"steps": [text], "instance_id": r.instance.id, "action": r.action,
                                       "uptime_seconds": round(r.uptime)})
            if not dry_run:
                warnings: list[str] = []
                try:
                    (ec2.terminate if r.action == "terminate" else ec2.stop)(r.instance.id)
                    mark_down(config.state_dir, target.name, r.instance.id, clocks.wall(), warnings)
                except ZfsrepError as e:
                    item.status, item.error = FAILED, str(e)
                if warnings:
                    item.details["warnings"] = warnings
            result.items.append(item)
    result.finished_at = clocks.wall()
    return result


# --- command ------------------------------------------------------------------------------


def _down_command(config: Config, target: TargetConfig, w: CommandWarmup, *, now: float, dry_run: bool,
                  clocks: Clocks, warnings: list[str]) -> ItemResult:
    record = load_record(config.state_dir, target.name, warnings)
    if record is not None and record.status == DOWN:
        return target_item(target, NOTHING_TO_DO, ["torn down already"], kind="command")
    # a target without host is where its warmup command said it was
    address = target.host or (record.address if record is not None else None)
    steps = []
    if w.pool and address:
        steps.append(Step("export", f"export pool {w.pool} on {address}"))
    if w.teardown_command:
        steps.append(Step("command", f"run locally: {shlex.join(w.teardown_command)}"))
    if dry_run:
        return target_item(target, PLANNED, [s.text for s in steps], kind="command")
    done, errors = [], []
    if w.pool and address:
        note, error = export_at(target, address, w.pool, must=bool(record and record.pool_imported))
        done += [note] if note else []
        errors += [error] if error else []
    if w.teardown_command and not errors:
        try:
            run_local_command(target, w.teardown_command, "teardown_command")
            done.append(f"ran locally: {shlex.join(w.teardown_command)}")
        except ZfsrepError as e:
            errors.append(str(e))
    uptime = _record_uptime(record, clocks.wall())
    if uptime is not None:
        done.append(f"up {format_duration(uptime)}")
    if errors:
        return target_item(target, FAILED, done, "; ".join(errors), kind="command")
    mark_down(config.state_dir, target.name, None, clocks.wall(), warnings)
    return target_item(target, OK if steps else NOTHING_TO_DO, done, kind="command",
                 uptime_seconds=round(uptime) if uptime is not None else None)


def _record_uptime(record: WarmupRecord | None, at: float) -> float | None:
    if record is None or record.status == DOWN:
        return None
    since = record.instance_started_at or record.up_at or record.warmup_started_at
    return at - since if since else None


# --- ec2 ----------------------------------------------------------------------------------


def _down_ec2(config: Config, target: TargetConfig, w: Ec2Warmup, *, now: float, dry_run: bool,
              clocks: Clocks, warnings: list[str]) -> ItemResult:
    from zfsrep.ec2 import Ec2  # boto3 only when an EC2 target is torn down

    name = target.name
    ec2 = Ec2(name, w.region, w.endpoint_url, sleep=clocks.sleep, clock=clocks.clock)
    record = load_record(config.state_dir, name, warnings)
    instance = _current_instance(ec2, w, name, record)
    ours = record is not None and instance is not None and record.instance_id == instance.id
    volume = ec2.volume(w.volume_id) if (w.volume_id and w.detach_volume) else None
    steps = plan_teardown(
        name, after=w.after, instance=instance, launched_by_us=bool(ours and record and record.launched_by_us),
        pool=w.pool, volume=volume, detach_volume=w.detach_volume,
    )
    iid = instance.id if instance else None
    if dry_run:
        return target_item(target, PLANNED if steps else NOTHING_TO_DO, [s.text for s in steps] or ["nothing to do"],
                     kind="ec2", instance_id=iid)
    if not steps:
        mark_down(config.state_dir, name, None, clocks.wall(), warnings)
        state = instance.state if instance else "gone"
        return target_item(target, NOTHING_TO_DO, [f"instance {iid or w.instance_id or '(none)'} is {state}; nothing to do"],
                     kind="ec2", instance_id=iid)
    assert instance is not None
    uptime = clocks.wall() - instance.launch_time if instance.state == RUNNING and instance.launch_time else None
    done: list[str] = []
    export_error = None
    for step in steps:
        if step.kind == "export":
            address = target.host or (record.address if ours and record and record.address else None) \
                or instance.addresses.get(w.address)
            must = bool(ours and record and record.pool_imported and record.status == UP)
            note, export_error = export_at(target, address, w.pool or "", must=must)
            done += [note] if note else []
        elif step.kind == "terminate":
            ec2.terminate(instance.id)
            done.append(f"terminated {instance.id}")
        elif step.kind == "wait-gone":
            ec2.wait_instance(instance.id, set(GONE), timeout=w.start_timeout)
        elif step.kind == "stop":
            ec2.stop(instance.id)
            done.append(f"stopped {instance.id}")
        elif step.kind == "wait-stopped":
            ec2.wait_instance(instance.id, {STOPPED}, timeout=w.start_timeout)
        elif step.kind == "detach":
            if export_error and w.after == "keep":
                done.append(f"left {w.volume_id} attached: pool {w.pool} is still imported")
                break
            ec2.detach(w.volume_id or "", instance.id)
            done.append(f"detached {w.volume_id} from {instance.id}")
        elif step.kind == "wait-detached":
            ec2.wait_attachment(w.volume_id or "", instance.id, attached=False, timeout=w.start_timeout)
    if uptime is not None:
        done.append(f"{instance.id} was up {format_duration(uptime)}")
    details = {"kind": "ec2", "instance_id": instance.id, "uptime_seconds": round(uptime) if uptime is not None else None}
    if export_error:
        return target_item(target, FAILED, done, f"{export_error} (the rest of the teardown was done)", **details)
    mark_down(config.state_dir, name, instance.id, clocks.wall(), warnings)
    return target_item(target, OK, done, **details)

