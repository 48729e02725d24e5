"""Host keys pinned under a name (`targets.<n>.host_key_alias`, ssh's HostKeyAlias): a target
whose address a warmup supplies (an EC2 launch, a command that prints it) is verified against the
key pinned under the target's name, whatever the address is this time. The real ssh against a
real sshd: tests/integration/test_warmup_lab.py."""

from __future__ import annotations

import pytest

from zfsrep.config.load import parse_config
from zfsrep.errors import ConfigError, ZfsrepError
from zfsrep.execute import CommandResult
from zfsrep.ssh import SshSession, ssh_options
from zfsrep.targets.command import printed_address
from zfsrep.targets.readiness import HostKeyError, wait_for_ssh


def _target(body: str, name: str = "offsite"):
    return parse_config(f'[targets.{name}]\ndataset = "backup/web1"\n{body}').targets[name]


def _option(argv: list[str], key: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-o" and argv[i + 1].startswith(key + "=")]


def test_a_target_with_a_host_looks_its_key_up_under_the_host():
    assert _option(ssh_options(_target('host = "backup.example.org"')), "HostKeyAlias") == []


def test_a_target_whose_warmup_supplies_the_address_pins_its_key_under_its_name():
    for warmup in ('{ type = "command", command = ["wake-backup"] }',
                   '{ type = "ec2", region = "eu-central-1", instance_id = "i-0123456789abcdef0" }'):
        target = _target(f"warmup = {warmup}")
        assert target.host is None
        argv = SshSession(target, host="203.0.113.7", multiplex=False).argv_prefix
        assert _option(argv, "HostKeyAlias") == ["HostKeyAlias=offsite"]
        assert argv[-2:] == ["--", "203.0.113.7"]


def test_an_explicit_alias_is_used_and_the_users_own_option_still_wins():
    target = _target('host = "10.0.0.5"\nhost_key_alias = "backup"')
    assert _option(ssh_options(target), "HostKeyAlias") == ["HostKeyAlias=backup"]
    theirs = _target('host = "10.0.0.5"\nhost_key_alias = "backup"\nssh_options = ["HostKeyAlias=mine"]')
    # ssh takes the first value given: the user's
    assert _option(ssh_options(theirs), "HostKeyAlias")[0] == "HostKeyAlias=mine"


def test_a_target_without_host_or_warmup_is_a_config_error_naming_both_ways():
    with pytest.raises(ConfigError) as e:
        parse_config('[targets.offsite]\ndataset = "backup/web1"\n')
    assert "targets.offsite.host" in str(e.value)
    assert "a command that prints it" in str(e.value)


def test_the_address_is_the_last_line_the_command_printed():
    target = _target('warmup = { type = "command", command = ["wake"] }')
    assert printed_address(target, ("wake",), "waking backup...\nup after 12 s\n\n192.0.2.10\n") == "192.0.2.10"


@pytest.mark.parametrize("output", ["", "\n\n", "booted at 10.0.0.5 after 3 s\n", "-oProxyCommand=x\n"])
def test_output_that_is_no_address_fails_with_one_line_naming_the_fix(output):
    target = _target('warmup = { type = "command", command = ["wake"] }')
    with pytest.raises(ZfsrepError) as e:
        printed_address(target, ("wake",), output)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("target offsite: warmup.command `wake` printed")
    assert "set targets.offsite.host" in message


class _Answers:
    def __init__(self, stderr: str):
        self.stderr = stderr

    def run(self, argv, **_):
        return CommandResult(argv=list(argv), returncode=255, stdout="", stderr=self.stderr)


def test_an_unpinned_key_names_the_alias_it_was_looked_up_under():
    target = _target('warmup = { type = "command", command = ["wake"] }\nknown_hosts = "/etc/zfsrep/known_hosts"')
    stderr = "No ED25519 host key is known for offsite and you have requested strict checking.\nHost key verification failed.\n"
    with pytest.raises(HostKeyError) as e:
        wait_for_ssh(target, "192.0.2.10", timeout=5, runner=_Answers(stderr), sleep=lambda _: None)
    assert "no host key for offsite is pinned in /etc/zfsrep/known_hosts" in str(e.value)
    assert "`offsite <key type> <key>`" in str(e.value)
