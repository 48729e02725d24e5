"""Build (once) and cache the lab's guest image: Debian bookworm + OpenZFS from contrib.

Layout under the cache dir (default /var/cache/zfsrep-lab, env ZFSREP_LAB_CACHE):
    base-<key>/rootfs/        debootstrapped tree with kernel and zfs modules
    image-<key>/root.qcow2    compressed root disk (ext4 on /dev/vda)
    image-<key>/vmlinuz, initrd.img, info.json
Builds happen in tmp-* dirs and are renamed into place; a lock file serialises builders.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from . import recipe
from .hostpkgs import ensure_host_packages
from .paths import GUEST_FILES, LabError, cache_dir, zfs_variant

CHROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def variant_cache(zfs: str) -> Path:
    """Each variant caches its images in its own dir, so pruning one never drops another's."""
    return cache_dir() if zfs == recipe.DEFAULT_ZFS else cache_dir() / f"zfs-{zfs}"


def base_key(zfs: str = recipe.DEFAULT_ZFS) -> str:
    steps = recipe.base_steps(zfs)
    return _sha("base-v1", recipe.SUITE, recipe.MIRROR, " ".join(recipe.BASE_INCLUDE),
                *(f"{n}\n{s}" for n, s in steps))


def guest_files() -> list[Path]:
    return sorted(p for p in GUEST_FILES.rglob("*") if p.is_file())


def image_key(zfs: str = recipe.DEFAULT_ZFS) -> str:
    parts: list[str | bytes] = [base_key(zfs), "image-v1",
                                repr((recipe.FINAL_UNITS_ENABLE, recipe.FINAL_UNITS_DISABLE,
                                      recipe.FINAL_UNITS_MASK, recipe.ROOT_FREE_MIB))]
    for p in guest_files():
        parts += [str(p.relative_to(GUEST_FILES)), oct(p.stat().st_mode & 0o777), p.read_bytes()]
    return _sha(*parts)


@contextmanager
def build_lock(cache: Path):
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another process is building the image; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _rmtree(path: Path) -> None:
    if path.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def _run(argv: list[str], logf, what: str) -> None:
    logf.write(f"\n===== {what}: {' '.join(argv)[:300]}\n")
    logf.flush()
    proc = subprocess.run(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise LabError(f"image build step '{what}' failed (exit {proc.returncode}); "
                       f"log: {logf.name}\n{_tail(Path(logf.name))}")


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# Runs in a private mount namespace: every mount vanishes with the process, so a failed
# build can never leave the host's /dev or /proc bind-mounted inside a dir we delete.
_CHROOT_WRAPPER = r"""
set -e
R=$1; script=$2
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount -t tmpfs -o mode=755,size=16m devtmp "$R/dev"
for n in null zero full random urandom tty; do
    touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
ln -sf pts/ptmx "$R/dev/ptmx"
ln -sf /proc/self/fd "$R/dev/fd"
ln -sf /proc/self/fd/0 "$R/dev/stdin"
ln -sf /proc/self/fd/1 "$R/dev/stdout"
ln -sf /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs shm "$R/dev/shm"
cp /etc/resolv.conf "$R/etc/resolv.conf"
exec chroot "$R" /usr/bin/env -i PATH={path} HOME=/root LC_ALL=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive /bin/sh -exc "$script"
""".replace("{path}", CHROOT_PATH)


def run_in_chroot(root: Path, script: str, logf, what: str) -> None:
    _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _CHROOT_WRAPPER,
          "chroot-wrapper", str(root), "set -eu\n" + script], logf, what)


def _stage_dirs(cache: Path, stage: str, key: str) -> tuple[Path, Path, Path]:
    """(final dir, fresh tmp dir, log path) of one build stage."""
    tmp = cache / f"tmp-{stage}-{key}"
    _rmtree(tmp)
    tmp.mkdir(parents=True)
    return cache / f"{stage}-{key}", tmp, cache / f"build-{stage}-{key}.log"


def build_base(cache: Path, key: str, timings: dict, zfs: str) -> Path:
    final, tmp, logpath = _stage_dirs(cache, "base", key)
    root = tmp / "rootfs"
    with open(logpath, "w") as logf:
        t = time.monotonic()
        log(f"debootstrap {recipe.SUITE} (log: {logpath})")
        _run(["unshare", "--mount", "--propagation", "private",
              "debootstrap", "--variant=minbase", "--components=main,contrib",
              "--include=" + ",".join(recipe.BASE_INCLUDE),
              recipe.SUITE, str(root), recipe.MIRROR], logf, "debootstrap")
        timings["debootstrap"] = round(time.monotonic() - t, 1)
        log(f"debootstrap: {timings['debootstrap']} s")
        for name, script in recipe.base_steps(zfs):
            t = time.monotonic()
            log(f"{name} ...")
            run_in_chroot(root, script, logf, name)
            timings[name] = round(time.monotonic() - t, 1)
            log(f"{name}: {timings[name]} s")
    os.rename(tmp, final)
    return final


