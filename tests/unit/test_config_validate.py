"""Config validation: every problem at once, each with its dotted path and what is expected;
unknown keys; defaults; the exact message shape the docs promise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.config.load import parse_config
from zfsrep.config.model import Config, Retention
from zfsrep.config.validate import validate
from zfsrep.errors import EXIT_USAGE, ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, path="/etc/zfsrep/config.toml")
    assert err.value.exit_code == EXIT_USAGE
    assert str(err.value).startswith("/etc/zfsrep/config.toml: ")
    return err.value.problems


def test_empty_file_is_a_valid_config_with_defaults():
    cfg = parse_config("")
    assert cfg == Config()
    assert cfg.retention == Retention(frequent=0, hourly=24, daily=7, weekly=4, monthly=12, yearly=0)
    assert cfg.state_dir == "/var/lib/zfsrep" and cfg.lock_dir == "/run/zfsrep"


def test_issue_example_message_is_exact():
    text = '[[datasets]]\nname = "tank/a"\n[[datasets]]\nname = "tank/b"\nretention = { hourly = "x" }\n'
    assert problems(text) == ['datasets[1].retention.hourly: expected a non-negative integer, got "x"']


def test_every_error_at_once_with_dotted_paths():
    text = '''
state_dir = 5
colour = "blue"
[retention]
hourly = -1
dayly = 3
[[datasets]]
recursive = "yes"
[[datasets]]
name = "tank/home"
exclude = ["tank/other"]
targets = ["nowhere"]
[[datasets]]
name = "tank/home"
[targets.backup]
host = "b"
port = 70000
compress = "gzip"
dataset = "backup/x"
lock_timeout = "soon"
[targets.nohost]
dataset = "backup/y"
[report.healthchecks]
url = "https://hc/1"
url_file = "/run/credentials/x"
[status]
warn = "2d"
crit = "1d"
'''
    got = problems(text)
    expected = [
        "colour: unknown key",
        "retention.dayly: unknown key (did you mean 'daily'?)",
        "retention.hourly: expected a non-negative integer, got -1",
        "targets.backup.port: expected a port number 1-65535, got 70000",
        "targets.backup.compress: expected one of 'none', 'zstd', 'lz4', got \"gzip\"",
        "targets.backup.lock_timeout: expected a duration like 90s, 15m, 26h, 7d, got \"soon\"",
        "targets.nohost.host: required (or a warmup that provides the address: ec2, or a command that prints it)",
        "datasets[0].name: required: a dataset name like \"tank/home\"",
        "datasets[0].recursive: expected true or false, got \"yes\"",
        "datasets[1].exclude[0]: 'tank/other' is not a child of 'tank/home'",
        "datasets[1].exclude: only makes sense with recursive = true",
        "datasets[1].targets[0]: no target named 'nowhere' (define [targets.nowhere])",
        "datasets[2].name: 'tank/home' is already configured at datasets[1]",
        "report.healthchecks: set exactly one of url or url_file",
        "status.crit: must not be shorter than status.warn",
        "state_dir: expected a non-empty string, got 5",
    ]
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("text, problem", [
    ('datasets = "tank"', 'datasets: expected an array of tables ([[datasets]]), got "tank"'),
    ('targets = ["a"]', "targets: expected a table of targets ([targets.NAME]), got an array"),
    ('retention = 3', "retention: expected a table, got 3"),
    ('[[datasets]]\nname = "tank/a@snap"', 'datasets[0].name: expected a ZFS dataset name like "tank/home", got "tank/a@snap"'),
    ('[[datasets]]\nname = "/tank"', 'datasets[0].name: expected a ZFS dataset name like "tank/home", got "/tank"'),
    ('[[datasets]]\nname = "tank/"', 'datasets[0].name: expected a ZFS dataset name like "tank/home", got "tank/"'),
    ('[[datasets]]\nname = "tank"\nretention = { hourly = true }', "datasets[0].retention.hourly: expected a non-negative integer, got true"),
    ('[[datasets]]\nname = "tank"\nretention = { minutely = 4 }', "datasets[0].retention.minutely: unknown key"),
    ('[targets.b]\nhost = "h"\ndataset = "x"\nwarmup = { type = "ec2", region = "eu-central-1" }',
     "targets.b.warmup: set exactly one of instance_id (start/stop an instance) or launch_template (launch/terminate)"),
    ('[targets.b]\nhost = "h"\ndataset = "x"\nwarmup = { type = "command", command = "start-it" }',
     'targets.b.warmup.command: expected a command as an array of arguments, e.g. ["ssh", "backup", "true"], got "start-it"'),
])
def test_single_problems(text, problem):
    assert problems(text) == [problem]


def test_not_toml_names_the_file():
    with pytest.raises(ConfigError, match=r"^/x\.toml: not valid TOML: "):
        parse_config("[[datasets]\n", path="/x.toml")


def test_names_with_spaces_and_dash_children_are_valid():
    cfg = parse_config('[[datasets]]\nname = "tank/my data"\nrecursive = true\nexclude = ["tank/my data/-tmp"]\n')
    assert cfg.datasets[0].name == "tank/my data"
    assert cfg.datasets[0].exclude == ("tank/my data/-tmp",)


def test_dataset_and_target_retention_inherit_the_default_counts():
    cfg = parse_config('''
[retention]
hourly = 48
[[datasets]]
name = "tank/a"
retention = { daily = 30 }
[targets.b]
host = "h"
dataset = "backup/x"
retention = { monthly = 24 }
''')
    ds = cfg.datasets[0]
    assert ds.retention == Retention(hourly=48, daily=30)
    assert cfg.targets["b"].retention == Retention(hourly=48, monthly=24)
    assert cfg.target_retention(cfg.targets["b"], ds) == Retention(hourly=48, monthly=24)


def test_target_without_retention_uses_the_datasets():
    cfg = parse_config('[[datasets]]\nname = "tank/a"\nretention = { daily = 3 }\n[targets.b]\nhost = "h"\ndataset = "backup/x"\n')
    assert cfg.target_retention(cfg.targets["b"], cfg.datasets[0]).daily == 3


def test_durations_and_sizes():
    cfg = parse_config('[status]\nwarn = "1h30m"\ncrit = 7200\n[targets.b]\nhost = "h"\ndataset = "x"\nmbuffer = "256M"\nrate_limit = 1000\n')
    assert cfg.status.warn == 5400 and cfg.status.crit == 7200
    assert cfg.targets["b"].mbuffer == "256M" and cfg.targets["b"].rate_limit == "1000"


_scalars = st.one_of(st.booleans(), st.integers(-3, 70000), st.text(max_size=8), st.floats(allow_nan=False, width=32))
_keys = st.sampled_from(["name", "recursive", "exclude", "retention", "snapshot", "targets", "host", "dataset",
                         "port", "hourly", "daily", "warmup", "type", "command", "region", "state_dir", "status",
                         "warn", "crit", "report", "healthchecks", "url", "backup", "datasets", "x"])
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(_keys, inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_document_gives_a_config_or_a_config_error(doc):
    """Whatever the TOML holds, validation returns a Config or raises ConfigError listing
    dotted-path problems: never another exception."""
    try:
        validate(doc)
    except ConfigError as e:
        assert e.problems and all(": " in p for p in e.problems)


@pytest.mark.parametrize("value", ["[]", "{ a = 1 }", "true", "-5"])
def test_a_duration_of_the_wrong_type_is_a_problem_not_a_crash(value):
    assert problems(f"[status]\nwarn = {value}\n") == [
        f"status.warn: expected a duration like 90s, 15m, 26h, 7d, got {_shown(value)}"
    ]


def _shown(value: str) -> str:
    return {"[]": "an array", "{ a = 1 }": "a table", "true": "true", "-5": "-5"}[value]
