"""What the report sinks' registry (`zfsrep.sinks`) implies outside the package: the NixOS
module's copy of it (nixos-modules/sinks.json, read by default.nix) and the docs. A registered
sink missing from either fails here (tests/unit/test_sink_registry.py checks the rest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zfsrep import sinks

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_the_nixos_modules_sink_list_is_written_from_the_registry():
    written = json.loads((ROOT / "nixos-modules" / "sinks.json").read_text())
    assert written == sinks.nix_table(), (
        "nixos-modules/sinks.json differs from zfsrep.sinks; write it again with: python -c "
        "'import json; from zfsrep import sinks; print(json.dumps(sinks.nix_table(), indent=2, sort_keys=True))'"
    )


@pytest.mark.parametrize("name", sorted(sinks.SINKS))
def test_a_sink_is_documented(name):
    credential = sinks.SINKS[name].CREDENTIAL
    assert f"[report.{name}]" in (DOCS / "config.md").read_text()
    assert f"[report.{name}]" in (DOCS / "monitoring.md").read_text()
    assert f"credentials.{credential.option}" in (DOCS / "nixos.md").read_text()
