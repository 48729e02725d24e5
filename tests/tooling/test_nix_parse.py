"""Every .nix file parses (nix-instantiate --parse, Debian's nix-bin, installed by
scripts/setup.sh), and flake.lock pins a real nixpkgs revision. No skip: a missing
nix-instantiate fails these tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "node_modules", ".mypy_cache"}
EXPECTED = {
    "flake.nix",
    "nix/package.nix",
    "nix/devshell.nix",
    "nixos-modules/default.nix",
    "nixos-modules/units.nix",
    "checks/default.nix",
    "checks/lib.nix",
    "checks/vm-replicate.nix",
    "checks/vm-report.nix",
    "checks/vm-append-only.nix",
    "nixos-modules/receive.nix",
}


def nix_files() -> list[Path]:
    return sorted(
        p for p in ROOT.rglob("*.nix")
        if not SKIP_DIRS & set(p.relative_to(ROOT).parts)
    )


def test_nix_instantiate_is_installed():
    assert shutil.which("nix-instantiate"), "nix-instantiate is missing: apt-get install nix-bin (scripts/setup.sh does)"


def test_the_flake_module_and_checks_are_all_there():
    found = {str(p.relative_to(ROOT)) for p in nix_files()}
    assert EXPECTED <= found, f"missing: {sorted(EXPECTED - found)}"


@pytest.mark.parametrize("path", nix_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nix_file_parses(path):
    result = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{path.relative_to(ROOT)}: {result.stderr.strip()}"


def test_nix_parse_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "broken.nix"
    broken.write_text("{ a = 1; b = ; }\n")
    result = subprocess.run(["nix-instantiate", "--parse", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_flake_lock_pins_the_published_nixpkgs_revision():
    lock = json.loads((ROOT / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    assert lock["nodes"]["root"]["inputs"] == {"nixpkgs": "nixpkgs"}
    locked = lock["nodes"]["nixpkgs"]["locked"]
    assert locked == {
        "lastModified": 1786719841,
        "narHash": "sha256-QcpQOT0NQEFkI77t+YXPZqDJc35iIodG7zinieOwFUg=",
        "owner": "NixOS",
        "repo": "nixpkgs",
        "rev": "8be7bd0c83f12e2e3bbba07c9044d6fed9e66f7f",
        "type": "github",
    }


def test_flake_outputs_are_declared():
    text = (ROOT / "flake.nix").read_text()
    for output in ("packages =", "apps =", "overlays.default", "nixosModules.default", "devShells =",
                   "formatter =", "checks =", '"x86_64-linux"', '"aarch64-linux"'):
        assert output in text, output
