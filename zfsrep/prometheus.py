"""node-exporter textfile metrics for `zfsrep status --prometheus FILE`, written atomically
(a temporary file in the same directory, fsync, rename) so the collector never reads half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from zfsrep.core.freshness import EXIT_CODES, Verdict

# name -> (help, value of a verdict or None to leave the sample out)
_METRICS = (
    ("zfsrep_last_success_timestamp_seconds", "When the dataset last replicated to the target successfully.",
     lambda v: v.observation.last_success),
    ("zfsrep_last_attempt_timestamp_seconds", "When replication of the dataset to the target was last tried.",
     lambda v: v.observation.last_attempt),
    ("zfsrep_last_run_success", "1 if the last replication of the dataset to the target succeeded, else 0.",
     lambda v: None if v.observation.last_status is None else float(v.observation.last_status != "failed")),
    ("zfsrep_last_run_bytes", "Bytes sent by the last replication of the dataset to the target.",
     lambda v: v.observation.bytes),
    ("zfsrep_last_run_seconds", "Seconds the last replication of the dataset to the target took.",
     lambda v: v.observation.seconds),
    ("zfsrep_newest_snapshot_timestamp_seconds", "Creation time of the newest snapshot on the target.",
     lambda v: v.observation.newest_target_time),
    ("zfsrep_age_seconds", "Age of the copy on the target (see `zfsrep status`).",
     lambda v: v.age),
    ("zfsrep_status", "Nagios state of the copy: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
     lambda v: float(EXIT_CODES[v.state])),
)


def render(verdicts: Sequence[Verdict], *, now: float) -> str:
    lines: list[str] = []
    for name, help_text, value_of in _METRICS:
        samples = [(v, value_of(v)) for v in verdicts]
        samples = [(v, x) for v, x in samples if x is not None]
        if not samples:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for v, x in samples:
            labels = f'dataset="{_escape(v.observation.dataset)}",target="{_escape(v.observation.target)}"'
            lines.append(f"{name}{{{labels}}} {_number(x)}")
    lines += ["# HELP zfsrep_status_timestamp_seconds When these metrics were written.",
              "# TYPE zfsrep_status_timestamp_seconds gauge", f"zfsrep_status_timestamp_seconds {_number(now)}"]
    return "\n".join(lines) + "\n"


def write_textfile(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (mode 0644, as node-exporter runs as another user)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
