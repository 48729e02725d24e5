"""`zfsrep --version` answers without building the app (no verb's imports, not even typer)."""

from __future__ import annotations

import subprocess
import sys

from zfsrep import __version__


def test_version_is_printed_without_importing_typer():
    code = ("import sys; sys.argv = ['zfsrep', '--version']; from zfsrep.cli import main; main(); "
            "print('typer' in sys.modules, 'zfsrep.actions.replicate' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"zfsrep {__version__}", "False False"]


def test_version_with_other_arguments_still_goes_through_the_app():
    proc = subprocess.run([sys.executable, "-m", "zfsrep", "--version", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and f"zfsrep {__version__}" in proc.stdout
