"""EC2 for on-demand targets: describe, launch/start, attach, wait, stop/terminate, find tagged.

The only module that imports boto3. Credentials come from boto3's normal chain (environment,
``AWS_SHARED_CREDENTIALS_FILE``, instance profile, …); when that variable is unset and systemd
passes a credential named ``aws-credentials`` (``LoadCredential=aws-credentials:/path``), that
file is the shared credentials file. Never from the config text.

Every AWS error becomes an `Ec2Error`: one line naming the target, the resource, the region
and the fix.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

from zfsrep.config.credentials import credentials_dir
from zfsrep.core.warmup_plan import Attachment, InstanceView, VolumeView, backoff_delays
from zfsrep.errors import ZfsrepError

CREDENTIAL_NAME = "aws-credentials"

# ClientError code -> the fix, appended to "target T: cannot <what> in <region>: <code>: ".
_FIXES = {
    "InsufficientInstanceCapacity": "AWS has no capacity for this instance type in this zone right now; "
    "retry later, or allow another instance type or zone in the launch template",
    "InstanceLimitExceeded": "the account's instance limit is reached; terminate unused instances or ask AWS for a higher quota",
    "VcpuLimitExceeded": "the account's vCPU quota is reached; terminate unused instances or ask AWS for a higher quota",
    "UnauthorizedOperation": "the credentials lack this EC2 permission; add it to the IAM policy (see docs/ec2.md)",
    "AccessDenied": "the credentials lack this permission; add it to the IAM policy (see docs/ec2.md)",
    "AuthFailure": "AWS rejected the credentials; check the access key (environment, AWS_SHARED_CREDENTIALS_FILE "
    "or the systemd credential aws-credentials)",
    "RequestExpired": "the host clock is off; sync it (timedatectl, chrony)",
    "IncorrectState": "the resource is in the wrong state for this; wait a minute and run it again",
    "IncorrectInstanceState": "the instance is in the wrong state for this; wait until it has stopped or started, then run it again",
    "IncorrectModificationState": "an earlier change is still in progress; wait a minute and run it again",
    "VolumeInUse": "the volume is attached to another instance; detach it there first (aws ec2 detach-volume)",
    "InvalidVolume.ZoneMismatch": "the volume and the instance are in different availability zones; "
    "launch the instance in the volume's zone (subnet/placement of the launch template)",
    "InvalidVolume.NotFound": "no such volume in this region; check warmup.volume_id and warmup.region",
    "InvalidInstanceID.NotFound": "no such instance in this region; check warmup.instance_id and warmup.region",
    "InvalidInstanceID.Malformed": "that is not an instance id (i-…); check warmup.instance_id",
    "InvalidVolumeID.Malformed": "that is not a volume id (vol-…); check warmup.volume_id",
    "InvalidLaunchTemplateName.NotFoundException": "no such launch template in this region; check warmup.launch_template",
    "InvalidLaunchTemplateId.NotFound": "no such launch template in this region; check warmup.launch_template",
    "InvalidLaunchTemplateId.Malformed": "that is not a launch template id (lt-…) or name; check warmup.launch_template",
    "InvalidParameterValue": "AWS rejected a parameter; check the warmup table and the launch template",
    "InvalidParameterCombination": "AWS rejected the combination of settings; check the launch template",
    "UnsupportedOperation": "this instance does not support the operation (e.g. stop on an instance-store root); "
    "use a launch template and after = \"terminate\"",
    "OperationNotPermitted": "the instance is protected (termination/stop protection); lift the protection or use after = \"keep\"",
    "RequestLimitExceeded": "EC2 is throttling this account; run it again in a minute",
    "Unavailable": "EC2 is unavailable right now; run it again in a minute",
    "InternalError": "EC2 had an internal error; run it again in a minute",
}


class Ec2Error(ZfsrepError):
    """An EC2 call failed; ``code`` is AWS's error code (or a botocore exception name)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def explain(error: Exception, *, target: str, region: str, what: str) -> Ec2Error:
    """One actionable line for an AWS/botocore error (never with credentials in it)."""
    head = f"target {target}: cannot {what} in {region}"
    if isinstance(error, botocore.exceptions.ClientError):
        err = error.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = str(err.get("Message", "")).split("Encoded authorization failure message")[0].strip().rstrip(".")
        fix = _FIXES.get(code)
        if fix is None and code.endswith(".NotFound"):
            fix = "it does not exist in this region; check the ids and warmup.region"
        if fix is None:
            fix = "see the AWS message; run it again with -vv for details"
        detail = f"{code}" + (f" ({message[:200]})" if message else "")
        return Ec2Error(f"{head}: {detail}; {fix}", code)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return Ec2Error(
            f"{head}: no AWS credentials found; provide them through the environment, "
            f"AWS_SHARED_CREDENTIALS_FILE, a systemd credential named {CREDENTIAL_NAME}, or an instance profile",
            "NoCredentials",
        )
    if isinstance(error, botocore.exceptions.PartialCredentialsError):
        return Ec2Error(f"{head}: the AWS credentials are incomplete ({error.kwargs.get('cred_var', '?')} "
                        "missing); fix the credentials file or environment", "PartialCredentials")
    if isinstance(error, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
        return Ec2Error(
            f"{head}: cannot reach the EC2 endpoint ({getattr(error, 'kwargs', {}).get('endpoint_url', '?')}); "
            "check the network/proxy from this host, warmup.region and warmup.endpoint_url",
            "EndpointConnection",
        )
    if isinstance(error, botocore.exceptions.ReadTimeoutError):
        return Ec2Error(f"{head}: EC2 did not answer in time; run it again", "ReadTimeout")
    if isinstance(error, botocore.exceptions.NoRegionError):
        return Ec2Error(f"{head}: no region; set warmup.region", "NoRegion")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return Ec2Error(f"{head}: {type(error).__name__}: {error}; run it again with -vv for details",
                        type(error).__name__)
    raise error


def _session() -> boto3.Session:
    core = botocore.session.Session()
    cred_dir = credentials_dir(os.environ)  # also in ExecStopPost (teardown), where systemd has removed it
    if cred_dir and not os.environ.get("AWS_SHARED_CREDENTIALS_FILE"):
        path = Path(cred_dir) / CREDENTIAL_NAME
        if path.is_file():
            core.set_config_variable("credentials_file", str(path))
    return boto3.Session(botocore_session=core)


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value or 0.0)


