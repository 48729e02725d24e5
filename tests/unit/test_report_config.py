"""The [report] and threshold settings that report-result and status add to the config."""

import pytest

from zfsrep.config.load import parse_config
from zfsrep.errors import ConfigError


def test_honeycomb_batch_defaults_to_single_events_and_can_be_switched_on():
    base = '[report.honeycomb]\nkey_file = "/run/credentials/zfsrep.service/honeycomb"\n'
    assert parse_config(base).report.honeycomb.batch is False
    assert parse_config(base + "batch = true\n").report.honeycomb.batch is True
    with pytest.raises(ConfigError, match=r"report.honeycomb.batch: expected true or false"):
        parse_config(base + 'batch = "yes"\n')


def test_a_target_crit_shorter_than_its_warn_is_refused():
    target = '[targets.offsite]\nhost = "b"\ndataset = "backup/web1"\nwarn = "2d"\n'
    assert parse_config(target + 'crit = "3d"\n').targets["offsite"].crit == 3 * 86400
    with pytest.raises(ConfigError, match=r"targets.offsite.crit: must not be shorter than targets.offsite.warn"):
        parse_config(target + 'crit = "1d"\n')
