"""The tests that nix/package.nix runs in its build (checkPhase) pass with only what that build
has, so `nix build .#zfsrep` does not fail on them.

Nothing about the build is restated here: nix-instantiate evaluates nix/package.nix against
stand-ins for its arguments (`lib.fileset.unions` gives the paths as strings, so nothing is
copied to the store; `buildPythonApplication` returns its attributes) and yields the fileset,
the pytest arguments (`pytestFlagsArray`, `pytestFlags`, `disabledTestPaths`, `disabledTests`)
and the check inputs. A function, argument or attribute this stand-in does not know fails the
evaluation or the test: teach it here rather than let it guess.

The build is then imitated, without Nix, in a subprocess run as the pytestCheckHook would run it:
- exactly the fileset's files are copied into a temporary `source` (of a git checkout, only the
  tracked files, as a flake's source has), which is the cwd;
- the copy is on PYTHONPATH (the build's installed package), ahead of the venv's editable install
  of this checkout; a `-p` probe reports which zfsrep the tests and their subprocesses import,
  and the test requires the copy;
- the venv's pytest plugins that the build's inputs do not provide are off (`-p no:...`);
- PATH is only the commands the build has, not "everything minus nix and git": a command that
  merely happens to be on this machine (zstd, git, curl, ...) would break the build as surely as
  nix-instantiate did. They are taken from the Debian packages that stand for stdenv's tools and
  for the package's non-Python check inputs (`NATIVE_CHECK_INPUTS`), plus `python`/`python3`;
- in a mount namespace, /usr/bin, /usr/sbin and /usr/local/{bin,sbin} are hidden (the sandbox has
  only /bin/sh, so a `#!/usr/bin/env` script fails there), /etc holds only passwd, group and
  hosts, and HOME does not exist and cannot be made (it is on a read-only mount; the sandbox's
  is /homeless-shelter);
- the network is only loopback (`unshare --net`, lo up).
It differs from the sandbox in that it runs as root and sees the rest of this machine's
filesystem; the Python packages importable are the venv's, not only the build's.

Needs root, unshare and mount (util-linux), ip (iproute2), dpkg-query (Debian) and
nix-instantiate (Debian's nix-bin). It runs the whole unit tier once more: about 70 s here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_NIX = ROOT / "nix" / "package.nix"
MIN_PASSED = 400  # the unit tier had 511 tests when this was written

# The python3Packages that package.nix names (each stands in as "python3Packages.<name>").
PYTHON_PACKAGES = ["setuptools", "typer", "tomli-w", "sh", "boto3", "requests",
                   "pytestCheckHook", "hypothesis", "pytest-httpserver", "moto"]
# stdenv's tools (coreutils, findutils, diffutils, gnused, gnugrep, gawk, gnutar, gzip, bzip2, xz,
# gnumake, bash, patch, file), as Debian packages; one that is not installed is left out.
STDENV = ["coreutils", "findutils", "diffutils", "sed", "grep", "gawk", "tar", "gzip", "bzip2",
          "xz-utils", "make", "bash", "patch", "file"]
# package.nix's non-Python check inputs, as Debian packages
NATIVE_CHECK_INPUTS = {"openssh": ["openssh-client", "openssh-server"], "systemd": ["systemd"],
                       "zstd": ["zstd"]}
# pytestCheckHook and buildPythonPackage attributes this imitation does not carry out
UNSUPPORTED = ["checkPhase", "preCheck", "postCheck", "installCheckPhase", "preInstallCheck",
               "dontUsePytestCheck", "enabledTestPaths", "enabledTests", "enabledTestMarks",
               "disabledTestMarks"]

EXPR = """
let
  package = import (/. + PACKAGE_NIX);
  named = prefix: names: builtins.listToAttrs (map (name: { inherit name; value = prefix + name; }) names);
  lib = {
    importTOML = file: builtins.fromTOML (builtins.readFile file);
    fileset = {
      unions = map toString;
      toSource = { root, fileset }: { root = toString root; inherit fileset; };
    };
    makeBinPath = packages: builtins.concatStringsSep ":" (map (p: "${p}/bin") packages);
    licenses.mit = "mit";
    platforms.linux = [ "x86_64-linux" ];
  };
  python3Packages = named "python3Packages." PYTHON_PACKAGES // {
    buildPythonApplication = attrs: attrs;
  };
  # every other argument (openssh, systemd, ...) stands in as its own name
  others = builtins.mapAttrs (name: _: name) (builtins.functionArgs package);
  attrs = package (others // { inherit lib python3Packages; });
in
{
  inherit (attrs) src;
  doCheck = attrs.doCheck or true;
  unsupported = builtins.filter (name: attrs ? ${name}) UNSUPPORTED;
  checkInputs = attrs.nativeCheckInputs or [ ] ++ attrs.checkInputs or [ ];
  pythonInputs = attrs.dependencies or [ ] ++ attrs.nativeCheckInputs or [ ] ++ attrs.checkInputs or [ ];
  pytestFlagsArray = attrs.pytestFlagsArray or [ ];
  pytestFlags = attrs.pytestFlags or [ ];
  disabledTestPaths = attrs.disabledTestPaths or [ ];
  disabledTests = attrs.disabledTests or [ ];
}
"""

# In the namespace: loopback up, the host's bin dirs kept reachable under $2 and $3 for the
# allowed commands' symlinks, then hidden; /etc as the sandbox has it; a read-only $4 for HOME.
SANDBOX = r"""
set -eu
ip=$1 host_bin=$2 host_sbin=$3 nowhere=$4 mount=$5
shift 5
"$ip" link set lo up
"$mount" --bind /usr/bin "$host_bin"
"$mount" --bind /usr/sbin "$host_sbin"
for dir in /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin /etc; do
    "$host_bin/mount" -t tmpfs -o mode=755 tmpfs "$dir"
done
"$host_bin/ln" -s "$host_bin/sh" /usr/bin/sh
printf 'root:x:0:0:Nix build user:/build:/noshell\nnobody:x:65534:65534:Nobody:/:/noshell\n' > /etc/passwd
printf 'root:x:0:\nnixbld:!:100:\nnogroup:x:65534:\n' > /etc/group
printf '127.0.0.1 localhost\n::1 localhost\n' > /etc/hosts
"$host_bin/mount" -t tmpfs -o ro tmpfs "$nowhere"
exec "$@"
"""

PROBE = '''\
"""pytest plugin (-p): which zfsrep the collected tests imported, and which a subprocess gets."""
import subprocess
import sys


def pytest_collection_finish(session):
    here = getattr(sys.modules.get("zfsrep"), "__file__", None)
    child = subprocess.run([sys.executable, "-c", "import zfsrep; print(zfsrep.__file__)"],
                           cwd="/", capture_output=True, text=True).stdout.strip()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reporter.write_line(f"zfsrep in the tests: {here}")
    reporter.write_line(f"zfsrep in a subprocess: {child}")
'''


def nix_string(value: str) -> str:
    return json.dumps(value).replace("${", "\\${")


def package_build() -> dict:
    expr = (EXPR.replace("PACKAGE_NIX", nix_string(str(PACKAGE_NIX)))
            .replace("PYTHON_PACKAGES", "[ " + " ".join(map(nix_string, PYTHON_PACKAGES)) + " ]")
            .replace("UNSUPPORTED", "[ " + " ".join(map(nix_string, UNSUPPORTED)) + " ]"))
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def copy_fileset(root: Path, fileset: list[str], dest: Path) -> None:
    """Copy the fileset's files; of a git checkout only the tracked ones that exist."""
    relative = [str(Path(entry).relative_to(root)) for entry in fileset]
    if (root / ".git").exists():
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", *relative],
                                capture_output=True, text=True, check=True).stdout.split("\0")
        files = [root / name for name in listed if name and (root / name).is_file()]
    else:
        files = [p for entry in fileset for p in ([Path(entry)] if Path(entry).is_file()
                                                  else sorted(Path(entry).rglob("*")))
                 if p.is_file() and "__pycache__" not in p.parts]
    missing = [r for r in relative if not (root / r).exists()]
    assert not missing, f"package.nix's fileset names paths that do not exist: {missing}"
    for path in files:
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def debian_commands(packages: list[str]) -> dict[str, str]:
    """Command name -> real path, for the executables in the bin dirs of the installed packages."""
    commands = {}
    for package in packages:
        listed = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True)
        if listed.returncode != 0:
            continue  # not installed here
        for line in listed.stdout.splitlines():
            path = Path(line)
            if str(path.parent) in ("/bin", "/usr/bin", "/sbin", "/usr/sbin") and path.is_file() \
                    and os.access(path, os.X_OK):
                commands[path.name] = os.path.realpath(path)
    return commands


