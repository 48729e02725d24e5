"""`python -m bench.pipe_ab [--mib N] [--rounds N] [--zfs VARIANT]`: A/B runs of the bare data
path in the lab, to tell what in zfsrep's pipeline costs throughput (bench/README.md, "What in
the data path costs throughput").

Each round runs every variant once, in turn, on the same snapshot (N MiB from /dev/urandom,
compression off) from `source` into `backup/ab` on `target`, destroying the copy before each:

  direct     zfs send | ssh (a new connection, its handshake included) zfs receive -u
  shared     the same through an open ControlMaster connection (as zfsrep's sends go)
  zfsrep     zfsrep's flags through the open connection: send -L -c -v -P, receive -u -s
             -o canmount=noauto

`--variants` picks others (each of zfsrep's differences alone: send-Lc, send-vP, recv-s, recv-o).
It prints each run's seconds, then per variant the median and its ratio to the first. The lab
must be up (python -m tests.lab up); the dataset is left for later runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench.scenarios import rotated
from tests.lab.lab import Lab
from tests.lab.paths import variant_instance, zfs_variant

CTL = "-o ControlMaster=no -o ControlPath=/tmp/pipe-ab.ctl"
NEW = "-o ControlMaster=no -o ControlPath=none"
VARIANTS = {
    "direct": f"zfs send tank/ab@s1 | ssh {NEW} target zfs receive -u backup/ab",
    "shared": f"zfs send tank/ab@s1 | ssh {CTL} target zfs receive -u backup/ab",
    "zfsrep": (f"zfs send -L -c -v -P tank/ab@s1 2>/tmp/pipe-ab.err | ssh {CTL} target "
               "zfs receive -u -s -o canmount=noauto backup/ab"),
    # one of zfsrep's differences each, through the open connection
    "send-Lc": f"zfs send -L -c tank/ab@s1 | ssh {CTL} target zfs receive -u backup/ab",
    "send-vP": f"zfs send -v -P tank/ab@s1 2>/tmp/pipe-ab.err | ssh {CTL} target zfs receive -u backup/ab",
    "recv-s": f"zfs send tank/ab@s1 | ssh {CTL} target zfs receive -u -s backup/ab",
    "recv-o": f"zfs send tank/ab@s1 | ssh {CTL} target zfs receive -u -o canmount=noauto backup/ab",
}
DEFAULT = ("direct", "shared", "zfsrep")
PREPARE = """
zfs list tank/ab >/dev/null 2>&1 || {{ zfs create -o compression=off tank/ab &&
    head -c {mib}M /dev/urandom > /tank/ab/data && zfs snapshot tank/ab@s1; }}
ssh -o ControlPath=/tmp/pipe-ab.ctl -O exit target 2>/dev/null
ssh -o ControlMaster=yes -o ControlPath=/tmp/pipe-ab.ctl -o ControlPersist=3600 -fN target
"""
ONE = """
ssh {new} target 'zfs destroy -r backup/ab 2>/dev/null; true'
s=$(date +%s%N); {cmd} || exit 1; e=$(date +%s%N)
echo $(( (e - s) / 1000000 ))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pipe_ab", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--zfs", default=None, help="the lab's OpenZFS variant (default: the default lab)")
    ap.add_argument("--variants", default=",".join(DEFAULT),
                    help=f"comma-separated, the first is the baseline; of {', '.join(VARIANTS)}")
    args = ap.parse_args(argv)
    chosen = args.variants.split(",")
    if unknown := [v for v in chosen if v not in VARIANTS]:
        ap.error(f"unknown variants: {', '.join(unknown)}")
    zfs = zfs_variant(args.zfs)
    lab = Lab(variant_instance(zfs), zfs=zfs)
    lab.ssh("source", PREPARE.format(mib=args.mib), timeout=3600)
    runs: dict[str, list[float]] = {v: [] for v in chosen}
    for r in range(args.rounds):
        for v in rotated(chosen, r):
            ms = lab.ssh("source", ONE.format(new=NEW, cmd=VARIANTS[v]), timeout=7200).stdout.split()[-1]
            runs[v].append(int(ms) / 1000)
            print(f"round {r + 1} {v}: {runs[v][-1]:.2f} s", flush=True)
    lab.ssh("target", "zfs destroy -r backup/ab 2>/dev/null; true")
    base = statistics.median(runs[chosen[0]])
    version = lab.ssh("source", "zfs version").stdout.split()[0]  # e.g. zfs-2.3.2-1~bpo12+1
    print(f"\n{args.mib} MiB, {args.rounds} rounds, {version} (lab {lab.instance}):")
    for v, secs in runs.items():
        med = statistics.median(secs)
        print(f"  {v:7} median {med:7.2f} s  throughput {base / med:.3f} x {chosen[0]}  "
              f"({', '.join(f'{s:.1f}' for s in secs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
