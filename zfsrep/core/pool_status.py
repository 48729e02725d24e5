"""Parse `zpool status -p -v POOL` into what `zfsrep scrub` reports (pure, stdlib only).

The text format is meant for people, but its parts are stable across OpenZFS 0.8–2.3: the
``state:``, ``scan:`` (possibly continued on indented lines), ``config:`` table with
READ/WRITE/CKSUM counters (exact numbers with ``-p``) and ``errors:`` sections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FINISHED = re.compile(r"scrub repaired (?P<repaired>\S+) in (?P<took>.+?) with (?P<errors>\d+) errors? on (?P<when>.+)")
_DATA_ERRORS = re.compile(r"(?P<n>\d+) data errors?")
_PERCENT = re.compile(r"(?P<pct>\d+(?:\.\d+)?)% done")


@dataclass(frozen=True)
class PoolStatus:
    pool: str
    state: str = "UNKNOWN"
    scan: str = ""  # the scan: text, joined into one line
    scrubbing: bool = False
    finished: bool = False  # the last scrub completed (not canceled/in progress/never)
    repaired: str = ""
    scan_errors: int = 0  # "with N errors" of the finished scrub
    percent: float | None = None
    read: int = 0  # the highest counter in the pool's vdev tree (parents repeat children's)
    write: int = 0
    cksum: int = 0
    data_errors: int = 0  # files/objects with permanent errors
    error_files: tuple[str, ...] = field(default=())
    status: str = ""  # the status:/action: advice zpool gives, if any
    action: str = ""

    @property
    def healthy(self) -> bool:
        return (self.state == "ONLINE" and not self.scan_errors and not self.data_errors
                and not (self.read or self.write or self.cksum))

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.state != "ONLINE":
            out.append(f"pool state {self.state}")
        if self.scan_errors:
            out.append(f"the scrub found {self.scan_errors} error(s)")
        if self.read or self.write or self.cksum:
            out.append(f"device errors: {self.read} read, {self.write} write, {self.cksum} checksum")
        if self.data_errors:
            files = f" ({', '.join(self.error_files[:3])})" if self.error_files else ""
            out.append(f"{self.data_errors} file(s) with permanent errors{files}")
        return out


def _sections(text: str) -> dict[str, list[str]]:
    """``{key: lines}`` for "key: value" sections; continuation lines belong to the last key."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = re.match(r"^\s*(pool|state|status|action|scan|see|config|errors|remove):\s?(.*)$", line)
        if m and not line.startswith("\t\t"):
            current = m.group(1)
            sections.setdefault(current, []).append(m.group(2).strip())
        elif current is not None:
            sections[current].append(line)
    return sections


def parse_pool_status(pool: str, text: str) -> PoolStatus:
    s = _sections(text)
    scan = " ".join(x.strip() for x in s.get("scan", []) if x.strip())
    finished = _FINISHED.search(scan)
    percent = _PERCENT.search(scan)
    read = write = cksum = 0
    for line in s.get("config", [])[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[0] != "NAME" and all(c.isdigit() for c in cols[2:5]):
            read, write, cksum = max(read, int(cols[2])), max(write, int(cols[3])), max(cksum, int(cols[4]))
    errors = [x.strip() for x in s.get("errors", []) if x.strip()]
    first = errors[0] if errors else ""
    data = _DATA_ERRORS.search(first)
    files = tuple(errors[1:])  # with -v: one damaged file (or <0x..> object) per line
    data_errors = int(data.group("n")) if data else (len(files) or (1 if "Permanent errors" in first else 0))
    return PoolStatus(
        pool=pool,
        state=(s.get("state") or ["UNKNOWN"])[0] or "UNKNOWN",
        scan=scan,
        scrubbing="scrub in progress" in scan,
        finished=finished is not None,
        repaired=finished.group("repaired") if finished else "",
        scan_errors=int(finished.group("errors")) if finished else 0,
        percent=float(percent.group("pct")) if percent else None,
        read=read, write=write, cksum=cksum,
        data_errors=data_errors,
        error_files=files,
        status=" ".join(x.strip() for x in s.get("status", [])).strip(),
        action=" ".join(x.strip() for x in s.get("action", [])).strip(),
    )
