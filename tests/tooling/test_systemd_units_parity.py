"""The NixOS module's units (nixos-modules/units.nix, evaluated by nix-instantiate) equal the
ones `zfsrep systemd render` writes (zfsrep/systemd.py), for the same inputs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zfsrep.systemd import UnitInputs, units

UNITS_NIX = Path(__file__).resolve().parents[2] / "nixos-modules" / "units.nix"


def nix_units(inputs: UnitInputs, tmp_path: Path) -> dict:
    args = tmp_path / "args.json"
    args.write_text(json.dumps(inputs.nix_args()))
    expr = f"import {UNITS_NIX} (builtins.fromJSON (builtins.readFile {args}))"
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_parity_for_the_defaults(tmp_path):
    inputs = UnitInputs(exe="/nix/store/x-zfsrep/bin/zfsrep", config_file="/etc/zfsrep/config.toml")
    assert nix_units(inputs, tmp_path) == units(inputs)


def test_parity_for_a_dedicated_user_with_warmups_credentials_and_odd_paths(tmp_path):
    inputs = UnitInputs(
        exe="/opt/zfs rep/bin/zfsrep",
        config_file='/etc/zfs%rep/"c$f".toml',
        user="zfsrep",
        group="backup",
        snapshot_on_calendar="*:0/5",
        replicate_on_calendar="Mon *-*-* 03:00",
        warmup_targets=("ec2", "nas;2"),
        report=True,
        snapshot_permissions=("snapshot", "destroy"),
        state_dir="/srv/zfsrep",
        lock_dir="/var/lock/zfsrep",
        credentials={"aws-credentials": "/etc/aws", "ssh-key": "/etc/id"},
        environment={"EXTRA": "a b"},
    )
    assert nix_units(inputs, tmp_path) == units(inputs)


def test_parity_for_verify_and_scrub_timers(tmp_path):
    inputs = UnitInputs(
        exe="/usr/bin/zfsrep",
        config_file="/etc/zfsrep/config.toml",
        user="zfsrep",
        verify=True,
        verify_deep=True,
        verify_on_calendar="Sun 04:00",
        scrub_targets=("cold", "nas 2"),
        scrub_on_calendar="*-*-01 05:00",
        warmup_targets=("cold", "ec2"),
        report=True,
        randomized_delay_sec="30min",
    )
    ours = units(inputs)
    assert set(ours) == {"zfs-snapshot", "zfs-replicate", "zfs-verify", "zfs-scrub-targets"}
    assert nix_units(inputs, tmp_path) == ours


def test_parity_with_no_randomized_delay(tmp_path):
    inputs = UnitInputs(exe="/usr/bin/zfsrep", config_file="/etc/zfsrep/config.toml", verify=True,
                        scrub_targets=("cold",), randomized_delay_sec="0")
    ours = units(inputs)
    assert all("RandomizedDelaySec" not in unit["timer"] for unit in ours.values())
    assert nix_units(inputs, tmp_path) == ours


def test_parity_for_the_stop_timeout_of_units_with_teardowns(tmp_path):
    inputs = UnitInputs(exe="/usr/bin/zfsrep", config_file="/etc/zfsrep/config.toml", verify=True,
                        warmup_targets=("cold", "ec2", "nas"), scrub_targets=("cold", "hot"))
    ours = units(inputs)
    timeouts = {name: unit["service"].get("TimeoutStopSec") for name, unit in ours.items()}
    assert timeouts == {"zfs-snapshot": None, "zfs-replicate": "45min", "zfs-verify": "45min",
                        "zfs-scrub-targets": "15min"}
    assert nix_units(inputs, tmp_path) == ours


def test_parity_for_a_pure_backup_host_and_for_both_roles(tmp_path):
    receive_only = UnitInputs(exe="/usr/bin/zfsrep", config_file="/etc/zfsrep/config.toml", user="zfsrep",
                              sends=False, datasets=False, prune_received=True, report=True,
                              prune_received_on_calendar="*-*-* 02:30", verify=True)
    ours = units(receive_only)
    assert set(ours) == {"zfs-prune-received"}
    assert "User" not in ours["zfs-prune-received"]["service"]  # root: it holds destroy, the ssh user not
    assert nix_units(receive_only, tmp_path) == ours
    both = UnitInputs(exe="/usr/bin/zfsrep", config_file="/etc/zfsrep/config.toml", user="zfsrep",
                      prune_received=True, credentials={"ssh-key": "/etc/id"}, report=True)
    ours = units(both)
    assert set(ours) == {"zfs-snapshot", "zfs-replicate", "zfs-prune-received"}
    assert nix_units(both, tmp_path) == ours


words = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user=st.sampled_from(["root", "zfsrep"]),
    warmups=st.lists(words, max_size=3, unique=True).map(lambda xs: tuple(sorted(xs))),
    report=st.booleans(),
    datasets=st.booleans(),
    config_file=words.map(lambda w: "/etc/" + w),
    state_dir=st.sampled_from(["/var/lib/zfsrep", "/var/lib/", "/srv/state"]),
    verify=st.booleans(),
    deep=st.booleans(),
    scrubs=st.lists(words, max_size=3, unique=True).map(tuple),
    sends=st.booleans(),
    prune_received=st.booleans(),
    prune_on_calendar=st.sampled_from(["daily", "*-*-* 03:00"]),
)
def test_parity_holds_for_generated_inputs(tmp_path, user, warmups, report, datasets, config_file, state_dir,
                                           verify, deep, scrubs, sends, prune_received, prune_on_calendar):
    inputs = UnitInputs(exe="/usr/bin/zfsrep", config_file=config_file, user=user, warmup_targets=warmups,
                        report=report, datasets=datasets, state_dir=state_dir, verify=verify, verify_deep=deep,
                        scrub_targets=scrubs, sends=sends, prune_received=prune_received,
                        prune_received_on_calendar=prune_on_calendar)
    assert nix_units(inputs, tmp_path) == units(inputs)
