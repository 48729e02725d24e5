"""Where a run's time went (`zfsrep.phases`) and how the result keeps it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from zfsrep.core.result import RunResult
from zfsrep.phases import Phases, seconds_since_process_start


def test_a_recurring_phase_adds_up_and_an_exception_still_counts():
    phases = Phases()
    phases.add("sends", 1.25)
    phases.add("sends", 0.5)
    with pytest.raises(RuntimeError), phases.timed("target_listing"):
        time.sleep(0.05)
        raise RuntimeError("listing failed")
    got = phases.as_dict()
    assert got["sends"] == 1.75
    assert 0.04 <= got["target_listing"] < 5


def test_threads_add_to_the_same_phase_without_losing_any():
    phases = Phases()

    def work():
        for _ in range(1000):
            phases.add("holds", 0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert phases.as_dict() == {"holds": 4.0}


def test_the_process_age_counts_from_the_interpreters_start():
    code = ("import time; time.sleep(0.6); "
            "from zfsrep.phases import seconds_since_process_start as f; print(f())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert 0.55 <= float(out) < 30
    assert seconds_since_process_start() is not None


def test_the_result_keeps_its_phases_through_its_dict_form():
    result = RunResult(verb="replicate", started_at=1.0, finished_at=3.0,
                       phases={"startup": 1.5, "sends": 0.25})
    again = RunResult.from_dict(result.to_dict())
    assert again.phases == {"startup": 1.5, "sends": 0.25}
    assert RunResult.from_dict({"verb": "replicate"}).phases == {}
