"""Lab fixtures: `lab` (session: up + install once) and `clean_lab` (empty pools per test);
`new_zfs_lab` / `clean_new_zfs_lab` are the same on OpenZFS 2.3 (bookworm-backports), for
what needs OpenZFS >= 2.2 (a second pair of VMs, instance `<instance>-backports`).

Tests that use them are marked `lab`. If the lab cannot start, the fixture FAILS with the
reason (never skips): a missing lab is a broken test run, not an optional extra.

A lab test that fails because a guest's kernel hung (GuestHung: a command timed out while the
guest reported tasks blocked for minutes) runs once more on a restarted lab; the run's summary
shows the rerun and, as a LabRestarted warning, what the guests showed. Any other failure, or
a second hang, fails the test.
"""

from __future__ import annotations

import pytest

from tests.lab.fixtures import emptied, lab_done, lab_session
from tests.lab.paths import GuestHung


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("lab") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=[GuestHung]))


def _session(zfs: str | None):
    try:
        return lab_session(zfs)
    except Exception as exc:  # noqa: BLE001 - turned into a clear test failure
        pytest.fail(f"the VM lab ({zfs or 'default'} OpenZFS) could not start: {exc}",
                    pytrace=False)


@pytest.fixture(scope="session")
def lab():
    """The running two-VM lab (tests.lab.lab.Lab) with the checkout installed in both VMs."""
    return _session(None)


@pytest.fixture(scope="module")
def new_zfs_lab():
    """A second two-VM lab whose OpenZFS is 2.3 (bookworm-backports), for one test module:
    stopped after it if that module booted it, so it does not idle through the rest."""
    yield _session("backports")
    lab_done("backports")


@pytest.fixture
def clean_new_zfs_lab(new_zfs_lab):
    """`new_zfs_lab` with both pools emptied first."""
    return emptied(new_zfs_lab)


@pytest.fixture
def clean_lab(lab):
    """`lab` with both pools (`tank` on source, `backup` on target) emptied first (if that
    fails, the lab is restarted, and the test warns why)."""
    return emptied(lab)
