"""`targets.serve` and `zfsrep serve`: refusals are one stderr line, exit 77 and a journal entry;
an allowed command is exec'd; an allowed pipeline runs with OS pipes, ssh's stdin in, stdout out."""

from __future__ import annotations

import os
import subprocess
import sys
import syslog
from pathlib import Path

import pytest
from typer.testing import CliRunner

import zfsrep

from zfsrep.errors import EXIT_REFUSED
from zfsrep.pipeline import run_passed_through
from zfsrep.targets import serve

ROOT = "backup/hosts/web1"


class Recorder:
    def __init__(self):
        self.logged: list[tuple[int, str]] = []
        self.execs: list[list[str]] = []
        self.pipes: list[list[list[str]]] = []

    def log(self, priority, message):
        self.logged.append((priority, message))

    def execvp(self, program, argv):
        self.execs.append(argv)

    def pipe(self, stages):
        self.pipes.append([list(s) for s in stages])
        return 0


def serve_with(command, rec, **kw):
    env = {"SSH_CONNECTION": "192.0.2.7 5555 192.0.2.8 22", "PATH": "/usr/bin:/bin"}
    return serve.run(command, roots=[ROOT], environ=env, log=rec.log, execvp=rec.execvp, pipe=rec.pipe, **kw)


def test_refusal_is_one_line_exit_77_and_a_journal_warning(capsys):
    rec = Recorder()
    code = serve_with(f"zfs destroy -r {ROOT}\nreboot", rec)
    assert code == EXIT_REFUSED == 77
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("zfsrep serve: refused: shell syntax '\\n' is not accepted (serve runs no shell): "
                          f"zfs destroy -r {ROOT}\\nreboot")
    assert rec.logged == [(syslog.LOG_WARNING, err.strip() + " (from 192.0.2.7)")]
    assert not rec.execs and not rec.pipes


def test_refused_destroy_names_the_verb(capsys):
    rec = Recorder()
    assert serve_with(f"zfs destroy -r {ROOT}", rec) == EXIT_REFUSED
    assert "zfs destroy is not served" in capsys.readouterr().err


def test_single_command_is_execd_with_sbin_on_path(capsys):
    rec = Recorder()
    env = {"PATH": "/usr/bin:/bin"}
    code = serve.run(f"zfs list -H {ROOT}", roots=[ROOT], environ=env, log=rec.log, execvp=rec.execvp,
                     pipe=rec.pipe)
    assert code == 0
    assert rec.execs == [["zfs", "list", "-H", ROOT]]
    assert env["PATH"].split(":")[:2] == ["/usr/bin", "/bin"] and "/usr/sbin" in env["PATH"]
    assert rec.logged == [(syslog.LOG_INFO, f"zfsrep serve: read (from local): zfs list -H {ROOT}")]
    assert capsys.readouterr().err == ""


def test_pipeline_goes_to_the_pipe_runner():
    rec = Recorder()
    assert serve_with(f"zstd -q -d -c | zfs receive -u -s {ROOT}/a", rec) == 0
    assert rec.pipes == [[["zstd", "-q", "-d", "-c"], ["zfs", "receive", "-u", "-s", f"{ROOT}/a"]]]


def test_missing_program_is_exit_127(capsys):
    rec = Recorder()

    def missing(program, argv):
        raise FileNotFoundError(2, "No such file", program)

    code = serve.run(f"zfs list {ROOT}", roots=[ROOT], environ={}, log=rec.log, execvp=missing)
    assert code == 127
    assert "cannot run zfs: not installed on this host" in capsys.readouterr().err


def test_journal_writes_syslog(monkeypatch):
    calls = []
    monkeypatch.setattr(syslog, "openlog", lambda *a: calls.append(("open", *a)))
    monkeypatch.setattr(syslog, "syslog", lambda *a: calls.append(("log", *a)))
    serve.journal(syslog.LOG_WARNING, "zfsrep serve: refused: x: y")
    assert calls == [("open", "zfsrep-serve", syslog.LOG_PID, syslog.LOG_AUTH),
                     ("log", syslog.LOG_WARNING, "zfsrep serve: refused: x: y")]


# -- the real pipe runner ---------------------------------------------------------------------

def _script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_passed_through_joins_stdin_to_stdout(tmp_path):
    """Through a child process: the pipeline reads its stdin and writes its stdout directly."""
    reverse = "import sys; sys.stdout.write(sys.stdin.read()[-2::-1] + chr(10))"
    prog = ("import sys; from zfsrep.pipeline import run_passed_through as r; "
            f"sys.exit(r([['tr', 'a-z', 'A-Z'], [sys.executable, '-c', {reverse!r}]]))")
    out = subprocess.run([sys.executable, "-c", prog], input=b"hello\n", capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(Path(zfsrep.__file__).parents[1])}, check=False)
    assert (out.returncode, out.stdout) == (0, b"OLLEH\n")


def test_run_passed_through_reports_the_first_real_failure():
    # the first stage dies of a broken pipe after the second exits 5: 5 is the cause
    code = run_passed_through([["yes"], _script("import sys; sys.exit(5)")])
    assert code == 5


def test_run_passed_through_signal_is_128_plus():
    assert run_passed_through([_script("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")]) == 128 + 15


def test_run_passed_through_missing_program():
    with pytest.raises(FileNotFoundError):
        run_passed_through([["true"], ["zfsrep-no-such-program"]])


# -- the CLI ---------------------------------------------------------------------------------

def test_cli_serve_refuses_without_command(monkeypatch):
    from zfsrep.cli import build_app

    logged = []
    monkeypatch.setattr(serve, "journal", lambda p, m: logged.append(m))
    result = CliRunner().invoke(build_app(), ["serve", "--root", ROOT], env={"SSH_ORIGINAL_COMMAND": None})
    assert result.exit_code == EXIT_REFUSED, result.output
    assert "zfsrep serve: refused: no command" in result.output
    assert len(logged) == 1
