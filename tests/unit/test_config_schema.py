"""The config's keys and defaults are stated once, in `config/model.py` (`schema.key`,
`schema.table`), and validation reads them from there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from zfsrep.config import checker as c
from zfsrep.config import schema
from zfsrep.config.model import Config, Retention, TargetConfig
from zfsrep.config.validate import validate
from zfsrep.core.labels import LABELS
from zfsrep.errors import ConfigError


def test_an_empty_file_is_the_models_defaults():
    assert validate({}) == Config()


def test_a_target_with_only_its_required_keys_is_the_models_defaults():
    config = validate({"targets": {"t": {"host": "h", "dataset": "backup/x"}}})
    assert config.targets["t"] == TargetConfig(name="t", host="h", dataset="backup/x")


def test_retention_keys_are_the_labels():
    assert schema.keys(Retention) == set(LABELS)


def test_validation_knows_exactly_the_declared_top_level_keys():
    with pytest.raises(ConfigError) as err:
        validate({key: object() for key in schema.keys(Config)} | {"path": "/x"})
    assert "path: unknown key" in err.value.problems
    assert not [p for p in err.value.problems if p.endswith("unknown key") and not p.startswith("path")]


@dataclass(frozen=True)
class Extra:
    """A table as a new [receive] would be declared: keys only, and a rule across them."""

    listen: str = schema.key(c.string, expected="an address")
    port: int = schema.key(c.port, 22)
    keep: Any = schema.table(Retention)

    def problems(self, path):
        if self.port == 23:
            yield "port", "not telnet"


def test_a_declared_table_is_read_from_its_declaration_alone():
    ck = c.Checker()
    got = schema.read_table(ck, Extra, {"listen": "::", "keep": {"hourly": 2}}, "extra")
    assert got == Extra(listen="::", port=22, keep=Retention(hourly=2)) and not ck.problems

    ck = c.Checker()
    assert schema.read_table(ck, Extra, {"port": 70000, "prot": 1, "keep": {"hourly": -1}}, "extra") is None
    assert ck.problems == [
        "extra.prot: unknown key (did you mean 'port'?)",
        "extra.listen: required: an address",
        "extra.port: expected a port number 1-65535, got 70000",
        "extra.keep.hourly: expected a non-negative integer, got -1",
    ]

    ck = c.Checker()
    schema.read_table(ck, Extra, {"listen": "::", "port": 23}, "extra")
    assert ck.problems == ["extra.port: not telnet"]
