"""Byte counts the way admins read them: ``512 B``, ``5.0 MiB``, ``1.2 TiB`` (binary units)."""

from __future__ import annotations


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
