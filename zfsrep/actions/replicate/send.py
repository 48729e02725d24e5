"""Sending: the events a running send reports (`ProgressEvent`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    dataset: str
    target: str
    step: str  # the step being sent, e.g. "incremental tank/a@s1 -> tank/a@s4 (3 snapshot(s))"
    bytes: int
    estimated: int | None


ProgressFn = Callable[[ProgressEvent], None]
