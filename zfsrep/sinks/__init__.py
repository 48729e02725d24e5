"""The report sinks: name → one module, each with the same interface (as borgmatic's monitoring
hooks are). Everything that depends on which sinks exist reads `SINKS`: `report-result` (which
sinks to tell), `zfsrep systemd render` (a configured sink adds the report-result step), and
the NixOS module (nixos-modules/sinks.json, written from `nix_table()` and checked against it by
tests/tooling/test_sink_registry_files.py).

A sink module has:
- ``NAME``: its table in the config, ``[report.<NAME>]``, and the field of
  `zfsrep.config.model.ReportConfig` that holds its settings (None when not configured);
- ``CREDENTIAL``: a `shared.Credential`, the secret file the NixOS module can hand it;
- ``build_requests(sink, run, run_id) -> list[Request]``: what to send about ``run`` (a
  `RunReport`; None for the start of a run, where a sink without a start message returns []).
  It reads its secret files (a `shared.SinkError` when it cannot) and never sends anything:
  `zfsrep.report.deliver` does, the only place that imports ``requests``.

Stdlib only, so the units' renderer and the CLI's start-up do not pay for ``requests``.
Adding a sink: docs/architecture.md, "Adding a report sink".
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from zfsrep.config.model import ReportConfig
from zfsrep.sinks import healthchecks, honeycomb, webhook

# In the order report-result tells them.
SINKS: dict[str, ModuleType] = {module.NAME: module for module in (honeycomb, healthchecks, webhook)}


def configured(report: ReportConfig) -> list[tuple[ModuleType, Any]]:
    """(sink module, its settings) for each sink the config's [report] sets up, in `SINKS` order."""
    return [(module, getattr(report, name)) for name, module in SINKS.items()
            if getattr(report, name) is not None]


def nix_table() -> dict[str, dict[str, str]]:
    """What the NixOS module needs to know of each sink (nixos-modules/sinks.json)."""
    return {name: {"option": m.CREDENTIAL.option, "credential": m.CREDENTIAL.name, "key": m.CREDENTIAL.key}
            for name, m in SINKS.items()}
