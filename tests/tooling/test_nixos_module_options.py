"""The NixOS module's timer options (nixos-modules/default.nix, built by `mkTimerOptions`),
evaluated by nix-instantiate against a stand-in for nixpkgs' `lib` (no nixpkgs here): names,
types, defaults and descriptions, and the schedules equal `zfsrep systemd render`'s defaults."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from zfsrep import systemd

MODULE = Path(__file__).resolve().parents[2] / "nixos-modules" / "default.nix"

# Only what evaluating the timer options touches; mkOption keeps its fields so they can be compared.
EXPR = """
let
  lib = {
    mkOption = o: o;
    literalExpression = text: { literalExpression = text; };
    types = { bool = "bool"; str = "str"; listOf = t: "listOf " + t; };
    attrNames = builtins.attrNames;
  };
  module = import MODULE {
    inherit lib;
    config.services.zfsrep.settings.targets = TARGETS;
    pkgs = { formats.toml = _: { }; };
  };
in
{ inherit (module.options.services.zfsrep) snapshot replicate verify scrub; }
"""


def timer_options(targets: str) -> dict:
    expr = EXPR.replace("MODULE", str(MODULE)).replace("TARGETS", targets)
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def options() -> dict:
    return timer_options('{ cold = { }; offsite = { }; }')


@pytest.mark.parametrize("name,unit,schedule,extra", [
    ("snapshot", "zfs-snapshot", systemd.DEFAULT_SNAPSHOT_ON_CALENDAR, set()),
    ("replicate", "zfs-replicate", systemd.DEFAULT_REPLICATE_ON_CALENDAR, set()),
    ("verify", "zfs-verify", systemd.DEFAULT_VERIFY_ON_CALENDAR, {"deep"}),
    ("scrub", "zfs-scrub-targets", systemd.DEFAULT_SCRUB_ON_CALENDAR, {"targets"}),
])
def test_each_timer_has_enable_and_on_calendar(options, name, unit, schedule, extra):
    timer = options[name]
    assert set(timer) == {"enable", "onCalendar"} | extra
    assert timer["enable"]["type"] == "bool" and f"({unit}.timer)" in timer["enable"]["description"]
    assert timer["onCalendar"] == {
        "type": "str",
        "default": schedule,
        "description": f"When {unit} runs (systemd.time(7) OnCalendar=)"
                       + ("; each run takes only the snapshots that are due." if name == "snapshot" else "."),
    }


def test_enable_defaults(options):
    assert options["snapshot"]["enable"]["default"] is True
    assert options["verify"]["enable"]["default"] is False and options["scrub"]["enable"]["default"] is False
    assert options["replicate"]["enable"]["default"] is True  # there are targets
    assert options["replicate"]["enable"]["defaultText"] == {
        "literalExpression": "config.services.zfsrep.settings.targets != { }"}
    assert options["verify"]["deep"] == {"type": "bool", "default": False, "description": (
        "Also compare the files of the newest common snapshot on both ends (`zfsrep verify --deep`:\n"
        "metadata of every file, sha256 of a sample). Reads data on both machines.\n")}
    assert options["scrub"]["targets"]["default"] == ["cold", "offsite"]
    assert "zfsrep verify`\ncompares the snapshots" in options["verify"]["enable"]["description"]


def test_without_targets_nothing_is_replicated_or_scrubbed():
    options = timer_options("{ }")
    assert options["replicate"]["enable"]["default"] is False
    assert options["scrub"]["targets"]["default"] == []
