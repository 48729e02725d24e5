"""warmup / teardown / reap for EC2 targets, against moto's server mode on 127.0.0.1 (real HTTP;
boto3 with an endpoint URL, never a patched client).

ssh is a small fake on PATH (it answers probes, `zpool list/import/export` from a state file
and logs every call): these tests are about what happens to instances and volumes in EC2. Real
ssh readiness and pools are tested in the lab (tests/integration/test_warmup_lab.py).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from zfsrep.actions import teardown, warmup
from zfsrep.cli import app
from zfsrep.config.load import parse_config
from zfsrep.core.result import NOTHING_TO_DO, OK, PLANNED
from zfsrep.ec2 import Ec2, Ec2Error, explain
from zfsrep.targets.access import ssh_host
from zfsrep.targets.record import DOWN, UP, read_record

REGION = "us-east-1"
AMI = "ami-12345678"

# the interpreter by its path: the Nix build's sandbox has no /usr/bin/env
FAKE_SSH = f"#!{sys.executable}\n" + textwrap.dedent('''\
    import json, os, shlex, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_SSH_LOG"], "a") as f:
        f.write(json.dumps(args) + "\\n")
    if "-O" in args or "-N" in args:
        sys.exit(0)
    if os.environ.get("FAKE_SSH_MODE") == "refused":
        print("ssh: connect to host h port 22: Connection refused", file=sys.stderr)
        sys.exit(255)
    words = shlex.split(args[-1])
    pools_file = os.environ["FAKE_SSH_POOLS"]
    pools = set(open(pools_file).read().split()) if os.path.exists(pools_file) else set()
    def save():
        open(pools_file, "w").write("\\n".join(sorted(pools)))
    if words[:2] == ["zpool", "list"]:
        if words[-1] in pools:
            print(words[-1]); sys.exit(0)
        print(f"cannot open '{words[-1]}': no such pool", file=sys.stderr); sys.exit(1)
    if words[:2] == ["zpool", "import"]:
        pools.add(words[-1]); save(); sys.exit(0)
    if words[:2] == ["zpool", "export"]:
        pools.discard(words[-1]); save(); sys.exit(0)
    sys.exit(0)
''')


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch, tmp_path):
    """A boto3 client on a freshly reset moto, with test credentials from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto_url)


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_LOG", str(tmp_path / "ssh.log"))
    monkeypatch.setenv("FAKE_SSH_POOLS", str(tmp_path / "pools"))

    class Fake:
        pools_file = tmp_path / "pools"

        @staticmethod
        def calls() -> list[list[str]]:
            log = tmp_path / "ssh.log"
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        @staticmethod
        def remote_commands() -> list[str]:
            return [c[-1] for c in Fake.calls() if "-N" not in c and "-O" not in c]

        @staticmethod
        def imported() -> set[str]:
            return set(Fake.pools_file.read_text().split()) if Fake.pools_file.exists() else set()

        @staticmethod
        def refuse() -> None:
            monkeypatch.setenv("FAKE_SSH_MODE", "refused")

    return Fake


def make_config(tmp_path: Path, moto_url: str, warmup_lines: str, target_lines: str = ""):
    text = f"""
state_dir = "{tmp_path / 'state'}"
lock_dir = "{tmp_path / 'lock'}"
[targets.offsite]
dataset = "backup/hosts/web1"
known_hosts = "{tmp_path / 'known_hosts'}"
{target_lines}
[targets.offsite.warmup]
type = "ec2"
region = "{REGION}"
endpoint_url = "{moto_url}"
ssh_timeout = "3s"
start_timeout = "30s"
{warmup_lines}
"""
    return parse_config(text)


def stopped_instance(aws, zone: str = "us-east-1a") -> str:
    iid = aws.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": zone})["Instances"][0]["InstanceId"]
    aws.stop_instances(InstanceIds=[iid])
    return iid


def state_of(aws, iid: str) -> str:
    return aws.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def tags_of(aws, iid: str) -> dict[str, str]:
    data = aws.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in data.get("Tags", [])}


