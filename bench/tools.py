"""What each tool runs in `source`, per scenario, and where it puts things on `target`.

Every tool runs with its defaults except where a scenario needs otherwise, and then the same
for all: no new snapshot of its own during replication (syncoid --no-sync-snap,
zfs-autobackup --no-snapshot --other-snapshots), so every tool sends the same snapshots.
"""

from __future__ import annotations

RAW = "raw pipe"
ZFSREP = "zfsrep"
SYNCOID = "syncoid"
ZAB = "zfs-autobackup"
ZREP = "zfs-replicate"
SANOID = "sanoid"
OPENZFS = "OpenZFS"  # its row in the machine table; the report records it per section

REPLICATORS = [RAW, ZFSREP, SYNCOID, ZAB, ZREP]
SNAPSHOTTERS = [ZFSREP, SANOID]

SRC = "tank/bench"
CONFIG = "/etc/zfsrep/bench.toml"
# snapshot+prune: only tank/bench/snap, as sanoid's config (the replication scenarios'
# datasets need not exist when it runs, e.g. `--only snap`)
SNAP_CONFIG = "/etc/zfsrep/bench-snap.toml"
SANOID_DIR = "/etc/zfsrep-bench/sanoid"
KEY = "/root/.ssh/id_ed25519"
STATE_DIR = "/var/lib/zfsrep-bench"  # zfsrep's state_dir in both configs

# The receiving parent of each tool on target (bulk and incremental: one tree per tool).
PARENT = {RAW: "backup/raw", ZFSREP: "backup/zfsrep", SYNCOID: "backup/syncoid",
          ZAB: "backup/zab", ZREP: "backup/zrep"}
# No-op: every tool looks at the same, already replicated tree.
SHARED = "backup/replica"


def dest(tool: str, name: str, parent: str | None = None) -> str:
    """Where `tool` receives tank/bench/<name>: raw and syncoid take an explicit dataset,
    the others append the source's full path to their parent."""
    parent = parent or PARENT[tool]
    if tool in (RAW, SYNCOID) and parent != SHARED:
        return f"{parent}/{name}"
    return f"{parent}/{SRC}/{name}"


def replicate_cmd(tool: str, name: str, *, recursive: bool, parent: str | None = None) -> str:
    """The command line that replicates tank/bench/<name> (for raw: see the scenarios)."""
    src = f"{SRC}/{name}"
    if tool == ZFSREP:
        return f"zfsrep replicate --config {CONFIG} --dataset {src}"
    if tool == SYNCOID:
        r = "-r " if recursive else ""
        return f"syncoid {r}--no-sync-snap {src} root@target:{dest(tool, name, parent)}"
    if tool == ZAB:
        return (f"zfs-autobackup --ssh-target target --no-snapshot --other-snapshots "
                f"{name} {parent or PARENT[tool]}")
    if tool == ZREP:
        r = "--recursive " if recursive else ""
        return f"zfs-replicate {r}-l root -i {KEY} target {parent or PARENT[tool]} {src}"
    raise ValueError(f"no replicate command for {tool}")


def snapshot_cmd(tool: str) -> str:
    if tool == ZFSREP:
        return f"zfsrep snapshot --config {SNAP_CONFIG}"
    if tool == SANOID:
        return f"sanoid --configdir {SANOID_DIR} --cron"
    raise ValueError(f"no snapshot command for {tool}")


def zfsrep_snap_config(hourly: int) -> str:
    """zfsrep's config for snapshot+prune: tank/bench/snap, hourly only."""
    return f"""\
state_dir = "{STATE_DIR}"
lock_dir = "/run/zfsrep-bench-lock"

[retention]
frequent = 0
hourly = {hourly}
daily = 0
weekly = 0
monthly = 0
yearly = 0

[[datasets]]
name = "{SRC}/snap"
recursive = true
targets = []
"""


def zfsrep_config(hourly: int) -> str:
    """zfsrep's config for the replication scenarios: bulk/incr into backup/zfsrep, no-op
    against the shared tree (and snapshot+prune of tank/bench/snap, as SNAP_CONFIG)."""
    return zfsrep_snap_config(hourly) + f"""
[[datasets]]
name = "{SRC}/bulk"
snapshot = false
targets = ["own"]

[[datasets]]
name = "{SRC}/incr"
recursive = true
snapshot = false
targets = ["own"]

[[datasets]]
name = "{SRC}/noop"
recursive = true
snapshot = false
targets = ["shared"]

[targets.own]
host = "target"
dataset = "{PARENT[ZFSREP]}"

[targets.shared]
host = "target"
dataset = "{SHARED}"
"""


def sanoid_config(hourly: int) -> str:
    """sanoid at its best for this scenario: `recursive = zfs` (one atomic snapshot -r)."""
    return f"""\
[{SRC}/snap]
\tuse_template = bench
\trecursive = zfs

[template_bench]
\tfrequently = 0
\thourly = {hourly}
\tdaily = 0
\tweekly = 0
\tmonthly = 0
\tyearly = 0
\tautosnap = yes
\tautoprune = yes
"""


VERSIONS = {
    ZFSREP: "zfsrep --version 2>&1 | head -1",
    "syncoid / sanoid": "syncoid --version 2>&1 | head -1 | sed 's/.*version //'",
    ZAB: "/opt/zfsrep-peers/bin/python3 -c "
         "'import importlib.metadata as m; print(m.version(\"zfs-autobackup\"))'",
    ZREP: "/opt/zfsrep-peers/bin/python3 -c "
          "'import importlib.metadata as m; print(m.version(\"zfs-replicate\"))'",
    OPENZFS: "zfs version | head -1",
    "guest kernel": "uname -r",
    "OpenSSH": "ssh -V 2>&1",
}
