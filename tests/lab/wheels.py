"""Wheelhouses for the guests (built on the host at set-up time, never during a test).

* deps wheelhouse: zfsrep's runtime dependencies, keyed by pyproject's dependency list
* peers wheelhouse: zfs-autobackup and zfs-replicate (benchmark peers), only on request
* the zfsrep wheel itself, built from the current checkout for every `install`
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from .paths import REPO_ROOT, LabError, cache_dir

PEERS = ["zfs-autobackup", "zfs-replicate"]
# Guests run Debian bookworm's CPython 3.11 on x86_64 (glibc 2.36).
TARGET = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
          "--abi", "abi3", "--abi", "none", "--platform", "manylinux2014_x86_64",
          "--platform", "manylinux_2_28_x86_64", "--platform", "linux_x86_64",
          "--only-binary=:all:"]


def _log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def runtime_deps() -> list[str]:
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return list(data.get("project", {}).get("dependencies", []))


def _key(reqs: list[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(reqs)).encode()).hexdigest()[:16]


def _download(reqs: list[str], name: str) -> Path:
    cache = cache_dir()
    out = cache / f"{name}-{_key(reqs)}"
    if out.is_dir():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{name}-", dir=cache))
    _log(f"downloading wheels for {name}: {' '.join(reqs)}")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-cache-dir",
                           "-d", str(tmp), *TARGET, *reqs],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LabError(f"pip download for {name} failed:\n{proc.stdout[-1500:]}{proc.stderr[-3000:]}")
    (tmp / "requirements.txt").write_text("\n".join(reqs) + "\n")
    try:
        os.rename(tmp, out)
    except OSError:  # someone else finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def deps_wheelhouse() -> Path:
    return _download(runtime_deps(), "wheels")


def peers_wheelhouse() -> Path:
    return _download(PEERS, "peers")


# Files and dirs a wheel build of the checkout needs; copied to a temp dir so the build
# leaves no build/ or *.egg-info behind in the shared work tree.
_BUILD_INPUTS = ["pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in", "README.md",
                 "README.rst", "LICENSE", "LICENSE.txt", "LICENSE.md", "zfsrep"]


GUEST_SITE = "lib/python3.11/site-packages"


def stage_tree(find_links: Path, reqs: list[str], dest: Path, prefix: str,
               deps: bool = True) -> Path:
    """Install `reqs` from `find_links` on the host into dest/GUEST_SITE (+ dest/bin), laid
    out for a guest venv at `prefix`: byte-compiled here (guest and host are both CPython
    3.11) and scripts pointing at prefix/bin/python3. Pip under TCG takes minutes; this and
    unpacking a tar in the guest take seconds."""
    site = dest / GUEST_SITE
    site.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links",
            str(find_links), "--target", str(site), "--no-compile", *TARGET,
            *([] if deps else ["--no-deps"]), *reqs]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise LabError(f"staging {' '.join(reqs)} failed:\n{proc.stderr[-3000:]}")
    if (site / "bin").is_dir():
        shutil.move(str(site / "bin"), str(dest / "bin"))
    for script in (dest / "bin").glob("*") if (dest / "bin").is_dir() else []:
        lines = script.read_bytes().split(b"\n", 1)
        if lines[0].startswith(b"#!") and b"python" in lines[0]:
            script.write_bytes(f"#!{prefix}/bin/python3".encode() + b"\n" + lines[1])
    if sys.version_info[:2] == (3, 11):
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j0", "-s", str(dest),
                        "-p", prefix, str(site)], check=False, capture_output=True)
    return dest


def staged_deps(prefix: str) -> Path:
    """Cached host-side staging of the deps wheelhouse (keyed like the wheelhouse)."""
    house = deps_wheelhouse()
    out = house.with_name(house.name.replace("wheels-", "staged-", 1))
    if not out.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix="tmp-staged-", dir=house.parent))
        stage_tree(house, ["-r", str(house / "requirements.txt")], tmp, prefix)
        try:
            os.rename(tmp, out)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_zfsrep_wheel(dest: Path) -> Path:
    if not (REPO_ROOT / "pyproject.toml").exists():
        raise LabError(f"no pyproject.toml in {REPO_ROOT}: cannot build the zfsrep wheel")
    with tempfile.TemporaryDirectory(prefix="zfsrep-wheel-") as td:
        src = Path(td) / "src"
        src.mkdir()
        for name in _BUILD_INPUTS:
            p = REPO_ROOT / name
            if p.is_dir():
                shutil.copytree(p, src / name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif p.is_file():
                shutil.copy2(p, src / name)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                               "--no-build-isolation", "-w", str(dest), str(src)],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            # retry with build isolation (needs setuptools from the index)
            proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                                   "-w", str(dest), str(src)],
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise LabError(f"building the zfsrep wheel failed:\n{proc.stderr[-3000:]}")
    wheels = sorted(dest.glob("zfsrep-*.whl"))
    if not wheels:
        raise LabError("pip wheel produced no zfsrep wheel")
    return wheels[-1]
