"""What the pytest fixtures call (kept here so conftest.py stays tiny)."""

from __future__ import annotations

import sys
import time
import warnings

from .lab import Lab
from .paths import variant_instance, zfs_variant

_session_labs: dict[str, Lab] = {}


def lab_session(zfs: str | None = None) -> Lab:
    """Bring a lab up and install the current checkout, once per Python process and OpenZFS
    variant (None: the default lab, ZFSREP_LAB_ZFS or bookworm's)."""
    zfs = zfs_variant(zfs)
    if zfs not in _session_labs:
        lab = Lab(variant_instance(zfs), zfs=zfs)
        t = time.monotonic()
        info = lab.up()
        lab.install()
        print(f"\nlab {lab.instance} (OpenZFS {lab.zfs}): ready in {time.monotonic() - t:.1f} s "
              f"({'already running' if info.get('already_running') else 'booted'})",
              file=sys.stderr)
        lab.booted_here = not info.get("already_running")
        _session_labs[zfs] = lab
    return _session_labs[zfs]


def lab_done(zfs: str) -> None:
    """Stop a variant's lab after the tests that needed it, if this process booted it (one
    already running, e.g. kept for development, is left running)."""
    lab = _session_labs.pop(zfs_variant(zfs), None)
    if lab is not None and getattr(lab, "booted_here", False):
        lab.down()


class LabRestarted(UserWarning):
    """A test's set-up restarted the lab because emptying its pools failed or hung."""


def emptied(lab: Lab) -> Lab:
    """`lab` with both pools emptied; if that fails, restarted (and the test warns why, so
    the run's summary shows it)."""
    why = lab.reset_or_restart()
    if why is not None:
        warnings.warn(LabRestarted(f"lab {lab.instance}: emptying the pools failed, so the lab "
                                   f"was restarted before this test:\n{why}"), stacklevel=2)
    return lab
