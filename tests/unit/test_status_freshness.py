"""The pure verdict on one copy's age (zfsrep.core.freshness) and the metrics text."""

from hypothesis import given
from hypothesis import strategies as st

from zfsrep import prometheus
from zfsrep.core import freshness as fr

NOW = 1_800_000_000.0
ORDER = [fr.OK, fr.WARNING, fr.CRITICAL]


def obs(**kw):
    return fr.Observation(**{"dataset": "tank/home", "target": "offsite", "warn": 100.0, "crit": 200.0, **kw})


@given(st.floats(0, 1000), st.floats(0, 1000), st.floats(1, 500), st.floats(0, 500))
def test_an_older_copy_is_never_judged_better(a, b, warn, extra):
    younger, older = sorted((a, b))
    one = fr.evaluate(obs(warn=warn, crit=warn + extra, last_success=NOW - younger), now=NOW)
    two = fr.evaluate(obs(warn=warn, crit=warn + extra, last_success=NOW - older), now=NOW)
    assert ORDER.index(one.state) <= ORDER.index(two.state)


def test_the_boundaries_belong_to_the_worse_state():
    assert fr.evaluate(obs(last_success=NOW - 99.999), now=NOW).state == fr.OK
    assert fr.evaluate(obs(last_success=NOW - 100), now=NOW).state == fr.WARNING
    assert fr.evaluate(obs(last_success=NOW - 200), now=NOW).state == fr.CRITICAL


def test_the_newest_copy_s_time_wins_over_the_last_success():
    v = fr.evaluate(obs(last_success=NOW - 10, newest_target="s", newest_target_time=NOW - 150), now=NOW)
    assert v.state == fr.WARNING and v.basis == "snapshot" and v.age == 150


def test_a_crit_below_warn_is_raised_to_warn():
    """e.g. a target's own warn = 60h above the global crit = 50h: critical from 60h, not 50h."""
    assert fr.evaluate(obs(warn=100, crit=50, last_success=NOW - 90), now=NOW).state == fr.OK
    assert fr.evaluate(obs(warn=100, crit=50, last_success=NOW - 120), now=NOW).state == fr.CRITICAL


def test_a_problem_is_unknown_and_says_what_was_last_known():
    v = fr.evaluate(obs(problem="cannot check offsite live: ssh timed out", last_success=NOW - 30), now=NOW)
    assert v.state == fr.UNKNOWN and v.reason == "cannot check offsite live: ssh timed out; last known copy 30s old"


def test_overall_severity_and_empty_is_unknown():
    verdicts = [fr.evaluate(obs(last_success=NOW - a), now=NOW) for a in (1, 150)]
    assert fr.overall(verdicts) == fr.WARNING
    unknown = fr.evaluate(obs(problem="x"), now=NOW)
    assert fr.overall([*verdicts, unknown]) == fr.UNKNOWN
    assert fr.overall([unknown, fr.evaluate(obs(), now=NOW)]) == fr.CRITICAL  # never replicated
    assert fr.overall([]) == fr.UNKNOWN


def test_summary_line_has_perfdata():
    v = fr.evaluate(obs(last_success=NOW - 150), now=NOW)
    assert fr.summary_line([v]) == (
        "ZFSREP WARNING - 1 warning: tank/home → offsite 2m old | 'tank/home@offsite'=150s;100;200;0")


def test_prometheus_labels_are_escaped():
    v = fr.evaluate(obs(dataset='tank/we"ird\\name', last_success=NOW - 1, last_status="ok"), now=NOW)
    text = prometheus.render([v], now=NOW)
    assert 'zfsrep_age_seconds{dataset="tank/we\\"ird\\\\name",target="offsite"} 1' in text
    assert "zfsrep_status_timestamp_seconds 1800000000" in text
