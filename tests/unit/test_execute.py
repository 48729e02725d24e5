import pytest

from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.execute import Runner


def test_run_local_returns_output_and_counts_calls():
    runner = Runner()
    result = runner.run(["printf", "%s|", "a b", "-dash"])
    assert result.ok and result.stdout == "a b|-dash|"
    assert runner.calls == 1


def test_run_failure_raises_with_last_stderr_line():
    with pytest.raises(CommandError) as err:
        Runner(host="backup").run(["sh", "-c", "echo first >&2; echo 'dataset does not exist' >&2; exit 1"])
    assert err.value.returncode == 1
    assert str(err.value) == "sh on backup failed: dataset does not exist"


def test_run_unchecked_returns_status():
    assert Runner().run(["sh", "-c", "exit 3"], check=False).returncode == 3


def test_prefix_passes_arguments_through_a_shell_unchanged():
    # A remote side is a shell reading one word (as ssh hands it on); `sh -c` plays that part.
    runner = Runner(prefix=("sh", "-c"))
    names = ["tank/with space", "tank/-dash", "tank/$(touch /tmp/pwned)", "a'b\"c"]
    result = runner.run(["printf", "%s\\n", *names])
    assert result.stdout.splitlines() == names


def test_missing_command_is_one_actionable_line():
    with pytest.raises(ZfsrepError, match="command not found: 'no-such-zfsrep-cmd'"):
        Runner().run(["no-such-zfsrep-cmd"])


def test_input_is_fed_to_stdin():
    assert Runner().run(["cat"], input="hello").stdout == "hello"