def build_path(bin_dir: Path, commands: dict[str, str], host_bin: Path, host_sbin: Path) -> None:
    """Symlinks to the commands, through the host bin dirs' mount points; python as a wrapper
    (a symlink would not find the venv's pyvenv.cfg)."""
    bin_dir.mkdir()
    for name, real in commands.items():
        for top, mounted in (("/usr/bin/", host_bin), ("/usr/sbin/", host_sbin)):
            if real.startswith(top):
                real = str(mounted / real[len(top):])
        (bin_dir / name).symlink_to(real)
    if "bash" in commands and "sh" not in commands:  # stdenv's bash is also its sh (Debian's is dash)
        (bin_dir / "sh").symlink_to(bin_dir / "bash")
    for name in ("python", "python3"):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        wrapper.chmod(0o755)


def pytest_args(build: dict, source: Path) -> list[str]:
    """As pytestCheckHook composes them, plus the probe and the plugins the build has not."""
    args = []
    for path in build["disabledTestPaths"]:
        if "::" in path:
            args.append(f"--deselect={path}")
        else:
            assert list(source.glob(path)), f"disabledTestPaths: {path} matches nothing in the build"
            args.append(f"--ignore-glob={path}")
    if build["disabledTests"]:
        args += ["-k", "not " + " and not ".join(build["disabledTests"])]
    args += build["pytestFlagsArray"] + build["pytestFlags"]

    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    provided = {normal(p.removeprefix("python3Packages.")) for p in build["pythonInputs"]} | {"pytest"}
    for plugin in entry_points(group="pytest11"):
        if plugin.dist is not None and normal(plugin.dist.name) not in provided:
            args += ["-p", f"no:{plugin.name}"]
    return args + ["-p", "zfsrep_build_probe"]


