"""escalations/envelopes.py: reliability tables and the confidence threshold. No database."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from escalations import envelopes, policies


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (5, 10), (99, 100), (380, 380), (3, 250), (1234, 1300)])
def test_wilson_matches_scipy(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = envelopes.wilson_interval(k, n)
    assert math.isclose(float(low), expected.low, abs_tol=1e-12)
    assert math.isclose(float(high), expected.high, abs_tol=1e-12)


@pytest.mark.parametrize(("k", "n"), [(427, 440), (206, 210), (109, 110)])
def test_wilson_reproduces_the_published_sample_sizes(k, n):
    """DOMAIN.md: a 95% Wilson lower bound of 95% takes about 440 items at an observed 97%,
    210 at 98% and 110 at 99%."""
    low, _ = envelopes.wilson_interval(k, n)
    assert 0.95 <= float(low) < 0.9525


def test_wilson_is_vectorised_and_nan_for_no_data():
    low, high = envelopes.wilson_interval([0, 3], [0, 4])
    assert math.isnan(low[0]) and math.isnan(high[0])
    assert 0 < low[1] < 0.75 < high[1] < 1


def test_samples_needed_is_the_first_n_that_qualifies():
    assert envelopes.samples_needed(0.99) == 381
    assert envelopes.samples_needed(0.95) == 73
    for target in (0.9, 0.95, 0.99):
        n = envelopes.samples_needed(target)
        assert float(envelopes.wilson_interval(n, n)[0][()]) >= target
        assert float(envelopes.wilson_interval(n - 1, n - 1)[0][()]) < target


def test_reliability_table_bins_and_the_unknown_row():
    confidence = [0.05, 0.12, 0.19, 0.95, 1.0, 1.0, None]
    approved = [False, True, False, True, True, False, True]
    env = envelopes.envelope_compute("refund", confidence, approved)
    assert env.n == 7
    rows = [(b.low, b.high, b.n, b.approved) for b in env.bins if b.n]
    assert rows == [(0.0, 0.1, 1, 0), (0.1, 0.2, 2, 1), (0.9, 1.0, 3, 2), (None, None, 1, 1)]
    top = env.bins[9]
    assert top.rate == pytest.approx(2 / 3, abs=1e-6)
    expected = binomtest(2, 3).proportion_ci(method="wilson")
    assert top.wilson_low == pytest.approx(expected.low, abs=1e-6)
    assert env.bins[5].rate is None and env.bins[5].wilson_low is None


def test_threshold_is_the_lowest_that_keeps_the_bound():
    # 10 rejections at 0.50, then 400 approvals at 0.95: every t in (0.50, 0.95] keeps exactly
    # the 400 approvals (Wilson low 0.99049 >= 0.99); 0.51 is the lowest on the grid.
    confidence = [0.5] * 10 + [0.95] * 400
    approved = [False] * 10 + [True] * 400
    env = envelopes.envelope_compute("refund", confidence, approved)
    assert env.threshold is not None
    assert env.threshold.confidence_at_least == 0.51
    assert (env.threshold.n, env.threshold.approved) == (400, 400)
    assert env.threshold.wilson_low >= 0.99


def test_threshold_counts_ties_at_t_as_included():
    """A rule's `confidence_at_least: t` lets t itself through, so the set at t includes it."""
    confidence = [0.8] * 100 + [0.9] * 400
    approved = [False] + [True] * 99 + [True] * 400
    env = envelopes.envelope_compute("refund", confidence, approved, target=0.99)
    assert env.threshold is not None and env.threshold.confidence_at_least == 0.81
    lenient = envelopes.envelope_compute("refund", confidence, approved, target=0.98)
    # With 0.98 the whole set (499/500, low 0.98876) qualifies from t = 0.
    assert lenient.threshold is not None and lenient.threshold.confidence_at_least == 0.0
    assert lenient.threshold.n == 500


def test_not_enough_data():
    env = envelopes.envelope_compute("refund", [0.99] * 380, [True] * 380)
    assert env.threshold is None
    assert env.samples_needed == 381
    assert envelopes.envelope_compute("refund", [0.99] * 381, [True] * 381).threshold is not None
    assert envelopes.envelope_compute("refund", [], []).threshold is None
    # Actions without a confidence never count towards a threshold.
    assert envelopes.envelope_compute("refund", [None] * 1000, [True] * 1000).threshold is None


def test_threshold_against_a_brute_force():
    rng = np.random.default_rng(7)
    confidence = rng.uniform(0.3, 1.0, 3000)
    approved = rng.uniform(0, 1, 3000) < np.clip((confidence - 0.3) * 1.6, 0, 0.9995)
    target = 0.97
    found = envelopes.threshold_find(confidence, approved, target=target)
    expected = None
    for i in range(101):
        t = i / 100
        chosen = approved[confidence >= t]
        if len(chosen) and binomtest(int(chosen.sum()), len(chosen)).proportion_ci(method="wilson").low >= target:
            expected = t
            break
    assert expected is not None
    assert found is not None and found.confidence_at_least == expected


def test_the_suggested_rule_is_a_valid_policy_rule():
    env = envelopes.envelope_compute("refund", [0.95] * 400, [True] * 400)
    rule = envelopes.suggested_rule("refund", env.threshold, target=0.99)
    policy = policies.policy_validate({"rules": [rule]})
    assert policy.rules[0].confidence_at_least == env.threshold.confidence_at_least
    assert rule["if"] == {"action": "refund", "confidence_at_least": env.threshold.confidence_at_least}
    assert rule["then"] == "approve"


def test_lengths_must_match():
    with pytest.raises(ValueError):
        envelopes.envelope_compute("refund", [0.5], [])


def test_the_suggested_rule_matches_the_action_name_literally():
    threshold = envelopes.envelope_compute("a*", [0.95] * 400, [True] * 400).threshold
    rule = envelopes.suggested_rule("refund[1]*?", threshold, target=0.99)
    policy = policies.policy_validate({"rules": [rule]})
    facts = policies.ActionFacts(
        action="refund[1]*?", args={}, confidence=0.99, risk_tags=(), agent_version="", end_user_id=""
    )
    assert policies.policy_evaluate(policy, facts, lambda w, f: 0).outcome == "approve"
    other = policies.ActionFacts(
        action="refund1xy", args={}, confidence=0.99, risk_tags=(), agent_version="", end_user_id=""
    )
    assert policies.policy_evaluate(policy, other, lambda w, f: 0).outcome == "escalate"
