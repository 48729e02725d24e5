"""`zfsrep <verb>` imports only that verb: start-up time is paid on every timer run."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from zfsrep.cli import main
sys.argv = ["zfsrep", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if m.startswith("zfsrep"))}))
"""


def probe(*args):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          check=False)
    return proc, json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_verb_imports_only_its_own_command_module():
    proc, seen = probe("status", "--help")
    assert seen["code"] == 0 and "Usage: zfsrep status" in proc.stdout
    cli_modules = {m for m in seen["modules"] if m.startswith("zfsrep.cli.")}
    assert cli_modules == {"zfsrep.cli.status", "zfsrep.cli.common"}, cli_modules
    assert "zfsrep.actions.replicate" not in seen["modules"]


def test_the_root_app_still_lists_every_verb_and_group():
    proc, seen = probe("--help")
    assert seen["code"] == 0
    for verb in ("snapshot", "replicate", "status", "restore", "config", "systemd"):
        assert verb in proc.stdout
    proc, seen = probe("config", "--help")
    assert seen["code"] == 0 and "init" in proc.stdout


def test_a_bad_option_is_a_usage_error_on_the_fast_path():
    proc, seen = probe("replicate", "--no-such-option")
    assert seen["code"] == 2 and "No such option" in proc.stderr


def test_vv_logs_zfsreps_commands_with_times_and_not_the_sh_librarys_chatter(tmp_path):
    import logging

    from zfsrep.cli.common import setup_logging
    from zfsrep.execute import Runner

    setup_logging(2)
    try:
        handler = logging.getLogger().handlers[0]
        records: list[str] = []
        handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
        Runner().run(["true"])
        assert any(r.startswith("DEBUG +") and "zfsrep.execute: run: true" in r for r in records), records
        assert not [r for r in records if " sh." in r], records
    finally:
        setup_logging(0)
