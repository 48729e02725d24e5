"""ssh to a target: one multiplexed master connection per target per run, strict host keys.

`SshSession(target)` is a context manager; `argv_prefix` is what `Runner(prefix=...)` and the
replication pipeline put in front of a remote command (which is always one `shlex.join`-ed
word, see `zfsrep.execute.Runner`). The control socket lives in a private directory (0700)
that is removed on exit, after `ssh -O exit` closes the master.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from zfsrep.config.model import TargetConfig
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner


def ssh_failure_message(target: TargetConfig, destination: str, stderr: str) -> str:
    """One actionable line for a failed ssh connection."""
    where = f"{target.user}@{destination}:{target.port}"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no answer"
    if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        fix = f"pin the target's host key in {target.known_hosts or '~/.ssh/known_hosts'} (ssh-keyscan, then verify it)"
    elif "Permission denied" in stderr:
        fix = f"authorize the key {target.identity_file or '(default identity)'} for {target.user} on {destination}"
    elif "timed out" in stderr or "Connection refused" in stderr or "No route" in stderr or not stderr.strip():
        fix = "check that the host is up and sshd listens (a warmup may be missing)"
    elif "Could not resolve" in stderr:
        fix = f"check targets.{target.name}.host"
    else:
        fix = "run the same ssh by hand with -v to see why"
    return f"target {target.name}: cannot ssh to {where}: {last}; {fix}"


def ssh_options(target: TargetConfig, *, control_path: str | None = None, batch: bool = True) -> list[str]:
    """Options for `ssh` to ``target`` (everything before ``--`` and the destination)."""
    # ssh uses the FIRST value given for an option: the user's options go first so they win.
    argv: list[str] = []
    for option in target.ssh_options:
        argv += ["-o", option]
    if target.ssh_config:
        argv += ["-F", target.ssh_config]
    if batch:
        argv += ["-o", "BatchMode=yes"]
    argv += ["-o", "StrictHostKeyChecking=yes"]
    if target.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={target.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if target.host_key_alias:
        # the key is pinned under this name, whatever address ssh connects to
        argv += ["-o", f"HostKeyAlias={target.host_key_alias}"]
    if target.identity_file:
        argv += ["-i", target.identity_file, "-o", "IdentitiesOnly=yes"]
    if target.port != 22:
        argv += ["-p", str(target.port)]
    if target.user:
        argv += ["-l", target.user]
    argv += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30"]
    if control_path:
        # Clients only: the master is started explicitly (SshSession.start) with its stdio
        # detached, so no command ever waits on a pipe held open by a persisting master.
        argv += ["-o", "ControlMaster=no", "-o", f"ControlPath={control_path}"]
    return argv


# a master without clients for this long exits by itself (a crashed run leaves none behind)
PERSIST_S = 600


@dataclass
class SshSession:
    target: TargetConfig
    host: str | None = None  # overrides target.host (e.g. an EC2 address from warmup)
    multiplex: bool = True
    _dir: Path | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False, repr=False)
    # (ssh -f process, its stderr file, monotonic start) between `begin` and `start`
    _pending: tuple | None = field(default=None, init=False, repr=False)

    @property
    def destination(self) -> str:
        host = self.host or self.target.host
        if not host:
            raise ValueError(f"target {self.target.name!r} has no host (run `zfsrep warmup` first?)")
        return host

    @property
    def control_path(self) -> str | None:
        if not self.multiplex:
            return None
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="zfsrep-ssh-"))
        return str(self._dir / "%C")

    def _master_argv(self) -> list[str]:
        return ["ssh", *ssh_options(self.target), "-o", "ControlMaster=yes",
                "-o", f"ControlPath={self.control_path}", "-o", f"ControlPersist={PERSIST_S}",
                "-f", "-N", "--", self.destination]

    def begin(self) -> None:
        """Start opening the master connection without waiting for it (`start` waits and
        reports), so the handshake overlaps local work. Idempotent."""
        if self._started or self._pending is not None or not self.multiplex:
            return
        err = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(self._master_argv(), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
        except BaseException:
            err.close()
            raise
        self._pending = (proc, err, time.monotonic())

    def start(self, *, timeout: float = 60.0) -> None:
        """Open the master connection (idempotent; finishes what `begin` started); raise an
        actionable error if ssh fails. `ssh -f` returns once the master is authenticated."""
        if self._started or not self.multiplex:
            return
        self.begin()
        assert self._pending is not None
        proc, err, began = self._pending
        try:
            code = proc.wait(timeout=max(5.0, timeout - (time.monotonic() - began)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = 255
        self._pending = None
        with err:
            err.seek(0)
            message = err.read().decode("utf-8", "replace").strip()
        if code != 0:
            raise ZfsrepError(ssh_failure_message(self.target, self.destination, message))
        if time.monotonic() - began > PERSIST_S / 2 and not self._master_alive():
            # begun long before its turn (another target's transfer ran meanwhile): a master
            # left without clients for PERSIST_S exits, so open a fresh one
            self._pending = None
            self.start(timeout=timeout)
            return
        self._started = True

    def _master_alive(self) -> bool:
        check = subprocess.run(
            ["ssh", *ssh_options(self.target, control_path=self.control_path), "-O", "check",
             "--", self.destination],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=30, check=False)
        return check.returncode == 0

    @property
    def argv_prefix(self) -> list[str]:
        self.start()
        return ["ssh", *ssh_options(self.target, control_path=self.control_path), "--", self.destination]

    def runner(self, *, timeout: float | None = None) -> Runner:
        return Runner(prefix=tuple(self.argv_prefix), host=self.destination, timeout=timeout)

    def close(self) -> None:
        if self._pending is not None:  # begun, never waited for: let it finish, then exit it
            try:
                self.start(timeout=30)
            except ZfsrepError:
                pass
        if self._dir is None:
            return
        self._started = False
        subprocess.run(
            ["ssh", *ssh_options(self.target, control_path=self.control_path), "-O", "exit", "--", self.destination],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False,
        )
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> SshSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