def _du_mib(path: Path) -> int:
    out = subprocess.run(["du", "-sxm", str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0])


def build_image(cache: Path, base: Path, key: str, timings: dict) -> Path:
    final, tmp, logpath = _stage_dirs(cache, "image", key)
    root = tmp / "rootfs"
    t = time.monotonic()
    with open(logpath, "w") as logf:
        _run(["cp", "-a", str(base / "rootfs"), str(root)], logf, "copy base")
        for src in guest_files():
            dst = root / src.relative_to(GUEST_FILES)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            os.chmod(dst, src.stat().st_mode & 0o777)
            os.chown(dst, 0, 0)
        (root / "etc/resolv.conf").unlink(missing_ok=True)
        (root / "etc/hostname").unlink(missing_ok=True)
        sysctl = ["systemctl", "--root", str(root)]
        _run(sysctl + ["enable", *recipe.FINAL_UNITS_ENABLE], logf, "enable units")
        for unit in recipe.FINAL_UNITS_DISABLE:
            subprocess.run(sysctl + ["disable", unit], stdout=logf, stderr=subprocess.STDOUT)
        _run(sysctl + ["mask", *recipe.FINAL_UNITS_MASK], logf, "mask units")
        kernels = sorted((root / "boot").glob("vmlinuz-*"))
        initrds = sorted((root / "boot").glob("initrd.img-*"))
        if len(kernels) != 1 or len(initrds) != 1:
            raise LabError(f"expected one kernel and initrd in the image, got {kernels} {initrds}")
        kver = kernels[0].name.removeprefix("vmlinuz-")
        shutil.copyfile(kernels[0], tmp / "vmlinuz")
        shutil.copyfile(initrds[0], tmp / "initrd.img")
        size_mib = _du_mib(root) * 12 // 10 + recipe.ROOT_FREE_MIB
        raw = tmp / "root.raw"
        _run(["mkfs.ext4", "-q", "-F", "-L", "zfsrep-root", "-E", "root_owner=0:0",
              "-d", str(root), str(raw), f"{size_mib}M"], logf, "mkfs.ext4")
        _run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw),
              str(tmp / "root.qcow2")], logf, "qemu-img convert")
        raw.unlink()
        _rmtree(root)
    timings["image"] = round(time.monotonic() - t, 1)
    info = {"key": key, "base_key": base.name.removeprefix("base-"), "kernel": kver,
            "size_mib": size_mib, "timings": timings, "built": time.time()}
    (tmp / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    os.rename(tmp, final)
    return final


def ensure_image(rebuild: bool = False, zfs: str | None = None) -> Path:
    """Return the directory of a ready image, building whatever stage is missing."""
    zfs = zfs_variant(zfs)
    cache = variant_cache(zfs)
    ikey = image_key(zfs)
    final = cache / f"image-{ikey}"
    if final.is_dir() and not rebuild:
        return final
    ensure_host_packages()
    with build_lock(cache):
        if final.is_dir() and not rebuild:
            return final  # someone else built it while we waited
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        bkey = base_key(zfs)
        base = cache / f"base-{bkey}"
        if not base.is_dir() or rebuild:
            _rmtree(base)
            base = build_base(cache, bkey, timings, zfs)
        else:
            log(f"reusing cached base {base.name}")
        _rmtree(final)
        log(f"packing the disk image (OpenZFS variant {zfs}) ...")
        out = build_image(cache, base, ikey, timings)
        timings["total"] = round(time.monotonic() - t0, 1)
        info = json.loads((out / "info.json").read_text())
        info["timings"] = timings
        (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
        log("image build timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
        _prune(cache, keep={base.name, out.name})
        return out


def _prune(cache: Path, keep: set[str]) -> None:
    """Drop stale tmp dirs and older images/bases (keep the current ones + one older)."""
    for p in [*cache.glob("tmp-base-*"), *cache.glob("tmp-image-*")]:
        _rmtree(p)
    for prefix in ("image-", "base-"):
        olds = sorted((p for p in cache.glob(prefix + "*") if p.is_dir() and p.name not in keep),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for p in olds[1:]:
            _rmtree(p)


if __name__ == "__main__":
    print(ensure_image(rebuild="--rebuild" in sys.argv))