def _instance_view(data: dict[str, Any]) -> InstanceView:
    addresses = {
        "public_ip": data.get("PublicIpAddress") or "",
        "private_ip": data.get("PrivateIpAddress") or "",
        "public_dns": data.get("PublicDnsName") or "",
        "private_dns": data.get("PrivateDnsName") or "",
    }
    return InstanceView(
        id=data["InstanceId"],
        state=data.get("State", {}).get("Name", "unknown"),
        zone=data.get("Placement", {}).get("AvailabilityZone", ""),
        launch_time=_epoch(data.get("LaunchTime")),
        addresses={k: v for k, v in addresses.items() if v},
        tags={t["Key"]: t["Value"] for t in data.get("Tags", []) or []},
    )


def _volume_view(data: dict[str, Any]) -> VolumeView:
    return VolumeView(
        id=data["VolumeId"],
        zone=data.get("AvailabilityZone", ""),
        state=data.get("State", "unknown"),
        attachments=tuple(
            Attachment(a.get("InstanceId", ""), a.get("Device", ""), a.get("State", "")) for a in data.get("Attachments", []) or []
        ),
    )


@dataclass
class Ec2:
    """EC2 calls for one target. ``sleep``/``clock`` are injectable so waits are testable."""

    target: str
    region: str
    endpoint_url: str | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        config = botocore.config.Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60,
            user_agent_extra="zfsrep",
        )
        try:
            self._client = _session().client("ec2", region_name=self.region, endpoint_url=self.endpoint_url, config=config)
        except Exception as e:  # noqa: BLE001 - translated or re-raised by explain
            raise explain(e, target=self.target, region=self.region, what="create an EC2 client") from None

    def _call(self, what: str, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, method)(**kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise explain(e, target=self.target, region=self.region, what=what) from None

    # --- describe -------------------------------------------------------------------------

    def instance(self, instance_id: str) -> InstanceView | None:
        """The instance, or None if EC2 no longer knows it."""
        try:
            data = self._call(f"describe {instance_id}", "describe_instances", InstanceIds=[instance_id])
        except Ec2Error as e:
            if e.code == "InvalidInstanceID.NotFound":
                return None
            raise
        found = [i for r in data.get("Reservations", []) for i in r.get("Instances", [])]
        return _instance_view(found[0]) if found else None

    def tagged_instances(self, tag_key: str, tag_value: str) -> list[InstanceView]:
        """Instances (not terminated) carrying the tag."""
        filters = [
            {"Name": f"tag:{tag_key}", "Values": [tag_value]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
        found: list[InstanceView] = []
        kwargs: dict[str, Any] = {"Filters": filters}
        while True:
            data = self._call(f"list instances tagged {tag_key}={tag_value}", "describe_instances", **kwargs)
            found += [_instance_view(i) for r in data.get("Reservations", []) for i in r.get("Instances", [])]
            if not data.get("NextToken"):
                return found
            kwargs["NextToken"] = data["NextToken"]

    def volume(self, volume_id: str) -> VolumeView | None:
        try:
            data = self._call(f"describe volume {volume_id}", "describe_volumes", VolumeIds=[volume_id])
        except Ec2Error as e:
            if e.code == "InvalidVolume.NotFound":
                return None
            raise
        vols = data.get("Volumes", [])
        return _volume_view(vols[0]) if vols else None

    # --- change ---------------------------------------------------------------------------

    def launch(self, launch_template: str, tags: dict[str, str]) -> InstanceView:
        spec = {"LaunchTemplateId": launch_template} if launch_template.startswith("lt-") else {"LaunchTemplateName": launch_template}
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        data = self._call(
            f"launch an instance from launch template {launch_template}", "run_instances",
            LaunchTemplate=spec, MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}],
        )
        return _instance_view(data["Instances"][0])

    def start(self, instance_id: str) -> None:
        self._call(f"start {instance_id}", "start_instances", InstanceIds=[instance_id])

    def stop(self, instance_id: str) -> None:
        self._call(f"stop {instance_id}", "stop_instances", InstanceIds=[instance_id])

    def terminate(self, instance_id: str) -> None:
        self._call(f"terminate {instance_id}", "terminate_instances", InstanceIds=[instance_id])

    def tag(self, resource_id: str, tags: dict[str, str]) -> None:
        self._call(f"tag {resource_id}", "create_tags", Resources=[resource_id],
                   Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])

    def attach(self, volume_id: str, instance_id: str, device: str) -> None:
        self._call(f"attach {volume_id} to {instance_id} as {device}", "attach_volume",
                   VolumeId=volume_id, InstanceId=instance_id, Device=device)

    def detach(self, volume_id: str, instance_id: str) -> None:
        self._call(f"detach {volume_id} from {instance_id}", "detach_volume", VolumeId=volume_id, InstanceId=instance_id)

    # --- wait -----------------------------------------------------------------------------

    def wait_instance(self, instance_id: str, states: Iterable[str], *, timeout: float) -> InstanceView | None:
        """Poll until the instance is in one of ``states`` (None counts as "terminated")."""
        wanted = set(states)
        deadline = self.clock() + timeout
        delays = backoff_delays(first=2.0, cap=10.0)
        while True:
            view = self.instance(instance_id)
            state = view.state if view else "terminated"
            if state in wanted:
                return view
            if state in ("shutting-down", "terminated") and not wanted & {"shutting-down", "terminated"}:
                raise Ec2Error(
                    f"target {self.target}: instance {instance_id} in {self.region} is {state} while waiting for "
                    f"{'/'.join(sorted(wanted))}; see its state reason in the EC2 console (capacity, EBS limits, user data)",
                    "InstanceGone",
                )
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise Ec2Error(
                    f"target {self.target}: instance {instance_id} in {self.region} is still {state} after "
                    f"{timeout:.0f} s (waiting for {'/'.join(sorted(wanted))}); raise warmup.start_timeout or check it in the EC2 console",
                    "Timeout",
                )
            self.sleep(min(next(delays), remaining))

    def wait_attachment(self, volume_id: str, instance_id: str, *, attached: bool, timeout: float) -> VolumeView:
        """Poll until ``volume_id`` is attached to (or detached from) ``instance_id``."""
        deadline = self.clock() + timeout
        delays = backoff_delays(first=1.0, cap=5.0)
        while True:
            view = self.volume(volume_id)
            if view is None:
                raise Ec2Error(f"target {self.target}: volume {volume_id} in {self.region} disappeared; "
                               "check warmup.volume_id", "InvalidVolume.NotFound")
            mine = view.attachment_to(instance_id)
            if (attached and mine is not None and mine.state == "attached") or (not attached and mine is None):
                return view
            remaining = deadline - self.clock()
            if remaining <= 0:
                state = mine.state if mine else "detached"
                want = "attached" if attached else "detached"
                raise Ec2Error(
                    f"target {self.target}: volume {volume_id} is still {state} on {instance_id} after "
                    f"{timeout:.0f} s (waiting for {want}); check the volume in the EC2 console",
                    "Timeout",
                )
            self.sleep(min(next(delays), remaining))
