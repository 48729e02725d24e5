"""Smoke test of the lab itself: real OpenZFS full + incremental send/recv, VM to VM."""

from __future__ import annotations

import re
import sys
import time

import pytest

from tests.lab.paths import GuestHung, LabError

pytestmark = pytest.mark.lab

WRITE_FILES = r"""
set -e
d=/tank/smoke/$1
mkdir -p "$d"
i=0
while [ $i -lt $2 ]; do
    head -c $(( (i * 7919) % 300000 + 1 )) /dev/urandom > "$d/f$i.bin"
    i=$((i + 1))
done
"""


def _sums(lab, host: str, path: str) -> dict[str, str]:
    out = lab.ssh(host, f"cd {path} && find . -type f -print0 | sort -z | xargs -0 sha256sum")
    sums = {}
    for line in out.stdout.splitlines():
        digest, name = line.split(None, 1)
        sums[name] = digest
    return sums


def _snap_guids(lab, host: str, dataset: str) -> dict[str, tuple[str, str]]:
    out = lab.ssh(host, ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,guid,creation",
                         "-r", dataset])
    snaps = {}
    for line in out.stdout.splitlines():
        name, guid, creation = line.split("\t")
        snaps[name.split("@", 1)[1]] = (guid, creation)
    return snaps


def test_full_and_incremental_send_between_vms(clean_lab):
    lab = clean_lab
    t0 = time.monotonic()
    lab.ssh("source", "zfs create tank/smoke")
    lab.ssh("source", ["sh", "-c", WRITE_FILES, "write", "a", "24"])
    lab.ssh("source", "zfs snapshot tank/smoke@s1")
    lab.ssh("source", "zfs send tank/smoke@s1 | ssh target zfs recv -u backup/smoke")

    lab.ssh("source", ["sh", "-c", WRITE_FILES, "write", "b", "16"])
    lab.ssh("source", "rm /tank/smoke/a/f3.bin && head -c 5000 /dev/urandom >> /tank/smoke/a/f5.bin")
    lab.ssh("source", "zfs snapshot tank/smoke@s2")
    lab.ssh("source", "zfs send -I @s1 tank/smoke@s2 | ssh target zfs recv -u backup/smoke")
    lab.ssh("target", "zfs mount backup/smoke")

    for snap in ("s1", "s2"):
        want = _sums(lab, "source", f"/tank/smoke/.zfs/snapshot/{snap}")
        got = _sums(lab, "target", f"/backup/smoke/.zfs/snapshot/{snap}")
        assert want, f"no files in source snapshot {snap}"
        assert got == want, f"content of @{snap} differs between source and target"
    assert _sums(lab, "target", "/backup/smoke") == _sums(lab, "source", "/tank/smoke")
    assert len(_sums(lab, "source", "/tank/smoke")) == 24 + 16 - 1

    src = _snap_guids(lab, "source", "tank/smoke")
    dst = _snap_guids(lab, "target", "backup/smoke")
    assert set(src) == {"s1", "s2"}
    assert dst == src, "snapshot GUIDs / creation times differ"
    print(f"\nlab smoke test (send/recv part): {time.monotonic() - t0:.1f} s", file=sys.stderr)


HANGING_ZFS = "printf '#!/bin/sh\\nsleep 3600\\n' > /usr/local/sbin/zfs && chmod +x /usr/local/sbin/zfs"


def test_a_reset_that_hangs_restarts_the_lab(lab):
    """A zfs command stuck in a guest would fail every later test at set-up, each after the
    reset's timeout. The tests' reset restarts the lab instead, says what the guests showed,
    and leaves a lab that works."""
    before = lab.running()
    lab.ssh("source", "zfs create tank/left-over")
    lab.ssh("target", HANGING_ZFS)  # every `zfs` in target now hangs (it comes first in PATH)
    why = lab.reset_or_restart(timeout=20)

    assert why is not None and "ssh target: timed out after 20 s" in why, why
    assert "/usr/local/sbin/zfs" in why.split("--- target now:", 1)[1], why  # the hung one
    after = lab.running()
    assert all(after[v] not in (None, before[v]) for v in before), (before, after)
    assert lab.ssh("target", "test -e /usr/local/sbin/zfs", check=False).returncode == 1
    for v, pool in lab.pools.items():
        assert lab.ssh(v, ["zfs", "list", "-H", "-t", "all", "-o", "name", "-r", pool]
                       ).stdout.split() == [pool]
    assert lab.run_zfsrep(["--version"]).stdout.startswith("zfsrep ")
    assert lab.reset_or_restart() is None


# A pool on a device-mapper device that is then suspended: its I/O waits forever, as behind a
# lost completion, and zfs commands in that pool block in the kernel.
HANGING_POOL = """
set -e
truncate -s 128M /var/tmp/hang.img
loop=$(losetup -f --show /var/tmp/hang.img)
dmsetup create zfsrep-hang --table "0 $(blockdev --getsz "$loop") linear $loop 0"
zpool create -O mountpoint=/hang hang /dev/mapper/zfsrep-hang
dmsetup suspend zfsrep-hang
"""


def test_a_command_stuck_in_the_guest_kernel_is_a_guest_hang_and_the_lab_restarts(lab):
    """A slow command is a plain timeout. A command blocked in the guest's kernel is GuestHung
    (a lab test failing with it runs once more), with the guest's stuck tasks and their kernel
    stacks; the next reset restarts the lab at once instead of hanging on the stuck pool."""
    with pytest.raises(LabError) as slow:
        lab.ssh("target", "sleep 30", timeout=3)
    assert not isinstance(slow.value, GuestHung)

    before = lab.running()
    lab.ssh("target", "sysctl -q kernel.hung_task_timeout_secs=10")
    lab.ssh("target", HANGING_POOL)
    with pytest.raises(GuestHung) as hung:
        lab.ssh("target", "zfs create hang/x", timeout=45)
    text = str(hung.value)
    assert text.startswith("ssh target: timed out after 45 s: zfs create hang/x"), text
    assert re.search(r"^blocked in the kernel: target: .*\bzfs:\d+", text, re.M), text
    assert re.search(r"INFO: task zfs:\d+ blocked for more than \d+ seconds", text), text
    assert re.search(r"^\d+ zfs:\n(    .*\n)*    .*txg_wait_synced", text, re.M), text  # its stack

    with pytest.raises(GuestHung, match="^not run .*: zpool destroy hang$"):
        lab.ssh("target", "zpool destroy hang", timeout=45)  # e.g. a test's clean-up: not run
    t = time.monotonic()
    why = lab.reset_or_restart(timeout=240)
    assert why is not None and why.startswith("a command hung in the guest's kernel:"), why
    assert time.monotonic() - t < 240 + 60, "the reset waited on the stuck pool before restarting"
    after = lab.running()
    assert all(after[v] not in (None, before[v]) for v in before), (before, after)
    assert lab.ssh("target", "zpool list -H -o name").stdout.split() == ["backup"]
    assert lab.ssh("target", "sysctl -n kernel.hung_task_timeout_secs").stdout.strip() == "60"
    assert lab.reset_or_restart() is None
