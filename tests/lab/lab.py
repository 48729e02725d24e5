"""The lab as an object: up / down / status / install / reset, and running commands in it."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from . import image, seed, vm, wheels
from .paths import (HOST_IP_FROM_GUEST, POOLS, VM_NAMES, LabError, cache_dir, instance_name,
                    run_dir, ssh_ports)
from .ssh import Command, push_dir, scp_to, ssh, to_shell, wait_for_ssh

BOOT_TIMEOUT = 420.0
VENV = "/opt/zfsrep"
PEERS_VENV = "/opt/zfsrep-peers"
GUEST_WHEELS = "/var/tmp/zfsrep-wheels"
POOL_DEV = "/dev/disk/by-id/virtio-zfsrep-pool"


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def _parallel(fn, items):
    """Run fn(item) for each item in threads; re-raise the first error."""
    errors: list[BaseException] = []
    results: dict = {}

    def run(item):
        try:
            results[item] = fn(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def pool_create_cmd(vm_name: str) -> str:
    pool = POOLS[vm_name]
    return (f"zpool create -f -o ashift=12 -O atime=off -O mountpoint=/{pool} "
            f"{pool} {POOL_DEV}")


class Lab:
    host_ip_from_guest = HOST_IP_FROM_GUEST
    pools = POOLS

    def __init__(self, instance: str | None = None):
        self.instance = instance or instance_name()
        self.run = run_dir(self.instance)
        self.ports = ssh_ports(self.instance)
        self.ssh_config = self.run / "ssh_config"

    # ---- state -----------------------------------------------------------------
    @contextmanager
    def _lock(self):
        self.run.mkdir(parents=True, exist_ok=True)
        with open(self.run / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _state(self) -> dict:
        try:
            return json.loads((self.run / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def running(self) -> dict[str, int | None]:
        return {v: vm.pid_of(v, self.run) for v in VM_NAMES}

    def status(self) -> dict[str, str]:
        out = {}
        state = self._state()
        for v, pid in self.running().items():
            if pid is None:
                out[v] = "stopped"
                continue
            proc = ssh(self.ssh_config, v, "zpool list -H -o name,health,alloc 2>&1 | head -3",
                       check=False, timeout=60)
            answer = "ssh ok" if proc.returncode == 0 else f"ssh FAILED ({proc.stderr.strip()})"
            pools = " ".join(proc.stdout.split()) if proc.returncode == 0 else ""
            out[v] = (f"running pid {pid}, port {self.ports[v]}, accel {state.get('accel')}, "
                      f"{answer}; pool: {pools or '-'}")
        return out

    # ---- up / down -------------------------------------------------------------
    def up(self) -> dict:
        """Build if needed, boot both VMs, wait for ssh, create pools, set clocks."""
        with self._lock():
            return self._up()

    def _up(self) -> dict:
        pids = self.running()
        if all(pids.values()):
            try:
                _parallel(lambda v: ssh(self.ssh_config, v, "true", timeout=120), VM_NAMES)
                self._ensure_pools()
                return {"already_running": True}
            except LabError as exc:
                log(f"running VMs do not answer ({exc}); restarting them")
        for v in VM_NAMES:
            vm.stop(v, self.run)
        t0 = time.monotonic()
        img = image.ensure_image()
        build_s = time.monotonic() - t0
        accel = self._accel(img)
        keys = seed.ensure_keys(self.run, self.instance)
        seed.write_seeds(self.run, keys, self.instance)
        seed.write_host_ssh_config(self.run, keys, self.ports)
        for p in self.run.glob("cm-*"):
            p.unlink(missing_ok=True)
        self._check_ports_free()
        t1 = time.monotonic()
        for v in VM_NAMES:
            vm.prepare_disks(v, img, self.run)
            vm.start(v, img, self.run, self.ports[v], accel, self.instance)
        (self.run / "state.json").write_text(json.dumps(
            {"image": str(img), "accel": accel, "ports": self.ports, "started": time.time()}))
        log(f"booting source and target ({accel}) ...")
        deadline = time.monotonic() + BOOT_TIMEOUT

        def wait(v):
            try:
                return wait_for_ssh(self.ssh_config, v, deadline,
                                    alive=lambda: vm.pid_of(v, self.run) is not None)
            except LabError as exc:
                raise LabError(f"{exc}\n--- tail of {v}'s console "
                               f"({self.run / f'{v}.console.log'}):\n"
                               f"{vm.console_tail(v, self.run)}") from None

        waited = _parallel(wait, VM_NAMES)
        boot_s = time.monotonic() - t1
        log(f"both VMs answer ssh after {boot_s:.1f} s "
            f"(source {waited['source']:.1f} s, target {waited['target']:.1f} s)")
        self.set_clocks()
        self._ensure_pools()
        self._check_link()
        info = {"already_running": False, "accel": accel, "boot_s": round(boot_s, 1),
                "image_s": round(build_s, 1), "image": str(img)}
        state = self._state() | info
        (self.run / "state.json").write_text(json.dumps(state))
        return info

    def _accel(self, img: Path) -> str:
        import os
        forced = os.environ.get("ZFSREP_LAB_ACCEL")
        if forced in ("tcg", "kvm"):
            return forced
        marker = img / "accel"
        if marker.exists():
            return marker.read_text().strip()
        with tempfile.TemporaryDirectory() as td:
            ok = vm.probe_kvm(img, Path(td))
        accel = "kvm" if ok else "tcg"
        log(f"KVM probe: {'console output seen, using KVM' if ok else 'no boot, using TCG'}")
        try:
            marker.write_text(accel + "\n")
        except OSError:
            pass
        return accel

    def _check_ports_free(self) -> None:
        import socket
        for v, port in self.ports.items():
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    raise LabError(f"port 127.0.0.1:{port} for {v} is in use (another lab "
                                   f"instance or program?); set ZFSREP_LAB_INSTANCE") from None

    def down(self) -> list[str]:
        with self._lock():
            stopped = [v for v in VM_NAMES if vm.stop(v, self.run)]
            for p in self.run.glob("cm-*"):
                p.unlink(missing_ok=True)
            return stopped

    # ---- guest set-up ------------------------------------------------------------
    def set_clocks(self) -> None:
        _parallel(lambda v: ssh(self.ssh_config, v, f"date -u -s @{time.time():.3f} >/dev/null"),
                  VM_NAMES)

    def _ensure_pools(self) -> None:
        def one(v):
            pool = POOLS[v]
            ssh(self.ssh_config, v,
                f"zpool list -H -o name {pool} >/dev/null 2>&1 || {pool_create_cmd(v)}",
                timeout=180)
        _parallel(one, VM_NAMES)

    def _check_link(self) -> None:
        """source reaches target by name over the private link, and vice versa."""
        ssh(self.ssh_config, "source", "ssh target true && ssh source true", timeout=120)
        ssh(self.ssh_config, "target", "ssh source true", timeout=120)

    def install(self, peers: bool = False) -> dict:
        """Install the current checkout (and its wheelhouse) into /opt/zfsrep on both VMs."""
        t0 = time.monotonic()
        deps = wheels.deps_wheelhouse()
        peer_house = wheels.peers_wheelhouse() if peers else None
        with tempfile.TemporaryDirectory(prefix="zfsrep-install-") as td:
            push = Path(td) / "push"
            push.mkdir()
            wheel = wheels.build_zfsrep_wheel(Path(td) / "build")
            for whl in [*deps.glob("*.whl"), wheel]:
                shutil.copy(whl, push / whl.name)
            if peer_house:
                shutil.copytree(peer_house, push / "peers")
            deps_key = deps.name
            script = f"""set -e
