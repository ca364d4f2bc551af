"""The pairwise result's maths against hand-computed cases and scipy, and the side shuffle's
mapping (pure: no database)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from evaluation import pairwise
from labeling import pairwise as sides


def _counts(candidate=0, baseline=0, equivalent=0, both_bad=0):
    return pairwise.Counts(candidate=candidate, baseline=baseline, equivalent=equivalent, both_bad=both_bad)


def test_win_rate_counts_ties_as_half_and_wilson_is_on_decisive_pairs():
    # 6 wins, 2 losses, 1 equivalent, 1 both bad: (6 + 2/2) / 10 = 0.7; decisive 6/8 = 0.75.
    f = pairwise.figures(_counts(6, 2, 1, 1))
    assert (f.n, f.decisive) == (10, 8)
    assert f.win_rate == pytest.approx(0.7)
    assert f.decisive_win_rate == pytest.approx(0.75)
    # Wilson 95% for 6 of 8, by hand: centre (0.75 + z²/16) / (1 + z²/8) = 0.668893,
    # half-width z sqrt(0.75 * 0.25 / 8 + z²/256) / (1 + z²/8) = 0.259625.
    assert f.wilson.low == pytest.approx(0.409268, abs=1e-5)
    assert f.wilson.high == pytest.approx(0.928518, abs=1e-5)
    # Sign test: 2 P(X <= 2 | n = 8, p = 1/2) = 2 (1 + 8 + 28) / 256.
    assert f.sign_test_p == pytest.approx(74 / 256)
    assert f.counts == _counts(6, 2, 1, 1)


def test_three_losses_are_not_yet_shown_worse_by_wilson_while_the_bootstrap_collapses():
    f = pairwise.figures(_counts(baseline=3))
    assert f.win_rate == 0
    # Wilson for 0 of 3: high = 2 (z²/6) / (1 + z²/3) = 0.561497: above one half, so the gate
    # (which reads Wilson) does not call the candidate worse on three items.
    assert f.wilson.low == 0
    assert f.wilson.high == pytest.approx(0.561497, abs=1e-5)
    assert pairwise.gate_interval(f) == f.wilson
    assert (f.bootstrap.low, f.bootstrap.high) == (0, 0)
    assert f.sign_test_p == pytest.approx(0.25)


def test_all_ties_are_even_and_have_no_decisive_pair():
    f = pairwise.figures(_counts(equivalent=3, both_bad=1))
    assert f.win_rate == 0.5
    assert f.decisive_win_rate is None
    assert (f.wilson.low, f.wilson.high) == (0, 1)
    assert f.sign_test_p is None
    assert (f.bootstrap.low, f.bootstrap.high) == (0.5, 0.5)


def test_no_items_at_all():
    f = pairwise.figures(_counts())
    assert (f.n, f.win_rate, f.bootstrap, f.sign_test_p) == (0, None, None, None)


@pytest.mark.parametrize(
    ("wins", "losses"),
    [*itertools.product(range(0, 13, 3), repeat=2), (60, 40), (117, 83), (0, 1)],
)
def test_sign_test_matches_scipy_binomtest(wins, losses):
    p = pairwise.sign_test(wins, losses)
    if wins + losses == 0:
        assert p is None
        return
    assert p == pytest.approx(scipy_stats.binomtest(wins, wins + losses, 0.5).pvalue, rel=1e-9)


def test_bootstrap_matches_the_normal_approximation_on_many_items_and_is_seeded():
    # 60 wins, 20 losses, 20 ties: item values 1, 0, 1/2; mean 0.7, variance 0.65 - 0.49 = 0.16,
    # standard error 0.04: the interval is about 0.7 -+ 1.96 * 0.04.
    c = _counts(60, 20, 20, 0)
    interval = pairwise.bootstrap_interval(c)
    assert interval.low == pytest.approx(0.7 - 1.96 * 0.04, abs=0.01)
    assert interval.high == pytest.approx(0.7 + 1.96 * 0.04, abs=0.01)
    assert pairwise.bootstrap_interval(c) == interval


def test_bootstrap_over_counts_is_the_item_bootstrap():
    """Drawing the three counts is drawing items: compare with resampling the items themselves."""
    c = _counts(7, 4, 3, 1)
    values = np.array([1.0] * 7 + [0.0] * 4 + [0.5] * 4)
    rng = np.random.default_rng(1)
    brute = rng.choice(values, size=(20_000, len(values))).mean(axis=1)
    low, high = np.quantile(brute, [0.025, 0.975])
    interval = pairwise.bootstrap_interval(c, resamples=20_000)
    assert interval.low == pytest.approx(low, abs=0.04)
    assert interval.high == pytest.approx(high, abs=0.04)


def test_question_result_per_segment_and_unanswered():
    C, B, E = pairwise.CANDIDATE, pairwise.BASELINE, pairwise.EQUIVALENT
    items = [
        pairwise.ItemOutcomes(("billing",), {"overall": C}),
        pairwise.ItemOutcomes(("billing", "refunds"), {"overall": B}),
        pairwise.ItemOutcomes(("refunds",), {"overall": E}),
        pairwise.ItemOutcomes(("refunds",), {"overall": None}),
    ]
    result = pairwise.question_result("overall", "Overall", items)
    assert result.unanswered == 1
    assert result.figures.win_rate == pytest.approx((1 + 0.5) / 3)
    by_tag = {s.tag: s.figures for s in result.segments}
    assert list(by_tag) == ["billing", "refunds"]
    assert by_tag["billing"].win_rate == 0.5
    assert by_tag["refunds"].n == 2 and by_tag["refunds"].win_rate == pytest.approx(0.25)


# --- the side shuffle --------------------------------------------------------------------------


def test_choosing_a_when_the_candidate_is_on_the_left_is_a_candidate_win():
    assert sides.outcome(sides.A_BETTER, sides.LEFT) == sides.CANDIDATE
    assert sides.outcome(sides.B_BETTER, sides.LEFT) == sides.BASELINE
    assert sides.outcome(sides.A_BETTER, sides.RIGHT) == sides.BASELINE
    assert sides.outcome(sides.B_BETTER, sides.RIGHT) == sides.CANDIDATE
    assert sides.outcome(sides.EQUIVALENT, sides.RIGHT) == sides.OUTCOME_EQUIVALENT
    assert sides.outcome(sides.BOTH_BAD, sides.LEFT) == sides.OUTCOME_BOTH_BAD
    assert sides.outcome(None, sides.LEFT) is None
    assert sides.outcome("A", sides.LEFT) is None
    assert set(sides.OUTCOMES) == set(pairwise.OUTCOMES)


def test_sides_are_drawn_from_the_seed_per_item_and_are_balanced():
    drawn = [sides.candidate_side(42, f"item-{i}") for i in range(2000)]
    assert drawn == [sides.candidate_side(42, f"item-{i}") for i in range(2000)]
    assert 900 < drawn.count(sides.LEFT) < 1100
    assert drawn != [sides.candidate_side(43, f"item-{i}") for i in range(2000)]


@pytest.mark.parametrize(
    ("output", "messages"),
    [
        ("Hi <b>", [{"role": "assistant", "content": "Hi <b>"}]),
        ({"role": "assistant", "content": "x"}, [{"role": "assistant", "content": "x"}]),
        ({"messages": [{"role": "tool", "content": "1"}]}, [{"role": "tool", "content": "1"}]),
        ({"answer": 3}, [{"role": "assistant", "content": '{"answer": 3}'}]),
        ([], []),
        (None, []),
    ],
)
def test_outputs_become_messages(output, messages):
    assert sides.output_messages(output) == messages
