import socket

import pytest

from zfsrep.config.load import parse_config
from zfsrep.errors import ZfsrepError
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
