"""The NixOS module checks the config it renders when the system is built
(`services.zfsrep.checkConfig`): /etc/zfsrep/config.toml is a `runCommand` that runs
`zfsrep config check` on the rendered file, so a bad config fails `nixos-rebuild`.

nix-instantiate evaluates the module against stand-ins for nixpkgs' `lib` and `pkgs` (no
nixpkgs here); the build script it yields is then run as a Nix build would run it (bash with
`set -eu -o pipefail`), with this checkout's zfsrep on PATH, on a TOML file rendered from the
same settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

MODULE = Path(__file__).resolve().parents[2] / "nixos-modules" / "default.nix"
RENDERED = "/rendered/zfsrep.toml"  # where the stand-in format.generate "puts" the TOML

EXPR = """
let
  attrNames = builtins.attrNames;
  lib = {
    mkOption = o: o;
    mkEnableOption = d: { type = "bool"; default = false; description = d; };
    mkIf = cond: content: content;
    mkMerge = l: l;
    literalExpression = text: { literalExpression = text; };
    types = { bool = "bool"; str = "str"; listOf = t: t; attrsOf = t: t; nullOr = t: t;
              path = "path"; package = "package"; submodule = s: s; enum = e: e; };
    inherit attrNames;
    mapAttrs = builtins.mapAttrs;
    optionalAttrs = c: a: if c then a else { };
    filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap
      (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ]) (attrNames set));
    mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (attrNames set));
    nameValuePair = name: value: { inherit name value; };
    concatMapStrings = f: l: builtins.concatStringsSep "" (map f l);
    concatStringsSep = builtins.concatStringsSep;
    sort = builtins.sort;
    any = builtins.any;
  };
  cfg = {
    enable = true; checkConfig = CHECK; package = "zfsrep-package";
    settings = SETTINGS; credentials = { extra = { }; }; knownHosts = { };
    receive = { enable = false; pruneOnCalendar = "daily"; };
  };
  module = import MODULE {
    inherit lib;
    config.services.zfsrep = cfg;
    pkgs = {
      formats.toml = _: { type = "toml"; generate = name: value: "RENDERED"; };
      runCommand = name: env: script: { inherit name env script; };
      stdenv = { hostPlatform = "x86_64-linux";
                 buildPlatform.canExecute = host: CAN_EXECUTE; };
    };
  };
in
module.config.environment.etc."zfsrep/config.toml".source
"""


def nix_string(value) -> str:
    return json.dumps(json.dumps(value))  # a Nix string holding JSON, for builtins.fromJSON


def config_source(settings: dict, *, check: bool = True, can_execute: bool = True):
    expr = (EXPR.replace("MODULE", str(MODULE)).replace("RENDERED", RENDERED)
            .replace("SETTINGS", f"builtins.fromJSON {nix_string(settings)}")
            .replace("CHECK", str(check).lower()).replace("CAN_EXECUTE", str(can_execute).lower()))
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def build(source: dict, settings: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the build script as Nix would: $out set, the package's bin on PATH, nothing else."""
    assert source["env"] == {"nativeBuildInputs": ["zfsrep-package"]}
    rendered = tmp_path / "zfsrep.toml"
    rendered.write_text(tomli_w.dumps(settings))
    script = source["script"].replace(RENDERED, str(rendered))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "out": str(tmp_path / "out"),
           "HOME": "/homeless-shelter"}
    return subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", script], env=env,
                          capture_output=True, text=True, check=False, cwd=tmp_path)


GOOD = {"datasets": [{"name": "tank/home", "recursive": True}],
        "targets": {"offsite": {"host": "backup.example.net", "dataset": "backup/hosts/web1",
                                "properties": {"canmount": "noauto"}}}}


def test_a_valid_config_builds_into_the_rendered_file(tmp_path):
    source = config_source(GOOD)
    assert source["name"] == "zfsrep.toml"
    done = build(source, GOOD, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_text() == tomli_w.dumps(GOOD)
    assert "ok (1 dataset(s), 1 target(s))" in done.stdout


def test_a_bad_config_fails_the_build_with_every_problem(tmp_path):
    bad = json.loads(json.dumps(GOOD))
    bad["targets"]["offsite"]["properties"] = {"canmoutn": "noauto"}
    bad["datasets"][0]["retention"] = {"hourly": -1}
    done = build(config_source(bad), bad, tmp_path)
    assert done.returncode == 2
    assert "targets.offsite.properties.canmoutn: not a ZFS property (did you mean 'canmount'?)" in done.stderr
    assert "datasets[0].retention.hourly:" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("check,can_execute", [(False, True), (True, False)])
def test_the_check_is_off_by_option_and_on_cross_builds(check, can_execute):
    assert config_source(GOOD, check=check, can_execute=can_execute) == RENDERED


def test_the_build_script_is_what_the_module_says():
    script = config_source(GOOD)["script"]
    assert [line.strip() for line in script.strip().splitlines()] == [
        f"zfsrep config check --config {RENDERED}", f"cp {RENDERED} $out"]
