"""Running things in the lab's VMs for the benchmark: timed commands, and the two counters.

Counters (installed by `Counters.install`, removed by `Counters.remove`):
  * `zfs` invocations: a wrapper at /usr/local/sbin/zfs on both VMs (first on root's PATH,
    also for commands arriving over ssh) appends its argv to /run/zfsrep-bench/zfs.log and
    execs the real zfs;
  * ssh connections: sshd's own log on `target` ("Accepted publickey ... from <source's
    link address>"), counted before and after each run.
While the benchmark runs, root's ssh config in `source` is a plain one without
ControlMaster (as on a user's machine), so each tool's own connection handling is measured.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass

from tests.lab.lab import Lab
from tests.lab.paths import LINK_ADDRS

RUN_DIR = "/run/zfsrep-bench"
ZFS_LOG = f"{RUN_DIR}/zfs.log"
OUT_LOG = f"{RUN_DIR}/out.log"
WRAPPER = "/usr/local/sbin/zfs"
SSH_CONFIG = "/root/.ssh/config"
SSH_CONFIG_SAVED = "/root/.ssh/config.lab"

INSTALL_WRAPPER = f"""
set -e
real=
for p in /usr/sbin/zfs /sbin/zfs; do [ -x "$p" ] && {{ real=$p; break; }}; done
[ -n "$real" ] || {{ echo "no zfs binary in /usr/sbin or /sbin" >&2; exit 1; }}
mkdir -p {RUN_DIR}
: > {ZFS_LOG}
cat > {WRAPPER}.tmp <<EOF
#!/bin/sh
# zfsrep benchmark: counts zfs invocations; removed when the benchmark ends
printf '%s\\n' "\\$*" >> {ZFS_LOG}
exec $real "\\$@"
EOF
chmod 755 {WRAPPER}.tmp && mv {WRAPPER}.tmp {WRAPPER}
# zfs-replicate runs `env - zfs ...` (no PATH: /bin, /usr/bin): count those calls too
if [ -L /usr/bin/zfs ] && [ ! -e {RUN_DIR}/usr-bin-zfs ]; then
    readlink /usr/bin/zfs > {RUN_DIR}/usr-bin-zfs
    ln -sfn {WRAPPER} /usr/bin/zfs
