"""The report sinks' registry (`zfsrep.sinks`) is the one list of sinks: a sink registered there
is a table of the config, validated, told by report-result and rendered into the units (the
report-result step). Adding a sink and forgetting one of these fails here; the NixOS module's
copy (nixos-modules/sinks.json) and the docs, outside the package, are checked by
tests/tooling/test_sink_registry_files.py."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import pytest

from zfsrep import sinks
from zfsrep.config.load import parse_config
from zfsrep.config.model import ReportConfig
from zfsrep.systemd import inputs_from_config, units

REGISTERED = sorted(sinks.SINKS)


def test_the_registry_names_every_sink_table_of_the_config_and_no_other():
    tables = {f.name for f in dataclasses.fields(ReportConfig)} - {"timeout", "retries"}
    assert tables == set(sinks.SINKS)


@pytest.mark.parametrize("name", REGISTERED)
def test_a_sink_module_has_the_interface(name):
    module = sinks.SINKS[name]
    assert module.NAME == name
    assert module.CREDENTIAL.name and module.CREDENTIAL.option and module.CREDENTIAL.key
    assert list(inspect.signature(module.build_requests).parameters) == ["sink", "run", "run_id"]


@pytest.mark.parametrize("name", REGISTERED)
def test_a_sink_configured_by_its_credential_alone_is_valid_told_and_rendered(name):
    credential = sinks.SINKS[name].CREDENTIAL
    config = parse_config(f'[[datasets]]\nname = "tank/a"\n[report.{name}]\n'
                          f'{credential.key} = "%d/{credential.name}"\n')
    assert [module.NAME for module, _ in sinks.configured(config.report)] == [name]
    rendered = units(inputs_from_config(config, exe="/usr/bin/zfsrep", config_file="/etc/zfsrep/config.toml"))
    assert any("report-result" in step for step in rendered["zfs-replicate"]["service"]["ExecStopPost"])


def test_the_registry_does_not_load_requests():
    probe = "import sys, zfsrep.sinks, zfsrep.systemd; print('requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
