"""The four scenarios: set-up in the VMs (untimed), then rounds of timed runs, tools alternating.

Each round runs every tool once, in an order rotated per round, so slow drift of the host
(other VMs, thermal, caches) hits every tool alike.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, field, replace

from bench import tools as T
from bench.guest import Counters, Guests
from bench import stats
from bench.stats import Run


@dataclass(frozen=True)
class Sizes:
    bulk_mib: int = 2048
    noop_datasets: int = 100
    noop_snapshots: int = 50
    incr_datasets: int = 20
    incr_snapshots: int = 20
    snap_datasets: int = 1000
    repeats: int = 3
    hourly: int = 2  # snapshot+prune: hourly retention of both tools


FULL = Sizes()
QUICK = Sizes(bulk_mib=128, noop_datasets=20, noop_snapshots=10, incr_datasets=5,
              incr_snapshots=5, snap_datasets=100)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def rotated(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


@dataclass
class Outcome:
    key: str
    sizes: str
    commands: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # zfsrep's own account of each successful replicate run: (`phases`, wall s, pipeline s)
    zfsrep_phases: list[tuple[dict[str, float], float, float]] = field(default_factory=list)


class Bench:
    def __init__(self, guests: Guests, counters: Counters, sizes: Sizes, tools: list[str]):
        self.g = guests
        self.c = counters
        self.sizes = sizes
        self.tools = tools

    # ---- helpers ------------------------------------------------------------------------
    def src(self, script: str, timeout: float = 7200) -> str:
        return self.g.sh("source", script, timeout=timeout)

    def tgt(self, script: str, timeout: float = 3600, check: bool = True) -> str:
        return self.g.sh("target", script, timeout=timeout, check=check)

    def clear_copy(self, target: str, check: bool = True) -> None:
        """Destroy a tool's copy on target, with the holds a tool placed on its snapshots
        (zfs-autobackup holds what it received): a copy left in place would let the next run
        of that tool find nothing to send and "verify" at once. -f: a tool may leave its copy
        mounted (busy). zfs's own message is kept, so a failure says why. Then waits until the
        pool has freed the copy's blocks (`zpool wait -t free`): a destroy frees in the
        background, which would otherwise slow the next tool's timed run."""
        self.tgt(f"""
if zfs list -H -o name {target} >/dev/null 2>&1; then
    snaps=$(zfs list -H -t snapshot -o name -r {target})
    if [ -n "$snaps" ]; then
        zfs holds -H $snaps | while IFS="$(printf '\t')" read -r snap tag _; do
            zfs release "$tag" "$snap" || exit 1
        done || exit 1
    fi
    zfs destroy -r -f {target}
fi
zpool wait -t free {target.split("/")[0]}
! zfs list -H -o name {target} >/dev/null 2>&1""", check=check)

    def measure(self, out: Outcome, tool: str, index: int, cmd: str, verify,
                size: int | None = None, sample: bool = False) -> Run:
        """One timed, counted run; `verify()` returns '' if the result is right, else why not."""
        self.c.reset()
        t = self.g.timed(cmd, sample=sample)
        zs, zt, conns, prof = self.c.read()
        why = t.tail.splitlines()[-1] if t.rc != 0 and t.tail else ""
        if t.rc != 0:
            why = f"exit {t.rc}: {why}"
        else:
            why = verify()
        cpu = tuple((f"source CPU s {comm}", round(sec)) for comm, sec in t.cpu)
        run = Run(out.key, tool, index, t.seconds, not why, zs, zt, conns, size, why[:300],
                  prof + cpu)
        log(f"{out.key} #{index} {tool}: {t.seconds:.1f} s, zfs {zs}/{zt}, ssh {conns}"
            + (f" FAILED: {why[:200]}" if why else ""))
        out.runs.append(run)
        if tool == T.ZFSREP and run.ok and " replicate " in cmd:
            out.zfsrep_phases.append(self.zfsrep_account(t.seconds))
        return run

    def zfsrep_account(self, wall: float) -> tuple[dict[str, float], float, float]:
        """(phases, wall s, pipeline s) of the last zfsrep replicate run, from its result."""
        doc = json.loads(self.src(f"cat {T.STATE_DIR}/last-replicate.json"))
        pipeline = sum(step["seconds"] for item in doc["items"]
                       for step in item.get("details", {}).get("steps", []))
        return dict(doc.get("phases") or {}), wall, pipeline

    def profile_note(self, out: Outcome) -> None:
        """Where zfsrep's time went in this scenario, from its own results (medians)."""
        if not out.zfsrep_phases:
            return
        text = stats.phase_profile([p for p, _, _ in out.zfsrep_phases], [w for _, w, _ in out.zfsrep_phases])
        out.notes.append(
            f"profile: zfsrep's own account of its runs (`phases` in its result), medians: {text}. "
            "startup: from the process's start to the run's (interpreter, imports, config); "
            "ssh_connect: waiting for the master connection begun at the run's start; sends: "
            "the send/receive pipelines; target_prune: checking what arrived (one `zfs get guid`) and pruning; "
            "other: everything not in a named phase (planning, writing the result, exit)")

    def untimed(self, cmd: str, what: str) -> None:
        t = self.g.timed(cmd)
        if t.rc != 0:
            log(f"{what}: exit {t.rc}: {t.tail[-300:]}")

    def make_children(self, parent: str, count: int, width: int, mounted: bool) -> None:
        opts = "" if mounted else "-o canmount=off"
        self.src(f"zfs create -p {parent} && seq -f '{parent}/d%0{width}g' 0 {count - 1} | "
                 f"xargs -P 8 -n 1 zfs create {opts}")

    def target_parents(self, name: str, tools: list[str], parent_of=None) -> None:
        parents = {T.dest(t, name, parent_of(t) if parent_of else None).rsplit("/", 1)[0]
                   for t in tools}
        self.tgt(" && ".join(f"zfs create -p {p}" for p in sorted(parents)))

    def seed(self, snapshot: str, dests: list[str], steps: list[str] | None = None) -> None:
        """Receive a replication stream of `snapshot` into each of `dests` (same GUIDs).

        ``steps``: snapshot names (of the same tree, oldest first, the last one `snapshot`'s)
        to send one stream up to each: a full stream to the first, then `-R -I` increments.
        Thousands of snapshots in one receive stalled the 2.3 lab once; smaller streams also
        show progress."""
        dataset, last = snapshot.split("@", 1)
        steps = steps or [last]
        for d in dests:
            previous = None
            for i, step in enumerate(steps, 1):
                since = f"-I @{previous} " if previous else ""
                self.src(f"zfs send -R {since}{dataset}@{step} | "
                         f"ssh target zfs receive -u {d}")
                if len(steps) > 1:
                    log(f"seeded {d} up to @{step} ({i}/{len(steps)})")
                previous = step

    # ---- 1. bulk --------------------------------------------------------------------------
    def bulk(self) -> Outcome:
        s = self.sizes
        tools = [t for t in self.tools if t in T.REPLICATORS]
        out = Outcome("bulk", f"one dataset, {s.bulk_mib} MiB from /dev/urandom (recordsize "
                      f"128K, compression off), full send; {s.repeats} runs per tool")
        ds = f"{T.SRC}/bulk"
        log(f"bulk: writing {s.bulk_mib} MiB of random data")
        self.src(f"zfs create -p -o compression=off {ds} && "
                 f"head -c {s.bulk_mib}M /dev/urandom > /{ds}/data && zfs snapshot {ds}@s1")
        self.src(f"zfs set autobackup:bulk=true {ds}")
        self.target_parents("bulk", tools)
        guid = self.src(f"zfs get -H -p -o value guid {ds}@s1").strip()
        size = int(self.src(f"zfs send -nvP {ds}@s1 | awk '/^size/ {{print $2}}'").strip())
        cmds = {t: self.bulk_cmd(t) for t in tools}
        out.commands = cmds
        for r in range(s.repeats):
            for tool in rotated(tools, r):
                target = T.dest(tool, "bulk")
                self.clear_copy(target)

                def verify(target=target):
                    got = self.tgt(f"zfs get -H -p -o value guid {target}@s1", check=False)
                    return "" if got.strip() == guid else f"{target}@s1 missing or GUID differs"

                self.measure(out, tool, r + 1, cmds[tool], verify, size=size, sample=True)
                self.clear_copy(target, check=False)
        out.notes.append(f"stream size {size} bytes (`zfs send -nvP`); MB/s = stream bytes / "
                         "wall time. `source CPU s`: CPU seconds per process name in `source` "
                         "(1 vCPU), sampled with `ps` every 5 s (processes shorter than that "
                         "are missed)")
        raw = [r.seconds for r in out.runs if r.tool == T.RAW and r.ok]
        if out.zfsrep_phases and raw:
            # zfsrep's pipeline runs over its open master connection; the raw pipe's run
            # includes its own ssh handshake, measured here on its own
            shake = statistics.median(self.g.timed("ssh target true").seconds for _ in range(3))
            pipe = statistics.median(p for _, _, p in out.zfsrep_phases)
            bare = statistics.median(raw) - shake
            out.notes.append(
                f"throughput of the data path alone: zfsrep's send/receive pipeline ran "
                f"{pipe:.1f} s (median); the raw pipe's run less its ssh handshake "
                f"(`ssh target true`: {shake:.1f} s, median of 3) {bare:.1f} s: "
                f"{bare / pipe:.3f} x raw. The rest of zfsrep's wall time is its fixed cost per run")
        self.profile_note(out)
        return out

    def bulk_cmd(self, tool: str) -> str:
        if tool == T.RAW:
            return f"zfs send {T.SRC}/bulk@s1 | ssh target zfs receive -u {T.dest(tool, 'bulk')}"
        return T.replicate_cmd(tool, "bulk", recursive=False)

    # ---- 2. no-op -------------------------------------------------------------------------
    def noop(self) -> Outcome:
        s = self.sizes
        tools = [t for t in self.tools if t in T.REPLICATORS]
        out = Outcome("noop", f"{s.noop_datasets} datasets (+ their parent) × "
                      f"{s.noop_snapshots} snapshots, all already on target; "
                      f"{s.repeats} runs per tool after one untimed warm-up run each")
        parent = f"{T.SRC}/noop"
        log(f"noop: creating {s.noop_datasets} datasets × {s.noop_snapshots} snapshots")
        self.make_children(parent, s.noop_datasets, 3, mounted=False)
        last = f"s{s.noop_snapshots:04d}"
        self.src(f"for i in $(seq -f '%04g' 1 {s.noop_snapshots}); do "
                 f"zfs snapshot -r {parent}@s$i; done")
        shared = T.dest(T.RAW, "noop", T.SHARED)
        self.tgt(f"zfs create -p {shared.rsplit('/', 1)[0]}")
        log("noop: seeding the target (replication streams of up to 10 snapshots per dataset)")
        self.seed(f"{parent}@{last}", [shared],
                  [f"s{i:04d}" for i in range(10, s.noop_snapshots, 10)] + [last])
        self.src(f"zfs set autobackup:noop=true {parent}")
        cmds = {t: self.noop_cmd(t) for t in tools}
        out.commands = cmds
        want = int(self.tgt(f"zfs list -H -t snapshot -o name -r {shared} | wc -l"))

        def verify():
            n = int(self.tgt(f"zfs list -H -t snapshot -o name -r {shared} | wc -l"))
            return "" if n == want else f"target snapshots changed: {want} -> {n}"

        for tool in tools:
            self.untimed(cmds[tool], f"noop warm-up {tool}")
        for r in range(s.repeats):
            for tool in rotated(tools, r):
                self.measure(out, tool, r + 1, cmds[tool], verify)
        out.notes.append("raw pipe: the least any tool must do to know there is nothing to send "
                         "without remembering anything between runs — one `zfs list` of GUIDs "
                         "on each side over one ssh connection, compared")
        out.notes.append("zfsrep on OpenZFS >= 2.2 remembers its last listing (state dir "
                         "`listings/`) and lists snapshots only of datasets whose `guid`, "
                         "`snapshots_changed` or `origin` changed since; its untimed warm-up run "
                         "plays the previous scheduled run. On 2.1 it lists everything, like the "
                         "raw pipe (docs/architecture.md)")
        left_out = [t for t in T.REPLICATORS if t not in tools]
        if left_out:
            out.notes.append(f"not run in this measurement (--tools): {', '.join(left_out)}")
        self.profile_note(out)
        return out

    def noop_cmd(self, tool: str) -> str:
        parent = f"{T.SRC}/noop"
        if tool == T.RAW:
            shared = T.dest(T.RAW, "noop", T.SHARED)
            return (f"test \"$(zfs list -H -p -t snapshot -o guid -r {parent} | sort)\" = "
                    f"\"$(ssh target zfs list -H -p -t snapshot -o guid -r {shared} | sort)\"")
        return T.replicate_cmd(tool, "noop", recursive=True, parent=T.SHARED)

    # ---- 3. incremental -------------------------------------------------------------------
    def incr(self) -> Outcome:
        s = self.sizes
        tools = [t for t in self.tools if t in T.REPLICATORS]
        out = Outcome("incr", f"{s.incr_snapshots} new snapshots (64 KiB of new data each) on "
                      f"each of {s.incr_datasets} datasets (+ their parent); {s.repeats} runs "
                      "per tool, each after an untimed warm-up with one new snapshot")
        parent = f"{T.SRC}/incr"
        log(f"incr: {s.incr_datasets} datasets")
        self.make_children(parent, s.incr_datasets, 2, mounted=True)
        self.src(f"zfs snapshot -r {parent}@i0000")
        self.target_parents("incr", tools)
        self.seed(f"{parent}@i0000", [T.dest(t, "incr") for t in tools])
        self.src(f"zfs set autobackup:incr=true {parent}")
        counter = [0]

        def new_snapshots(n: int) -> tuple[str, str]:
            first = counter[0]
            self.src(f"""
for i in $(seq {first + 1} {first + n}); do
  for d in /{parent}/d*; do head -c 65536 /dev/urandom > "$d/f$i"; done
  zfs snapshot -r {parent}@i$(printf %04d $i)
done""")
            counter[0] += n
            return f"i{first:04d}", f"i{first + n:04d}"

        prev, new = new_snapshots(1)
        for tool in tools:
            self.untimed(self.incr_cmd(tool, prev, new), f"incr warm-up {tool}")
        for r in range(s.repeats):
            prev, new = new_snapshots(s.incr_snapshots)
            for tool in rotated(tools, r):
                target = T.dest(tool, "incr")

                def verify(target=target, new=new):
                    n = int(self.tgt(f"zfs list -H -t snapshot -o name -r {target} | "
                                     f"grep -c '@{new}$' || true"))
                    want = s.incr_datasets + 1
                    return "" if n == want else f"{n} of {want} datasets have @{new} on target"

                cmd = self.incr_cmd(tool, prev, new)
                out.commands.setdefault(tool, cmd)
                self.measure(out, tool, r + 1, cmd, verify)
        out.notes.append("raw pipe: the limit — one `zfs send -R -I` stream of the whole tree "
                         "through one ssh connection")
        self.profile_note(out)
        return out

    def incr_cmd(self, tool: str, prev: str, new: str) -> str:
        parent = f"{T.SRC}/incr"
        if tool == T.RAW:
            return (f"zfs send -R -I @{prev} {parent}@{new} | "
                    f"ssh target zfs receive -u {T.dest(tool, 'incr')}")
        return T.replicate_cmd(tool, "incr", recursive=True)

    # ---- 4. snapshot + prune --------------------------------------------------------------
    def snap(self) -> Outcome:
        s = self.sizes
        # Every timed run must take one snapshot per dataset and prune one. sanoid (2.1) prunes
        # by the listing it made before taking its snapshot, so it keeps hourly + 1 and first
        # prunes in run hourly + 2: the warm-up has hourly + 1 rounds, and `verify` refuses a
        # run that did not prune exactly one snapshot name.
        warmup_rounds = s.hourly + 1
        tools = [t for t in self.tools if t in T.SNAPSHOTTERS]
        out = Outcome("snap", f"{s.snap_datasets} datasets (+ their parent), hourly retention "
                      f"{s.hourly}; the source clock moves 1 h before each round, so every "
                      f"run takes one snapshot of every dataset and prunes the oldest; "
                      f"{s.repeats} runs per tool after {warmup_rounds} untimed rounds")
        parent = f"{T.SRC}/snap"
        log(f"snap: creating {s.snap_datasets} datasets")
        self.make_children(parent, s.snap_datasets, 4, mounted=False)
        prefix = {T.ZFSREP: "zfsrep_hourly_", T.SANOID: "autosnap_"}
        out.commands = {t: T.snapshot_cmd(t) for t in tools}
        n_ds = s.snap_datasets + 1

        def names(tool: str) -> dict[str, int]:
            text = self.src(f"zfs list -H -t snapshot -o name -r {parent} | "
                            f"sed -n 's/.*@\\({prefix[tool]}.*\\)$/\\1/p' | sort | uniq -c")
            return {ln.split()[1]: int(ln.split()[0]) for ln in text.splitlines() if ln.strip()}

        listed: dict[str, dict[str, int]] = {}  # tool -> names after its run, from `verify`

        def advance() -> None:
            self.src("date -u -s @$(( $(date +%s) + 3600 )) >/dev/null")

        try:
            for w in range(warmup_rounds):
                advance()
                for tool in tools:
                    self.untimed(out.commands[tool], f"snap warm-up {tool}")
            for r in range(s.repeats):
                advance()
                for tool in rotated(tools, r):
                    before = names(tool)

                    def verify(tool=tool, before=before):
                        after = listed[tool] = names(tool)
                        added = [n for n in after if n not in before]
                        if len(added) != 1 or after[added[0]] != n_ds:
                            return f"expected one new snapshot on all {n_ds} datasets: {added}"
                        if any(c != n_ds for c in after.values()):
                            return "some snapshot names are not on every dataset"
                        if len(after) > s.hourly + 1:
                            return f"{len(after)} snapshot names kept (retention {s.hourly})"
                        gone = [n for n in before if n not in after]
                        if len(gone) != 1:
                            return f"pruned {len(gone)} snapshot names, not one: not a steady run"
                        return ""

                    self.measure(out, tool, r + 1, out.commands[tool], verify)
                    after = listed.pop(tool) if tool in listed else names(tool)  # failed: unverified
                    pruned = len(set(before) - set(after))
                    last = out.runs[-1]
                    out.runs[-1] = replace(last, profile=last.profile + (
                        ("snapshot names pruned", pruned),))
        finally:
            self.g.lab.set_clocks()
        out.notes.append("sanoid runs with `recursive = zfs` (its fastest mode: one atomic "
                         "`zfs snapshot -r`); zfsrep with `recursive = true`; each tool's config "
                         "holds only this tree")
        return out