W={GUEST_WHEELS}
if [ ! -x {VENV}/bin/pip ]; then python3 -m venv {VENV}; fi
if [ "$(cat {VENV}/.lab-deps 2>/dev/null)" != "{deps_key}" ]; then
    {VENV}/bin/pip install -q --no-index --find-links $W $W/{wheel.name}
    echo {deps_key} > {VENV}/.lab-deps
fi
{VENV}/bin/pip install -q --no-index --no-deps --force-reinstall $W/{wheel.name}
for f in {VENV}/bin/zfsrep*; do [ -e "$f" ] && ln -sf "$f" /usr/local/bin/; done
if [ -d $W/peers ]; then
    if [ ! -x {PEERS_VENV}/bin/pip ]; then python3 -m venv {PEERS_VENV}; fi
    {PEERS_VENV}/bin/pip install -q --no-index --find-links $W/peers {' '.join(wheels.PEERS)}
    for f in {PEERS_VENV}/bin/zfs-*; do [ -e "$f" ] && ln -sf "$f" /usr/local/bin/; done
fi
command -v zfsrep
"""

            def one(v):
                push_dir(self.ssh_config, v, push, GUEST_WHEELS)
                return ssh(self.ssh_config, v, script, timeout=900).stdout.strip()

            where = _parallel(one, VM_NAMES)
        took = round(time.monotonic() - t0, 1)
        log(f"installed {wheel.name} on both VMs in {took} s ({where['source']})")
        return {"wheel": wheel.name, "install_s": took}

    # ---- used by tests -------------------------------------------------------------
    def ssh(self, host: str, cmd: Command, check: bool = True, input: str | None = None,
            timeout: float | None = 600) -> subprocess.CompletedProcess:
        return ssh(self.ssh_config, host, cmd, check=check, input=input, timeout=timeout)

    def scp_to(self, host: str, local: Path | str, remote: str) -> None:
        scp_to(self.ssh_config, host, local, remote)

    def run_zfsrep(self, args: Command, host: str = "source", check: bool = True,
                   input: str | None = None, timeout: float | None = 600,
                   ) -> subprocess.CompletedProcess:
        cmd = "zfsrep " + (args if isinstance(args, str) else to_shell(args))
        return self.ssh(host, cmd, check=check, input=input, timeout=timeout)

    def reset(self) -> float:
        """Empty both pools (destroy and recreate them); returns seconds taken."""
        t0 = time.monotonic()

        def one(v):
            pool = POOLS[v]
            ssh(self.ssh_config, v, f"""
pkill -KILL -x zfs 2>/dev/null || true
pkill -KILL -x mbuffer 2>/dev/null || true
pkill -KILL -x pv 2>/dev/null || true
if zpool list -H -o name {pool} >/dev/null 2>&1; then
    zpool destroy -f {pool} || {{ sleep 1; zpool destroy -f {pool}; }}
fi
{pool_create_cmd(v)}
""", timeout=180)
        _parallel(one, VM_NAMES)
        return time.monotonic() - t0


def cache_summary() -> str:
    return str(cache_dir())
