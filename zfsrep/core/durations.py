"""Durations written the way admins write them: ``90s``, ``15m``, ``26h``, ``7d``, ``2w``,
``1h30m``; a bare number means seconds."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; raises ValueError with the expected form."""
    if isinstance(text, bool):
        raise ValueError("expected a duration like 90s, 15m, 26h, 7d")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("expected a non-negative duration")
        return float(text)
    s = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"expected a duration like 90s, 15m, 26h, 7d, got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: ``3d4h``, ``26h``, ``5m``, ``42s``."""
    seconds = int(round(seconds))
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts) or "0s"
