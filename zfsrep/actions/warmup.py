"""`zfsrep warmup`: bring on-demand targets up (start/launch the EC2 instance, attach its volume,
or run a local command), wait until ssh answers with the pinned host key, run the remote
command, import the pool. Idempotent: a target that is already up is only checked.

If anything fails after this run launched or started an instance, the instance is terminated or
stopped again before returning (no leaked instances). What was done is recorded in the state
dir (`zfsrep.targets.record`) as it happens, so teardown can undo it even after a crash.
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zfsrep import unit_run
from zfsrep.actions.ondemand import printed_address, target_item
from zfsrep.config.model import CommandWarmup, Config, Ec2Warmup, TargetConfig
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, ItemResult, RunResult
from zfsrep.core.warmup_plan import (
    GONE, RUNNING, STOPPED, TAG_LAUNCHED, TAG_SOURCE, TAG_TARGET, InstanceView, PlanError, Step, pick_instance,
    plan_host, plan_instance, plan_volume,
)
from zfsrep.errors import ZfsrepError
from zfsrep.ssh import SshSession
from zfsrep.targets.pool import import_pool
from zfsrep.targets.readiness import wait_for_ssh
from zfsrep.targets.record import DOWN, FAILED as REC_FAILED, UP, WarmupRecord, load_record, save_record
from zfsrep.targets.select import warmup_targets
from zfsrep.targets.user_commands import run_local_command, run_remote_command

if TYPE_CHECKING:  # boto3 is imported only when an EC2 target is warmed up or torn down
    from zfsrep.ec2 import Ec2


@dataclass
class Clocks:
    """Time sources, injectable for tests: ``wall`` for records, ``clock``/``sleep`` for waits."""

    wall: Callable[[], float] = time.time
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class _Progress:
    record: WarmupRecord
    state_dir: str
    warnings: list[str]
    done: list[str] = field(default_factory=list)
    changed: bool = False
    launched_now: bool = False
    started_now: bool = False
    attached_now: bool = False

    def note(self, text: str, *, changed: bool = True) -> None:
        self.done.append(text)
        self.changed = self.changed or changed

    def save(self) -> None:
        save_record(self.state_dir, self.record, self.warnings)


def run(
    config: Config, *, now: float, dry_run: bool = False, targets: list[str] | None = None,
    clocks: Clocks | None = None,
) -> RunResult:
    clocks = clocks or Clocks()
    result = RunResult(verb="warmup", started_at=now, host=socket.gethostname(), dry_run=dry_run)
    for target in warmup_targets(config, targets):
        started = clocks.clock()
        warnings: list[str] = []
        if not dry_run:  # before anything is started: this run's `teardown --this-run` undoes it
            noted = unit_run.note_warmed(target.name)
            warnings += [noted] if noted else []
        if isinstance(target.warmup, Ec2Warmup):
            item = _warm_ec2(config, target, target.warmup, dry_run=dry_run, clocks=clocks, warnings=warnings)
        else:
            item = _warm_command(config, target, target.warmup, dry_run=dry_run, clocks=clocks, warnings=warnings)
        if warnings:
            item.details["warnings"] = warnings
        item.seconds = round(clocks.clock() - started, 3)
        result.items.append(item)
    result.finished_at = clocks.wall()
    return result


def _bring_up_host(target: TargetConfig, address: str, *, pool: str | None, remote_command: tuple[str, ...] | None,
                   ssh_timeout: float, force_import: bool, progress: _Progress, clocks: Clocks) -> None:
    ready = wait_for_ssh(target, address, timeout=ssh_timeout, clock=clocks.clock, sleep=clocks.sleep)
    progress.note(f"ssh to {address} answered with the pinned host key after {ready.seconds:.0f} s "
                  f"({ready.attempts} attempt(s))", changed=False)
    if not (pool or remote_command):
        return
    with SshSession(target, host=address) as session:
        runner = session.runner()
        if remote_command:
            run_remote_command(runner, target, remote_command)
            progress.note(f"ran on {address}: {shlex.join(remote_command)}")
        if pool:
            if import_pool(runner, target, pool, force=force_import, clock=clocks.clock, sleep=clocks.sleep):
                progress.note(f"imported pool {pool} on {address}")
            else:
                progress.note(f"pool {pool} is imported on {address}", changed=False)
            progress.record.pool_imported = True


# --- command ------------------------------------------------------------------------------


def _warm_command(config: Config, target: TargetConfig, w: CommandWarmup, *, dry_run: bool, clocks: Clocks,
                  warnings: list[str]) -> ItemResult:
    steps = [Step("command", f"run locally: {shlex.join(w.command)}")]
    steps += plan_host(target.name, address=target.host, remote_command=w.remote_command, pool=w.pool,
                       known_hosts=target.known_hosts, unknown_address="the address the command prints")
    if dry_run:
        return target_item(target, PLANNED, [s.text for s in steps], kind="command")
    record = WarmupRecord(target=target.name, kind="command", address=target.host, pool=w.pool,
                          warmup_started_at=clocks.wall())
    progress = _Progress(record, config.state_dir, warnings)
    progress.save()
    try:
        output = run_local_command(target, w.command, "command")
        progress.note(f"ran locally: {shlex.join(w.command)}")
        if not target.host:
            record.address = printed_address(target, w.command, output)
            progress.note(f"the command printed the address {record.address}", changed=False)
            progress.save()
        _bring_up_host(target, record.address or "", pool=w.pool, remote_command=w.remote_command,
                       ssh_timeout=w.ssh_timeout, force_import=False, progress=progress, clocks=clocks)
    except ZfsrepError as e:
        record.status, record.error = REC_FAILED, str(e)
        progress.save()
        return target_item(target, FAILED, progress.done, str(e), kind="command")
    record.status, record.up_at, record.error = UP, clocks.wall(), None
    progress.save()
    return target_item(target, OK, progress.done, kind="command", address=record.address, pool_imported=record.pool_imported)


# --- ec2 ----------------------------------------------------------------------------------


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


def _warm_ec2(config: Config, target: TargetConfig, w: Ec2Warmup, *, dry_run: bool, clocks: Clocks,
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
    progress = _Progress(record, config.state_dir, warnings)
    undo_prior = previous is not None and previous.status not in (UP, DOWN)  # a crashed or failed warmup
    progress.save()
    try:
        _apply_ec2(ec2, target, w, steps, live, progress, clocks)
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


def _apply_ec2(ec2: Ec2, target: TargetConfig, w: Ec2Warmup, steps: list[Step], instance: InstanceView | None,
               progress: _Progress, clocks: Clocks) -> None:
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
    _bring_up_host(target, address, pool=w.pool, remote_command=w.remote_command, ssh_timeout=w.ssh_timeout,
                   force_import=bool(w.volume_id), progress=progress, clocks=clocks)


def _undo(ec2: Ec2, w: Ec2Warmup, progress: _Progress, *, include_prior: bool) -> str:
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
