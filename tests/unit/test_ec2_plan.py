"""Pure warmup/teardown/reap plans (zfsrep.core.warmup_plan) and the warmup state file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfsrep.config.model import TargetConfig
from zfsrep.core.warmup_plan import (
    Attachment, InstanceView, PlanError, VolumeView, backoff_delays, pick_instance, plan_instance, plan_reap,
    plan_teardown, plan_volume,
)
from zfsrep.targets.access import ssh_host
from zfsrep.targets.record import UP, WarmupRecord, read_record, target_host, write_record


def inst(state="running", zone="eu-central-1a", iid="i-1", launched=0.0, **tags) -> InstanceView:
    return InstanceView(iid, state, zone, launched, {"public_ip": "1.2.3.4"}, dict(tags))


def kinds(steps):
    return [s.kind for s in steps]


def test_instance_plans():
    assert kinds(plan_instance("t", "r", instance=inst("stopped"), instance_id="i-1", launch_template=None)) == ["start", "wait-running"]
    assert kinds(plan_instance("t", "r", instance=inst("stopping"), instance_id="i-1", launch_template=None)) == [
        "wait-stopped", "start", "wait-running"]
    running = plan_instance("t", "r", instance=inst("running"), instance_id="i-1", launch_template=None)
    assert kinds(running) == ["wait-running"] and not running[0].changes
    assert kinds(plan_instance("t", "r", instance=None, instance_id=None, launch_template="tpl")) == ["launch", "wait-running"]
    assert kinds(plan_instance("t", "r", instance=inst("terminated"), instance_id=None, launch_template="tpl"))[0] == "launch"
    with pytest.raises(PlanError, match="instance i-9 in r is not found"):
        plan_instance("t", "r", instance=None, instance_id="i-9", launch_template=None)


def test_volume_plans():
    vol = VolumeView("vol-1", "eu-central-1a", "available")
    assert kinds(plan_volume("t", volume=vol, volume_id="vol-1", device="/dev/xvdf", instance=inst())) == ["attach", "wait-attached"]
    assert kinds(plan_volume("t", volume=vol, volume_id="vol-1", device="/dev/xvdf", instance=None))[0] == "check-zone"
    attached = VolumeView("vol-1", "eu-central-1a", "in-use", (Attachment("i-1", "/dev/xvdf", "attached"),))
    steps = plan_volume("t", volume=attached, volume_id="vol-1", device="/dev/xvdf", instance=inst())
    assert kinds(steps) == ["wait-attached"] and not steps[0].changes
    with pytest.raises(PlanError, match="vol-1 is in eu-central-1a but instance i-1 is in eu-central-1b"):
        plan_volume("t", volume=vol, volume_id="vol-1", device="/dev/xvdf", instance=inst(zone="eu-central-1b"))
    elsewhere = VolumeView("vol-1", "eu-central-1a", "in-use", (Attachment("i-other", "/dev/sdg", "attached"),))
    with pytest.raises(PlanError, match="attached to i-other as /dev/sdg"):
        plan_volume("t", volume=elsewhere, volume_id="vol-1", device="/dev/xvdf", instance=None)
    with pytest.raises(PlanError, match="vol-1 is not found"):
        plan_volume("t", volume=None, volume_id="vol-1", device="/dev/xvdf", instance=inst())
    assert plan_volume("t", volume=None, volume_id=None, device=None, instance=inst()) == []


def test_pick_instance_prefers_the_recorded_then_the_most_alive():
    a, b, c = inst("stopped", iid="i-a", launched=5), inst("running", iid="i-b", launched=1), inst("terminated", iid="i-c")
    assert pick_instance([a, b, c], "i-a").id == "i-a"
    assert pick_instance([a, b, c], "i-c").id == "i-b"
    assert pick_instance([c], None) is None


def test_teardown_plans():
    mine = {"zfsrep:launched": "true"}
    assert kinds(plan_teardown("t", after="terminate", instance=inst(**mine), launched_by_us=False, pool="backup",
                               volume=None, detach_volume=False)) == ["export", "terminate", "wait-gone"]
    # never terminate what zfsrep did not launch: stop instead
    assert kinds(plan_teardown("t", after="terminate", instance=inst(), launched_by_us=False, pool=None,
                               volume=None, detach_volume=False)) == ["stop", "wait-stopped"]
    vol = VolumeView("vol-1", "eu-central-1a", "in-use", (Attachment("i-1", "/dev/xvdf", "attached"),))
    assert kinds(plan_teardown("t", after="stop", instance=inst("stopped"), launched_by_us=False, pool="backup",
                               volume=vol, detach_volume=True)) == ["detach", "wait-detached"]
    assert kinds(plan_teardown("t", after="keep", instance=inst(), launched_by_us=True, pool="backup",
                               volume=None, detach_volume=False)) == ["export"]
    assert plan_teardown("t", after="stop", instance=None, launched_by_us=False, pool="backup",
                         volume=None, detach_volume=True) == []


def test_reap_plan():
    old = inst(iid="i-old", launched=0, **{"zfsrep:target": "t", "zfsrep:launched": "true"})
    young = inst(iid="i-young", launched=9000, **{"zfsrep:target": "t", "zfsrep:launched": "true"})
    started = inst(iid="i-started", launched=0, **{"zfsrep:target": "t"})
    other = inst(iid="i-other", launched=0, **{"zfsrep:target": "u"})
    reaps = plan_reap("t", [old, young, started, other, inst("stopped", iid="i-s", **{"zfsrep:target": "t"})],
                      after="terminate", max_uptime=3600, now=10000)
    assert [(r.instance.id, r.action, r.uptime) for r in reaps] == [("i-old", "terminate", 10000), ("i-started", "stop", 10000)]
    assert plan_reap("t", [old], after="keep", max_uptime=0, now=10000) == []


@given(st.integers(min_value=1, max_value=60))
def test_backoff_grows_and_is_capped(n):
    gen = backoff_delays(first=1.0, cap=10.0)
    delays = [next(gen) for _ in range(n)]
    assert delays == sorted(delays) and max(delays) <= 10.0 and delays[0] == 1.0


def test_state_file_roundtrip_and_ssh_host(tmp_path):
    target = TargetConfig(name="off site", host=None, dataset="backup/x")
    assert ssh_host(tmp_path, target) is None
    write_record(tmp_path, WarmupRecord(target="off site", kind="ec2", status="warming", address="1.2.3.4"))
    assert target_host(tmp_path, "off site") is None  # not up yet
    record = read_record(tmp_path, "off site")
    record.status = UP
    write_record(tmp_path, record)
    assert ssh_host(tmp_path, target) == "1.2.3.4"
    assert ssh_host(tmp_path, TargetConfig(name="off site", host="backup.lan", dataset="backup/x")) == "backup.lan"
    assert (tmp_path / "warmup-off_site.json").exists()
