"""A target whose ``warmup`` is ``type = "ec2"``: up starts (or launches) its instance, attaches
its volume, then waits for ssh, runs ``remote_command`` and imports the pool, undoing what it
started if anything fails; down exports the pool, stops or terminates the instance per
``after`` (terminate only what zfsrep launched) and detaches the volume where configured; reap
stops or terminates instances tagged for the target that ran longer than ``max_uptime``.

The plans are `zfsrep.core.warmup_plan`'s; EC2 is reached through `zfsrep.ec2`, imported only
when an EC2 target is brought up, down or reaped (so a run without one never imports boto3).
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

from zfsrep.config.model import Config, Ec2Warmup, TargetConfig
from zfsrep.core.durations import format_duration
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, ItemResult
from zfsrep.core.warmup_plan import (
    GONE, RUNNING, STOPPED, TAG_LAUNCHED, TAG_SOURCE, TAG_TARGET, InstanceView, PlanError, Step, pick_instance,
    plan_host, plan_instance, plan_reap, plan_teardown, plan_volume,
)
from zfsrep.errors import ZfsrepError
from zfsrep.targets.pool import export_at
from zfsrep.targets.progress import Clocks, Progress, bring_up_host, target_item
from zfsrep.targets.record import DOWN, FAILED as REC_FAILED, UP, WarmupRecord, load_record, mark_down

if TYPE_CHECKING:  # boto3 is imported only when an EC2 target is brought up, down or reaped
    from zfsrep.ec2 import Ec2


def _address(target: TargetConfig, w: Ec2Warmup, instance: InstanceView) -> str:
    if target.host:
        return target.host
    address = instance.addresses.get(w.address)
    if not address:
        have = ", ".join(sorted(instance.addresses)) or "none"
        raise ZfsrepError(
            f"target {target.name}: instance {instance.id} has no {w.address} (it has: {have}); set "
            f"targets.{target.name}.warmup.address to one it has, give its subnet public IPs, or set targets.{target.name}.host"
        )
    return address


def _current_instance(ec2: Ec2, w: Ec2Warmup, target: str, record: WarmupRecord | None) -> InstanceView | None:
    if w.instance_id:
        return ec2.instance(w.instance_id)
    recorded = record.instance_id if record else None
    found = pick_instance(ec2.tagged_instances(TAG_TARGET, target), recorded)
    if found is None and recorded:  # tags lost? trust the record if it still runs
        view = ec2.instance(recorded)
        if view is not None and view.state not in GONE:
            found = view
    return found


def up(config: Config, target: TargetConfig, w: Ec2Warmup, *, dry_run: bool, clocks: Clocks,
       warnings: list[str]) -> ItemResult:
    name = target.name
    try:
        from zfsrep.ec2 import Ec2

        ec2 = Ec2(name, w.region, w.endpoint_url, sleep=clocks.sleep, clock=clocks.clock)
        previous = load_record(config.state_dir, name, warnings)
        instance = _current_instance(ec2, w, name, previous)
        volume = ec2.volume(w.volume_id) if w.volume_id else None
        live = instance if instance is not None and instance.state not in GONE else None
        steps = plan_instance(name, w.region, instance=instance, instance_id=w.instance_id, launch_template=w.launch_template)
        steps += plan_volume(name, volume=volume, volume_id=w.volume_id, device=w.device, instance=live)
        address = _address(target, w, live) if live is not None and live.state == RUNNING else target.host
        steps += plan_host(name, address=address, remote_command=w.remote_command, pool=w.pool, known_hosts=target.known_hosts)
    except (ZfsrepError, PlanError) as e:
        return target_item(target, FAILED, [], str(e), kind="ec2")
    if dry_run:
        return target_item(target, PLANNED, [s.text for s in steps], kind="ec2", instance_id=live.id if live else None)

    record = WarmupRecord(target=name, kind="ec2", region=w.region, pool=w.pool, warmup_started_at=clocks.wall())
    if live is not None and previous is not None and previous.instance_id == live.id and previous.status != DOWN:
        # the same instance as the last warmup: keep what that run did, so teardown/undo still know
        record.launched_by_us = previous.launched_by_us
        record.started_by_us = previous.started_by_us
        record.attached_by_us = previous.attached_by_us
        record.instance_started_at = previous.instance_started_at
    if live is not None:
        record.instance_id, record.zone = live.id, live.zone
        record.launched_by_us = record.launched_by_us or live.launched_by_zfsrep
    progress = Progress(record, config.state_dir, warnings)
    undo_prior = previous is not None and previous.status not in (UP, DOWN)  # a crashed or failed warmup
    progress.save()
    try:
        _apply(ec2, target, w, steps, live, progress, clocks)
    except BaseException as e:
        undone = _undo(ec2, w, progress, include_prior=undo_prior)
        if not isinstance(e, (ZfsrepError, PlanError)):
            raise
        message = str(e) + undone
        record.status, record.error = REC_FAILED, message
        progress.save()
        return target_item(target, FAILED, progress.done, message, kind="ec2", instance_id=record.instance_id)
    record.status, record.up_at, record.error = UP, clocks.wall(), None
    progress.save()
    return target_item(
        target, OK if progress.changed else NOTHING_TO_DO, progress.done, kind="ec2",
        instance_id=record.instance_id, address=record.address, zone=record.zone,
        launched_by_us=record.launched_by_us, started_by_us=record.started_by_us, pool_imported=record.pool_imported,
    )


def _apply(ec2: Ec2, target: TargetConfig, w: Ec2Warmup, steps: list[Step], instance: InstanceView | None,
           progress: Progress, clocks: Clocks) -> None:
    record, name = progress.record, target.name
    tags = {**w.tags, TAG_TARGET: name, TAG_SOURCE: socket.gethostname()}
    for step in [s for s in steps if s.kind in ("launch", "start", "wait-stopped", "wait-running")]:
        if step.kind == "launch":
            instance = ec2.launch(w.launch_template or "", {**tags, TAG_LAUNCHED: "true"})
            record.instance_id, record.launched_by_us, record.instance_started_at = instance.id, True, clocks.wall()
            progress.launched_now = True
            progress.save()  # before anything else can fail: teardown must know about it
            progress.note(f"launched {instance.id} from launch template {w.launch_template}")
        elif step.kind == "wait-stopped":
            ec2.wait_instance(record.instance_id or "", {STOPPED}, timeout=w.start_timeout)
        elif step.kind == "start":
            ec2.tag(record.instance_id or "", tags)  # so that teardown --reap finds it
            ec2.start(record.instance_id or "")
            record.started_by_us, record.instance_started_at = True, clocks.wall()
            progress.started_now = True
            progress.save()
            progress.note(f"started {record.instance_id}")
        elif step.kind == "wait-running":
            instance = ec2.wait_instance(record.instance_id or "", {RUNNING}, timeout=w.start_timeout)
    assert instance is not None
    record.zone = instance.zone
    if w.volume_id and w.device:
        # re-plan against the instance as it is now (a new one's zone is known only after launch)
        for step in plan_volume(name, volume=ec2.volume(w.volume_id), volume_id=w.volume_id, device=w.device, instance=instance):
            if step.kind == "wait-detached":
                ec2.wait_attachment(w.volume_id, instance.id, attached=False, timeout=w.start_timeout)
            elif step.kind == "attach":
                ec2.attach(w.volume_id, instance.id, w.device)
                record.attached_by_us, progress.attached_now = True, True
                progress.save()
                progress.note(f"attached {w.volume_id} to {instance.id} as {w.device}")
            elif step.kind == "wait-attached":
                ec2.wait_attachment(w.volume_id, instance.id, attached=True, timeout=w.start_timeout)
                if not step.changes:
                    progress.note(step.text, changed=False)
    address = _address(target, w, instance)
    record.address = address
    progress.save()
    if not progress.launched_now and not progress.started_now:
        progress.note(f"{instance.id} is running in {instance.zone}", changed=False)
    bring_up_host(target, address, pool=w.pool, remote_command=w.remote_command, ssh_timeout=w.ssh_timeout,
                  force_import=bool(w.volume_id), progress=progress, clocks=clocks)


def _undo(ec2: Ec2, w: Ec2Warmup, progress: Progress, *, include_prior: bool) -> str:
    """Terminate/stop what this warmup (or a crashed earlier one) launched/started; a suffix for the error."""
    record = progress.record
    iid = record.instance_id
    if iid is None:
        return ""
    launched = progress.launched_now or (include_prior and record.launched_by_us)
    started = progress.started_now or (include_prior and record.started_by_us)
    try:
        if launched:
            ec2.terminate(iid)
            action = f"terminated {iid}, which it had launched"
        elif started:
            ec2.stop(iid)
            action = f"stopped {iid} again"
        elif progress.attached_now and w.volume_id:
            ec2.detach(w.volume_id, iid)
            action = f"detached {w.volume_id} again"
        else:
            return ""
    except ZfsrepError as e:
        verb = "terminate" if launched else "stop" if started else "detach"
        return (f"; undoing failed too ({e}): {verb} it by hand, e.g. "
                f"`aws ec2 {'terminate-instances' if launched else 'stop-instances'} --region {w.region} --instance-ids {iid}`"
                if verb != "detach" else f"; undoing failed too ({e}): detach {w.volume_id} by hand")
    record.down_at = time.time()
    if launched or started:
        record.status = DOWN
    progress.note(action)
    return f"; warmup {action}"


def down(config: Config, target: TargetConfig, w: Ec2Warmup, *, dry_run: bool, clocks: Clocks,
         warnings: list[str]) -> ItemResult:
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


def reap(config: Config, target: TargetConfig, w: Ec2Warmup, *, now: float, dry_run: bool,
         clocks: Clocks) -> list[ItemResult]:
    """Stop or terminate (per ``after``) the instances tagged for ``target`` that have run longer
    than ``max_uptime``: one item each, or one saying there is none."""
    try:
        from zfsrep.ec2 import Ec2

        ec2 = Ec2(target.name, w.region, w.endpoint_url, sleep=clocks.sleep, clock=clocks.clock)
        reaps = plan_reap(target.name, ec2.tagged_instances(TAG_TARGET, target.name), after=w.after,
                          max_uptime=w.max_uptime, now=now)
    except ZfsrepError as e:
        return [ItemResult(dataset=target.dataset, target=target.name, status=FAILED, error=str(e))]
    if not reaps:
        return [ItemResult(
            dataset=target.dataset, target=target.name, status=NOTHING_TO_DO,
            details={"steps": [f"no instance tagged {TAG_TARGET}={target.name} has run longer than "
                               f"{format_duration(w.max_uptime)}"]})]
    items = []
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
        items.append(item)
    return items
