"""argv builders and parsers for the send/receive data path."""

from __future__ import annotations

import shlex

from hypothesis import given
from hypothesis import strategies as st

from zfsrep.zfs import stream as zs


def test_full_send():
    assert zs.send_argv("tank/a@s1") == ["zfs", "send", "-L", "-c", "tank/a@s1"]


def test_incremental_raw_with_progress():
    assert zs.send_argv("tank/a@s9", base="tank/a@s1", raw=True, progress=True) == [
        "zfs", "send", "-L", "-c", "-w", "-v", "-P", "-I", "tank/a@s1", "tank/a@s9"]


def test_resume_send_carries_only_the_token():
    assert zs.resume_send_argv("1-abc-78-789c", progress=True) == [
        "zfs", "send", "-v", "-P", "-t", "1-abc-78-789c"]
    assert zs.resume_send_argv("tok") == ["zfs", "send", "-t", "tok"]


def test_estimate_is_a_dry_run():
    argv = zs.estimate_argv("tank/a@s2", base="tank/a@s1")
    assert argv[:4] == ["zfs", "send", "-n", "-P"] and argv[-3:] == ["-I", "tank/a@s1", "tank/a@s2"]
    assert zs.resume_probe_argv("tok") == ["zfs", "send", "-n", "-v", "-P", "-t", "tok"]


def test_safe_receive_never_mounts_keeps_resume_state_and_never_forces_by_default():
    argv = zs.recv_argv("backup/tank/a", properties={"canmount": "noauto"})
    assert argv == ["zfs", "receive", "-u", "-s", "-o", "canmount=noauto", "backup/tank/a"]
    assert "-F" not in argv
    assert "-F" in zs.recv_argv("backup/tank/a", force=True)


def test_receive_of_a_volume_drops_mount_properties():
    argv = zs.recv_argv("backup/vol", properties={"canmount": "noauto", "mountpoint": "none",
                                                  "readonly": "on"}, filesystem=False)
    assert argv == ["zfs", "receive", "-u", "-s", "-o", "readonly=on", "backup/vol"]


def test_abort_and_placeholder():
    assert zs.recv_abort_argv("backup/t a") == ["zfs", "receive", "-A", "backup/t a"]
    assert zs.create_placeholder_argv("backup/tank") == ["zfs", "create", "-o", "canmount=off", "backup/tank"]


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=40))
def test_names_stay_one_argument_even_through_a_remote_shell(name):
    dataset = f"backup/{name}"
    argv = zs.recv_argv(dataset)
    assert argv[-1] == dataset
    assert shlex.split(shlex.join(argv)) == argv  # what ssh's remote shell will see


def test_parse_estimate_and_progress():
    out = "full\ttank/a@s1\t1234567\nsize\t1234567\n"
    assert zs.parse_estimate(out) == 1234567
    assert zs.parse_estimate("incremental\ts1\ttank/a@s3\t99\nincremental\ts3\ttank/a@s4\t1\nsize\t100\n") == 100
    assert zs.parse_estimate("nothing here") is None
    assert zs.parse_progress_line("21:15:02\t73400320\ttank/my data@s1\n") == (73400320, "tank/my data@s1")
    assert zs.parse_progress_line("full\ttank/a@s1\t5") is None
    assert zs.parse_progress_line("warning: cannot send") is None


def test_parse_token_contents():
    text = (
        "resume token contents:\nnvlist version: 0\n\tobject = 0x6\n\toffset = 0x2a00000\n"
        "\tbytes = 0x2a1c4d8\n\ttoguid = 0x7c2b7e8f1d5a3b21\n\ttoname = tank/my data@zfsrep_daily_x\n"
        "full\ttank/my data@zfsrep_daily_x\t1000\nsize\t1000\n"
    )
    c = zs.parse_token_contents(text)
    assert c.toname == "tank/my data@zfsrep_daily_x"
    assert c.toguid == 0x7C2B7E8F1D5A3B21
    assert c.bytes_done == 0x2A1C4D8
    assert c.fromguid is None
