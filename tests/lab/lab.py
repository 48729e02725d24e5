"""The lab as an object: up / down / status / install / reset, and running commands in it."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from . import image, recipe, seed, snapshot, vm, wheels
from .hostpkgs import ensure_host_packages
from .paths import (HOST_IP_FROM_GUEST, POOLS, VM_NAMES, GuestHung, LabError, cache_dir,
                    instance_name, run_dir, ssh_ports, zfs_variant)
from .ssh import Command, push_tar, scp_to, ssh, to_shell, wait_for_ssh

BOOT_TIMEOUT = float(os.environ.get("ZFSREP_LAB_BOOT_TIMEOUT", "420"))
RESTORE_TIMEOUT = 90.0
VENV = "/opt/zfsrep"
PEERS_VENV = "/opt/zfsrep-peers"
POOL_DEV = "/dev/disk/by-id/virtio-zfsrep-pool"
# The guest kernel reports a task blocked for a minute, every time (not only the first 10):
# Lab.ssh tells a hung guest (GuestHung) from a slow command by these reports.
HUNG_TASK_SYSCTL = "sysctl -q kernel.hung_task_timeout_secs=60 kernel.hung_task_warnings=-1"


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


def snapshots_enabled() -> bool:
    """Save/restore VM state for fast restarts: on by default, off in CI (one boot only)."""
    default = "0" if os.environ.get("CI") else "1"
    return os.environ.get("ZFSREP_LAB_SNAPSHOT", default) not in ("0", "", "no", "false")


def pool_create_cmd(vm_name: str) -> str:
    pool = POOLS[vm_name]
    return (f"zpool create -f -o ashift=12 -O atime=off -O mountpoint=/{pool} "
            f"{pool} {POOL_DEV}")


class Lab:
    host_ip_from_guest = HOST_IP_FROM_GUEST
    pools = POOLS

    def __init__(self, instance: str | None = None, zfs: str | None = None):
        self.instance = instance or instance_name()
        self.zfs = zfs_variant(zfs)  # OpenZFS variant of the image (recipe.ZFS_VARIANTS)
        self.run = run_dir(self.instance)
        self.ports = ssh_ports(self.instance)
        self.ssh_config = self.run / "ssh_config"
        self.peers_installed = False  # install(peers=True) was called: a restart does it again
        self.hung: str | None = None  # a GuestHung's message: the next reset restarts at once

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
            running_zfs = self._state().get("zfs", recipe.DEFAULT_ZFS)
            if running_zfs != self.zfs:
                raise LabError(f"lab {self.instance} runs OpenZFS variant {running_zfs}, not "
                               f"{self.zfs}; stop it with `down` first")
            try:
                _parallel(lambda v: ssh(self.ssh_config, v, "true", timeout=120), VM_NAMES)
                self._ensure_pools()
                return {"already_running": True}
            except LabError as exc:
                log(f"running VMs do not answer ({exc}); restarting them")
        for v in VM_NAMES:
            vm.stop(v, self.run)
        ensure_host_packages()
        t0 = time.monotonic()
        img = image.ensure_image(zfs=self.zfs)
        build_s = time.monotonic() - t0
        accel = self._accel(img)
        keys = seed.ensure_keys(self.run, self.instance)
        seed.write_seeds(self.run, keys, self.instance)
        seed.write_host_ssh_config(self.run, keys, self.ports)
        self._close_masters()
        self._check_ports_free()
        (self.run / "state.json").write_text(json.dumps(
            {"image": str(img), "zfs": self.zfs, "accel": accel, "ports": self.ports, "started": time.time()}))
        keys_by_vm = {v: snapshot.state_key(
            vm.qemu_argv(v, img, self.run, self.ports[v], accel, self.instance),
            self.run / f"{v}.seed.tar", img.name, vm.POOL_DISK) for v in VM_NAMES}
        t1 = time.monotonic()
        mode = "booted"
        if snapshots_enabled() and all(snapshot.has_state(self.run, v, keys_by_vm[v])
                                       for v in VM_NAMES):
            try:
                self._boot(img, accel, restore=True, timeout=RESTORE_TIMEOUT)
                mode = "restored"
            except LabError as exc:
                log(f"restoring the saved VMs failed, booting instead: {exc}")
                for v in VM_NAMES:
                    vm.stop(v, self.run)
                snapshot.forget(self.run)
                t1 = time.monotonic()
        if mode == "booted":
            try:
                self._boot(img, accel, restore=False, timeout=BOOT_TIMEOUT)
            except LabError:
                for v in VM_NAMES:  # leave nothing running; the console logs stay
                    vm.stop(v, self.run)
                raise
        boot_s = time.monotonic() - t1
        if mode == "booted" and snapshots_enabled():
            # save with zfs loaded, so restored VMs are ready at once
            _parallel(lambda v: ssh(self.ssh_config, v, "modprobe zfs", timeout=240), VM_NAMES)
            self._close_masters()
            took = _parallel(lambda v: snapshot.save(self.run, v, keys_by_vm[v]), VM_NAMES)
            log(f"saved both VMs for fast restarts ({max(took.values()):.1f} s)")
        self._settle()
        info = {"already_running": False, "accel": accel, "boot_s": round(boot_s, 1),
                "mode": mode,
                "image_s": round(build_s, 1), "image": str(img)}
        state = self._state() | info
        (self.run / "state.json").write_text(json.dumps(state))
        return info

    def _boot(self, img: Path, accel: str, restore: bool, timeout: float) -> None:
        """Start both VMs (fresh overlays and pool disks, or restored) and wait for ssh."""
        t0 = time.monotonic()
        for v in VM_NAMES:
            vm.prepare_disks(v, img, self.run)
            extra = snapshot.restore_args(self.run, v) if restore else []
            vm.start(v, img, self.run, self.ports[v], accel, self.instance, extra)
        log(f"{'restoring' if restore else 'booting'} source and target ({accel}) ...")
        if restore:
            _parallel(lambda v: snapshot.resume(self.run, v), VM_NAMES)
        deadline = time.monotonic() + timeout

        def wait(v):
            try:
                return wait_for_ssh(self.ssh_config, v, deadline,
                                    alive=lambda: vm.pid_of(v, self.run) is not None)
            except LabError as exc:
                raise LabError(f"{exc}\n--- tail of {v}'s console "
                               f"({self.run / f'{v}.console.log'}):\n"
                               f"{vm.console_tail(v, self.run)}") from None

        waited = _parallel(wait, VM_NAMES)
        cpu = {v: vm.cpu_seconds(v, self.run) for v in VM_NAMES}
        log(f"both VMs answer ssh after {time.monotonic() - t0:.1f} s "
            f"(source {waited['source']:.1f} s / {cpu['source']:.0f} s CPU, "
            f"target {waited['target']:.1f} s / {cpu['target']:.0f} s CPU)")

    def _accel(self, img: Path) -> str:
        forced = os.environ.get("ZFSREP_LAB_ACCEL")
        if forced in ("tcg", "kvm"):
            return forced
        # the probe's answer depends on the host and the kernel: remember it per kernel
        kernel = json.loads((img / "info.json").read_text()).get("kernel", img.name)
        marker = cache_dir() / f"accel-{kernel}"
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
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as qemu does
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    raise LabError(f"port 127.0.0.1:{port} for {v} is in use (another lab "
                                   f"instance or program?); set ZFSREP_LAB_INSTANCE") from None

    def down(self) -> list[str]:
        with self._lock():
            return self._down()

    def _down(self) -> list[str]:
        self._close_masters()
        return [v for v in VM_NAMES if vm.stop(v, self.run)]

    def _close_masters(self) -> None:
        """End the host's multiplexing ssh masters of this instance (they die with the VMs
        otherwise only after ServerAlive timeouts) and drop their sockets."""
        if self.ssh_config.exists():
            for v in VM_NAMES:
                subprocess.run(["ssh", "-F", str(self.ssh_config), "-O", "exit", v],
                               capture_output=True, stdin=subprocess.DEVNULL, timeout=20)
        for p in self.run.glob("cm-*"):
            p.unlink(missing_ok=True)

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

    def _settle(self) -> None:
        """After a boot or restore, in each VM at once: set the clock from the host, create
        the pool, and check that the other VM answers ssh by name over the private link
        (which also opens the guest's multiplexed connection for later tests)."""
        def one(v):
            other = "target" if v == "source" else "source"
            pool = POOLS[v]
            ssh(self.ssh_config, v,
                f"date -u -s @{time.time():.3f} >/dev/null && {HUNG_TASK_SYSCTL} && "
                f"{{ zpool list -H -o name {pool} >/dev/null 2>&1 || {pool_create_cmd(v)}; }} && "
                f"ssh {other} true", timeout=240)
        _parallel(one, VM_NAMES)

    def install(self, peers: bool = False) -> dict:
        """Install the current checkout (and its dependencies) into /opt/zfsrep on both VMs.

        Everything is laid out on the host (wheels.stage_tree) and unpacked in the guests:
        pip under TCG would take minutes. Dependencies are sent only when they changed."""
        t0 = time.monotonic()
        self.peers_installed = self.peers_installed or peers
        deps = wheels.staged_deps(VENV)
        peer_stage = None
        with tempfile.TemporaryDirectory(prefix="zfsrep-install-") as td:
            wheel = wheels.build_zfsrep_wheel(Path(td) / "build")
            own = wheels.stage_tree(wheel.parent, [str(wheel)], Path(td) / "self", VENV,
                                    deps=False)
            if peers:
                peer_stage = wheels.stage_tree(wheels.peers_wheelhouse(), wheels.PEERS,
                                               Path(td) / "peers", PEERS_VENV)
            site = f"{VENV}/{wheels.GUEST_SITE}"

            def one(v):
                have = ssh(self.ssh_config, v, f"cat {VENV}/.lab-deps 2>/dev/null || true")
                if have.stdout.strip() != deps.name:
                    push_tar(self.ssh_config, v, deps,
                             f"rm -rf {VENV} && python3 -m venv --without-pip {VENV} && "
                             f"zstd -dc | tar -xf - -C {VENV} && echo {deps.name} > {VENV}/.lab-deps")
                where = push_tar(
                    self.ssh_config, v, own,
                    f"rm -rf {site}/zfsrep {site}/zfsrep-*.dist-info {VENV}/bin/zfsrep* && "
                    f"zstd -dc | tar -xf - -C {VENV} && "
                    f"for f in {VENV}/bin/zfsrep*; do ln -sf $f /usr/local/bin/; done && "
                    "command -v zfsrep")
                if peer_stage:
                    push_tar(self.ssh_config, v, peer_stage,
                             f"rm -rf {PEERS_VENV} && python3 -m venv --without-pip {PEERS_VENV}"
                             f" && zstd -dc | tar -xf - -C {PEERS_VENV} && "
                             f"for f in {PEERS_VENV}/bin/zfs-*; do ln -sf $f /usr/local/bin/; done")
                return where.strip()

            where = _parallel(one, VM_NAMES)
        took = round(time.monotonic() - t0, 1)
        log(f"installed {wheel.name} on both VMs in {took} s ({where['source']})")
        return {"wheel": wheel.name, "install_s": took}

    # ---- used by tests -------------------------------------------------------------
    def ssh(self, host: str, cmd: Command, check: bool = True, input: str | None = None,
            timeout: float | None = 600) -> subprocess.CompletedProcess:
        """Run a command in a guest. If it times out while that guest's kernel reports tasks
        blocked for minutes, raise GuestHung (with the diagnosis) instead of LabError; until
        the lab is restarted, every later command raises it at once (a test's clean-up would
        only hang on the stuck pool too)."""
        if self.hung is not None:
            raise GuestHung(f"not run (a guest hung before; the next reset restarts the lab): "
                            f"{to_shell(cmd)[:200]}")
        try:
            return ssh(self.ssh_config, host, cmd, check=check, input=input, timeout=timeout)
        except LabError as exc:
            if "timed out" not in str(exc):
                raise
            stuck = self.stuck_tasks()
            if not stuck:
                raise
            self.hung = f"{exc}\nblocked in the kernel: {stuck}\n{self.diagnose()}"
            raise GuestHung(self.hung) from exc

    def stuck_tasks(self) -> str:
        """Tasks of either guest in uninterruptible sleep now that the guest's hung-task
        detector has reported (blocked for 120 s or more), as "vm: comm:pid …"; "" if none."""
        def one(v):
            try:
                proc = ssh(self.ssh_config, v, STUCK, check=False, timeout=60)
            except LabError:
                return ""
            return " ".join(proc.stdout.split())
        found = _parallel(one, VM_NAMES)
        return "; ".join(f"{v}: {found[v]}" for v in VM_NAMES if found[v])

    def scp_to(self, host: str, local: Path | str, remote: str) -> None:
        scp_to(self.ssh_config, host, local, remote)

    def run_zfsrep(self, args: Command, host: str = "source", check: bool = True,
                   input: str | None = None, timeout: float | None = 600,
                   ) -> subprocess.CompletedProcess:
        cmd = "zfsrep " + (args if isinstance(args, str) else to_shell(args))
        return self.ssh(host, cmd, check=check, input=input, timeout=timeout)

    def reset(self, timeout: float = 240) -> float:
        """Empty both pools; returns seconds taken.

        Destroys every dataset, snapshot, bookmark and hold (and aborts partial receives)
        in place, which measured 3-4x faster than destroying and recreating the pools;
        falls back to recreating a pool if that fails."""
        t0 = time.monotonic()

        def one(v):
            pool = POOLS[v]
            ssh(self.ssh_config, v, EMPTY_POOL.format(pool=pool, create=pool_create_cmd(v)),
                timeout=timeout)
        _parallel(one, VM_NAMES)
        return time.monotonic() - t0

    def reset_or_restart(self, timeout: float = 240) -> str | None:
        """reset(); if emptying a pool fails or hangs, restart the lab (fresh disks, the
        checkout installed again) and reset that. Returns what went wrong, with what the
        guests showed, or None if the first reset worked.

        A zfs command stuck in a guest's kernel ("dataset is busy", a hung destroy) would
        otherwise fail every later test of the run at set-up, each after the reset's timeout."""
        if self.hung is not None:
            why = f"a command hung in the guest's kernel:\n{self.hung}"
        else:
            try:
                self.reset(timeout)
                return None
            except LabError as exc:
                why = f"{exc}\n{self.diagnose()}"
        log(f"emptying the pools failed; restarting the lab:\n{why}")
        with self._lock():
            self._down()
            self._up()
        self.hung = None
        self.install(peers=self.peers_installed)
        self.reset()
        return why

    def diagnose(self) -> str:
        """What each guest shows now: zfs processes and any in uninterruptible sleep, what
        keeps a pool's file system open, and the kernel log's tail."""
        def one(v):
            try:
                proc = ssh(self.ssh_config, v, DIAGNOSE.format(pool=POOLS[v], dev=POOL_DEV),
                           check=False, timeout=90)
                text = (proc.stdout + proc.stderr).strip()
            except LabError as exc:
                text = str(exc)
            return f"--- {v} now:\n{text}"
        found = _parallel(one, VM_NAMES)
        return "\n".join(found[v] for v in VM_NAMES)


# Guest script for Lab.diagnose() (a str.format template). Nothing in it may hang: a stuck
# zfs is what it is run for.
DIAGNOSE = """
ps -eo pid,stat,etimes,wchan:32,args | awk 'NR == 1 || $2 ~ /D/ || (/zfs|zpool/ && !/awk/)' | cut -c 1-240
stuck() {{ ps -eo pid=,stat= | awk '$2 ~ /D/ {{print $1}}'; }}
dev=$(basename "$(readlink -f {dev})")
echo "# kernel stacks of tasks in D state and of txg_sync:"
for p in $({{ stuck; pgrep -x txg_sync; }} | sort -un); do
    echo "$p $(cat /proc/$p/comm 2>/dev/null):"; sed 's/^/    /' /proc/$p/stack 2>/dev/null
done
echo "# requests in flight on the pool disk $dev (read write):"; cat /sys/block/$dev/inflight
echo "# pools:"; timeout 10 zpool list -H -o name,health,alloc
echo "# last txgs of {pool}:"; tail -n 4 /proc/spl/kstat/zfs/{pool}/txgs 2>/dev/null
echo "# open under /{pool} (cwd, root or files):"
ls -l /proc/[0-9]*/cwd /proc/[0-9]*/root /proc/[0-9]*/fd/* 2>/dev/null | grep -F ' -> /{pool}/'
echo "# other mount namespaces with mounts under /{pool} (process, namespace, mounts):"
root=$(readlink /proc/1/ns/mnt)
for p in /proc/[0-9]*; do
    ns=$(readlink "$p/ns/mnt" 2>/dev/null) && [ "$ns" != "$root" ] || continue
    n=$(grep -c ' /{pool}/' "$p/mountinfo" 2>/dev/null) && echo "$(cat "$p/comm") $ns $n"
done | sort -u -k2,2
echo "# memory:"; free -m | sed -n 2p
echo "# kernel log (hung-task reports, then the tail):"
dmesg | grep -A 12 'blocked for more than' | grep -v 'Unknown symbol' | tail -n 80
echo "..."; dmesg | grep -v 'Unknown symbol' | tail -n 15
if [ -n "$(stuck)" ]; then
    # a lost completion interrupt would be reaped by the next one: read the disk once, directly
    timeout 20 dd if={dev} of=/dev/null bs=4096 count=1 iflag=direct status=none
    sleep 10
    echo "# 10 s after one direct read of $dev: in flight $(cat /sys/block/$dev/inflight); D state: $(stuck | tr '\\n' ' ')"
fi
"""

# Guest script for Lab.stuck_tasks(): tasks in D state that the hung-task detector reported.
STUCK = r"""
log=$(dmesg)
for p in $(ps -eo pid=,stat= | awk '$2 ~ /D/ {print $1}'); do
    c=$(cat /proc/$p/comm 2>/dev/null) || continue
    printf '%s\n' "$log" | grep -q "task $c:$p blocked for more than" && echo "$c:$p"
done
"""

# Guest script for Lab.reset(). Kills leftovers of earlier tests (zfs send/recv, mbuffer, pv,
# zfsrep) first: a running `zfs recv` would keep the datasets busy.
EMPTY_POOL = """
set -u
pkill -KILL -x zfs 2>/dev/null; pkill -KILL -x mbuffer 2>/dev/null
pkill -KILL -x pv 2>/dev/null; pkill -KILL -f "[/]usr/local/bin/zfsrep" 2>/dev/null
rm -rf /var/lib/zfsrep  # zfsrep's state dir: no test reads another's results
empty() {{
    zfs list -H -o name,receive_resume_token -r {pool} | while read -r ds tok; do
        if [ "$tok" != "-" ]; then zfs receive -A "$ds" || return 1; fi
    done
    snaps=$(zfs list -H -t snapshot -o name -r {pool})
    if [ -n "$snaps" ]; then
        zfs holds -H $snaps | while read -r snap tag _; do
            zfs release "$tag" "$snap" || return 1
        done
    fi
    for ds in $(zfs list -H -o name -d 1 {pool} | tail -n +2); do
        zfs destroy -R "$ds" || return 1
    done
    if zfs list -H -t snapshot -d 1 -o name {pool} | grep -q .; then
        zfs destroy -R "{pool}@%" || return 1
    fi
    for bm in $(zfs list -H -t bookmark -d 1 -o name {pool}); do zfs destroy "$bm" || return 1; done
    for prop in $(zfs get -H -s local -o property all {pool}); do
        case $prop in atime|mountpoint) ;; *) zfs inherit "$prop" {pool} || return 1 ;; esac
    done
    mountpoint -q /{pool} || zfs mount {pool}
    [ "$(zfs list -H -t all -o name -r {pool} | wc -l)" = 1 ]
}}
if zpool list -H -o name {pool} >/dev/null 2>&1 && empty; then exit 0; fi
echo "emptying {pool} in place failed; recreating it" >&2
zpool destroy -f {pool} 2>/dev/null || {{ sleep 1; zpool destroy -f {pool}; }}
{create}
"""

