"""The services' PATH (nixos-modules/runtime-path.nix) puts the booted system's tools first, so a
timer after a `nixos-rebuild switch` that upgraded ZFS still runs the zfs that matches the loaded
kernel module, not the new generation's (issue 18, defect 4)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

RUNTIME_PATH = Path(__file__).resolve().parents[2] / "nixos-modules" / "runtime-path.nix"

# NixOS's `path`: each entry's bin then sbin (nixos/lib/systemd-lib.nix makeBinPath / makeSearchPathOutput)
EXPR = """
let
  pkg = name: { type = "derivation"; outPath = "/nix/store/x-" + name; };
  entries = import PATH {
    pkgs = builtins.listToAttrs (map (n: { name = n; value = pkg n; }) [ "openssh" "zstd" "lz4" "mbuffer" "pv" ]);
    zfs = pkg "zfs-new-generation";
  };
  dirs = sub: map (e: (if builtins.isString e then e else e.outPath) + sub) entries;
in
dirs "/bin" ++ dirs "/sbin"
"""


def test_the_booted_systems_zfs_comes_first():
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--expr",
                             EXPR.replace("PATH", str(RUNTIME_PATH))],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    path = json.loads(result.stdout)
    assert path[0] == "/run/booted-system/sw/bin"
    assert path.index("/run/booted-system/sw/bin") < path.index("/nix/store/x-zfs-new-generation/bin")
    for tool in ("openssh", "zstd", "lz4", "mbuffer", "pv"):
        assert f"/nix/store/x-{tool}/bin" in path
