"""What the pytest fixtures call (kept here so conftest.py stays tiny)."""

from __future__ import annotations

import sys
import time

from .lab import Lab

_session_lab: Lab | None = None


def lab_session() -> Lab:
    """Bring the lab up and install the current checkout, once per Python process."""
    global _session_lab
    if _session_lab is None:
        lab = Lab()
        t = time.monotonic()
        info = lab.up()
        lab.install()
        print(f"\nlab {lab.instance}: ready in {time.monotonic() - t:.1f} s "
              f"({'already running' if info.get('already_running') else 'booted'})",
              file=sys.stderr)
        _session_lab = lab
    return _session_lab
