"""The VM tests' shared nodes (checks/lib.nix) set `environment.etc` entries the way current NixOS
types them: `text` is a string (`nullOr lines`), a file goes in `source`.

nixpkgs is not here, so checks/lib.nix is evaluated by nix-instantiate with stand-ins: `pkgs.path`
holds a nixos/tests/ssh-keys.nix shaped as nixpkgs' current one (the private key a `writeText`
file, the public key a string), and `runNixOSTest` returns its argument, from which the helpers
(`zfsrepTest`) are read. The real option types were checked against nixpkgs in the issue's
session (see its note); this keeps the one that broke both VM tests from coming back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SSH_KEYS = """
pkgs: {
  snakeOilPrivateKey = pkgs.writeText "privkey.snakeoil" "-----BEGIN OPENSSH PRIVATE KEY-----\\n";
  snakeOilPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiAS8... snakeoil";
}
"""

EXPR = """
let
  derivation = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkgs = {
    path = PKGS_PATH; # a string: interpolating a path would copy it to the store
    writeText = name: _text: derivation name;
    zstd = derivation "zstd";
    mbuffer = derivation "mbuffer";
    testers.runNixOSTest = test: test;
  };
  runTest = import LIB_NIX { inherit pkgs; self = { nixosModules.default = { }; }; };
  helpers = (builtins.elemAt (runTest { }).imports 1)._module.args.zfsrepTest;
  kind = value:
    if value == null then "null"
    else if builtins.isString value then "string"
    else if builtins.isPath value then "path"
    else if (value.type or null) == "derivation" then "derivation"
    else builtins.typeOf value;
  etc = node: builtins.mapAttrs (_: entry: builtins.mapAttrs (_: kind) entry) (node.environment.etc or { });
in
{ source = etc helpers.source; target = etc helpers.target; }
"""


def etc_kinds(tmp_path: Path) -> dict:
    (tmp_path / "nixos" / "tests").mkdir(parents=True)
    (tmp_path / "nixos" / "tests" / "ssh-keys.nix").write_text(SSH_KEYS)
    expr = EXPR.replace("PKGS_PATH", json.dumps(str(tmp_path))).replace("LIB_NIX", str(ROOT / "checks" / "lib.nix"))
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_etc_text_is_a_string_and_files_are_sources(tmp_path):
    nodes = etc_kinds(tmp_path)
    entries = {(node, name): fields for node, etc in nodes.items() for name, fields in etc.items()}
    assert ("source", "zfsrep-test/ssh-key") in entries, nodes
    for (node, name), fields in entries.items():
        assert fields.get("text", "null") in ("null", "string"), \
            f"{node}: environment.etc.{name}.text is a {fields['text']}; a file goes in `source`"
        assert fields.get("source", "path") in ("path", "string", "derivation"), (node, name, fields)
    assert entries[("source", "zfsrep-test/ssh-key")]["source"] == "derivation"
