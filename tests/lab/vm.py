"""Start, inspect and stop the lab's qemu processes (one per VM), by PID from the run dir."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .paths import LabError, VM_NAMES

MEM_MIB = int(os.environ.get("ZFSREP_LAB_MEM", "1024"))
SMP = int(os.environ.get("ZFSREP_LAB_SMP", "1"))
POOL_DISK = os.environ.get("ZFSREP_LAB_POOL_DISK", "2G")
MACS = {"source": ("52:54:00:a0:00:01", "52:54:00:b0:00:01"),
        "target": ("52:54:00:a0:00:02", "52:54:00:b0:00:02")}


def kernel_cmdline(vm: str) -> str:
    return (f"root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 systemd.hostname={vm} "
            "fsck.mode=skip mitigations=off random.trust_cpu=on "
            "systemd.show_status=true")


def accel_args(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "qemu64"]


def qemu_argv(vm: str, image: Path, run: Path, port: int, accel: str, instance: str) -> list[str]:
    other = "target" if vm == "source" else "source"
    mac_user, mac_link = MACS[vm]
    return [
        "qemu-system-x86_64", "-name", f"zfsrep-lab-{instance}-{vm},process=zfsrep-lab-{vm}",
        *accel_args(accel), "-m", str(MEM_MIB), "-smp", str(SMP),
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", kernel_cmdline(vm),
        "-drive", f"file={run / f'{vm}.root.qcow2'},if=none,id=root,format=qcow2,cache=unsafe",
        "-device", "virtio-blk-pci,drive=root,addr=0x4",
        "-drive", f"file={run / f'{vm}.pool.qcow2'},if=none,id=pool,format=qcow2,cache=unsafe",
        "-device", "virtio-blk-pci,drive=pool,serial=zfsrep-pool,addr=0x5",
        "-drive", f"file={run / f'{vm}.seed.tar'},if=none,id=seed,format=raw,readonly=on",
        "-device", "virtio-blk-pci,drive=seed,serial=zfsrep-seed,addr=0x6",
        "-netdev", f"user,id=user,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"virtio-net-pci,netdev=user,mac={mac_user},addr=0x7",
        "-netdev", (f"dgram,id=link,local.type=unix,local.path={run / f'link-{vm}.sock'},"
                    f"remote.type=unix,remote.path={run / f'link-{other}.sock'}"),
        "-device", f"virtio-net-pci,netdev=link,mac={mac_link},addr=0x8",
        "-device", "virtio-rng-pci,addr=0x9",
        "-serial", f"file:{run / f'{vm}.console.log'}",
        "-monitor", f"unix:{run / f'{vm}.monitor'},server=on,wait=off",
        "-pidfile", str(run / f"{vm}.pid"), "-daemonize",
    ]


def prepare_disks(vm: str, image: Path, run: Path) -> None:
    """Fresh copy-on-write root overlay and an empty sparse pool disk."""
    for suffix in ("root.qcow2", "pool.qcow2"):
        (run / f"{vm}.{suffix}").unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                    "-b", str(image / "root.qcow2"), str(run / f"{vm}.root.qcow2")], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(run / f"{vm}.pool.qcow2"),
                    POOL_DISK], check=True)


def start(vm: str, image: Path, run: Path, port: int, accel: str, instance: str,
          extra: list[str] = ()) -> None:
    for name in (f"link-{vm}.sock", f"{vm}.monitor", f"{vm}.pid", f"{vm}.console.log"):
        (run / name).unlink(missing_ok=True)
    argv = qemu_argv(vm, image, run, port, accel, instance) + list(extra)
    (run / f"{vm}.qemu-cmdline").write_text(" ".join(argv) + "\n")
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"qemu for {vm} did not start (exit {proc.returncode}): "
                       f"{proc.stderr.strip() or proc.stdout.strip()}")


def pid_of(vm: str, run: Path) -> int | None:
    """PID of this run dir's qemu for `vm`, if that process is alive and really ours."""
    try:
        pid = int((run / f"{vm}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if not cmdline or not cmdline[0].endswith(b"qemu-system-x86_64"):
        return None
    if f"{run / f'{vm}.pid'}".encode() not in cmdline:
        return None
    return pid


def stop(vm: str, run: Path, timeout: float = 10.0) -> bool:
    """Stop this instance's qemu for `vm`. Returns True if one was running."""
    pid = pid_of(vm, run)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_of(vm, run) != pid:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    (run / f"{vm}.pid").unlink(missing_ok=True)
    return True


def cpu_seconds(vm: str, run: Path) -> float:
    """Host CPU time used so far by `vm`'s qemu (a load-independent measure of boot work)."""
    pid = pid_of(vm, run)
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def console_tail(vm: str, run: Path, lines: int = 30) -> str:
    try:
        text = (run / f"{vm}.console.log").read_text(errors="replace")
    except OSError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:])


def probe_kvm(image: Path, workdir: Path, seconds: float = 20.0) -> bool:
    """True if a short KVM boot of the image's kernel prints late-boot console output."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    log = workdir / "kvm-probe.log"
    log.unlink(missing_ok=True)
    argv = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "512",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
            "-append", "console=ttyS0 panic=-1 rdinit=/bin/false", "-serial", f"file:{log}"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ok = False
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                if b"Freeing unused kernel" in log.read_bytes():
                    ok = True
                    break
            except OSError:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return ok


def all_vms() -> tuple[str, ...]:
    return VM_NAMES
