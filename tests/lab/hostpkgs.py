"""Install the host tools the lab needs (Debian packages), only if something is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .paths import LabError

# command -> Debian package providing it
NEEDED = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "mkfs.ext4": "e2fsprogs",
    "unshare": "util-linux",
    "chroot": "coreutils",
    "zstd": "zstd",
}


def missing_packages() -> list[str]:
    return sorted({pkg for cmd, pkg in NEEDED.items() if shutil.which(cmd) is None})


def ensure_host_packages() -> None:
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise LabError(f"host packages missing and not root: apt-get install {' '.join(missing)}")
    print(f"lab: installing host packages: {' '.join(missing)}", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]):
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.splitlines()[-20:])
            raise LabError(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    still = missing_packages()
    if still:
        raise LabError(f"host packages still missing after install: {still}")
