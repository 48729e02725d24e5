import socket

import pytest

from zfsrep.config.load import parse_config
from zfsrep.errors import ZfsrepError
from zfsrep import ssh as ssh_module
from zfsrep.ssh import SshSession, ssh_failure_message, ssh_options


def target(extra=""):
    cfg = parse_config(
        f'[targets.backup]\nhost = "backup.example.org"\ndataset = "backup/web1"\n{extra}'
    )
    return cfg.targets["backup"]


def test_options_pin_host_keys_and_never_prompt():
    argv = ssh_options(target('known_hosts = "/etc/zfsrep/known_hosts"\nidentity_file = "/run/k"\nport = 2222'))
    joined = " ".join(argv)
    assert "BatchMode=yes" in joined and "StrictHostKeyChecking=yes" in joined
    assert "UserKnownHostsFile=/etc/zfsrep/known_hosts" in joined
    assert argv[argv.index("-i") + 1] == "/run/k"
    assert argv[argv.index("-p") + 1] == "2222"


def test_user_options_come_first_so_they_win_and_destination_after_double_dash():
    session = SshSession(target('ssh_options = ["Ciphers=chacha20-poly1305@openssh.com"]'), multiplex=False)
    argv = session.argv_prefix
    assert argv[-2:] == ["--", "backup.example.org"]
    assert argv[1:3] == ["-o", "Ciphers=chacha20-poly1305@openssh.com"]


def test_host_override_for_warmed_up_targets():
    assert SshSession(target(), host="203.0.113.7", multiplex=False).argv_prefix[-1] == "203.0.113.7"


def test_unreachable_target_fails_with_one_actionable_line():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = target(f'port = {port}\nssh_options = ["ConnectTimeout=5"]')
    session = SshSession(t, host="127.0.0.1")
    with pytest.raises(ZfsrepError) as err:
        session.start(timeout=20)
    session.close()
    message = str(err.value)
    assert message.startswith(f"target backup: cannot ssh to root@127.0.0.1:{port}:")
    assert "check that the host is up" in message
    assert "\n" not in message


def test_failure_messages_name_the_fix():
    t = target('known_hosts = "/etc/zfsrep/known_hosts"')
    assert "pin the target's host key in /etc/zfsrep/known_hosts" in ssh_failure_message(
        t, "backup", "Host key verification failed."
    )
    assert "authorize the key" in ssh_failure_message(t, "backup", "root@backup: Permission denied (publickey).")


def test_a_begun_handshake_fails_at_start_with_the_same_line_and_close_reaps_it():
    """`begin` only starts ssh; `start` waits and reports. Closing a session that was begun and
    never started waits for that ssh and leaves nothing behind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = target(f'port = {port}\nssh_options = ["ConnectTimeout=5"]')
    session = SshSession(t, host="127.0.0.1")
    session.begin()
    proc = session._pending[0]
    session.begin()  # idempotent: still the same ssh
    assert session._pending[0] is proc
    with pytest.raises(ZfsrepError) as err:
        session.start(timeout=20)
    assert str(err.value).startswith(f"target backup: cannot ssh to root@127.0.0.1:{port}:")
    assert proc.returncode == 255
    session.close()

    other = SshSession(t, host="127.0.0.1")
    other.begin()
    proc = other._pending[0]
    other.close()
    assert proc.returncode is not None and other._pending is None


def test_a_master_begun_long_before_its_turn_is_checked_and_opened_again_if_gone(tmp_path, monkeypatch):
    """A target waits its turn while another target's transfer runs; its master, without
    clients all that time, may have exited (ControlPersist). `start` then opens a new one."""
    log = tmp_path / "calls"
    fake = tmp_path / "ssh"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n'
                    'case " $* " in *" -O check "*) exit 255;; esac\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    session = SshSession(target(), host="backup.example.org")
    session.begin()
    proc, err, began = session._pending
    session._pending = (proc, err, began - ssh_module.PERSIST_S)  # as if begun 10 min ago
    session.start()
    calls = log.read_text().splitlines()
    assert [("-f" in c.split(), "check" in c.split()) for c in calls] == [
        (True, False), (False, True), (True, False)]
    session.start()  # started: nothing more
    assert len(log.read_text().splitlines()) == 3
    session.close()


def test_a_master_begun_just_now_is_not_checked(tmp_path, monkeypatch):
    log = tmp_path / "calls"
    fake = tmp_path / "ssh"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    session = SshSession(target(), host="backup.example.org")
    session.begin()
    session.start()
    assert [c for c in log.read_text().splitlines() if "check" in c.split()] == []
    session.close()
    assert "exit" in log.read_text().splitlines()[-1].split()
