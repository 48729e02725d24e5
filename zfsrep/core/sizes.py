"""Byte counts the way admins read them: ``512 B``, ``5.0 MiB``, ``1.2 TiB`` (binary units)."""

from __future__ import annotations


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``"1M"`` → 1048576: a whole number with an optional binary suffix K, M, G or T (either
    case), as zfs reads sizes. ValueError otherwise."""
    text = text.strip()
    unit = text[-1:].upper() if text[-1:].isalpha() else ""
    number = text[: len(text) - len(unit)] if unit else text
    if unit not in _UNITS or not number.isdigit():
        raise ValueError(f"not a size: {text!r}")
    return int(number) * _UNITS[unit]
