"""The lab tests' rerun rule (tests/integration/conftest.py), run in a separate pytest: a lab
test that fails with GuestHung runs once more; any other failure, a second hang, or a test
that is not a lab test, is not rerun."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = "from tests.integration.conftest import pytest_collection_modifyitems  # noqa: F401\n"

TESTS = textwrap.dedent("""
    import pathlib
    import pytest
    from tests.lab.paths import GuestHung, LabError

    def fails_first_time(name, exc):
        mark = pathlib.Path(__file__).with_name(name)
        if not mark.exists():
            mark.write_text("x")
            raise exc

    @pytest.mark.lab
    def test_hung_once():
        fails_first_time("hung_once", GuestHung("ssh source: timed out; blocked in the kernel: zfs:42"))

    @pytest.mark.lab
    def test_hung_twice():
        raise GuestHung("ssh source: timed out; blocked in the kernel: zfs:42")

    @pytest.mark.lab
    def test_other_failure():
        fails_first_time("other", LabError("ssh source failed (exit 1)"))

    def test_not_a_lab_test():
        fails_first_time("unit", GuestHung("not from the lab"))
""")


def test_only_a_hung_guest_reruns_a_lab_test_and_only_once(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_rerun_rule.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    lab: lab\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rAR", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "PASSED test_rerun_rule.py::test_hung_once" in out, out
    assert "FAILED test_rerun_rule.py::test_hung_twice" in out, out
    assert "FAILED test_rerun_rule.py::test_other_failure" in out, out
    assert "FAILED test_rerun_rule.py::test_not_a_lab_test" in out, out
    # hung_once and hung_twice each ran a second time; the others did not
    assert "RERUN test_rerun_rule.py::test_hung_once" in out and "RERUN test_rerun_rule.py::test_hung_twice" in out, out
    assert out.count("RERUN ") == 2, out
    assert "3 failed, 1 passed, 2 rerun" in out, out