def volume(aws, zone: str = "us-east-1a") -> str:
    return aws.create_volume(AvailabilityZone=zone, Size=8)["VolumeId"]


def attachments(aws, vol: str) -> list[tuple[str, str]]:
    v = aws.describe_volumes(VolumeIds=[vol])["Volumes"][0]
    return [(a["InstanceId"], a["State"]) for a in v["Attachments"]]


def template(aws) -> str:
    aws.create_launch_template(LaunchTemplateName="zfsrep-offsite",
                               LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.small"})
    return "zfsrep-offsite"


def live_tagged(aws, target: str = "offsite") -> list[str]:
    data = aws.describe_instances(Filters=[
        {"Name": "tag:zfsrep:target", "Values": [target]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ])
    return [i["InstanceId"] for r in data["Reservations"] for i in r["Instances"]]


# --- start / stop -----------------------------------------------------------------------------


def test_start_attach_import_then_stop_export(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws)
    vol = volume(aws)
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"\nvolume_id = "{vol}"\ndevice = "/dev/xvdf"\npool = "backup"')

    up = warmup.run(cfg, now=1000.0)
    item = up.items[0]
    assert (up.exit_code, item.status, item.error) == (0, OK, None)
    assert state_of(aws, iid) == "running"
    assert attachments(aws, vol) == [(iid, "attached")]
    assert fake_ssh.imported() == {"backup"}
    assert "zpool import -N -f backup" in fake_ssh.remote_commands()
    assert tags_of(aws, iid)["zfsrep:target"] == "offsite"  # so reap can find it
    assert "zfsrep:launched" not in tags_of(aws, iid)
    record = read_record(cfg.state_dir, "offsite")
    assert (record.status, record.instance_id, record.started_by_us, record.launched_by_us) == (UP, iid, True, False)
    public_ip = aws.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    assert ssh_host(cfg.state_dir, cfg.targets["offsite"]) == public_ip == record.address

    down = teardown.run(cfg, now=2000.0)
    assert (down.exit_code, down.items[0].status) == (0, OK), down.items[0].error
    assert state_of(aws, iid) == "stopped"
    assert fake_ssh.imported() == set()
    assert attachments(aws, vol) == [(iid, "attached")]  # detach_volume is off
    assert any("was up" in s for s in down.items[0].details["steps"])
    assert read_record(cfg.state_dir, "offsite").status == DOWN
    assert ssh_host(cfg.state_dir, cfg.targets["offsite"]) is None


def test_warmup_twice_only_checks_and_teardown_twice_does_nothing(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws)
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"\npool = "backup"')
    assert warmup.run(cfg, now=1.0).items[0].status == OK
    again = warmup.run(cfg, now=2.0)
    assert (again.exit_code, again.items[0].status) == (0, NOTHING_TO_DO)
    assert read_record(cfg.state_dir, "offsite").started_by_us  # kept from the first run
    assert teardown.run(cfg, now=3.0).items[0].status == OK
    second = teardown.run(cfg, now=4.0)
    assert (second.exit_code, second.items[0].status) == (0, NOTHING_TO_DO)
    assert state_of(aws, iid) == "stopped"


def test_dry_run_changes_nothing(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws)
    vol = volume(aws)
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"\nvolume_id = "{vol}"\ndevice = "/dev/xvdf"')
    result = warmup.run(cfg, now=1.0, dry_run=True)
    assert result.items[0].status == PLANNED
    text = "\n".join(result.items[0].details["steps"])
    assert f"start {iid}" in text and f"attach {vol}" in text
    assert state_of(aws, iid) == "stopped" and attachments(aws, vol) == []
    assert read_record(cfg.state_dir, "offsite") is None


# --- launch / terminate -----------------------------------------------------------------------


def test_launch_from_template_then_terminate(aws, moto_url, fake_ssh, tmp_path):
    tpl = template(aws)
    vol = volume(aws)
    cfg = make_config(tmp_path, moto_url, f'launch_template = "{tpl}"\nvolume_id = "{vol}"\ndevice = "/dev/xvdf"\n'
                      'pool = "backup"\ntags = { owner = "ops" }')
    up = warmup.run(cfg, now=1.0)
    assert up.exit_code == 0, up.items[0].error
    [iid] = live_tagged(aws)
    tags = tags_of(aws, iid)
    assert (tags["zfsrep:launched"], tags["owner"]) == ("true", "ops")
    assert attachments(aws, vol) == [(iid, "attached")]
    assert read_record(cfg.state_dir, "offsite").launched_by_us

    assert warmup.run(cfg, now=2.0).items[0].status == NOTHING_TO_DO
    assert live_tagged(aws) == [iid]  # no second instance

    down = teardown.run(cfg, now=3.0)
    assert down.exit_code == 0, down.items[0].error
    assert state_of(aws, iid) == "terminated"
    assert live_tagged(aws) == []
    assert attachments(aws, vol) == []
    assert fake_ssh.imported() == set()


def test_teardown_never_terminates_an_instance_it_did_not_launch(aws, moto_url, fake_ssh, tmp_path):
    tpl = template(aws)
    cfg = make_config(tmp_path, moto_url, f'launch_template = "{tpl}"')
    # someone else's instance carrying our target tag, without zfsrep:launched
    iid = aws.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "zfsrep:target", "Value": "offsite"}]}])["Instances"][0]["InstanceId"]
    down = teardown.run(cfg, now=1.0)
    assert down.exit_code == 0, down.items[0].error
    assert state_of(aws, iid) == "stopped"


