"""`python -m bench [--quick] [--zfs VARIANT] [--repeat N] [--only bulk,noop,incr,snap] [--keep-lab]`.

Brings up its own lab instance (ZFSREP_LAB_INSTANCE=bench unless set; `bench-<variant>` for an
OpenZFS variant other than the lab's default), installs the checkout and the peers, runs the
scenarios and writes bench/RESULTS.md. The counting `zfs` wrapper and the plain ssh config are
removed again, and the lab is stopped (unless --keep-lab).
With --only, the sections of the other scenarios are carried over unchanged from the report
being replaced, labelled with the run that measured them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# Before tests.lab is imported: our own instance, and pool disks big enough for the bulk
# scenario (sparse qcow2; the same size every time so the saved VMs stay valid).
os.environ.setdefault("ZFSREP_LAB_INSTANCE", "bench")
os.environ.setdefault("ZFSREP_LAB_POOL_DISK", "8G")

from bench import report, stats
from bench import tools as T
from bench.guest import Counters, Guests
from bench.scenarios import FULL, QUICK, Bench, Outcome, log

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SCENARIOS = ["bulk", "noop", "incr", "snap"]
METHOD = (
    ("Both VMs run in qemu on this host; every tool runs inside `source` and sends to `target` "
    "over the VMs' private link, in the same run, on the same VMs."),
    ("Wall time is taken inside `source` (`date +%s%N` around the command); set-up, "
    "verification and clean-up between runs are not timed."),
    ("Each round runs every tool once, the order rotated per round; the table shows the median "
    "of the successful runs (and min–max)."),
    ("A run counts only if its result is verified on target (GUIDs of the received snapshot, "
    "the new snapshot on every dataset, the snapshot list unchanged for no-op, the snapshot "
    "names kept after pruning)."),
    ("`zfs` invocations: a wrapper first on root's PATH in both VMs (and `/usr/bin/zfs`, "
    "which zfs-replicate reaches with an emptied environment) logs every call, then execs "
    "the real `zfs`; its cost (one `sh` per call) is included in every tool's time."),
    ("ssh connections: the `Accepted publickey` lines of target's sshd from source's address. "
    "Root's ssh config in source has no ControlMaster during the benchmark, as on a "
    "user's machine: connection sharing is whatever each tool does itself."),
    ("All ssh connections use chacha20-poly1305 (root's ssh config); peers run with their "
    "defaults (e.g. syncoid's lzop compression and mbuffer, zfs-replicate's lz4) except the "
    "flags listed per scenario."),
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="development sizes (128 MiB, 20x10, 5x5, 100 datasets): minutes")
    from tests.lab.recipe import DEFAULT_ZFS, ZFS_VARIANTS
    ap.add_argument("--zfs", metavar="VARIANT", choices=sorted(ZFS_VARIANTS),
                    help=("OpenZFS of the lab image: bookworm (Debian 12's 2.1) or backports "
                          "(2.3); default ZFSREP_LAB_ZFS or "
                          f"{DEFAULT_ZFS}; a non-default variant runs as lab instance "
                          "<instance>-VARIANT"))
    ap.add_argument("--repeat", type=int, help="runs per tool and scenario (default 3)")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help=f"comma-separated scenarios (default {','.join(SCENARIOS)})")
    ap.add_argument("--tools", default=None,
                    help=("comma-separated tools (default all: "
                          f"{', '.join(T.REPLICATORS + [T.SANOID])})"))
    ap.add_argument("--keep-lab", action="store_true", help="leave the lab running afterwards")
    ap.add_argument("--no-install", action="store_true",
                    help="the lab already has this checkout and the peers installed")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS}")
    args = ap.parse_args(argv)
    bad = set(args.only.split(",")) - set(SCENARIOS)
    if bad:
        ap.error(f"unknown scenario(s): {', '.join(sorted(bad))}")
    return args


def host_rows() -> list[tuple[str, str]]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))
        mem_s = f"{mem / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        mem_s = "?"
    return [("host", (f"{cpu}, {os.cpu_count()} cores, {mem_s} RAM, "
                      f"{platform.system()} {platform.release()}"))]


def git_rev() -> str:
    proc = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parent.parent)
    return proc.stdout.strip() or "?"


def environment(g: Guests, accel: str, load_start: str, rev: str,
                zfs: str) -> list[tuple[str, str]]:
    from tests.lab import vm

    rows = host_rows()
    rows.append(("host load (1/5/15 min), start → end",
                 f"{load_start} → {' '.join(f'{x:.1f}' for x in os.getloadavg())}"))
    rows.append(("VMs", f"2 × qemu-system-x86_64, {accel.upper()}"
                 + (" (-cpu qemu64, multi-threaded TCG)" if accel == "tcg" else "")
                 + f", {vm.SMP} vCPU, {vm.MEM_MIB} MiB RAM, ARC max 256 MiB, pool on a "
                   f"{vm.POOL_DISK} qcow2 disk each, private link between them"))
    for what, cmd in T.VERSIONS.items():
        lines = g.sh("source", cmd, check=False).strip().splitlines()
        value = lines[0] if lines else "?"
        if what == T.ZFSREP:
            value = f"{value} (checkout {rev})"
        elif what == T.OPENZFS:  # the first word is the version the report records per section
            value = f"{value} (lab image variant {zfs})"
        rows.append((what, value))
    return rows


def prepare(g: Guests, sizes) -> None:
    """Config files for zfsrep and sanoid; a fresh, empty pool on each side."""
    g.lab.reset()
    g.write("source", T.CONFIG, T.zfsrep_config(sizes.hourly))
    g.write("source", T.SNAP_CONFIG, T.zfsrep_snap_config(sizes.hourly))
    g.write("source", f"{T.SANOID_DIR}/sanoid.conf", T.sanoid_config(sizes.hourly))
    g.sh("source", f"cp /usr/share/sanoid/sanoid.defaults.conf {T.SANOID_DIR}/ && "
                   f"rm -rf /var/cache/sanoid* {T.STATE_DIR}")
    g.sh("source", f"zfsrep config check --config {T.CONFIG} && "
                   f"zfsrep config check --config {T.SNAP_CONFIG}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = QUICK if args.quick else FULL
    if args.repeat:
        sizes = dataclasses.replace(sizes, repeats=args.repeat)
    wanted = [s for s in SCENARIOS if s in args.only.split(",")]
    tools = args.tools.split(",") if args.tools else T.REPLICATORS + [T.SANOID]
    # the sections of scenarios not run now are carried over from the report being replaced
    # (read first: a report that cannot be read stops us before the lab is started)
    carried = report.parse_previous(args.out.read_text()) if args.out.exists() else {}

    from tests.lab.lab import Lab
    from tests.lab.paths import LabError, variant_instance

    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rev = git_rev()  # what is installed now (others may commit while the benchmark runs)
    lab = Lab(variant_instance(args.zfs), zfs=args.zfs)  # bench, or bench-<variant>
    g = Guests(lab)
    counters = Counters(g)
    t0 = time.monotonic()
    outcomes = []
    try:
        info = lab.up()
        log(f"lab {lab.instance} up ({'already running' if info.get('already_running') else info.get('mode')})")
        if not args.no_install:
            lab.install(peers=True)
        accel = lab._state().get("accel", "?")
        prepare(g, sizes)
        counters.install()
        bench = Bench(g, counters, sizes, tools)
        for name in wanted:
            log(f"--- scenario {name}")
            try:
                outcomes.append(getattr(bench, name)())
            except (LabError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
                # the other scenarios still run; the table says this one broke, and why
                log(f"scenario {name} broke: {exc}")
                outcomes.append(Outcome(name, "(not measured)", notes=[
                    f"the scenario broke during set-up or measurement: {str(exc)[:400]}"]))
                lab.reset()
        env_rows = environment(g, accel, load_start, rev, lab.zfs)
    except (LabError, RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(f"bench: ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            counters.remove()
        except Exception as exc:  # noqa: BLE001 - clean-up must not hide the real error
            print(f"bench: clean-up in the VMs failed: {exc}", file=sys.stderr)
        if not args.keep_lab:
            lab.down()

    command = "python -m bench" + (" " + shlex.join(argv if argv is not None else sys.argv[1:])
                                   if (argv if argv is not None else sys.argv[1:]) else "")
    scenarios, by_key = [], {}
    for o in outcomes:
        order = T.REPLICATORS if o.key != "snap" else T.SNAPSHOTTERS
        summaries = stats.summarize(o.runs, o.key, [t for t in order if t in tools])
        by_key[o.key] = summaries
        scenarios.append(report.Scenario(o.key, o.sizes, o.commands, summaries, tuple(o.notes)))
    env = report.Environment(
        command=command, quick=args.quick,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        + f" (benchmark took {(time.monotonic() - t0) / 60:.0f} min)",
        rows=env_rows, method=METHOD)
    args.out.write_text(report.render(env, scenarios, stats.verdicts(by_key), carried))
    log(f"wrote {args.out}")
    return 0
