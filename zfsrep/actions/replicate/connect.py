"""Reaching the targets: one ssh master per target begun at the start of the run
(`begin_sessions`), the session a target's turn uses (`session_for`), and the tools its
pipeline needs on both ends (`check_tools`)."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from zfsrep.config.model import Config, TargetConfig
from zfsrep.errors import ZfsrepError
from zfsrep.pipeline import COMPRESSORS, Stage, buffer_stage
from zfsrep.ssh import SshSession
from zfsrep.targets.access import ssh_host
from zfsrep.zfs import ZfsClient


@dataclass(frozen=True)
class Connection:
    """A target's turn: its host, ssh session, zfs there and the local buffer stage, if any."""

    host: str
    session: SshSession
    remote: ZfsClient
    buffer: Stage | None  # mbuffer or pv here (`pipeline.buffer_stage`), if configured


def begin_sessions(config: Config, names: Sequence[str]) -> dict[str, SshSession]:
    """One ssh master per target, begun now and waited for when the target's turn comes. A
    target whose host is not known yet is left to its `TargetRun`, which says why."""
    sessions: dict[str, SshSession] = {}
    for name in names:
        try:
            host = ssh_host(config.state_dir, config.targets[name])
        except ZfsrepError:
            continue
        if host:
            sessions[name] = SshSession(config.targets[name], host=host)
            sessions[name].begin()
    return sessions


@contextlib.contextmanager
def session_for(target: TargetConfig, host: str, begun: SshSession | None) -> Iterator[SshSession]:
    """The master `begin_sessions` began for ``target``, or (a host that changed since, or none
    begun) one of its own, closed on leaving."""
    if begun is not None and begun.destination == host:
        yield begun
        return
    with SshSession(target, host=host) as session:
        yield session


def check_tools(target: TargetConfig, remote: ZfsClient, host: str) -> Stage | None:
    """The compressor and mbuffer on both ends (each if configured) and the buffer tool here:
    the buffer stage to use, or a ZfsrepError naming what is missing where."""
    t = target
    if t.compress != "none":
        tool = COMPRESSORS[t.compress][0][0]
        fix = f"targets.{t.name}.compress = \"none\""
        _need_here(t, tool, f"compress = \"{t.compress}\"", f"set {fix}")
        _need_there(t, remote, host, tool, f"compress = \"{t.compress}\"", f"set {fix}")
    if t.mbuffer is not None:  # `pipeline.replication_stages` buffers on the receiving end too
        _need_there(t, remote, host, "mbuffer", "mbuffer is set", f"unset targets.{t.name}.mbuffer")
    try:
        return buffer_stage(t.mbuffer, t.rate_limit, have=lambda x: shutil.which(x) is not None)
    except LookupError as e:
        what = "mbuffer" if t.mbuffer else "rate_limit"
        raise ZfsrepError(f"target {t.name}: {what} is set but {e} is not installed here "
                          f"({socket.gethostname()}); install it or unset "
                          f"targets.{t.name}.{what}") from None


def _need_here(t: TargetConfig, tool: str, why: str, fix: str) -> None:
    if shutil.which(tool) is None:
        raise ZfsrepError(f"target {t.name}: {why} but {tool} is not installed here "
                          f"({socket.gethostname()}); install it or {fix}")


def _need_there(t: TargetConfig, remote: ZfsClient, host: str, tool: str, why: str, fix: str) -> None:
    check = remote.runner.run(["sh", "-c", 'command -v "$1"', "sh", tool], check=False)
    if not check.ok:
        raise ZfsrepError(f"target {t.name}: {why} but {tool} is not installed on {host}; "
                          f"install it there or {fix}")