def test_the_package_build_runs_its_tests_with_only_what_the_build_has(tmp_path):
    tools = {name: shutil.which(name) for name in ("unshare", "mount", "ip", "dpkg-query")}
    assert all(tools.values()), f"missing: {[n for n, p in tools.items() if not p]} (util-linux, iproute2, dpkg)"
    assert os.geteuid() == 0, "unshare --net --mount needs root"
    build = package_build()
    assert build["doCheck"] and not build["unsupported"], \
        f"package.nix sets {build['unsupported'] or 'doCheck = false'}: imitate that here"
    assert build["pytestFlagsArray"] + build["pytestFlags"], "package.nix runs no tests?"
    native = [i for i in build["checkInputs"] if not i.startswith("python3Packages.")]
    unknown = sorted(set(native) - set(NATIVE_CHECK_INPUTS))
    assert not unknown, f"check inputs without Debian packages in NATIVE_CHECK_INPUTS: {unknown}"

    root, source = Path(build["src"]["root"]), tmp_path / "source"
    assert root == ROOT, build["src"]
    copy_fileset(root, build["src"]["fileset"], source)
    host_bin, host_sbin, nowhere = tmp_path / "host-bin", tmp_path / "host-sbin", tmp_path / "nowhere"
    for d in (host_bin, host_sbin, nowhere, tmp_path / "tmp", tmp_path / "probe"):
        d.mkdir()
    (tmp_path / "probe" / "zfsrep_build_probe.py").write_text(PROBE)
    packages = STDENV + [deb for name in native for deb in NATIVE_CHECK_INPUTS[name]]
    build_path(tmp_path / "bin", debian_commands(packages), host_bin, host_sbin)
    env = {"PATH": str(tmp_path / "bin"), "HOME": str(nowhere / "homeless-shelter"),
           "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": f"{source}:{tmp_path / 'probe'}"}

    argv = [tools["unshare"], "--net", "--mount", "--propagation", "private",
            "/bin/sh", "-c", SANDBOX, "sh", tools["ip"], str(host_bin), str(host_sbin), str(nowhere),
            tools["mount"], sys.executable, "-m", "pytest", "-q", *pytest_args(build, source)]
    proc = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert f"zfsrep in the tests: {source}/zfsrep/__init__.py" in proc.stdout, out
    assert f"zfsrep in a subprocess: {source}/zfsrep/__init__.py" in proc.stdout, out
    assert proc.returncode == 0, out
    summary = proc.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= MIN_PASSED, out
    assert not re.search(r"\b(failed|errors?)\b", summary), out
