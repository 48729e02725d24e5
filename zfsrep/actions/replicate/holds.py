"""The holds replicate keeps on the source: ``zfsrep:<target>`` on the newest snapshot each
target has (`zfsrep snapshot` never prunes a held snapshot)."""

from __future__ import annotations

HOLD_PREFIX = "zfsrep:"


def hold_tag(target: str) -> str:
    """The hold zfsrep keeps on the newest replicated snapshot per target (`zfsrep snapshot`
    never prunes a held snapshot)."""
    return f"{HOLD_PREFIX}{target}"
