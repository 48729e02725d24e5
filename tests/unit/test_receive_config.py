"""``[receive]`` (zfsrep/config/receive.py): a receive-only config is valid, every problem is
reported at once with its dotted path, `config check` accepts and refuses it, `config show`
round-trips it and leaves configs without it unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from zfsrep.cli import app
from zfsrep.config.load import parse_config, render_config
from zfsrep.config.model import Retention
from zfsrep.config.receive import ReceiveSource
from zfsrep.errors import ConfigError

RECEIVE_ONLY = '''
[retention]
hourly = 0
[receive.sources.web1]
root = "backup/hosts/web1"
retention = { daily = 30, monthly = 24 }
[receive.sources."db 2"]
root = "backup/hosts/db2"
'''


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return [line.strip() for line in str(caught.value).splitlines() if ": " in line and "problems" not in line]


def test_receive_only_config_is_valid_and_counts_default_to_the_top_level_retention():
    cfg = parse_config(RECEIVE_ONLY)
    assert cfg.datasets == () and cfg.targets == {}
    assert cfg.receive.sources == {
        "web1": ReceiveSource("backup/hosts/web1", Retention(hourly=0, daily=30, monthly=24)),
        "db 2": ReceiveSource("backup/hosts/db2", Retention(hourly=0)),
    }


def test_without_receive_there_is_none_and_show_does_not_mention_it():
    cfg = parse_config('[[datasets]]\nname = "tank"\n')
    assert cfg.receive is None
    assert "receive" not in render_config(cfg)


def test_show_round_trips_receive():
    cfg = parse_config(RECEIVE_ONLY)
    assert parse_config(render_config(cfg)) == cfg


@pytest.mark.parametrize("text, expected", [
    ("[receive]\n", ["receive.sources: required: at least one [receive.sources.NAME] with a root"]),
    ("receive = 3\n", ["receive: expected a table, got 3"]),
    ("[receive]\nsources = 2\n", ["receive.sources: expected a table of sources ([receive.sources.NAME]), got 2"]),
    ("[receive.sources.a]\nroot = \"backup/a\"\nbogus = 1\n", ["receive.sources.a.bogus: unknown key"]),
    ("[receive.sources.a]\nroot = \"backup/a@x\"\n",
     ['receive.sources.a.root: expected a ZFS dataset name like "tank/home", got "backup/a@x"']),
])
def test_single_problems(text, expected):
    assert problems(text) == expected


def test_every_problem_at_once_with_dotted_paths():
    found = problems('''
[receive.sources.a]
root = "backup/a"
[receive.sources.b]
root = "backup/a/b"
retention = { daly = 3, monthly = -1 }
[receive.sources.c]
retention = { daily = 1 }
''')
    assert sorted(found) == sorted([
        "receive.sources.b.retention.daly: unknown key (did you mean 'daily'?)",
        "receive.sources.b.retention.monthly: expected a non-negative integer, got -1",
        "receive.sources.b.root: 'backup/a/b' overlaps receive.sources.a.root 'backup/a'; "
        "each copy must belong to one source",
        'receive.sources.c.root: required: the dataset this source\'s copies land under, '
        'e.g. "backup/hosts/web1"',
    ])


def test_a_root_that_contains_an_earlier_one_overlaps_too():
    assert problems('[receive.sources.a]\nroot = "backup/a/b"\n[receive.sources.b]\nroot = "backup/a"\n') == [
        "receive.sources.b.root: 'backup/a' overlaps receive.sources.a.root 'backup/a/b'; "
        "each copy must belong to one source"]


def test_sibling_roots_with_a_common_prefix_do_not_overlap():
    cfg = parse_config('[receive.sources.a]\nroot = "backup/a"\n[receive.sources.b]\nroot = "backup/ab"\n')
    assert set(cfg.receive.sources) == {"a", "b"}


def test_config_check_accepts_and_refuses(tmp_path: Path):
    good = tmp_path / "good.toml"
    good.write_text(RECEIVE_ONLY)
    out = CliRunner().invoke(app, ["config", "check", "--config", str(good)])
    assert out.exit_code == 0, out.output
    assert out.output == f"{good}: ok (0 dataset(s), 0 target(s), 2 receive source(s))\n"
    bad = tmp_path / "bad.toml"
    bad.write_text("[receive.sources.web1]\nroot = 7\n")
    out = CliRunner().invoke(app, ["config", "check", "--config", str(bad)])
    assert out.exit_code == 2
    assert "receive.sources.web1.root: expected a ZFS dataset name" in out.output
