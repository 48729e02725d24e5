"""The README's main-job demo: `python -m tests.demo` (or `make demo`).

Brings the two-VM OpenZFS lab up (building its image the first time), installs this checkout in
`source`, writes a zfsrep config with one dataset and the `target` VM, then runs
`zfsrep snapshot` + `zfsrep replicate` twice: a full send first, an incremental one after new
data. Prints what landed on `target` and how long each step took. The pools are emptied first.

Environment: ZFSREP_LAB_INSTANCE (default "demo") picks the lab instance; DEMO_MB the size of
the first batch of data (default 64); DEMO_KEEP=1 leaves the VMs running afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import time

import tomli_w

DATASET = "tank/demo"
PARENT = "backup/replica"
CONFIG = {
    "state_dir": "/var/lib/zfsrep",
    "lock_dir": "/run/zfsrep",
    "retention": {"frequent": 0, "hourly": 24, "daily": 7, "weekly": 4, "monthly": 3, "yearly": 0},
    "datasets": [{"name": DATASET}],
    # compress = "zstd" | "lz4" is one key away; the lab's emulated CPUs compress slower than
    # its link carries random data, so the demo sends the stream as ZFS stores it (-c).
    "targets": {"backup": {"host": "target", "dataset": PARENT,
                           "retention": {"hourly": 48, "daily": 30, "weekly": 8, "monthly": 12}}},
}


def say(text: str = "") -> None:
    print(text, flush=True)


class Timer:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def step(self, name: str, fn):
        say(f"==> {name}")
        t = time.monotonic()
        out = fn()
        took = time.monotonic() - t
        self.rows.append((name, took))
        say(f"    ({took:.1f} s)")
        return out


def zfsrep(lab, *args: str) -> dict:
    proc = lab.run_zfsrep([*args, "--json"], check=False, timeout=1800)
    data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if proc.returncode != 0:
        raise SystemExit(f"demo: `zfsrep {' '.join(args)}` exited {proc.returncode}:\n"
                         f"{proc.stderr.strip()}\n{json.dumps(data, indent=2)[:3000]}")
    return data


def show_replicate(data: dict) -> None:
    for item in data["items"]:
        mib = item["bytes"] / 2**20
        rate = mib / item["seconds"] if item["seconds"] else 0.0
        say(f"    {item['dataset']} -> {item['target']}: {item['status']}, "
            f"{len(item['sent'])} snapshot(s) from @{item['from_snapshot'] or '(none: full)'} "
            f"to @{item['to_snapshot']}, {mib:.1f} MiB in {item['seconds']:.1f} s ({rate:.1f} MiB/s)")


def show_snapshot(data: dict) -> None:
    for item in data["items"]:
        created = ", ".join(n.split("@", 1)[-1] for n in item.get("created", [])) or "nothing due"
        say(f"    {item['dataset']}: {created}")


def main() -> int:
    os.environ.setdefault("ZFSREP_LAB_INSTANCE", "demo")
    from tests.lab.lab import Lab

    size_mb = int(os.environ.get("DEMO_MB", "64"))
    lab = Lab()
    timer = Timer()
    started = time.monotonic()
    timer.step(f"lab up (instance {lab.instance}: two qemu VMs with OpenZFS)", lab.up)
    timer.step("install zfsrep in the VMs", lab.install)
    timer.step("empty the pools (tank on source, backup on target)", lab.reset)
    lab.ssh("source", "mkdir -p /etc/zfsrep && cat > /etc/zfsrep/config.toml",
            input=tomli_w.dumps(CONFIG))
    say("==> config in source:/etc/zfsrep/config.toml")
    say("    " + tomli_w.dumps(CONFIG).replace("\n", "\n    ").rstrip())

    def first_data() -> None:
        lab.ssh("source", ["zfs", "create", DATASET])
        lab.ssh("source", ["sh", "-c", 'for i in $(seq 1 "$1"); do head -c 1048576 /dev/urandom '
                           '> /tank/demo/file$i.bin; done; seq 1 200000 > /tank/demo/numbers.txt',
                           "w", str(size_mb)])
    timer.step(f"write {size_mb} MiB of data to {DATASET}", first_data)
    show_snapshot(timer.step("zfsrep snapshot", lambda: zfsrep(lab, "snapshot")))
    show_replicate(timer.step("zfsrep replicate (first run: full send)",
                              lambda: zfsrep(lab, "replicate")))

    def more_data() -> None:
        lab.ssh("source", "head -c 8388608 /dev/urandom > /tank/demo/new.bin; "
                          "rm /tank/demo/file1.bin; echo changed >> /tank/demo/numbers.txt")
    timer.step("change some data (8 MiB new, one file deleted, one appended)", more_data)
    later = str(int(time.time()) + 3600)
    show_snapshot(timer.step("zfsrep snapshot (as the hourly timer would, an hour later: --now)",
                             lambda: zfsrep(lab, "snapshot", "--now", later)))
    show_replicate(timer.step("zfsrep replicate (second run: incremental)",
                              lambda: zfsrep(lab, "replicate")))

    say("==> what landed on target:")
    listing = lab.ssh("target", ["zfs", "list", "-t", "all", "-r", "-o",
                                 "name,used,refer,canmount,mounted", PARENT]).stdout
    say("    " + listing.rstrip().replace("\n", "\n    "))
    lab.ssh("target", ["zfs", "mount", f"{PARENT}/{DATASET}"])
    check = lab.ssh("target", ["sh", "-c", f"cd /{PARENT}/{DATASET} && sha256sum numbers.txt new.bin"]).stdout
    want = lab.ssh("source", ["sh", "-c", f"cd /{DATASET} && sha256sum numbers.txt new.bin"]).stdout
    lab.ssh("target", ["zfs", "unmount", f"{PARENT}/{DATASET}"])
    say("    checksums on target " + ("match the source" if check == want else "DIFFER from the source"))
    say("==> timings")
    for name, took in timer.rows:
        say(f"    {took:7.1f} s  {name}")
    say(f"    {time.monotonic() - started:7.1f} s  total")
    if os.environ.get("DEMO_KEEP") != "1":
        lab.down()
        say(f"lab {lab.instance} is down again (DEMO_KEEP=1 keeps it running)")
    return 0 if check == want else 1


if __name__ == "__main__":
    sys.exit(main())
