"""Replicate's failure lines: what a failed send/receive means and what to do about it, and a
target-wide failure always naming the target and its host."""

from __future__ import annotations

from zfsrep.config.model import TargetConfig
from zfsrep.errors import ZfsrepError
from zfsrep.pipeline import PipelineResult
from zfsrep.zfs import parse
from zfsrep.zfs import stream as zs


def pipeline_fix(result: PipelineResult, *, tds: str, host: str, target: str) -> str:
    """What to do about a failed send/receive, from what its stages said."""
    cause = result.failure
    stderr = " ".join(s.stderr for s in result.stages).lower()
    if "has been modified" in stderr:
        return (f"{tds} on {host} was changed after its newest snapshot; set "
                f"targets.{target}.force = true to roll it back on receive, or run "
                f"`zfs rollback` on it")
    if cause is not None and cause.name.startswith("ssh") and cause.returncode == 255:
        return "the ssh connection failed; check the network and the target, then rerun"
    if "no space" in stderr or "out of space" in stderr:
        return f"the pool on {host} is full; free space (or lower retention) and rerun"
    if zs.receive_saved_partial(stderr):
        return "rerun: the partial receive is kept and the next run resumes it"
    if zs.receive_refused(stderr):
        return f"zfs on {host} refused the stream; fix what it says, then rerun"
    return "rerun: a partial receive, if any, is kept and the next run resumes it"


def first_line(e: ZfsrepError) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def unknown_property(e: ZfsrepError, target: TargetConfig, host: str) -> str | None:
    """A configured receive property the target's zfs does not know (the target's listing
    reads them all): one line naming it and where it is configured."""
    stderr = getattr(e, "stderr", "")
    for name in sorted(target.properties):
        if parse.unknown_property(stderr, name):
            return (f"target {target.name} ({host}): zfs there does not know the property "
                    f"{name!r} (targets.{target.name}.properties); remove it, or upgrade "
                    f"OpenZFS on {host}")
    return None


def one_line(e: ZfsrepError, target: TargetConfig, host: str) -> str:
    """A target-wide failure, always naming the target and host."""
    text = first_line(e)
    return text if text.startswith("target ") else f"target {target.name} ({host}): {text}"
