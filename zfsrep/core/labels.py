"""Retention labels (periods), in order from shortest to longest."""

from __future__ import annotations

LABELS: tuple[str, ...] = ("frequent", "hourly", "daily", "weekly", "monthly", "yearly")

# The nominal length of each period; calendar-aware bucketing lives in core.schedule.
FREQUENT_MINUTES = 15
