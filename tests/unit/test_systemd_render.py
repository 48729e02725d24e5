"""`zfsrep systemd render`: the units' content, real `systemd-analyze verify`/`security` on the
rendered files, the CLI, credential paths in the config, and `systemd allow|unallow`."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from zfsrep.actions import delegation
from zfsrep.cli import app
from zfsrep.config.load import parse_config
from zfsrep.errors import UsageError
from zfsrep.systemd import (
    REPLICATE_PERMISSIONS,
    SNAPSHOT_PERMISSIONS,
    UnitInputs,
    exec_arg,
    inputs_from_config,
    placement_problems,
    unit_files,
    units,
)

CONFIG = """
[[datasets]]
name = "tank/data"

[targets.offsite]
host = "backup.example.net"
dataset = "backup/web1"
identity_file = "%d/ssh-key"
known_hosts = "/etc/zfsrep/known_hosts"
[targets.offsite.warmup]
type = "command"
command = ["/usr/local/bin/wake-offsite"]

[targets.nearby]
host = "nas"
dataset = "backup/web1"

[report.webhook]
url_file = "%d/webhook-url"
"""


def fake_exe(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "zfsrep"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return str(exe)


def inputs(**overrides) -> UnitInputs:
    config = parse_config(CONFIG, path="/etc/zfsrep/config.toml")
    options = {"exe": "/opt/zfsrep/bin/zfsrep", "config_file": "/etc/zfsrep/config.toml", **overrides}
    return inputs_from_config(config, **options)


def test_units_root_runs_without_delegation_and_keeps_only_sys_admin():
    u = units(inputs())
    for name in ("zfs-snapshot", "zfs-replicate"):
        service = u[name]["service"]
        assert "User" not in service
        assert service["CapabilityBoundingSet"] == "CAP_SYS_ADMIN"
        assert not any("systemd allow" in line for line in service.get("ExecStartPre", []))
        assert service["Environment"] == ["TZ=UTC", f"ZFSREP_RUN_DIR=/run/zfsrep/runs/{name}"]
        assert u[name]["timer"]["Persistent"] == "true"
    assert u["zfs-snapshot"]["service"]["ExecStart"] == "/opt/zfsrep/bin/zfsrep snapshot --config /etc/zfsrep/config.toml"
    assert u["zfs-replicate"]["service"]["ExecStart"] == "/opt/zfsrep/bin/zfsrep replicate --config /etc/zfsrep/config.toml"


def test_units_dedicated_user_gets_disjoint_permissions_only_during_the_run():
    u = units(inputs(user="zfsrep"))
    assert not set(SNAPSHOT_PERMISSIONS) & set(REPLICATE_PERMISSIONS)
    for name, perms in (("zfs-snapshot", SNAPSHOT_PERMISSIONS), ("zfs-replicate", REPLICATE_PERMISSIONS)):
        service = u[name]["service"]
        assert service["User"] == service["Group"] == "zfsrep"
        assert service["CapabilityBoundingSet"] == ""
        joined = ",".join(perms)
        assert service["ExecStartPre"][0] == (
            f"+/opt/zfsrep/bin/zfsrep systemd allow --config /etc/zfsrep/config.toml --user zfsrep --permissions {joined}"
        )
        # revoked last, after a failure too, and never masking the run's result
        assert service["ExecStopPost"][-1] == (
            f"-+/opt/zfsrep/bin/zfsrep systemd unallow --config /etc/zfsrep/config.toml --user zfsrep --permissions {joined}"
        )


def test_units_warmup_per_target_and_teardown_of_what_the_run_warmed_then_report():
    service = units(inputs())["zfs-replicate"]["service"]
    assert service["ExecStartPre"] == [
        "-/opt/zfsrep/bin/zfsrep warmup --config /etc/zfsrep/config.toml --target offsite"
    ]
    # not one line per target: a switch during the run may have removed the target from the unit
    assert service["ExecStopPost"] == [
        "-/opt/zfsrep/bin/zfsrep teardown --config /etc/zfsrep/config.toml --this-run",
        "-/opt/zfsrep/bin/zfsrep report-result --config /etc/zfsrep/config.toml --verb replicate",
    ]
    snapshot = units(inputs())["zfs-snapshot"]["service"]
    assert "ExecStartPre" not in snapshot
    assert snapshot["ExecStopPost"] == [
        "-/opt/zfsrep/bin/zfsrep report-result --config /etc/zfsrep/config.toml --verb snapshot"
    ]


def test_units_with_a_teardown_get_a_stop_timeout_that_outlasts_it():
    # systemd kills ExecStopPost= after TimeoutStopSec= (90 s by default): a teardown waiting 60 s
    # for the target's lock, then stopping an EC2 instance, needs more; 15 min per teardown
    u = units(inputs(verify=True, scrub_targets=("nearby",)))
    assert u["zfs-replicate"]["service"]["TimeoutStopSec"] == "15min"
    assert u["zfs-verify"]["service"]["TimeoutStopSec"] == "15min"
    # every unit that reaches targets may tear one down (one a switch removed from the unit)
    assert u["zfs-scrub-targets"]["service"]["TimeoutStopSec"] == "15min"
    # no teardown (snapshot): systemd's default stands
    assert "TimeoutStopSec" not in u["zfs-snapshot"]["service"]
    two = units(inputs(warmup_targets=("a", "b")))["zfs-replicate"]["service"]
    assert len([s for s in two["ExecStopPost"] if " teardown " in s]) == 1 and two["TimeoutStopSec"] == "30min"
    text = unit_files(units(inputs()))["zfs-replicate.service"]
    assert "\nTimeoutStopSec=15min\n" in text and text.index("ExecStopPost=") < text.index("TimeoutStopSec=")


def test_units_without_report_sink_have_no_report_result():
    config = parse_config('[[datasets]]\nname = "tank/a"\n')
    u = units(inputs_from_config(config, exe="/z", config_file="/c.toml"))
    assert "ExecStopPost" not in u["zfs-snapshot"]["service"]
    assert u["zfs-replicate"]["service"]["ExecStopPost"] == ["-/z teardown --config /c.toml --this-run"]


def test_units_credentials_are_loaded_and_kept_for_the_stop_phase():
    # systemd hides LoadCredential= files from ExecStopPost (seen with systemd 252 in the lab):
    # the units copy them first and drop the copy last
    service = units(inputs(credentials={"ssh-key": "/etc/zfsrep/id", "aws-credentials": "/etc/zfsrep/aws"}))[
        "zfs-replicate"
    ]["service"]
    assert service["LoadCredential"] == ["aws-credentials:/etc/zfsrep/aws", "ssh-key:/etc/zfsrep/id"]
    assert service["Environment"] == ["TZ=UTC", "ZFSREP_KEPT_CREDENTIALS=/run/zfsrep/credentials/zfs-replicate",
                                      "ZFSREP_RUN_DIR=/run/zfsrep/runs/zfs-replicate"]
    assert service["ExecStartPre"][0] == "-/opt/zfsrep/bin/zfsrep systemd keep-credentials"
    assert service["ExecStopPost"][-1] == "-/opt/zfsrep/bin/zfsrep systemd drop-credentials"
    user = units(inputs(user="zfsrep", credentials={"ssh-key": "/etc/zfsrep/id"}))["zfs-snapshot"]["service"]
    assert "systemd allow" in user["ExecStartPre"][0] and "keep-credentials" in user["ExecStartPre"][1]
    assert "systemd unallow" in user["ExecStopPost"][-2] and "drop-credentials" in user["ExecStopPost"][-1]


def test_units_keep_no_credentials_when_nothing_runs_after_the_verb():
    config = parse_config('[[datasets]]\nname = "tank/a"\n')
    service = units(inputs_from_config(config, exe="/z", config_file="/c.toml", credentials={"k": "/etc/k"}))[
        "zfs-snapshot"]["service"]
    assert service["Environment"] == ["TZ=UTC", "ZFSREP_RUN_DIR=/run/zfsrep/runs/zfs-snapshot"]
    assert "ExecStartPre" not in service and "ExecStopPost" not in service


def test_units_verify_and_scrub_are_optional_with_their_own_hooks():
    assert set(units(inputs())) == {"zfs-snapshot", "zfs-replicate"}
    u = units(inputs(verify=True, verify_deep=True, scrub_targets=("nearby", "offsite")))
    verify, scrub = u["zfs-verify"], u["zfs-scrub-targets"]
    assert verify["timer"] == {"OnCalendar": "weekly", "Persistent": "true", "RandomizedDelaySec": "5min"}
    assert scrub["timer"] == {"OnCalendar": "monthly", "Persistent": "true", "RandomizedDelaySec": "5min"}
    assert verify["service"]["ExecStart"] == "/opt/zfsrep/bin/zfsrep verify --config /etc/zfsrep/config.toml --deep"
    assert scrub["service"]["ExecStart"] == [
        f"/opt/zfsrep/bin/zfsrep scrub --config /etc/zfsrep/config.toml --target {t} --wait"
        for t in ("nearby", "offsite")
    ]
    for part, verb in ((verify, "verify"), (scrub, "scrub")):
        service = part["service"]
        assert service["ExecStartPre"] == ["-/opt/zfsrep/bin/zfsrep warmup --config /etc/zfsrep/config.toml --target offsite"]
        assert service["ExecStopPost"] == [
            "-/opt/zfsrep/bin/zfsrep teardown --config /etc/zfsrep/config.toml --this-run",
            f"-/opt/zfsrep/bin/zfsrep report-result --config /etc/zfsrep/config.toml --verb {verb}",
        ]
    # only the scrubbed targets are warmed up for the scrub
    assert "ExecStartPre" not in units(inputs(scrub_targets=("nearby",)))["zfs-scrub-targets"]["service"]


def test_units_verify_and_scrub_need_no_zfs_allow_for_the_dedicated_user():
    u = units(inputs(user="zfsrep", verify=True, scrub_targets=("nearby",)))
    for name in ("zfs-verify", "zfs-scrub-targets"):
        service = u[name]["service"]
        assert service["User"] == "zfsrep"
        assert not any("allow" in line for line in service.get("ExecStartPre", []) + service["ExecStopPost"])


def test_units_state_dir_outside_var_lib_becomes_a_writable_path():
    service = units(inputs(state_dir="/srv/zfsrep", lock_dir="/run/zfsrep"))["zfs-snapshot"]["service"]
    assert service["ReadWritePaths"] == ["/srv/zfsrep"]
    assert "StateDirectory" not in service
    assert service["RuntimeDirectory"] == "zfsrep"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_exec_arg_is_one_word_with_the_same_text(text):
    # systemd's Exec= quoting for the characters used here equals POSIX double quotes,
    # except that % and $ are doubled (specifiers and variables stay literal).
    word = exec_arg(text)
    assert shlex.split(word.replace("%%", "%").replace("$$", "$")) == [text]
    assert "%" not in word.replace("%%", "")


def verify(directory: Path) -> subprocess.CompletedProcess:
    files = sorted(str(p) for p in directory.iterdir())
    return subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("user", ["root", "zfsrep"])
def test_rendered_units_pass_systemd_analyze_verify_without_warnings(tmp_path, user):
    exe = fake_exe(tmp_path / "bin with space")
    out = tmp_path / "units"
    out.mkdir()
    files = unit_files(units(inputs(exe=exe, user=user, credentials={"ssh-key": "/etc/hostname"})), header="test")
    for name, text in files.items():
        (out / name).write_text(text)
    assert sorted(files) == ["zfs-replicate.service", "zfs-replicate.timer", "zfs-snapshot.service", "zfs-snapshot.timer"]
    files = unit_files(units(inputs(exe=exe, user=user, credentials={"ssh-key": "/etc/hostname"}, verify=True,
                                    scrub_targets=("offsite", "nearby"))), header="test")
    for name, text in files.items():
        (out / name).write_text(text)
    assert len(files) == 8
    result = verify(out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # unknown keys are only warnings: none allowed


def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path):
    # the check above can fail: a misspelt directive is reported
    out = tmp_path / "units"
    out.mkdir()
    text = unit_files(units(inputs(exe=fake_exe(tmp_path)))).get("zfs-snapshot.service")
    (out / "zfs-snapshot.service").write_text(text.replace("ProtectSystem=", "ProtectSytem="))
    assert "Unknown key" in verify(out).stderr


@pytest.mark.parametrize(("user", "threshold"), [("zfsrep", "20"), ("root", "30")])
def test_rendered_units_exposure_stays_low(tmp_path, user, threshold):
    out = tmp_path / "units"
    out.mkdir()
    for name, text in unit_files(units(inputs(exe=fake_exe(tmp_path), user=user))).items():
        (out / name).write_text(text)
    for name, text in unit_files(units(inputs(exe=fake_exe(tmp_path), user=user, verify=True,
                                              scrub_targets=("offsite",)))).items():
        (out / name).write_text(text)
    for service in ("zfs-snapshot.service", "zfs-replicate.service", "zfs-verify.service", "zfs-scrub-targets.service"):
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", f"--threshold={threshold}", service],
            cwd=out, capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stdout[-600:] + result.stderr


def test_placement_problems_name_what_the_sandbox_hides():
    assert placement_problems(inputs()) == []
    problems = placement_problems(inputs(config_file="/tmp/c.toml", exe="/root/venv/bin/zfsrep", user="zfsrep"))
    assert len(problems) == 2
    assert "/tmp/c.toml" in problems[0] and "PrivateTmp" in problems[0]
    assert "/root/venv/bin/zfsrep" in problems[1] and "ProtectHome" in problems[1]
    assert placement_problems(inputs(exe="/root/venv/bin/zfsrep")) == []  # root: /root stays readable


# --- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    # /tmp is hidden by PrivateTmp, so render refuses configs there: use a neutral root.
    base = tmp_path.resolve()
    monkeypatch.setattr("zfsrep.systemd.placement_problems", lambda _inputs: [])
    monkeypatch.setattr("zfsrep.cli.systemd_cmd.placement_problems", lambda _inputs: [])
    path = base / "config.toml"
    path.write_text(CONFIG)
    return path


def test_cli_render_writes_four_units(tmp_path, config_file):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["systemd", "render", "-c", str(config_file), "--out", str(out), "--exe", "/opt/z/bin/zfsrep",
              "--replicate-on-calendar", "daily", "--credential", "ssh-key=/etc/zfsrep/id"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "zfs-replicate.service", "zfs-replicate.timer", "zfs-snapshot.service", "zfs-snapshot.timer"]
    replicate = (out / "zfs-replicate.service").read_text()
    assert f"ExecStart=/opt/z/bin/zfsrep replicate --config {config_file}\n" in replicate
    assert "LoadCredential=ssh-key:/etc/zfsrep/id\n" in replicate
    assert "OnCalendar=daily\n" in (out / "zfs-replicate.timer").read_text()
    assert "systemctl enable --now zfs-snapshot.timer zfs-replicate.timer" in result.output


def test_cli_render_verify_and_scrub_units(tmp_path, config_file):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["systemd", "render", "-c", str(config_file), "--out", str(out), "--exe", "/z",
                                      "--verify-deep", "--scrub-target", "offsite", "--scrub-on-calendar", "quarterly"])
    assert result.exit_code == 0, result.output
    assert "ExecStart=/z verify --config" in (out / "zfs-verify.service").read_text()
    scrub = (out / "zfs-scrub-targets.service").read_text()
    assert "--target offsite --wait\n" in scrub and "--target nearby" not in scrub
    assert "OnCalendar=quarterly\n" in (out / "zfs-scrub-targets.timer").read_text()
    assert "enable --now zfs-snapshot.timer zfs-replicate.timer zfs-verify.timer zfs-scrub-targets.timer" in result.output
    every = CliRunner().invoke(app, ["systemd", "render", "-c", str(config_file), "--exe", "/z", "--scrub", "--json"])
    starts = json.loads(every.output)["zfs-scrub-targets"]["service"]["ExecStart"]
    assert [line.split("--target ")[1] for line in starts] == ["offsite --wait", "nearby --wait"]


def test_cli_render_refuses_an_unknown_scrub_target(config_file):
    result = CliRunner().invoke(app, ["systemd", "render", "-c", str(config_file), "--exe", "/z",
                                      "--scrub-target", "nowhere"])
    assert result.exit_code == 2
    assert "nowhere" in result.output and "known: nearby, offsite" in result.output


def test_cli_render_refuses_a_config_the_sandbox_hides(tmp_path):
    path = Path("/tmp") / f"zfsrep-test-{os.getpid()}.toml"
    path.write_text(CONFIG)
    try:
        result = CliRunner().invoke(app, ["systemd", "render", "-c", str(path), "--exe", "/opt/z/bin/zfsrep"])
    finally:
        path.unlink()
    assert result.exit_code == 2
    assert "PrivateTmp" in result.output and str(path) in result.output


def test_cli_render_rejects_a_malformed_credential(config_file):
    result = CliRunner().invoke(app, ["systemd", "render", "-c", str(config_file), "--exe", "/z",
                                      "--credential", "ssh-key:relative"])
    assert result.exit_code == 2
    assert "NAME=/absolute/path" in result.output


def test_cli_render_json_is_the_unit_structure(config_file):
    result = CliRunner().invoke(app, ["systemd", "render", "-c", str(config_file), "--exe", "/z", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"zfs-snapshot", "zfs-replicate"}
    assert data["zfs-replicate"]["timer"]["OnCalendar"] == "hourly"


# --- credentials in the config -------------------------------------------------------------------


def test_config_credential_paths_resolve_inside_a_unit(monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/zfs-replicate.service")
    config = parse_config(CONFIG)
    assert config.targets["offsite"].identity_file == "/run/credentials/zfs-replicate.service/ssh-key"
    assert config.report.webhook.url_file == "/run/credentials/zfs-replicate.service/webhook-url"
    assert config.targets["offsite"].known_hosts == "/etc/zfsrep/known_hosts"


def test_config_credential_paths_use_the_kept_copy_in_the_stop_phase(monkeypatch, tmp_path):
    # ExecStopPost: $CREDENTIALS_DIRECTORY names a directory that is gone (or is unset)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "gone"))
    monkeypatch.setenv("ZFSREP_KEPT_CREDENTIALS", "/run/zfsrep/credentials/zfs-replicate")
    assert parse_config(CONFIG).report.webhook.url_file == "/run/zfsrep/credentials/zfs-replicate/webhook-url"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert parse_config(CONFIG).targets["offsite"].identity_file == "/run/zfsrep/credentials/zfs-replicate/ssh-key"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # there: systemd's own wins
    assert parse_config(CONFIG).targets["offsite"].identity_file == f"{tmp_path}/ssh-key"


def test_keep_and_drop_credentials(tmp_path, monkeypatch):
    given = tmp_path / "creds"
    given.mkdir()
    (given / "ssh-key").write_text("KEY")
    (given / "webhook-url").write_text("https://example.net/hook")
    kept = tmp_path / "run" / "credentials" / "zfs-replicate"
    kept.mkdir(parents=True)
    (kept / "stale").write_text("old")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(given))
    monkeypatch.setenv("ZFSREP_KEPT_CREDENTIALS", str(kept))
    result = CliRunner().invoke(app, ["systemd", "keep-credentials"])
    assert result.exit_code == 0, result.output
    assert "KEY" not in result.output and "ssh-key, webhook-url" in result.output
    assert sorted(p.name for p in kept.iterdir()) == ["ssh-key", "webhook-url"]
    assert (kept / "ssh-key").read_text() == "KEY"
    assert stat.S_IMODE((kept / "ssh-key").stat().st_mode) == 0o400
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    assert CliRunner().invoke(app, ["systemd", "drop-credentials"]).exit_code == 0
    assert not kept.exists() and kept.parent.exists()
    assert CliRunner().invoke(app, ["systemd", "drop-credentials"]).exit_code == 0  # nothing left: fine


def test_keep_credentials_outside_a_unit_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("ZFSREP_KEPT_CREDENTIALS", raising=False)
    result = CliRunner().invoke(app, ["systemd", "keep-credentials"])
    assert result.exit_code == 2 and "LoadCredential=" in result.output


def test_config_credential_paths_stay_as_written_outside_a_unit(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert parse_config(CONFIG).targets["offsite"].identity_file == "%d/ssh-key"


# --- zfs allow / unallow -------------------------------------------------------------------------


@pytest.fixture
def fake_zfs(tmp_path, monkeypatch):
    """A `zfs` on PATH that logs its argv and fails for datasets named */missing."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    log = tmp_path / "zfs.log"
    script = bin_dir / "zfs"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'for a; do last="$a"; done\n'
        'case "$last" in */missing) echo "cannot open \'$last\': dataset does not exist" >&2; exit 1;; esac\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