# --- attach / detach, zones, volume in use ------------------------------------------------------


def test_detach_volume_after_stop(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws)
    vol = volume(aws)
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"\nvolume_id = "{vol}"\ndevice = "/dev/xvdf"\ndetach_volume = true')
    assert warmup.run(cfg, now=1.0).exit_code == 0
    assert attachments(aws, vol) == [(iid, "attached")]
    down = teardown.run(cfg, now=2.0)
    assert down.exit_code == 0, down.items[0].error
    assert state_of(aws, iid) == "stopped"
    assert attachments(aws, vol) == []
    assert aws.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"] == "available"


def test_zone_mismatch_is_refused_before_starting(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws, zone="us-east-1a")
    vol = volume(aws, zone="us-east-1b")
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"\nvolume_id = "{vol}"\ndevice = "/dev/xvdf"')
    result = warmup.run(cfg, now=1.0)
    error = result.items[0].error
    assert result.exit_code == 1
    assert f"volume {vol} is in us-east-1b but instance {iid} is in us-east-1a" in error
    assert "\n" not in error
    assert state_of(aws, iid) == "stopped"
    assert attachments(aws, vol) == []


def test_zone_mismatch_after_launch_terminates_the_launched_instance(aws, moto_url, fake_ssh, tmp_path):
    tpl = template(aws)  # moto places it in us-east-1a
    vol = volume(aws, zone="us-east-1c")
    cfg = make_config(tmp_path, moto_url, f'launch_template = "{tpl}"\nvolume_id = "{vol}"\ndevice = "/dev/xvdf"')
    result = warmup.run(cfg, now=1.0)
    assert result.exit_code == 1
    error = result.items[0].error
    assert "is in us-east-1c but instance" in error and "terminated" in error
    record = read_record(cfg.state_dir, "offsite")
    assert record.launched_by_us and record.status == "failed"
    assert state_of(aws, record.instance_id) == "terminated"
    assert live_tagged(aws) == []
    assert attachments(aws, vol) == []


def test_volume_in_use_elsewhere_launches_nothing(aws, moto_url, fake_ssh, tmp_path):
    tpl = template(aws)
    other = aws.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    vol = volume(aws)
    aws.attach_volume(VolumeId=vol, InstanceId=other, Device="/dev/xvdg")
    cfg = make_config(tmp_path, moto_url, f'launch_template = "{tpl}"\nvolume_id = "{vol}"\ndevice = "/dev/xvdf"')
    result = warmup.run(cfg, now=1.0)
    assert result.exit_code == 1
    assert f"volume {vol} is attached to {other}" in result.items[0].error
    assert live_tagged(aws) == []


