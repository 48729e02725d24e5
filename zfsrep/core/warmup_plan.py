"""Pure plans for on-demand targets: what `warmup`, `teardown` and `teardown --reap` will do,
given what EC2 (or the state file) says now. No I/O; `now` is passed in.

A plan is a list of `Step`s; `zfsrep.targets.ec2` / `zfsrep.targets.command` apply them in
order and `--dry-run` prints their text. A refusal (volume in another zone, attached to another
instance, instance terminated) is a `PlanError` whose message is the one actionable line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Instance states, as EC2 names them.
PENDING, RUNNING, STOPPING, STOPPED = "pending", "running", "stopping", "stopped"
SHUTTING_DOWN, TERMINATED = "shutting-down", "terminated"
GONE = (SHUTTING_DOWN, TERMINATED)

# Tags on every instance zfsrep launches (or starts); reap finds instances by them.
TAG_TARGET = "zfsrep:target"
TAG_LAUNCHED = "zfsrep:launched"  # "true" only on instances zfsrep launched (it may terminate them)
TAG_SOURCE = "zfsrep:source"  # the host that ran warmup (informational)


class PlanError(Exception):
    """The plan cannot be made; the message says what and how to fix it."""


@dataclass(frozen=True)
class InstanceView:
    id: str
    state: str
    zone: str
    launch_time: float  # epoch seconds; EC2 resets it on every start
    addresses: dict[str, str] = field(default_factory=dict)  # public_ip, private_ip, public_dns, private_dns
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def launched_by_zfsrep(self) -> bool:
        return self.tags.get(TAG_LAUNCHED) == "true"


@dataclass(frozen=True)
class Attachment:
    instance_id: str
    device: str
    state: str  # attaching | attached | detaching | detached


@dataclass(frozen=True)
class VolumeView:
    id: str
    zone: str
    state: str  # creating | available | in-use | deleting | deleted | error
    attachments: tuple[Attachment, ...] = ()

    def attachment_to(self, instance_id: str) -> Attachment | None:
        for a in self.attachments:
            if a.instance_id == instance_id and a.state != "detached":
                return a
        return None

    def attached_elsewhere(self, instance_id: str | None) -> Attachment | None:
        for a in self.attachments:
            if a.instance_id != instance_id and a.state in ("attaching", "attached", "busy"):
                return a
        return None


@dataclass(frozen=True)
class Step:
    kind: str  # see the KIND_* names in the actions; text is what --dry-run prints
    text: str
    changes: bool = True  # False: only checks (warmup of a target that is already up)


def pick_instance(candidates: list[InstanceView], preferred_id: str | None) -> InstanceView | None:
    """Of the instances zfsrep tagged for a target, the one to use: the recorded one if it is
    still there, otherwise the most alive and newest."""
    alive = [i for i in candidates if i.state not in GONE]
    for i in alive:
        if i.id == preferred_id:
            return i
    rank = {RUNNING: 0, PENDING: 1, STOPPING: 2, STOPPED: 3}
    alive.sort(key=lambda i: (rank.get(i.state, 9), -i.launch_time))
    return alive[0] if alive else None


def plan_instance(
    target: str, region: str, *, instance: InstanceView | None, instance_id: str | None,
    launch_template: str | None,
) -> list[Step]:
    """Steps that bring the target's instance to `running`."""
    if instance is None or instance.state in GONE:
        if launch_template is None:
            state = instance.state if instance else "not found"
            raise PlanError(
                f"target {target}: instance {instance_id} in {region} is {state}; "
                f"set targets.{target}.warmup.instance_id to an existing instance (or use launch_template)"
            )
        return [
            Step("launch", f"launch an instance from launch template {launch_template} in {region}, tagged {TAG_TARGET}={target}"),
            Step("wait-running", "wait until it is running"),
        ]
    if instance.state == RUNNING:
        return [Step("wait-running", f"{instance.id} is running", changes=False)]
    if instance.state == PENDING:
        return [Step("wait-running", f"wait until {instance.id} (pending) is running", changes=False)]
    steps = []
    if instance.state == STOPPING:
        steps.append(Step("wait-stopped", f"wait until {instance.id} has stopped (it is stopping)"))
    steps += [
        Step("start", f"start {instance.id} in {instance.zone}"),
        Step("wait-running", "wait until it is running"),
    ]
    return steps