def test_delegation_allows_then_unallows_every_dataset(fake_zfs):
    config = parse_config('[[datasets]]\nname = "tank/a"\n[[datasets]]\nname = "tank/b"\n')
    granted = delegation.run(config, user="zfsrep", permissions=("send", "hold"), revoke=False, now=1.0)
    revoked = delegation.run(config, user="zfsrep", permissions=("send", "hold"), revoke=True, now=2.0)
    assert granted.exit_code == revoked.exit_code == 0
    assert fake_zfs.read_text().splitlines() == [
        "allow -u zfsrep send,hold tank/a", "allow -u zfsrep send,hold tank/b",
        "unallow -u zfsrep send,hold tank/a", "unallow -u zfsrep send,hold tank/b",
    ]


def test_delegation_failure_names_dataset_and_fix(fake_zfs):
    config = parse_config('[[datasets]]\nname = "tank/missing"\n[[datasets]]\nname = "tank/ok"\n')
    result = delegation.run(config, user="zfsrep", permissions=("snapshot",), revoke=False, now=1.0)
    assert result.exit_code == 3
    assert "tank/missing" in result.items[0].error and "zfs list" in result.items[0].error


def test_delegation_refuses_root_and_bad_permissions():
    config = parse_config('[[datasets]]\nname = "tank/a"\n')
    with pytest.raises(UsageError):
        delegation.run(config, user="root", permissions=("send",), revoke=False)
    with pytest.raises(UsageError):
        delegation.parse_permissions("send;rm -rf /")


