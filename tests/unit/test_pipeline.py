"""The pipeline plumbing with harmless local programs standing in for zfs send / ssh / recv.

This proves the bytes go process to process through OS pipes (not through Python) and that
every stage's failure is collected and attributed; it proves nothing about ZFS (the lab does).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from zfsrep.pipeline import PipelineResult, Stage, StageResult, run_pipeline

FAKE_SEND = textwrap.dedent("""
    import os, sys, time
    total, chunk = int(sys.argv[1]), 65536
    mode = sys.argv[2] if len(sys.argv) > 2 else ""
    sys.stderr.write(f"full\\ttank/a@s1\\t{total}\\nsize\\t{total}\\n"); sys.stderr.flush()
    sent, seed = 0, 7
    out = sys.stdout.buffer
    try:
        while sent < total:
            n = min(chunk, total - sent)
            block = bytes((seed + sent + i) % 251 for i in range(n))
            out.write(block); out.flush()
            sent += n
            sys.stderr.write(f"12:00:00\\t{sent}\\ttank/a@s1\\n"); sys.stderr.flush()
            if mode == "die-half" and sent >= total // 2:
                os.kill(os.getpid(), 9)
    except BrokenPipeError:
        sys.stderr.write("warning: cannot send 'tank/a@s1': Broken pipe\\n")
        sys.exit(1)