# --- ssh never answers → undo -------------------------------------------------------------------


def test_ssh_never_answering_stops_the_started_instance(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws)
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"\npool = "backup"')
    fake_ssh.refuse()
    result = warmup.run(cfg, now=1.0)
    assert result.exit_code == 1
    error = result.items[0].error
    assert "did not answer within 3 s" in error and f"stopped {iid} again" in error
    assert state_of(aws, iid) == "stopped"
    assert read_record(cfg.state_dir, "offsite").status == "failed"
    # teardown after the failed warmup: nothing left to do, exit 0
    down = teardown.run(cfg, now=2.0)
    assert (down.exit_code, down.items[0].status) == (0, NOTHING_TO_DO)


def test_ssh_never_answering_terminates_the_launched_instance(aws, moto_url, fake_ssh, tmp_path):
    tpl = template(aws)
    cfg = make_config(tmp_path, moto_url, f'launch_template = "{tpl}"')
    fake_ssh.refuse()
    result = warmup.run(cfg, now=1.0)
    assert result.exit_code == 1
    iid = read_record(cfg.state_dir, "offsite").instance_id
    assert state_of(aws, iid) == "terminated"
    assert f"terminated {iid}" in result.items[0].error


def test_a_warmup_that_crashed_is_undone_by_the_next_failing_one(aws, moto_url, fake_ssh, tmp_path):
    tpl = template(aws)
    cfg = make_config(tmp_path, moto_url, f'launch_template = "{tpl}"')
    assert warmup.run(cfg, now=1.0).exit_code == 0
    [iid] = live_tagged(aws)
    record_file = Path(cfg.state_dir) / "warmup-offsite.json"
    data = json.loads(record_file.read_text())
    data["status"] = "warming"  # as if that warmup had been killed half-way
    record_file.write_text(json.dumps(data))
    fake_ssh.refuse()
    assert warmup.run(cfg, now=2.0).exit_code == 1
    assert state_of(aws, iid) == "terminated"


# --- reap -------------------------------------------------------------------------------------


def test_reap_terminates_old_launched_instances_only(aws, moto_url, fake_ssh, tmp_path):
    tpl = template(aws)
    cfg = make_config(tmp_path, moto_url, f'launch_template = "{tpl}"\nmax_uptime = "6h"')
    assert warmup.run(cfg, now=1.0).exit_code == 0
    [iid] = live_tagged(aws)
    launched = aws.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["LaunchTime"].timestamp()
    stranger = aws.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    young = teardown.reap(cfg, now=launched + 3600)
    assert (young.exit_code, [i.status for i in young.items]) == (0, [NOTHING_TO_DO])
    assert state_of(aws, iid) == "running"

    planned = teardown.reap(cfg, now=launched + 7 * 3600, dry_run=True)
    assert [i.status for i in planned.items] == [PLANNED] and state_of(aws, iid) == "running"

    old = teardown.reap(cfg, now=launched + 7 * 3600)
    assert old.exit_code == 0
    assert old.items[0].details["action"] == "terminate" and old.items[0].details["instance_id"] == iid
    assert state_of(aws, iid) == "terminated"
    assert state_of(aws, stranger) == "running"  # not tagged by zfsrep: never touched
    assert read_record(cfg.state_dir, "offsite").status == DOWN


def test_reap_stops_a_started_instance(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws)
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"\nmax_uptime = "1h"')
    assert warmup.run(cfg, now=1.0).exit_code == 0
    launched = aws.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["LaunchTime"].timestamp()
    result = teardown.reap(cfg, now=launched + 2 * 3600)
    assert result.items[0].details["action"] == "stop"
    assert state_of(aws, iid) == "stopped"


# --- errors -----------------------------------------------------------------------------------


