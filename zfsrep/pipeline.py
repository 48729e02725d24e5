"""The data path: `zfs send` → [compressor] → [mbuffer/pv] → `ssh … zfs receive`, joined by
OS pipes. Python starts the processes and hands each one's stdout to the next one's stdin as a
file descriptor; no byte of the stream passes through Python. It watches the first stage's
stderr for `zfs send -v -P` progress, collects every stage's exit status and stderr, and says
which stage failed first (a stage that died of a broken pipe is a victim, not the cause).

This module is the only user of `subprocess` for data pipelines (`zfsrep.execute` runs the
control-plane commands).
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zfsrep.core.stream_tools import COMPRESSORS, mbuffer_argv
from zfsrep.zfs.stream import parse_estimate, parse_progress_line

TAIL_LINES = 20
Progress = Callable[[int, "int | None"], None]  # (bytes so far, estimated total)


@dataclass(frozen=True)
class Stage:
    name: str  # what the user sees: "zfs send", "zstd", "mbuffer", "ssh to backup"
    argv: Sequence[str]


@dataclass
class StageResult:
    name: str
    argv: list[str]
    returncode: int | None
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None

    @property
    def broken_pipe(self) -> bool:
        """It failed only because a later stage went away (a victim, not the cause)."""
        return self.returncode == -signal.SIGPIPE or "broken pipe" in self.stderr.lower()

    def last_line(self) -> str:
        """The last line of its stderr that is not a broken pipe's (on the far side of ssh, a
        receiving mbuffer complains after `zfs receive` said why it stopped)."""
        lines = [ln.strip() for ln in self.stderr.strip().splitlines() if ln.strip()]
        causes = [ln for ln in lines if "broken pipe" not in ln.lower()]
        return (causes or lines)[-1] if lines else ""

    def describe(self) -> str:
        if self.signal_name:
            how = f"killed by {self.signal_name}"
        else:
            how = f"exit status {self.returncode}"
        line = self.last_line()
        return f"{self.name} failed ({how})" + (f": {line}" if line else "")


@dataclass
class PipelineResult:
    stages: list[StageResult]
    seconds: float
    bytes: int = 0  # stream bytes as counted by `zfs send -P` (0 without progress output)
    estimated: int | None = None  # the `size` zfs send announced at the start
    progress_seen: bool = field(default=False, repr=False)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages)

    @property
    def failure(self) -> StageResult | None:
        """The stage that caused the failure: the first failed stage that did not merely die
        of a broken pipe; failing that, the last failed stage."""
        failed = [s for s in self.stages if not s.ok]
        if not failed:
            return None
        causes = [s for s in failed if not s.broken_pipe]
        return causes[0] if causes else failed[-1]


def _tail(f) -> str:
    f.seek(0)
    data = f.read()
    text = data[-16384:].decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-TAIL_LINES:])


# `zfs send -v` chatter that is not an error: the stream summary and a resume token's contents
_NOT_ERRORS = ("full\t", "incremental\t", "\t", " ", "resume token contents", "nvlist version")


class _SendWatcher(threading.Thread):
    """Reads the first stage's stderr line by line: progress lines go to the callback, the rest
    is kept (bounded) for the error message."""

    def __init__(self, stream, progress: Progress | None):
        super().__init__(daemon=True)
        self.stream = stream
        self.progress = progress
        self.per_snapshot: dict[str, int] = {}  # zfs restarts the count for each snapshot
        self.seen = False
        self.estimated: int | None = None
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)

    @property
    def bytes(self) -> int:
        return sum(self.per_snapshot.values())

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sample = parse_progress_line(line)
            if sample is not None:
                done, snap = sample
                self.per_snapshot[snap] = max(self.per_snapshot.get(snap, 0), done)
                self.seen = True
            else:
                size = parse_estimate(line)
                if size is not None:
                    self.estimated = size
                elif line.strip() and not line.startswith(_NOT_ERRORS):
                    self.lines.append(line)
                else:
                    continue
            if self.progress is not None:
                try:
                    self.progress(self.bytes, self.estimated)
                except Exception:  # a broken display must not break the transfer
                    self.progress = None
        self.stream.close()


def _kill_all(procs: Sequence[subprocess.Popen]) -> None:
    """Kill the stages still running and reap them (a stage failed to start, or an interrupt)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def run_pipeline(stages: Sequence[Stage], *, progress: Progress | None = None,
                 env: dict[str, str] | None = None) -> PipelineResult:
    """Run ``stages`` joined stdout→stdin by OS pipes and wait for all of them.

    The first stage's stdin is /dev/null; the last stage's stdout is kept (like its stderr)
    for the result. Raises FileNotFoundError (after stopping what started) if a program is
    missing; every other failure is in the returned result.
    """
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    started = time.monotonic()
    procs: list[subprocess.Popen] = []
    errfiles: list = []
    out = tempfile.TemporaryFile()
    watcher: _SendWatcher | None = None
    try:
        upstream = None
        for i, stage in enumerate(stages):
            last = i == len(stages) - 1
            err = subprocess.PIPE if i == 0 else tempfile.TemporaryFile()
            errfiles.append(err)
            proc = subprocess.Popen(
                list(stage.argv),
                stdin=upstream if upstream is not None else subprocess.DEVNULL,
                stdout=out if last else subprocess.PIPE,
                stderr=err,
                env=env,
                close_fds=True,
            )
            if upstream is not None:
                upstream.close()  # the child holds it now; EOF and EPIPE must reach the ends
            upstream = proc.stdout
            procs.append(proc)
            if i == 0:
                watcher = _SendWatcher(proc.stderr, progress)
                watcher.start()
        for proc in procs:
            proc.wait()
    except BaseException:
        _kill_all(procs)
        raise
    finally:
        if watcher is not None:
            watcher.join(timeout=30)
    results: list[StageResult] = []
    for i, (stage, proc) in enumerate(zip(stages, procs, strict=True)):
        if i == 0:
            stderr = "\n".join(watcher.lines) if watcher else ""
        else:
            stderr = _tail(errfiles[i])
            errfiles[i].close()
        if i == len(stages) - 1:
            stdout = _tail(out)
            stderr = "\n".join(x for x in (stderr, stdout) if x.strip())
        results.append(StageResult(stage.name, list(stage.argv), proc.returncode, stderr))
    out.close()
    result = PipelineResult(results, seconds=time.monotonic() - started)
    if watcher is not None:
        result.bytes, result.estimated, result.progress_seen = watcher.bytes, watcher.estimated, watcher.seen
        if result.ok and result.estimated is not None:
            # progress is sampled once a second: the final second is not in the last sample
            result.bytes = max(result.bytes, result.estimated)
    return result