fi
"""
REMOVE_WRAPPER = f"""
if [ -s {RUN_DIR}/usr-bin-zfs ]; then ln -sfn "$(cat {RUN_DIR}/usr-bin-zfs)" /usr/bin/zfs; fi
rm -f {WRAPPER} {WRAPPER}.tmp; rm -rf {RUN_DIR}
"""

# Root's ssh config in source without connection sharing; the lab's original is put back.
PLAIN_SSH_CONFIG = f"""
set -e
ssh -O exit target 2>/dev/null || true
[ -f {SSH_CONFIG_SAVED} ] || cp -p {SSH_CONFIG} {SSH_CONFIG_SAVED}
grep -v -i -E '^[[:space:]]*Control(Master|Path|Persist)' {SSH_CONFIG_SAVED} > {SSH_CONFIG}.tmp
chmod 600 {SSH_CONFIG}.tmp && mv {SSH_CONFIG}.tmp {SSH_CONFIG}
"""
RESTORE_SSH_CONFIG = f"[ -f {SSH_CONFIG_SAVED} ] && mv {SSH_CONFIG_SAVED} {SSH_CONFIG} || true"


PS_LOG = f"{RUN_DIR}/ps.log"


@dataclass(frozen=True)
class Timed:
    rc: int
    seconds: float
    tail: str  # last lines of the command's output (for failures)
    cpu: tuple[tuple[str, float], ...] = ()  # CPU seconds by command name (sampled runs)


def _cputime(text: str) -> float:
    """ps TIME ([[dd-]hh:]mm:ss) -> seconds."""
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return (int(days) if days else 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def cpu_by_command(samples: str, top: int = 5) -> tuple[tuple[str, float], ...]:
    """CPU seconds each command name used between the first and the last `ps` sample
    (samples separated by lines `--`), largest first."""
    blocks = [b for b in samples.split("--\n") if b.strip()]
    if not blocks:
        return ()
    first: dict[str, float] = {}
    last: dict[str, tuple[str, float]] = {}
    for i, block in enumerate(blocks):
        for line in block.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            pid, comm, t = parts[0], " ".join(parts[1:-1]), _cputime(parts[-1])
            if i == 0:
                first[pid] = t
            last[pid] = (comm, t)
    used: Counter[str] = Counter()
    for pid, (comm, t) in last.items():
        used[comm] += t - first.get(pid, 0.0)
    return tuple((c, float(t)) for c, t in used.most_common(top) if t > 0)


class Guests:
    """Shell access to source and target (through the lab's multiplexed host ssh)."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def sh(self, host: str, script: str, timeout: float = 3600, check: bool = True,
           input: str | None = None) -> str:
        return self.lab.ssh(host, ["sh", "-c", script], check=check, timeout=timeout,
                            input=input).stdout

    def write(self, host: str, path: str, text: str) -> None:
        q = shlex.quote(path)
        self.sh(host, f"mkdir -p \"$(dirname {q})\" && cat > {q}", input=text)

    def timed(self, cmd: str, timeout: float = 7200, sample: bool = False) -> Timed:
        """Run `cmd` in source's shell; the wall time is taken inside the VM. With `sample`,
        `ps` every 5 s records which processes use the (single) vCPU."""
        sampler = (f": > {PS_LOG}; ( while :; do ps -eo pid=,comm=,time= >> {PS_LOG}; "
                   f"echo -- >> {PS_LOG}; sleep 5; done ) & S=$!;") if sample else ""
        stop = f" kill $S; ps -eo pid=,comm=,time= >> {PS_LOG};" if sample else ""
        script = (f"mkdir -p {RUN_DIR}; {sampler} T0=$(date +%s%N); ( {cmd} ) > {OUT_LOG} 2>&1"
                  f" </dev/null; rc=$?; T1=$(date +%s%N);{stop} echo \"$rc $T0 $T1\"")
        out = self.sh("source", script, timeout=timeout).split()
        rc, t0, t1 = int(out[-3]), int(out[-2]), int(out[-1])
        tail = "" if rc == 0 else self.sh("source", f"tail -n 5 {OUT_LOG}", check=False)
        cpu = cpu_by_command(self.sh("source", f"cat {PS_LOG}")) if sample else ()
        return Timed(rc, (t1 - t0) / 1e9, tail.strip(), cpu)

    def last_output(self, lines: int = 40) -> str:
        return self.sh("source", f"tail -n {lines} {OUT_LOG}", check=False)


class Counters:
    def __init__(self, guests: Guests):
        self.g = guests
        self._accepted = 0

    def install(self) -> None:
        for vm in ("source", "target"):
            self.g.sh(vm, INSTALL_WRAPPER)
            where = self.g.sh(vm, "command -v zfs; readlink /usr/bin/zfs").split()
            if where != [WRAPPER, WRAPPER]:
                raise RuntimeError(f"{vm}: `zfs` resolves to {where}, not the counting wrapper")
        # commands that arrive over ssh (as the tools run them) must also see the wrapper
        where = self.g.sh("source", "ssh target command -v zfs").strip()
        if where != WRAPPER:
            raise RuntimeError(f"target over ssh: `zfs` resolves to {where!r}, not {WRAPPER}")
        self.g.sh("source", PLAIN_SSH_CONFIG)

    def remove(self) -> None:
        for vm in ("source", "target"):
            self.g.sh(vm, REMOVE_WRAPPER, check=False)
        self.g.sh("source", RESTORE_SSH_CONFIG, check=False)

    def accepted(self) -> int:
        addr = LINK_ADDRS["source"]
        out = self.g.sh("target", "journalctl -q --no-pager -o cat _COMM=sshd | "
                        f"grep -c 'Accepted publickey for root from {addr} ' || true")
        return int(out.strip() or 0)

    def reset(self) -> None:
        for vm in ("source", "target"):
            self.g.sh(vm, f": > {ZFS_LOG}")
        self._accepted = self.accepted()

    def read(self) -> tuple[int, int, int, tuple[tuple[str, int], ...]]:
        """(zfs calls on source, on target, new ssh connections, profile) since reset()."""
        calls = {vm: self.g.sh(vm, f"cat {ZFS_LOG}").splitlines() for vm in ("source", "target")}
        ssh_new = self.accepted() - self._accepted
        prof: Counter[str] = Counter()
        for vm, lines in calls.items():
            for line in lines:
                sub = line.split(" ", 1)[0] if line.strip() else "(none)"
                prof[f"{vm} {'receive' if sub == 'recv' else sub}"] += 1
        return (len(calls["source"]), len(calls["target"]), ssh_new,
                tuple(sorted(prof.items())))