def test_unknown_instance_is_one_actionable_line(aws, moto_url, fake_ssh, tmp_path):
    cfg = make_config(tmp_path, moto_url, 'instance_id = "i-0123456789abcdef0"')
    result = warmup.run(cfg, now=1.0)
    assert result.exit_code == 1
    error = result.items[0].error
    assert "i-0123456789abcdef0" in error and REGION in error and "instance_id" in error and "\n" not in error


def test_unreachable_endpoint_is_one_actionable_line(aws, fake_ssh, tmp_path):
    cfg = make_config(tmp_path, "http://127.0.0.1:9", 'instance_id = "i-0123456789abcdef0"')
    result = warmup.run(cfg, now=1.0)
    assert result.exit_code == 1
    assert "cannot reach the EC2 endpoint" in result.items[0].error


def test_no_credentials_is_one_actionable_line(aws, moto_url, fake_ssh, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cfg = make_config(tmp_path, moto_url, 'instance_id = "i-0123456789abcdef0"')
    error = warmup.run(cfg, now=1.0).items[0].error
    assert "no AWS credentials found" in error and "aws-credentials" in error


def test_systemd_credential_file_is_used(aws, moto_url, fake_ssh, tmp_path, monkeypatch):
    iid = stopped_instance(aws)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "aws-credentials").write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    view = Ec2("offsite", REGION, moto_url).instance(iid)
    assert view is not None and view.state == "stopped"


@pytest.mark.parametrize("code, expect", [
    ("InsufficientInstanceCapacity", "no capacity"),
    ("UnauthorizedOperation", "IAM policy"),
    ("IncorrectState", "wrong state"),
    ("VolumeInUse", "detach it there first"),
    ("InvalidVolume.ZoneMismatch", "availability zones"),
    ("SomethingNew", "run it again with -vv"),
])
def test_client_errors_become_one_actionable_line(code, expect):
    error = botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "You are not authorized. Encoded authorization failure message: SECRETBLOB"}},
        "StartInstances",
    )
    result = explain(error, target="offsite", region=REGION, what="start i-1")
    assert isinstance(result, Ec2Error) and result.code == code
    text = str(result)
    assert text.startswith(f"target offsite: cannot start i-1 in {REGION}: {code}")
    assert expect in text and "SECRETBLOB" not in text and "\n" not in text


# --- CLI --------------------------------------------------------------------------------------


def test_cli_json_and_exit_codes(aws, moto_url, fake_ssh, tmp_path):
    iid = stopped_instance(aws)
    cfg = make_config(tmp_path, moto_url, f'instance_id = "{iid}"')
    path = tmp_path / "config.toml"
    path.write_text(f'''
state_dir = "{tmp_path / 'state'}"
lock_dir = "{tmp_path / 'lock'}"
[targets.offsite]
dataset = "backup/hosts/web1"
[targets.offsite.warmup]
type = "ec2"
region = "{REGION}"
endpoint_url = "{moto_url}"
instance_id = "{iid}"
''')
    assert cfg.targets  # the same shape parses
    runner = CliRunner()
    out = runner.invoke(app, ["warmup", "--config", str(path), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["verb"] == "warmup" and data["items"][0]["details"]["instance_id"] == iid
    assert json.loads((tmp_path / "state" / "last-warmup.json").read_text())["exit_code"] == 0

    dry = runner.invoke(app, ["teardown", "--config", str(path), "--dry-run"])
    assert dry.exit_code == 0 and f"stop {iid}" in dry.stdout and state_of(aws, iid) == "running"

    down = runner.invoke(app, ["teardown", "--config", str(path)])
    assert down.exit_code == 0, down.output
    assert f"stopped {iid}" in down.stdout and "was up" in down.stdout
    assert state_of(aws, iid) == "stopped"

    unknown = runner.invoke(app, ["warmup", "--config", str(path), "--target", "nope"])
    assert unknown.exit_code == 2 and "no target named 'nope'" in unknown.stderr
