"""Run commands in the guests over the lab's OpenSSH config (multiplexed connections)."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .paths import LabError

Command = str | Sequence[str]


def to_shell(cmd: Command) -> str:
    """A list is quoted word by word; a string is passed to the guest's shell as is."""
    return cmd if isinstance(cmd, str) else shlex.join(str(a) for a in cmd)


def ssh(config: Path, host: str, cmd: Command, *, check: bool = True, input: str | None = None,
        timeout: float | None = 600, extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
    argv = ["ssh", "-F", str(config), *extra, host, "--", to_shell(cmd)]
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"ssh {host}: timed out after {timeout} s: {to_shell(cmd)[:200]}") from exc
    if check and proc.returncode != 0:
        raise LabError(f"ssh {host} failed (exit {proc.returncode}): {to_shell(cmd)[:300]}\n"
                       f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")
    return proc


def scp_to(config: Path, host: str, local: Path | str, remote: str, timeout: float = 600) -> None:
    argv = ["scp", "-q", "-r", "-F", str(config), str(local), f"{host}:{remote}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise LabError(f"scp {local} -> {host}:{remote} failed: {proc.stderr.strip()}")


def push_tar(config: Path, host: str, local: Path, remote_shell: str,
             timeout: float = 600) -> str:
    """Stream directory `local` as a zstd-compressed tar into `remote_shell` in the guest,
    which reads it on stdin (e.g. `zstd -dc | tar -xf - -C /dest`). Returns its stdout."""
    tar = subprocess.Popen(f"tar -C {shlex.quote(str(local))} -cf - . | zstd -q -1 -T0",
                           shell=True, stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(["ssh", "-F", str(config), host, "--", remote_shell],
                              stdin=tar.stdout, capture_output=True, text=True, timeout=timeout)
    finally:
        tar.stdout.close()
        tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise LabError(f"copying {local} to {host} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def wait_for_ssh(config: Path, host: str, deadline: float, alive) -> float:
    """Poll until `ssh host true` works; `alive()` False aborts early. Returns seconds waited."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() < deadline:
        if not alive():
            raise LabError(f"{host}: qemu exited while waiting for ssh")
        try:
            proc = subprocess.run(["ssh", "-F", str(config), "-o", "ConnectTimeout=10",
                                   host, "true"], capture_output=True, text=True, timeout=40,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            last = "ssh timed out"
            continue
        if proc.returncode == 0:
            return time.monotonic() - t0
        last = proc.stderr.strip()
        time.sleep(1)
    raise LabError(f"{host}: ssh did not come up in time (last error: {last})")
