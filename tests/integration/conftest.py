"""Lab fixtures: `lab` (session: up + install once) and `clean_lab` (empty pools per test).

Tests that use them are marked `lab`. If the lab cannot start, the fixture FAILS with the
reason (never skips): a missing lab is a broken test run, not an optional extra.
"""

from __future__ import annotations

import pytest

from tests.lab.fixtures import lab_session


@pytest.fixture(scope="session")
def lab():
    """The running two-VM lab (tests.lab.lab.Lab) with the checkout installed in both VMs."""
    try:
        the_lab = lab_session()
    except Exception as exc:  # noqa: BLE001 - turned into a clear test failure
        pytest.fail(f"the VM lab could not start: {exc}", pytrace=False)
    return the_lab


@pytest.fixture
def clean_lab(lab):
    """`lab` with both pools (`tank` on source, `backup` on target) emptied first."""
    lab.reset()
    return lab