def plan_volume(
    target: str, *, volume: VolumeView | None, volume_id: str | None, device: str | None,
    instance: InstanceView | None,
) -> list[Step]:
    """Steps that attach the target's volume to ``instance`` (None: not launched yet)."""
    if volume_id is None or device is None:
        return []
    if volume is None or volume.state in ("deleting", "deleted", "error"):
        state = volume.state if volume else "not found"
        raise PlanError(f"target {target}: volume {volume_id} is {state}; check targets.{target}.warmup.volume_id")
    own_id = instance.id if instance else None
    other = volume.attached_elsewhere(own_id)
    if other is not None:
        raise PlanError(
            f"target {target}: volume {volume.id} is attached to {other.instance_id} as {other.device}; "
            f"detach it there (aws ec2 detach-volume --volume-id {volume.id}) or fix targets.{target}.warmup.volume_id"
        )
    if instance is None:
        return [
            Step("check-zone", f"check that the new instance is in {volume.zone}, the zone of {volume.id}"),
            Step("attach", f"attach {volume.id} as {device}"),
            Step("wait-attached", f"wait until {volume.id} is attached"),
        ]
    if volume.zone != instance.zone:
        raise PlanError(
            f"target {target}: volume {volume.id} is in {volume.zone} but instance {instance.id} is in "
            f"{instance.zone}; an EBS volume attaches only within its zone: launch the instance in "
            f"{volume.zone} (subnet/placement of the launch template) or move the volume (snapshot + new volume)"
        )
    mine = volume.attachment_to(instance.id)
    if mine is not None and mine.state == "attached":
        return [Step("wait-attached", f"{volume.id} is attached to {instance.id} as {mine.device}", changes=False)]
    if mine is not None and mine.state == "attaching":
        return [Step("wait-attached", f"wait until {volume.id} is attached to {instance.id}", changes=False)]
    if mine is not None and mine.state == "detaching":
        return [
            Step("wait-detached", f"wait until {volume.id} has detached from {instance.id}"),
            Step("attach", f"attach {volume.id} to {instance.id} as {device}"),
            Step("wait-attached", f"wait until {volume.id} is attached"),
        ]
    return [
        Step("attach", f"attach {volume.id} to {instance.id} as {device}"),
        Step("wait-attached", f"wait until {volume.id} is attached"),
    ]


def plan_host(
    target: str, *, address: str | None, remote_command: tuple[str, ...] | None, pool: str | None,
    known_hosts: str | None, unknown_address: str = "the instance's address",
) -> list[Step]:
    """Steps once the machine is up: ssh readiness, the remote command, pool import."""
    where = address or unknown_address
    pinned = known_hosts or "the default known_hosts"
    steps = [Step("wait-ssh", f"wait until ssh to {where} answers with the host key pinned in {pinned}", changes=False)]
    if remote_command:
        steps.append(Step("remote-command", f"run on {where}: {' '.join(remote_command)}"))
    if pool:
        steps.append(Step("import", f"import pool {pool} on {where} (zpool import -N) unless it is imported"))
    return steps


def plan_teardown(
    target: str, *, after: str, instance: InstanceView | None, launched_by_us: bool, pool: str | None,
    volume: VolumeView | None, detach_volume: bool,
) -> list[Step]:
    """Steps to put an EC2 target back to rest: export, stop/terminate, detach."""
    steps: list[Step] = []
    if instance is None or instance.state in GONE:
        return steps
    up = instance.state in (RUNNING, PENDING)
    if pool and instance.state == RUNNING:
        steps.append(Step("export", f"export pool {pool} on {instance.id}"))
    if after == "terminate" and not (launched_by_us or instance.launched_by_zfsrep):
        after = "stop"  # never terminate what zfsrep did not launch
    if after == "terminate":
        steps.append(Step("terminate", f"terminate {instance.id} (launched by zfsrep)"))
        steps.append(Step("wait-gone", f"wait until {instance.id} is shutting down"))
        return steps  # a terminated instance releases its volumes
    if after == "stop" and (up or instance.state == STOPPING):
        if up:
            steps.append(Step("stop", f"stop {instance.id}"))
        steps.append(Step("wait-stopped", f"wait until {instance.id} has stopped"))
    if detach_volume and volume is not None and volume.attachment_to(instance.id) is not None:
        steps.append(Step("detach", f"detach {volume.id} from {instance.id}"))
        steps.append(Step("wait-detached", f"wait until {volume.id} is detached"))
    return steps


@dataclass(frozen=True)
class Reap:
    instance: InstanceView
    action: str  # stop | terminate
    uptime: float


def plan_reap(
    target: str, instances: list[InstanceView], *, after: str, max_uptime: float, now: float
) -> list[Reap]:
    """Instances tagged for ``target`` that have run longer than ``max_uptime``."""
    if after == "keep":
        return []
    reaps = []
    for i in instances:
        if i.tags.get(TAG_TARGET) != target or i.state not in (PENDING, RUNNING):
            continue
        uptime = now - i.launch_time
        if uptime > max_uptime:
            action = "terminate" if i.launched_by_zfsrep and after == "terminate" else "stop"
            reaps.append(Reap(i, action, uptime))
    return reaps


def backoff_delays(first: float = 1.0, factor: float = 2.0, cap: float = 10.0):
    """1, 2, 4, 8, 10, 10, … seconds: how long to wait between polls."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)