""")


def expected_bytes(total: int) -> bytes:
    out = bytearray()
    sent = 0
    while sent < total:
        n = min(65536, total - sent)
        out += bytes((7 + sent + i) % 251 for i in range(n))
        sent += n
    return bytes(out)


@pytest.fixture
def fake_send(tmp_path: Path):
    script = tmp_path / "fake_send.py"
    script.write_text(FAKE_SEND)
    return lambda *args: Stage("zfs send", [sys.executable, str(script), *map(str, args)])


def pipe_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                n += 1
        except OSError:
            pass
    return n


def test_bytes_flow_through_every_stage_unchanged(fake_send, tmp_path):
    total = 1_000_000
    sink = tmp_path / "received"
    seen: list[tuple[int, int | None]] = []
    before = pipe_fds()
    parent_pipes: list[int] = []

    def progress(done, estimated):
        seen.append((done, estimated))
        parent_pipes.append(pipe_fds() - before)

    result = run_pipeline([
        fake_send(total),
        Stage("zstd", ["zstd", "-q", "-c", "-1"]),
        Stage("receive", ["sh", "-c", 'zstd -q -d -c > "$1"', "sh", str(sink)]),
    ], progress=progress)
    assert result.ok, [s.describe() for s in result.stages]
    assert hashlib.sha256(sink.read_bytes()).digest() == hashlib.sha256(expected_bytes(total)).digest()
    # progress came from the sender's stderr and the estimate from its `size` line
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert result.bytes == total and result.estimated == total
    # while the stream ran, this process held only the sender's stderr pipe: the stream's
    # pipes were handed to the children, never read here
    assert parent_pipes and max(parent_pipes) <= 1
    assert [s.returncode for s in result.stages] == [0, 0, 0]


def test_failing_middle_stage_is_the_cause_and_the_sender_is_a_victim(fake_send):
    result = run_pipeline([
        fake_send(5_000_000),
        Stage("mbuffer", ["sh", "-c", "head -c 1000 >/dev/null; echo 'mbuffer: out of memory' >&2; exit 3"]),
        Stage("ssh to backup", ["cat"]),
    ])
    assert not result.ok
    sender, middle, last = result.stages
    assert sender.returncode != 0 and sender.broken_pipe
    assert middle.returncode == 3
    assert result.failure is middle
    assert result.failure.describe() == "mbuffer failed (exit status 3): mbuffer: out of memory"


def test_killed_sender_is_the_cause_even_though_the_receiver_fails_too(fake_send):
    result = run_pipeline([
        fake_send(2_000_000, "die-half"),
        Stage("ssh to backup", ["sh", "-c",
                                "n=$(wc -c); echo \"cannot receive: incomplete stream ($n bytes)\" >&2; exit 1"]),
    ])
    sender, receiver = result.stages
    assert sender.returncode == -signal.SIGKILL and sender.signal_name == "SIGKILL"
    assert receiver.returncode == 1 and "incomplete stream" in receiver.stderr
    assert result.failure is sender
    assert "killed by SIGKILL" in result.failure.describe()
    assert 0 < result.bytes < 2_000_000  # partial count, not the estimate


def test_receiver_failure_is_reported_with_its_stderr(fake_send):
    result = run_pipeline([
        fake_send(3_000_000),
        Stage("ssh to backup", ["sh", "-c",
                                "echo 'cannot receive incremental stream: destination backup/tank/a has been modified' >&2; exit 1"]),
    ])
    assert result.failure is result.stages[1]
    assert "has been modified" in result.failure.describe()
    assert result.stages[0].broken_pipe


def test_missing_program_raises_and_stops_what_started(fake_send):
    with pytest.raises(FileNotFoundError):
        run_pipeline([fake_send(10_000_000), Stage("nope", ["/nonexistent/zstd-xyz"])])


def test_receiver_stdout_is_kept_with_its_stderr(fake_send):
    result = run_pipeline([fake_send(1000), Stage("recv", ["sh", "-c", "cat >/dev/null; echo done-ok"])])
    assert result.ok and "done-ok" in result.stages[1].stderr


def test_progress_of_an_incremental_stream_sums_each_snapshots_count():
    import io

    from zfsrep.pipeline import _SendWatcher

    text = ("incremental\ts1\ttank/a@s2\t300\nincremental\ts2\ttank/a@s3\t500\nsize\t800\n"
            "12:00:00\t100\ttank/a@s2\n12:00:01\t300\ttank/a@s2\n"
            "12:00:02\t200\ttank/a@s3\n12:00:03\t480\ttank/a@s3\nwarning: something odd\n")
    seen = []
    w = _SendWatcher(io.BytesIO(text.encode()), lambda d, e: seen.append((d, e)))
    w.run()
    assert w.bytes == 780 and w.estimated == 800
    assert seen[-1] == (780, 800)
    assert list(w.lines) == ["warning: something odd"]


def test_replication_stages_compose_the_data_path():
    import shlex

    from zfsrep.pipeline import buffer_stage, replication_stages

    send = ["zfs", "send", "-L", "-c", "tank/my data@s1"]
    recv = ["zfs", "receive", "-u", "-s", "backup/tank/my data"]
    prefix = ["ssh", "-o", "BatchMode=yes", "--", "backup.example"]
    buf = buffer_stage("256M", "20M", have=lambda tool: tool == "mbuffer")
    stages = replication_stages(send, recv, ssh_prefix=prefix, destination="backup.example",
                                compress="zstd", buffer=buf)
    assert [s.name for s in stages] == ["zfs send", "zstd", "mbuffer", "ssh to backup.example"]
    assert stages[2].argv == ["mbuffer", "-q", "-s", "128k", "-m", "256M", "-r", "20M"]
    remote = stages[-1].argv[-1]
    assert stages[-1].argv[:-1] == prefix
    assert remote == "zstd -q -d -c | zfs receive -u -s 'backup/tank/my data'"
    left, right = remote.split(" | ")
    assert shlex.split(right) == recv


@pytest.mark.parametrize("compress,remote", [
    ("none", ["mbuffer -q -s 128k -m 64M", "zfs receive -u -s backup/tank/a"]),
    ("lz4", ["mbuffer -q -s 128k -m 64M", "lz4 -q -d -c", "zfs receive -u -s backup/tank/a"]),
])
def test_mbuffer_runs_on_both_ends_and_limits_the_rate_only_on_the_sender(compress, remote):
    from zfsrep.pipeline import buffer_stage, replication_stages

    buf = buffer_stage("64M", "5M", have=lambda tool: tool == "mbuffer")
    stages = replication_stages(["zfs", "send", "tank/a@s1"], ["zfs", "receive", "-u", "-s", "backup/tank/a"],
                                ssh_prefix=["ssh", "--", "b"], destination="b", compress=compress,
                                buffer=buf, receive_buffer="64M")
    assert stages[-2].argv == ["mbuffer", "-q", "-s", "128k", "-m", "64M", "-r", "5M"]
    assert stages[-1].argv[-1].split(" | ") == remote


def test_rate_limit_alone_buffers_only_on_the_sender():
    from zfsrep.pipeline import buffer_stage, replication_stages

    stages = replication_stages(["zfs", "send", "tank/a@s1"], ["zfs", "receive", "-u", "-s", "backup/tank/a"],
                                ssh_prefix=["ssh", "--", "b"], destination="b",
                                buffer=buffer_stage(None, "5M", have=lambda tool: True))
    assert [s.name for s in stages] == ["zfs send", "mbuffer", "ssh to b"]
    assert stages[-1].argv[-1] == "zfs receive -u -s backup/tank/a"


def test_a_far_side_broken_pipe_is_not_the_line_that_says_why():
    from zfsrep.pipeline import StageResult

    stderr = ("cannot receive incremental stream: destination backup/a has been modified\n"
              "mbuffer: error: outputThread: error writing to <stdout> at offset 0x20000: Broken pipe\n"
              "mbuffer: warning: error during output to <stdout>: Broken pipe\n")
    assert StageResult("ssh to b", [], 1, stderr).last_line().startswith("cannot receive incremental")
    assert StageResult("mbuffer", [], 1, "mbuffer: error: Broken pipe").last_line() == "mbuffer: error: Broken pipe"


def test_rate_limit_falls_back_to_pv_and_says_what_is_missing():
    from zfsrep.pipeline import buffer_stage

    assert buffer_stage(None, None, have=lambda t: False) is None
    assert buffer_stage(None, "5M", have=lambda t: t == "pv").argv == ["pv", "-q", "-L", "5M"]
    with pytest.raises(LookupError, match="mbuffer or pv"):
        buffer_stage(None, "5M", have=lambda t: False)
    with pytest.raises(LookupError, match="^mbuffer$"):
        buffer_stage("1G", None, have=lambda t: t == "pv")


@pytest.mark.parametrize("recv_stderr,fix", [
    ("cannot receive new filesystem stream: checksum mismatch or incomplete stream.\n"
     "Partially received snapshot is saved.\nA resuming stream can be generated on the sending "
     "system by running:\n    zfs send -t 1-abc", "rerun: the partial receive is kept and the next run resumes it"),
    ("cannot receive new filesystem stream: incompatible embedded data stream feature with "
     "encrypted receive.", "zfs on b refused the stream; fix what it says, then rerun"),
    ("cannot receive incremental stream: destination backup/a has been modified\nsince most "
     "recent snapshot", "backup/a on b was changed after its newest snapshot; set "
     "targets.t.force = true to roll it back on receive, or run `zfs rollback` on it"),
    ("", "rerun: a partial receive, if any, is kept and the next run resumes it"),
])
def test_the_fix_a_failed_transfer_names_follows_what_zfs_said(recv_stderr, fix):
    """A refused stream is not "resumed by the next run": only a receive that says it saved
    its partial state is."""
    from zfsrep.actions.replicate import pipeline_fix

    result = PipelineResult([StageResult("zfs send", ["zfs", "send"], -13),
                             StageResult("ssh to b", ["ssh", "b"], 1, recv_stderr)], 1.0)
    assert pipeline_fix(result, tds="backup/a", host="b", target="t") == fix
