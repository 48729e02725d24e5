"""Pure argv builders for the data path (`zfs send` / `zfs recv`) and parsers of their text.

Nothing here runs anything: `zfsrep.pipeline` joins these argvs with OS pipes, and the remote
side (`zfs recv`) is handed to ssh as one `shlex.join`-ed word by the caller.

Send flags: `-L -c` always (large blocks and compressed records as stored; every OpenZFS
≥ 0.7 has them); `-w` (raw) for encrypted datasets, which keeps the data encrypted on the
wire and on the target. `-v -P` adds machine-readable progress on stderr.

Not `-e`: a stream with embedded records cannot be received into an encrypted dataset
("incompatible embedded data stream feature with encrypted receive", openzfs#10732), and a
backup pool that encrypts what it receives is a common set-up. Without `-e`, the few blocks
stored inside their block pointers travel as ordinary (compressed) records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SEND_FLAGS = ("-L", "-c")


def incremental_flags(base: str) -> list[str]:
    """Every snapshot after ``base`` (`-I`); from a bookmark (``ds#bm``) `-i`, ``snapshot``
    alone: `-I` refuses one ("multiple snapshots cannot be sent from a bookmark")."""
    return ["-i" if "#" in base else "-I", base]


def send_argv(snapshot: str, *, base: str | None = None, raw: bool = False,
              progress: bool = False) -> list[str]:
    """`zfs send` of ``snapshot``: full, or incremental from ``base`` (`incremental_flags`)."""
    argv = ["zfs", "send", *SEND_FLAGS]
    if raw:
        argv.append("-w")
    if progress:
        argv += ["-v", "-P"]
    if base is not None:
        argv += incremental_flags(base)
    argv.append(snapshot)
    return argv


def resume_send_argv(token: str, *, progress: bool = False) -> list[str]:
    """`zfs send -t` continues an interrupted stream; the token carries the original flags."""
    argv = ["zfs", "send"]
    if progress:
        argv += ["-v", "-P"]
    argv += ["-t", token]
    return argv


def estimate_argv(snapshot: str, *, base: str | None = None, raw: bool = False) -> list[str]:
    """Dry-run send (`-n -P`): prints the estimated stream size, sends nothing."""
    argv = ["zfs", "send", "-n", "-P", *SEND_FLAGS]
    if raw:
        argv.append("-w")
    if base is not None:
        argv += incremental_flags(base)
    argv.append(snapshot)
    return argv


def resume_probe_argv(token: str) -> list[str]:
    """Dry-run resume: fails if the token's snapshot is gone; else prints its contents and size."""
    return ["zfs", "send", "-n", "-v", "-P", "-t", token]


def recv_argv(dataset: str, *, force: bool = False, properties: Mapping[str, str] | None = None,
              filesystem: bool = True) -> list[str]:
    """Safe receive: never mounts (`-u`), saves partial state for resume (`-s`), no rollback
    unless ``force`` (`-F`). ``properties`` are set on the received dataset (`-o`); mount
    properties only apply to filesystems, so they are dropped for volumes."""
    argv = ["zfs", "receive", "-u", "-s"]
    if force:
        argv.append("-F")
    for key, value in sorted((properties or {}).items()):
        if not filesystem and key in ("canmount", "mountpoint"):
            continue
        argv += ["-o", f"{key}={value}"]
    argv.append(dataset)
    return argv


def recv_abort_argv(dataset: str) -> list[str]:
    """Discard a partially received stream (and its resume token)."""
    return ["zfs", "receive", "-A", dataset]


def create_placeholder_argv(dataset: str, *, parents: bool = False) -> list[str]:
    """A missing parent of a receiving dataset: never mounted, holds nothing itself.
    With ``parents`` (`-p`), missing ancestors are created too (with default properties)."""
    return ["zfs", "create", *(["-p"] if parents else []), "-o", "canmount=off", dataset]


# --- parsers -------------------------------------------------------------------------------

_SIZE_LINE = re.compile(r"^size\s+(\d+)\s*$", re.MULTILINE)
_PROGRESS_LINE = re.compile(r"^\d\d:\d\d:\d\d\s+(\d+)\s+(\S.*)$")
_TOKEN_FIELD = re.compile(r"^\s*(toname|toguid|fromguid|bytes)\s*=\s*(.+?)\s*$", re.MULTILINE)


def parse_estimate(text: str) -> int | None:
    """The `size N` line of `zfs send -n -P` (stdout or stderr, depending on the version)."""
    sizes = _SIZE_LINE.findall(text)
    return int(sizes[-1]) if sizes else None


def parse_progress_line(line: str) -> tuple[int, str] | None:
    """(bytes, snapshot) from one `zfs send -v -P` progress line (`HH:MM:SS<TAB>bytes<TAB>snap`).

    The count restarts for each snapshot of an `-I` stream, so callers sum per snapshot."""
    m = _PROGRESS_LINE.match(line.rstrip("\n"))
    return (int(m.group(1)), m.group(2)) if m else None


@dataclass(frozen=True)
class TokenContents:
    toname: str | None
    toguid: int | None
    fromguid: int | None
    bytes_done: int | None  # bytes already received before the interruption


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def parse_token_contents(text: str) -> TokenContents:
    """Fields of `zfs send -n -v -t TOKEN` output (`toname = pool/ds@snap`, `toguid = 0x…`)."""
    fields = dict(_TOKEN_FIELD.findall(text))
    return TokenContents(
        toname=fields.get("toname"),
        toguid=_int(fields.get("toguid")),
        fromguid=_int(fields.get("fromguid")),
        bytes_done=_int(fields.get("bytes")),
    )


def receive_saved_partial(stderr: str) -> bool:
    """`zfs receive -s` was cut off and kept what arrived: a resumed send continues it."""
    return "partially received snapshot is saved" in stderr.lower()


def receive_refused(stderr: str) -> bool:
    """`zfs receive` refused the stream (nothing kept to resume): the same stream would be
    refused again."""
    return "cannot receive" in stderr.lower() and not receive_saved_partial(stderr)