def test_cli_allow_dry_run_prints_the_commands(config_file):
    result = CliRunner().invoke(app, ["systemd", "allow", "-c", str(config_file), "--user", "zfsrep",
                                      "--permissions", "send,hold", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "planned: zfs allow -u zfsrep send,hold tank/data" in result.output


def test_timers_that_reach_targets_are_spread_so_a_fleet_does_not_arrive_at_once():
    u = units(inputs(verify=True, scrub_targets=("nearby",)))
    assert "RandomizedDelaySec" not in u["zfs-snapshot"]["timer"]  # snapshot names follow the clock
    for name in ("zfs-replicate", "zfs-verify", "zfs-scrub-targets"):
        assert u[name]["timer"]["RandomizedDelaySec"] == "5min"
    off = units(inputs(randomized_delay_sec="0", verify=True))
    assert all("RandomizedDelaySec" not in part["timer"] for part in off.values())
    assert "\nRandomizedDelaySec=30min\n" in unit_files(units(inputs(randomized_delay_sec="30min")))["zfs-replicate.timer"]


# --- a backup target: [receive] -------------------------------------------------------------------

RECEIVE = """
[receive.sources.web1]
root = "backup/hosts/web1"
retention = { daily = 7 }
"""


def receive_inputs(text: str, **overrides) -> UnitInputs:
    config = parse_config(text, path="/etc/zfsrep/config.toml")
    options = {"exe": "/opt/zfsrep/bin/zfsrep", "config_file": "/etc/zfsrep/config.toml", **overrides}
    return inputs_from_config(config, **options)


def test_a_receive_only_config_renders_only_the_targets_own_pruning_as_root():
    u = units(receive_inputs(RECEIVE, user="zfsrep", verify=True))
    assert set(u) == {"zfs-prune-received"}  # nothing to snapshot or send
    service = u["zfs-prune-received"]["service"]
    # root whatever --user says: it holds the destroy that the sources' ssh user never has
    assert "User" not in service
    assert service["ExecStart"] == "/opt/zfsrep/bin/zfsrep prune-received --config /etc/zfsrep/config.toml"
    assert "ExecStopPost" not in service and "ExecStartPre" not in service  # no sink, no teardown
    assert service["Environment"] == ["TZ=UTC", "ZFSREP_RUN_DIR=/run/zfsrep/runs/zfs-prune-received"]
    snapshot_as_root = units(inputs())["zfs-snapshot"]["service"]
    own = ("ExecStart", "ExecStopPost", "Environment")  # CONFIG has a report sink, RECEIVE none
    assert {k: v for k, v in service.items() if k not in own} == {
        k: v for k, v in snapshot_as_root.items() if k not in own}
    assert u["zfs-prune-received"]["timer"] == {"OnCalendar": "daily", "Persistent": "true",
                                                "RandomizedDelaySec": "5min"}


def test_a_source_that_also_receives_gets_both_and_the_pruning_reports():
    u = units(receive_inputs(CONFIG + RECEIVE, prune_received_on_calendar="*-*-* 03:00"))
    assert set(u) == {"zfs-snapshot", "zfs-replicate", "zfs-prune-received"}
    service = u["zfs-prune-received"]["service"]
    assert service["ExecStopPost"] == [
        "-/opt/zfsrep/bin/zfsrep report-result --config /etc/zfsrep/config.toml --verb prune-received"]
    assert "TimeoutStopSec" not in service  # local: no teardown to wait for
    assert u["zfs-prune-received"]["timer"]["OnCalendar"] == "*-*-* 03:00"
    assert "zfs-prune-received" not in units(inputs())  # no [receive], no pruning unit


def test_rendered_prune_received_unit_passes_systemd_analyze(tmp_path):
    out = tmp_path / "units"
    out.mkdir()
    for name, text in unit_files(units(receive_inputs(RECEIVE, exe=fake_exe(tmp_path))), header="test").items():
        (out / name).write_text(text)
    result = verify(out)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=30",
                               "zfs-prune-received.service"], cwd=out, capture_output=True, text=True, check=False)
    assert security.returncode == 0, security.stdout[-600:] + security.stderr


def test_cli_render_of_a_receive_only_config(tmp_path, config_file):
    config_file.write_text(RECEIVE)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["systemd", "render", "-c", str(config_file), "--out", str(out),
                                      "--exe", "/z", "--prune-received-on-calendar", "weekly"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["zfs-prune-received.service", "zfs-prune-received.timer"]
    assert "OnCalendar=weekly\n" in (out / "zfs-prune-received.timer").read_text()
    assert "systemctl enable --now zfs-prune-received.timer" in result.output
