"""`zfsrep config init|show|check` and finding the file: exit codes, messages, round trips."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zfsrep.cli import app
from zfsrep.config.load import config_to_dict, load_config, parse_config, render_config
from zfsrep.config.starter import STARTER_CONFIG
from zfsrep.errors import ConfigError

FULL = '''
state_dir = "/var/lib/zfsrep"
lock_dir = "/run/zfsrep"
[retention]
frequent = 4
yearly = 2
[[datasets]]
name = "tank/home"
recursive = true
exclude = ["tank/home/cache", "tank/home/-tmp dir"]
retention = { hourly = 48 }
targets = ["ec2", "cmd"]
[[datasets]]
name = "tank/vm"
snapshot = false
[targets.ec2]
dataset = "backup/hosts/web1"
ssh_options = ["Ciphers=chacha20-poly1305@openssh.com"]
identity_file = "/run/credentials/zfsrep.service/ssh-key"
known_hosts = "/etc/zfsrep/known_hosts"
compress = "zstd"
mbuffer = "256M"
rate_limit = "20M"
properties = { canmount = "noauto", mountpoint = "none" }
retention = { daily = 30, monthly = 24 }
warn = "2d"
crit = "4d"
[targets.ec2.warmup]
type = "ec2"
region = "eu-central-1"
instance_id = "i-0123456789abcdef0"
volume_id = "vol-0123"
device = "/dev/xvdf"
pool = "backup"
tags = { owner = "ops" }
[targets.cmd]
host = "backup.example.org"
port = 2222
dataset = "backup/x"
warmup = { type = "command", command = ["wake", "backup"], teardown_command = ["sleep-host", "backup"] }
[report]
timeout = "5s"
retries = 2
[report.honeycomb]
key_file = "/run/credentials/zfsrep.service/honeycomb"
[report.healthchecks]
url_file = "/run/credentials/zfsrep.service/hc"
[report.webhook]
url = "https://hooks.example.org/zfsrep"
headers_file = "/run/credentials/zfsrep.service/headers"
[status]
warn = "26h"
crit = "50h"
'''


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_starter_is_valid_and_documents_every_label():
    cfg = parse_config(STARTER_CONFIG)
    assert cfg.datasets and cfg.targets
    for label in ("frequent", "hourly", "daily", "weekly", "monthly", "yearly"):
        assert f"\n{label} = " in STARTER_CONFIG


def test_init_writes_the_starter_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "etc" / "config.toml"
    out = invoke("config", "init", str(path))
    assert out.exit_code == 0, out.output
    assert path.read_text() == STARTER_CONFIG
    assert f"zfsrep config check --config {path}" in out.output
    path.write_text("# mine\n")
    out = invoke("config", "init", str(path))
    assert out.exit_code == 2 and "exists" in out.output and "--force" in out.output
    assert path.read_text() == "# mine\n"
    assert invoke("config", "init", str(path), "--force").exit_code == 0
    assert path.read_text() == STARTER_CONFIG


def test_check_ok_and_counts(tmp_path):
    path = write(tmp_path, FULL)
    out = invoke("config", "check", "--config", str(path))
    assert out.exit_code == 0, out.output
    assert out.output == f"{path}: ok (2 dataset(s), 2 target(s))\n"


def test_check_reports_every_problem_and_exits_2(tmp_path):
    path = write(tmp_path, '[retention]\nhourly = "x"\n[[datasets]]\nname = "tank"\nbogus = 1\n')
    out = invoke("config", "check", "--config", str(path))
    assert out.exit_code == 2
    assert f"zfsrep: {path}: 2 problems:" in out.output
    assert '  retention.hourly: expected a non-negative integer, got "x"' in out.output
    assert "  datasets[0].bogus: unknown key" in out.output


def test_missing_file_names_the_path_and_the_flag(tmp_path):
    path = tmp_path / "nope.toml"
    out = invoke("config", "check", "--config", str(path))
    assert out.exit_code == 2
    assert f"no config file at {path}" in out.output
    assert "--config PATH" in out.output and "ZFSREP_CONFIG" in out.output and "zfsrep config init" in out.output


def test_unreadable_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match=rf"cannot read {tmp_path}: .*; use --config PATH or ZFSREP_CONFIG"):
        load_config(tmp_path)  # a directory: unreadable as a file (root reads any file)


def test_env_var_selects_the_file(tmp_path):
    path = write(tmp_path, '[[datasets]]\nname = "tank/a"\n')
    out = invoke("config", "check", env={"ZFSREP_CONFIG": str(path)})
    assert out.exit_code == 0 and "1 dataset(s)" in out.output


def test_show_round_trips_with_defaults_filled_in(tmp_path):
    path = write(tmp_path, FULL)
    cfg = load_config(path)
    out = invoke("config", "show", "--config", str(path))
    assert out.exit_code == 0, out.output
    shown = tomllib.loads(out.output)
    assert shown["datasets"][1]["retention"] == {"frequent": 4, "hourly": 24, "daily": 7, "weekly": 4,
                                                  "monthly": 12, "yearly": 2}
    assert shown["targets"]["cmd"]["user"] == "root"
    again = parse_config(out.output, path=str(path))
    assert again == cfg
    assert render_config(again) == out.output


def test_show_json_matches_the_toml_shape(tmp_path):
    import json

    path = write(tmp_path, FULL)
    out = invoke("config", "show", "--json", "--config", str(path))
    assert out.exit_code == 0
    assert json.loads(out.output) == json.loads(json.dumps(config_to_dict(load_config(path))))


def test_starter_round_trips_through_show(tmp_path):
    path = write(tmp_path, STARTER_CONFIG)
    out = invoke("config", "show", "--config", str(path))
    assert parse_config(out.output, path=str(path)) == load_config(path)
