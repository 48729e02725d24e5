"""Wait until a target answers ssh **with its pinned host key**.

Each probe is ``ssh -o BatchMode=yes -o StrictHostKeyChecking=yes … -- HOST true`` with the
target's own options (`zfsrep.ssh.ssh_options`: its known_hosts, identity, port, user), run
through `zfsrep.execute.Runner`. Probes repeat with backoff until ``timeout``. What ssh said
decides what happens next:

* success → ready;
* the host key differs from the pinned one, or none is pinned → fail at once (`HostKeyError`):
  waiting cannot fix it and trusting a new key is never zfsrep's call;
* authentication refused → fail at once (`SshAuthError`);
* anything else (refused, timed out, reset, name not resolvable yet) → not up yet: poll again;
  after ``timeout`` → `SshTimeout` naming the last thing ssh said.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from zfsrep.config.model import TargetConfig
from zfsrep.core.warmup_plan import backoff_delays
from zfsrep.errors import CommandError, ZfsrepError
from zfsrep.execute import Runner
from zfsrep.ssh import ssh_options

READY, KEY_CHANGED, KEY_UNKNOWN, AUTH, DOWN = "ready", "key-changed", "key-unknown", "auth", "down"


class HostKeyError(ZfsrepError):
    """The target's host key is not the pinned one (or none is pinned)."""


class SshAuthError(ZfsrepError):
    """sshd answered with the right key but refused the login."""


class SshTimeout(ZfsrepError):
    """ssh did not answer within the timeout."""


@dataclass(frozen=True)
class Readiness:
    host: str
    attempts: int
    seconds: float


def classify(returncode: int, stderr: str) -> str:
    """What one probe's exit code and stderr mean."""
    if returncode == 0:
        return READY
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or re.search(r"Host key for \S+ has changed", stderr):
        return KEY_CHANGED
    if re.search(r"No \S+ host key is known for", stderr) or "Host key verification failed" in stderr:
        return KEY_UNKNOWN
    if "Permission denied" in stderr or "Too many authentication failures" in stderr:
        return AUTH
    if returncode != 255:
        return AUTH  # ssh got in, but the account could not run `true` (nologin shell, forced command)
    return DOWN


def probe_argv(target: TargetConfig, host: str, *, connect_timeout: int) -> list[str]:
    # ssh takes the first value given for an option: these override the target's own
    # ssh_options, so a probe never prompts, never trusts an unknown key, never reuses a master.
    return [
        "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "ControlMaster=no", "-o", "ControlPath=none", *ssh_options(target), "--", host, "true",
    ]


def _pinned_name(target: TargetConfig, host: str) -> str:
    """The name ssh looks the host key up under: the alias, else the address (with its port)."""
    if target.host_key_alias:
        return target.host_key_alias
    return host if target.port == 22 else f"[{host}]:{target.port}"


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip() and not line.startswith("@@@")]
    return lines[-1] if lines else "no answer"


def wait_for_ssh(
    target: TargetConfig,
    host: str,
    *,
    timeout: float,
    connect_timeout: int = 10,
    runner: Runner | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Readiness:
    """Poll until ssh to ``host`` answers with the key pinned for ``target``; raise otherwise."""
    runner = runner or Runner(host=host)
    pinned = target.known_hosts or "~/.ssh/known_hosts"
    where = f"{target.user}@{host}:{target.port}"
    start = clock()
    deadline = start + timeout
    delays = backoff_delays(first=1.0, cap=10.0)
    attempts, last = 0, "no answer"
    while True:
        attempts += 1
        per_try = max(1, min(connect_timeout, int(deadline - clock()) or 1))
        try:
            result = runner.run(probe_argv(target, host, connect_timeout=per_try), check=False, timeout=per_try + 15)
            code, stderr = result.returncode, result.stderr
        except CommandError as e:  # the probe itself hung past its own limit
            code, stderr = 255, e.stderr or "timed out"
        kind = classify(code, stderr)
        if kind == READY:
            return Readiness(host=host, attempts=attempts, seconds=clock() - start)
        if kind == KEY_CHANGED:
            raise HostKeyError(
                f"target {target.name}: {where} answers with a host key that differs from the one pinned in "
                f"{pinned}; if the machine was rebuilt, verify its new key out of band and replace the pinned line "
                "(otherwise the connection may be intercepted)"
            )
        if kind == KEY_UNKNOWN:
            raise HostKeyError(
                f"target {target.name}: no host key for {_pinned_name(target, host)} is pinned in {pinned} "
                f"({_last_line(stderr)}); add the target's key there as `{_pinned_name(target, host)} <key type> <key>` "
                f"(verify the fingerprint; an address that changes at each launch is pinned under "
                f"targets.{target.name}.host_key_alias) — zfsrep never trusts a key on first use"
            )
        if kind == AUTH:
            raise SshAuthError(
                f"target {target.name}: {where} refused the login ({_last_line(stderr)}); authorize "
                f"{target.identity_file or 'the default ssh key'} for {target.user} there"
            )
        last = _last_line(stderr)
        remaining = deadline - clock()
        if remaining <= 0:
            raise SshTimeout(
                f"target {target.name}: ssh to {where} did not answer within {timeout:.0f} s "
                f"({attempts} attempts; last: {last}); check that the machine booted and sshd listens, that the "
                f"firewall/security group lets this host reach port {target.port}, or raise warmup.ssh_timeout"
            )
        sleep(min(next(delays), remaining))
