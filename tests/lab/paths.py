"""Where the lab keeps things: cache (shared, outside the repo) and run dir (per instance)."""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

from .recipe import DEFAULT_ZFS, ZFS_VARIANTS

LAB_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAB_DIR.parent.parent
GUEST_FILES = LAB_DIR / "guest-files"

VM_NAMES = ("source", "target")
POOLS = {"source": "tank", "target": "backup"}
# Address of each VM on the private link (also baked into the image's /etc/hosts).
LINK_ADDRS = {"source": "10.77.0.1", "target": "10.77.0.2"}
HOST_IP_FROM_GUEST = "10.0.2.2"


class LabError(RuntimeError):
    """The lab could not do what was asked; the message says why."""


class GuestHung(LabError):
    """A command in a guest timed out while the guest's kernel reported tasks blocked for
    minutes (its hung-task detector): the VM, not the code under test, is stuck. The message
    holds what the guests showed (Lab.diagnose)."""


def cache_dir() -> Path:
    return Path(os.environ.get("ZFSREP_LAB_CACHE", "/var/cache/zfsrep-lab"))


def instance_name() -> str:
    name = os.environ.get("ZFSREP_LAB_INSTANCE", "default")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", name):
        raise LabError(f"bad ZFSREP_LAB_INSTANCE {name!r} (letters, digits, _ . -; max 32)")
    return name


def zfs_variant(zfs: str | None = None) -> str:
    """The OpenZFS variant asked for (argument, else env ZFSREP_LAB_ZFS, else the default)."""
    zfs = zfs or os.environ.get("ZFSREP_LAB_ZFS") or DEFAULT_ZFS
    if zfs not in ZFS_VARIANTS:
        raise LabError(f"unknown ZFSREP_LAB_ZFS {zfs!r}; one of {', '.join(ZFS_VARIANTS)}")
    return zfs


def variant_instance(zfs: str | None) -> str:
    """The lab instance for an OpenZFS image variant: the plain instance for the default (or
    for none asked), `<instance>-<variant>` for another, so both can run side by side."""
    if zfs is None or zfs == zfs_variant():
        return instance_name()
    return f"{instance_name()}-{zfs}"


def run_dir(instance: str | None = None) -> Path:
    instance = instance or instance_name()
    env = os.environ.get("ZFSREP_LAB_RUN")
    if env:
        return Path(env)
    return Path("/var/tmp/zfsrep-lab") / instance


def ssh_ports(instance: str) -> dict[str, int]:
    """Host ports forwarded to each VM's :22, derived from the instance name."""
    slot = zlib.crc32(instance.encode()) % 1500
    base = 22000 + slot * 4
    return {"source": base, "target": base + 1}