# --- the replication data path -----------------------------------------------------------------

DEFAULT_RATE_BUFFER = "16M"


def buffer_stage(mbuffer: str | None, rate_limit: str | None, *, have: Callable[[str], bool]) -> Stage | None:
    """The sender's buffer: mbuffer (`-m size`, `-r rate`) when configured or needed for a rate
    limit; `pv -L` as the rate limiter when mbuffer is missing. Raises LookupError naming what
    is missing."""
    if mbuffer is None and rate_limit is None:
        return None
    if have("mbuffer"):
        return Stage("mbuffer", mbuffer_argv(mbuffer or DEFAULT_RATE_BUFFER, rate_limit))
    if mbuffer is None and have("pv"):
        return Stage("pv", ["pv", "-q", "-L", rate_limit])
    raise LookupError("mbuffer" if mbuffer else "mbuffer or pv")


def replication_stages(send: Sequence[str], recv: Sequence[str], *, ssh_prefix: Sequence[str],
                       destination: str, compress: str = "none", buffer: Stage | None = None,
                       receive_buffer: str | None = None) -> list[Stage]:
    """send → [compress] → [buffer] → ssh (remote: [mbuffer |] [decompress |] zfs receive).

    ``receive_buffer`` (the target's `mbuffer` size) puts mbuffer on the receiving end too, in
    front of the decompressor: it takes the stream while `zfs receive` waits on its pool's
    transaction groups, so the sender and the network do not stall with it. The remote side is
    one shell word built with `shlex.join` from argv lists."""
    stages = [Stage("zfs send", list(send))]
    remote = [list(recv)]
    if compress != "none":
        comp, decomp = COMPRESSORS[compress]
        stages.append(Stage(comp[0], comp))
        remote.insert(0, decomp)
    if receive_buffer is not None:
        remote.insert(0, mbuffer_argv(receive_buffer))
    if buffer is not None:
        stages.append(buffer)
    stages.append(Stage(f"ssh to {destination}", [*ssh_prefix, " | ".join(shlex.join(a) for a in remote)]))
    return stages


# --- the receiving end: `zfsrep serve` --------------------------------------------------------

def run_passed_through(argvs: Sequence[Sequence[str]]) -> int:
    """Run ``argvs`` joined stdout→stdin by OS pipes, this process's stdin feeding the first and
    its stdout taking the last; every stage writes to this process's stderr (what ssh carries
    back to the sender). Returns the exit status of the stage that failed first of its own
    accord (not of a broken pipe), 128 + N for a signal N; 0 when all succeeded. Raises
    FileNotFoundError (after stopping what started) if a program is missing."""
    procs: list[subprocess.Popen] = []
    try:
        upstream = None
        for i, argv in enumerate(argvs):
            last = i == len(argvs) - 1
            proc = subprocess.Popen(list(argv), stdin=upstream, stdout=None if last else subprocess.PIPE,
                                    close_fds=True)
            if upstream is not None:
                upstream.close()
            upstream = proc.stdout
            procs.append(proc)
        for proc in procs:
            proc.wait()
    except BaseException:
        _kill_all(procs)
        raise
    results = [StageResult(argv[0], list(argv), proc.returncode) for argv, proc in zip(argvs, procs, strict=True)]
    cause = PipelineResult(results, seconds=0.0).failure
    if cause is None or cause.returncode is None:
        return 0
    return 128 - cause.returncode if cause.returncode < 0 else cause.returncode
