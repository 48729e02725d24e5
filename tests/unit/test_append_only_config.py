"""`targets.<name>.append_only`: the target runs `zfsrep serve` and prunes itself."""

from __future__ import annotations

import pytest

from zfsrep.config.load import parse_config
from zfsrep.errors import ConfigError

TARGET = '[targets.backup]\nhost = "backup.example"\ndataset = "backup/hosts/web1"\n'


def test_append_only_is_off_by_default_and_read():
    assert parse_config(TARGET).targets["backup"].append_only is False
    assert parse_config(TARGET + "append_only = true\n").targets["backup"].append_only is True


def test_append_only_must_be_a_boolean():
    with pytest.raises(ConfigError) as err:
        parse_config(TARGET + 'append_only = "yes"\n')
    assert err.value.problems == ['targets.backup.append_only: expected true or false, got "yes"']


def test_append_only_with_force_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_config(TARGET + "append_only = true\nforce = true\n")
    assert err.value.problems == ["targets.backup.force: an append_only target refuses `zfs receive -F`; "
                                  "set one of them to false"]
