"""Fast restart: save freshly booted VMs to files and restore them with `-incoming`.

A cold boot under TCG takes ~45-70 s; restoring a saved VM answers ssh in a few seconds.
The saved state is only valid for the same qemu binary, image, command line and seed disk,
so it is keyed by a hash of all of these and kept per instance in <run dir>/saved/.
The root overlay is copied while the VM is paused, so disk and RAM match; the pool disk is
blank at save time and is created blank again on restore.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .paths import LabError


def hmp(run: Path, vm: str, command: str, timeout: float = 30.0) -> str:
    """Run one human-monitor command on `vm`'s monitor socket and return its output."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(run / f"{vm}.monitor"))
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = s.recv(65536)
            if not chunk:
                raise LabError(f"{vm}: monitor closed")
            buf += chunk
        s.sendall(command.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    # drop the echoed command line and the prompt
    text = buf.decode(errors="replace").replace("\r", "")
    return "\n".join(text.splitlines()[1:-1])


def state_key(argv: list[str], seed: Path, image_key: str, pool_disk: str) -> str:
    """The pool disk's size is part of it: a saved VM holds a pool created on a disk of that
    size (restoring a 2G pool onto an 8G disk leaves the pool at 2G)."""
    version = subprocess.run([argv[0], "--version"], capture_output=True, text=True).stdout
    h = hashlib.sha256()
    for part in (version, image_key, "\0".join(argv), pool_disk):
        h.update(part.encode() + b"\0")
    h.update(seed.read_bytes())
    return h.hexdigest()[:16]


def saved_dir(run: Path) -> Path:
    return run / "saved"


def has_state(run: Path, vm: str, key: str) -> bool:
    d = saved_dir(run)
    try:
        ok = (d / f"{vm}.key").read_text().strip() == key
    except OSError:
        return False
    return ok and (d / f"{vm}.state.zst").exists() and (d / f"{vm}.root.qcow2").exists()


def save(run: Path, vm: str, key: str, timeout: float = 120.0) -> float:
    """Pause `vm`, copy its root overlay, write its RAM state, resume it. Returns seconds."""
    t0 = time.monotonic()
    d = saved_dir(run)
    d.mkdir(exist_ok=True)
    for name in (f"{vm}.key", f"{vm}.state.zst", f"{vm}.root.qcow2"):
        (d / name).unlink(missing_ok=True)
    hmp(run, vm, "stop")
    try:
        shutil.copyfile(run / f"{vm}.root.qcow2", d / f"{vm}.root.qcow2")
        state = d / f"{vm}.state.zst"
        out = hmp(run, vm, f'migrate -d "exec:zstd -q -3 -T1 -o {state}"')
        if "rror" in out:
            raise LabError(f"{vm}: migrate failed: {out}")
        deadline = time.monotonic() + timeout
        while True:
            info = hmp(run, vm, "info migrate")
            if "Migration status: completed" in info:
                break
            if "Migration status: failed" in info or time.monotonic() > deadline:
                raise LabError(f"{vm}: saving the VM state failed:\n{info}")
            time.sleep(0.3)
    finally:
        hmp(run, vm, "cont")
    (d / f"{vm}.key").write_text(key + "\n")
    return time.monotonic() - t0


def restore_args(run: Path, vm: str) -> list[str]:
    """Copy the saved overlay into place; return the qemu arguments that load the RAM."""
    d = saved_dir(run)
    shutil.copyfile(d / f"{vm}.root.qcow2", run / f"{vm}.root.qcow2")
    return ["-incoming", f"exec:zstd -q -dc {d / f'{vm}.state.zst'}"]


def resume(run: Path, vm: str, timeout: float = 60.0) -> None:
    """Wait until `vm` has loaded its saved state, then let it run: the state was saved
    from a paused VM, so qemu keeps it paused after loading."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = hmp(run, vm, "info status")
        except OSError:
            status = "monitor not up yet"
        if "inmigrate" not in status and "paused" in status:
            hmp(run, vm, "cont")
            return
        if "running" in status:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{vm}: restored VM did not get ready ({status.strip()})")
        time.sleep(0.2)


def forget(run: Path) -> None:
    shutil.rmtree(saved_dir(run), ignore_errors=True)
