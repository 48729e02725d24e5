"""SSH readiness: how probes are built and judged, the polling loop, and a real ssh that finds
nothing listening. Real host keys (right / wrong pinned key) are tested against the lab's
target VM in tests/integration/test_warmup_lab.py."""

from __future__ import annotations

import socket
import time

import pytest

from zfsrep.config.model import TargetConfig
from zfsrep.execute import CommandResult, Runner
from zfsrep.targets.readiness import (
    AUTH, DOWN, KEY_CHANGED, KEY_UNKNOWN, READY, HostKeyError, SshAuthError, SshTimeout, classify, probe_argv,
    wait_for_ssh,
)

TARGET = TargetConfig(name="offsite", host=None, dataset="backup/web1", known_hosts="/etc/zfsrep/known_hosts",
                      identity_file="/run/credentials/zfsrep.service/ssh-key", port=2222,
                      ssh_options=("StrictHostKeyChecking=no", "ConnectTimeout=99"))

CHANGED = """@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.
Host key verification failed.
"""
UNKNOWN = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n"


@pytest.mark.parametrize("code, stderr, kind", [
    (0, "", READY),
    (255, CHANGED, KEY_CHANGED),
    (255, UNKNOWN, KEY_UNKNOWN),
    (255, "root@1.2.3.4: Permission denied (publickey).\n", AUTH),
    (1, "This account is currently not available.\n", AUTH),
    (255, "ssh: connect to host 1.2.3.4 port 22: Connection refused\n", DOWN),
    (255, "ssh: connect to host 1.2.3.4 port 22: Connection timed out\n", DOWN),
    (255, "kex_exchange_identification: read: Connection reset by peer\n", DOWN),
    (255, "ssh: Could not resolve hostname ec2-1-2-3-4.compute.amazonaws.com: Name or service not known\n", DOWN),
    (255, "", DOWN),
])
def test_classify(code, stderr, kind):
    assert classify(code, stderr) == kind


def test_probe_pins_the_host_key_and_overrides_the_targets_own_options():
    argv = probe_argv(TARGET, "10.0.0.5", connect_timeout=7)
    assert argv[0] == "ssh" and argv[-3:] == ["--", "10.0.0.5", "true"]
    joined = " ".join(argv)
    # ssh takes the first value of an option: ours must come before the target's own
    assert joined.index("StrictHostKeyChecking=yes") < joined.index("StrictHostKeyChecking=no")
    assert joined.index("ConnectTimeout=7") < joined.index("ConnectTimeout=99")
    assert "BatchMode=yes" in argv and "UserKnownHostsFile=/etc/zfsrep/known_hosts" in argv
    assert "ControlPath=none" in argv and ["-p", "2222"] == argv[argv.index("-p"):argv.index("-p") + 2]


class ScriptedRunner(Runner):
    """Answers probes from a script of (exit code, stderr); records how many were run."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)

    def run(self, argv, *, input=None, check=True, timeout=None):
        self.calls += 1
        code, stderr = self.answers.pop(0)
        return CommandResult(tuple(argv), code, "", stderr)


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_polls_with_backoff_until_ssh_answers():
    t = FakeTime()
    refused = (255, "ssh: connect to host h port 2222: Connection refused")
    runner = ScriptedRunner([refused] * 5 + [(0, "")])
    ready = wait_for_ssh(TARGET, "h", timeout=300, runner=runner, clock=t.clock, sleep=t.sleep)
    assert (ready.attempts, runner.calls) == (6, 6)
    assert t.sleeps == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_wrong_host_key_fails_at_once_and_says_so():
    t = FakeTime()
    runner = ScriptedRunner([(255, CHANGED)] * 3)
    with pytest.raises(HostKeyError) as e:
        wait_for_ssh(TARGET, "h", timeout=300, runner=runner, clock=t.clock, sleep=t.sleep)
    assert runner.calls == 1 and t.sleeps == []
    assert "differs from the one pinned in /etc/zfsrep/known_hosts" in str(e.value)


def test_unpinned_host_key_fails_at_once():
    runner = ScriptedRunner([(255, UNKNOWN)])
    with pytest.raises(HostKeyError, match=r"no host key for \[h\]:2222 is pinned in /etc/zfsrep/known_hosts"):
        wait_for_ssh(TARGET, "h", timeout=300, runner=runner, sleep=lambda s: None)


def test_refused_login_fails_at_once():
    runner = ScriptedRunner([(255, "root@h: Permission denied (publickey).")])
    with pytest.raises(SshAuthError, match="authorize /run/credentials/zfsrep.service/ssh-key for root"):
        wait_for_ssh(TARGET, "h", timeout=300, runner=runner, sleep=lambda s: None)


def test_timeout_names_the_last_answer_and_never_oversleeps():
    t = FakeTime()
    runner = ScriptedRunner([(255, "ssh: connect to host h port 2222: Connection timed out")] * 50)
    with pytest.raises(SshTimeout) as e:
        wait_for_ssh(TARGET, "h", timeout=20, runner=runner, clock=t.clock, sleep=t.sleep)
    assert t.now == 20.0  # slept up to the deadline, not past it
    assert "did not answer within 20 s" in str(e.value) and "Connection timed out" in str(e.value)


def test_real_ssh_to_a_closed_port_times_out_cleanly():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = TargetConfig(name="lab", host="127.0.0.1", dataset="backup/x", port=port, known_hosts="/dev/null")
    started = time.monotonic()
    with pytest.raises(SshTimeout) as e:
        wait_for_ssh(target, "127.0.0.1", timeout=3)
    assert time.monotonic() - started < 20
    assert "Connection refused" in str(e.value) and f"port {port}" in str(e.value)
