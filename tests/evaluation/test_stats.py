"""Judge calibration statistics: hand-computed cases, the maintained packages as oracles
(scikit-learn, SciPy, statsmodels, ppi-python) and interval coverage by simulation. Pure maths,
no database."""

import json
import math
import warnings

import numpy as np
import ppi_py
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import brier_score_loss, cohen_kappa_score, confusion_matrix
from statsmodels.stats.proportion import proportion_confint

from evaluation import stats
from evaluation.stats import Estimate, Interval


def table(tp: int, fp: int, fn: int, tn: int) -> tuple[np.ndarray, np.ndarray]:
    """(judge_pass, human_pass) arrays for a 2x2 table: judge is the row, the human the truth."""
    judge = np.repeat([True, True, False, False], [tp, fp, fn, tn])
    human = np.repeat([True, False, True, False], [tp, fp, fn, tn])
    return judge, human


def noisy_judge(rng: np.random.Generator, n: int, prevalence: float, accuracy: float):
    human = rng.random(n) < prevalence
    judge = np.where(rng.random(n) < accuracy, human, ~human)
    return judge, human


def assert_json_clean(result) -> None:
    json.dumps(stats.jsonable(result), allow_nan=False)


# --- Wilson -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (97, 100), (440, 1000), (1, 3)])
def test_wilson_matches_statsmodels(k, n):
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    interval = stats.wilson(k, n)
    assert interval.low == pytest.approx(low, abs=1e-12)
    assert interval.high == pytest.approx(high, abs=1e-12)
    low90, high90 = proportion_confint(k, n, alpha=0.10, method="wilson")
    assert stats.wilson(k, n, confidence=0.90) == Interval(
        pytest.approx(low90, abs=1e-12), pytest.approx(high90, abs=1e-12)
    )


def test_wilson_extremes_and_bad_input():
    assert stats.wilson(0, 0) == Interval(0.0, 1.0)
    assert stats.wilson(0, 25).low == 0.0
    assert stats.wilson(25, 25).high == 1.0
    # A weighted effective n need not be an integer.
    assert stats.wilson(7.5, 12.5).low == pytest.approx(proportion_confint(7.5, 12.5, method="wilson")[0])
    for successes, n in ((-1, 10), (11, 10), (1, -1), (math.nan, 10), (1, math.inf)):
        with pytest.raises(ValueError):
            stats.wilson(successes, n)
    with pytest.raises(ValueError):
        stats.wilson(1, 2, confidence=1.0)


def test_wilson_sample_sizes_from_the_domain_notes():
    # DOMAIN.md: a 95% Wilson lower bound of 95% takes about 440 items at 97%, 210 at 98%, 110 at 99%.
    for n, observed in ((440, 0.97), (210, 0.98), (110, 0.99)):
        assert stats.wilson(observed * n, n).low == pytest.approx(0.95, abs=0.0015)
        assert stats.wilson(observed * (n / 2), n / 2).low < 0.945
    # The fewest items for which a perfect score's lower bound reaches a bar.
    assert stats.min_items_for_bar(0.9) == 35
    assert stats.wilson(35, 35).low >= 0.9 > stats.wilson(34, 34).low
    assert stats.min_items_for_bar(0.95) == 73
    assert stats.min_items_for_bar(0.99) == 381
    assert stats.min_items_for_bar(1.0) is None
    assert stats.min_items_for_bar(0.0) == 1


# --- binary agreement -------------------------------------------------------------------------


def test_kappa_on_balanced_and_skewed_classes_from_the_domain_notes():
    # 90% raw agreement: kappa 0.80 when half the items pass, 0.44 when 90% pass.
    balanced = stats.binary_agreement(*table(45, 5, 5, 45), bootstrap=0)
    assert balanced["accuracy"].value == pytest.approx(0.90)
    assert balanced["cohen_kappa"].value == pytest.approx(0.80)
    skewed = stats.binary_agreement(*table(85, 5, 5, 5), bootstrap=0)
    assert skewed["accuracy"].value == pytest.approx(0.90)
    assert skewed["cohen_kappa"].value == pytest.approx(0.08 / 0.18)  # p_o 0.9, p_e 0.82
    # Hence TPR, TNR and prevalence next to it: the judge passes half the answers humans fail.
    assert skewed["tpr"] == Estimate(pytest.approx(85 / 90), skewed["tpr"].interval, 90)
    assert skewed["tnr"].value == pytest.approx(0.5)
    assert skewed["tnr"].n == 10
    assert skewed["prevalence"].value == pytest.approx(0.9)
    assert skewed["confusion"] == {"tp": 85, "fp": 5, "fn": 5, "tn": 5}
    assert skewed["tnr"].interval == stats.wilson(5, 10)
    assert skewed["accuracy"].interval == stats.wilson(90, 100)
    assert skewed["cohen_kappa"].interval is None  # bootstrap=0
    assert skewed["n"] == 100


def test_binary_agreement_matches_scikit_learn():
    rng = np.random.default_rng(7)
    judge, human = noisy_judge(rng, 2_000, 0.8, 0.87)
    weights = 1 / rng.uniform(0.05, 1, len(judge))
    for w in (None, weights):
        result = stats.binary_agreement(judge, human, w, bootstrap=0)
        assert result["cohen_kappa"].value == pytest.approx(cohen_kappa_score(human, judge, sample_weight=w), abs=1e-12)
        # scikit-learn's matrix: rows are the truth (human), columns the prediction; False first.
        (tn, fp), (fn, tp) = confusion_matrix(human, judge, sample_weight=w)
        assert result["confusion"] == pytest.approx({"tp": tp, "fp": fp, "fn": fn, "tn": tn}, rel=1e-12)
        share = w if w is not None else np.ones(len(judge))
        assert result["tpr"].value == pytest.approx(tp / (tp + fn))
        assert result["tnr"].value == pytest.approx(tn / (tn + fp))
        assert result["accuracy"].value == pytest.approx((tp + tn) / share.sum())
        assert result["prevalence"].value == pytest.approx(np.average(human, weights=share))
    assert isinstance(stats.binary_agreement(judge, human, bootstrap=0)["confusion"]["tp"], int)


def test_kappa_bootstrap_interval_is_seeded_and_about_012_wide_at_100_items():
    judge, human = table(45, 5, 5, 45)
    first = stats.binary_agreement(judge, human, seed=3)
    assert first == stats.binary_agreement(judge, human, seed=3)
    other = stats.binary_agreement(judge, human, seed=4)
    assert other["cohen_kappa"].interval != first["cohen_kappa"].interval
    interval = first["cohen_kappa"].interval
    # DOMAIN.md: "a kappa measured on 100 items is about +-0.12 at best".
    assert interval.low < 0.8 < interval.high
    assert 0.09 < (interval.high - interval.low) / 2 < 0.15


def _naive_kappa_interval(judge, human, w, resamples, seed):
    """The textbook bootstrap: resample item indices, recompute kappa (scikit-learn's formula,
    vectorised over resamples)."""
    rng = np.random.default_rng(seed)
    n = len(judge)
    idx = rng.integers(0, n, (resamples, n))
    weight = np.ones(n) if w is None else w
    kept = weight[idx]
    j, h = judge[idx], human[idx]
    total = kept.sum(axis=1)
    observed = (kept * (j == h)).sum(axis=1) / total
    judge_pass, human_pass = (kept * j).sum(axis=1) / total, (kept * h).sum(axis=1) / total
    chance = judge_pass * human_pass + (1 - judge_pass) * (1 - human_pass)
    kappas = (observed - chance) / (1 - chance)
    assert kappas[0] == pytest.approx(cohen_kappa_score(human[idx[0]], judge[idx[0]], sample_weight=kept[0]))
    return np.quantile(kappas, [0.025, 0.975])


@pytest.mark.parametrize("weighted", [False, True])
def test_pattern_bootstrap_agrees_with_resampling_items(weighted):
    # Multinomial pattern counts are the same distribution as drawing items with replacement.
    rng = np.random.default_rng(11)
    judge, human = noisy_judge(rng, 400, 0.7, 0.85)
    w = np.choose(rng.integers(0, 3, len(judge)), [1.0, 4.0, 20.0]) if weighted else None
    result = stats.binary_agreement(judge, human, w, bootstrap=4000, seed=1)
    low, high = _naive_kappa_interval(judge, human, w, 4000, seed=2)
    assert result["cohen_kappa"].interval.low == pytest.approx(low, abs=0.02)
    assert result["cohen_kappa"].interval.high == pytest.approx(high, abs=0.02)


def test_poisson_resamples_agree_with_multinomial_ones_at_large_n(monkeypatch):
    rng = np.random.default_rng(24)
    judge, human = noisy_judge(rng, 30_000, 0.8, 0.9)
    w = 1 / rng.uniform(0.05, 1, len(judge))
    poisson = stats.binary_agreement(judge, human, w, bootstrap=2000)["cohen_kappa"].interval
    monkeypatch.setattr(stats, "POISSON_FROM", 10**9)
    multinomial = stats.binary_agreement(judge, human, w, bootstrap=2000)["cohen_kappa"].interval
    assert poisson != multinomial
    width = multinomial.high - multinomial.low
    assert poisson.low == pytest.approx(multinomial.low, abs=0.05 * width)
    assert poisson.high == pytest.approx(multinomial.high, abs=0.05 * width)


def test_kappa_undefined_and_empty_input():
    everything_passes = stats.binary_agreement(*table(30, 0, 0, 0))
    assert everything_passes["cohen_kappa"] == Estimate(None, None, 30)
    assert everything_passes["tnr"] == Estimate(None, None, 0)
    assert everything_passes["tpr"].value == 1.0
    assert everything_passes["accuracy"].value == 1.0
    assert_json_clean(everything_passes)
    empty = stats.binary_agreement(np.zeros(0, bool), np.zeros(0, bool))
    assert empty["n"] == 0
    for name in ("accuracy", "cohen_kappa", "tpr", "tnr", "prevalence"):
        assert empty[name] == Estimate(None, None, 0)
    assert empty["confusion"] == {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    single = stats.binary_agreement([True], [False])
    assert single["accuracy"].value == 0.0
    assert single["cohen_kappa"].value == pytest.approx(0.0)
    assert single["cohen_kappa"].interval is None  # no interval rests on one item


def test_binary_agreement_rejects_bad_input():
    with pytest.raises(ValueError, match="human_pass"):
        stats.binary_agreement([True, False], [True])
    with pytest.raises(ValueError, match="judge_pass"):
        stats.binary_agreement([0.5, 1], [True, False])
    with pytest.raises(ValueError, match="weights"):
        stats.binary_agreement([True, False], [True, True], [1.0, 0.0])
    with pytest.raises(ValueError, match="weights"):
        stats.binary_agreement([True, False], [True, True], [1.0, math.nan])
    with pytest.raises(ValueError, match="bootstrap"):
        stats.binary_agreement([True, False], [True, True], bootstrap=-1)
    # 0/1 integers are booleans.
    assert stats.binary_agreement([1, 0], [1, 1], bootstrap=0)["confusion"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 0}


def test_weighted_proportions_use_the_design_effective_n():
    judge, human = table(40, 10, 10, 40)
    plain = stats.binary_agreement(judge, human, bootstrap=0)
    # Equal weights, whatever their size, change nothing.
    for constant in (1.0, 7.0):
        same = stats.binary_agreement(judge, human, np.full(100, constant), bootstrap=0)
        for name in ("accuracy", "tpr", "tnr", "prevalence"):
            assert same[name].value == pytest.approx(plain[name].value)
            assert same[name].interval.low == pytest.approx(plain[name].interval.low)
            assert same[name].interval.high == pytest.approx(plain[name].interval.high)
    # By hand: y = [1, 1, 0, 0] with weights [1, 3, 1, 3]: p = 4/8, v = sum w^2 (y-p)^2 / 64
    # = (1 + 9 + 1 + 9) / 4 / 64, n_eff = p(1-p) / v = 3.2 (Kish: 64 / 20 = 3.2, unrelated weights).
    estimate = stats.binary_agreement([1, 1, 0, 0], [1, 1, 1, 1], [1.0, 3.0, 1.0, 3.0], bootstrap=0)["tpr"]
    assert estimate.value == pytest.approx(0.5)
    assert estimate.interval == Interval(*map(pytest.approx, proportion_confint(1.6, 3.2, method="wilson")))
    # Weights tied to the outcome: y = [1, 0, 0, 0] with weights [3, 1, 1, 1]: p = 1/2,
    # v = (9 + 3) / 4 / 36 = 1/12, n_eff = 3 (Kish would say 36 / 12 = 3 too, but see below).
    related = stats.binary_agreement([1, 0, 0, 0], [1, 1, 1, 1], [3.0, 1.0, 1.0, 1.0], bootstrap=0)["tpr"]
    assert related.interval == Interval(*map(pytest.approx, proportion_confint(1.5, 3.0, method="wilson")))
    # y = [1, 1, 0] with weights [1, 1, 8]: p = 0.2; v = (0.64 + 0.64 + 64 * 0.04) / 100 = 0.0384;
    # n_eff = 0.16 / 0.0384 = 4.1667 capped at the 3 items; Kish = 100 / 66 = 1.52.
    capped = stats.binary_agreement([1, 1, 0], [1, 1, 1], [1.0, 1.0, 8.0], bootstrap=0)["tpr"]
    assert capped.interval == Interval(*map(pytest.approx, proportion_confint(0.6, 3.0, method="wilson")))


# --- scores -----------------------------------------------------------------------------------


def test_score_agreement_matches_scipy_on_rating_scales():
    rng = np.random.default_rng(5)
    human = rng.integers(1, 6, 800).astype(float)
    judge = np.clip(human + rng.integers(-2, 3, 800), 1, 5)
    result = stats.score_agreement(judge, human, bootstrap=0)
    assert result["spearman"].value == pytest.approx(scipy_stats.spearmanr(judge, human).statistic, abs=1e-12)
    assert result["kendall"].value == pytest.approx(scipy_stats.kendalltau(judge, human).statistic, abs=1e-12)
    assert result["mae"].value == pytest.approx(np.abs(judge - human).mean())
    assert result["n"] == 800


def test_score_agreement_matches_scipy_on_continuous_scores():
    # Over a million judge x human cells: Kendall comes from SciPy, Spearman from the mid-ranks.
    rng = np.random.default_rng(6)
    human = rng.normal(size=1_500)
    judge = human + rng.normal(size=1_500)
    result = stats.score_agreement(judge, human, bootstrap=0)
    assert result["spearman"].value == pytest.approx(scipy_stats.spearmanr(judge, human).statistic, abs=1e-12)
    assert result["kendall"].value == pytest.approx(scipy_stats.kendalltau(judge, human).statistic, abs=1e-12)


def test_grid_coding_keeps_values_that_only_look_equal_apart():
    # 0.1 + 0.2 is not 0.3 in floating point; SciPy ranks them apart, and so must the levels.
    judge = np.array([0.3, 0.1 + 0.2, 0.5, 0.7, 0.3, 0.9])
    human = np.array([1.0, 2.0, 3.0, 3.0, 1.0, 5.0])
    codes, levels = stats._levels(judge)
    assert len(levels) == 5
    result = stats.score_agreement(judge, human, bootstrap=0)
    assert result["kendall"].value == pytest.approx(scipy_stats.kendalltau(judge, human).statistic, abs=1e-12)
    assert result["spearman"].value == pytest.approx(scipy_stats.spearmanr(judge, human).statistic, abs=1e-12)
    # Values too large for the grid are sorted, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codes, levels = stats._levels(np.array([1e308, -1e308, 1e308, 2.5]))
    assert codes.tolist() == [2, 0, 2, 1]
    # On a grid the coding is by counting; it gives the same codes as sorting.
    ratings = np.round(np.random.default_rng(1).uniform(-2, 2, 1_000), 2)
    codes, levels = stats._levels(ratings)
    unique, inverse = np.unique(ratings, return_inverse=True)
    assert codes.tolist() == inverse.tolist()
    assert levels.tolist() == unique.tolist()


def test_integer_weights_equal_repeated_items():
    # A weight of k is k copies of the item, for the ranks and for Kendall's tau-b pairs alike.
    rng = np.random.default_rng(8)
    human = rng.integers(1, 6, 300).astype(float)
    judge = np.round(human / 5 + rng.normal(0, 0.2, 300), 2)
    weights = rng.integers(1, 5, 300).astype(float)
    repeated_judge, repeated_human = np.repeat(judge, weights.astype(int)), np.repeat(human, weights.astype(int))
    result = stats.score_agreement(judge, human, weights, bootstrap=0)
    assert result["spearman"].value == pytest.approx(scipy_stats.spearmanr(repeated_judge, repeated_human).statistic)
    assert result["kendall"].value == pytest.approx(scipy_stats.kendalltau(repeated_judge, repeated_human).statistic)
    assert result["mae"].value == pytest.approx(np.abs(repeated_judge - repeated_human).mean())


def test_score_agreement_intervals_and_edge_cases():
    rng = np.random.default_rng(9)
    human = rng.integers(1, 6, 300).astype(float)
    judge = np.clip(human + rng.integers(-1, 2, 300), 1, 5)
    result = stats.score_agreement(judge, human, seed=1, bootstrap=500)
    for name in ("spearman", "kendall", "mae"):
        interval = result[name].interval
        assert interval.low < result[name].value < interval.high
    # Spearman's interval is about 2 x 1.96 x its standard error; Fisher's z puts that near
    # (1 - rho^2) x 1.96 / sqrt(n - 3) each side.
    rho = result["spearman"].value
    half = (result["spearman"].interval.high - result["spearman"].interval.low) / 2
    assert half == pytest.approx((1 - rho**2) * 1.96 / math.sqrt(297), rel=0.35)
    assert result == stats.score_agreement(judge, human, seed=1, bootstrap=500)
    constant = stats.score_agreement(np.full(10, 3.0), np.arange(10.0))
    assert constant["spearman"] == Estimate(None, None, 10)
    assert constant["kendall"] == Estimate(None, None, 10)
    assert constant["mae"].value == pytest.approx(np.abs(3.0 - np.arange(10.0)).mean())
    empty = stats.score_agreement([], [])
    assert empty == {"n": 0, **{k: Estimate(None, None, 0) for k in ("spearman", "kendall", "mae")}}
    assert_json_clean(constant)
    with pytest.raises(ValueError, match="human_scores"):
        stats.score_agreement([1.0, 2.0], [1.0, math.nan])


def test_score_bootstrap_on_grouped_continuous_scores_is_centred_on_the_exact_point():
    # Continuous on both sides: the resampling groups scores into quantile cells, and the
    # replicates are shifted so the interval sits around the exact figure.
    rng = np.random.default_rng(10)
    human = rng.normal(size=3_000)
    judge = human + rng.normal(size=3_000)
    result = stats.score_agreement(judge, human, bootstrap=300)
    for name in ("spearman", "kendall", "mae"):
        interval = result[name].interval
        assert interval.low < result[name].value < interval.high
    rho = result["spearman"].value
    half = (result["spearman"].interval.high - result["spearman"].interval.low) / 2
    assert half == pytest.approx((1 - rho**2) * 1.96 / math.sqrt(2_997), rel=0.35)


def test_grouped_replicates_are_shifted_to_the_exact_point(monkeypatch):
    # Forced to a 2 x 2 grouping, Spearman on the groups is far from the exact figure; the
    # replicates are shifted by the difference, so the interval still surrounds the exact one.
    rng = np.random.default_rng(22)
    human = rng.normal(size=2_000)
    judge = human + rng.normal(size=2_000)
    monkeypatch.setattr(stats, "_SCORE_CELLS", (4,) * 5)
    result = stats.score_agreement(judge, human, bootstrap=300)
    grouped = stats.score_agreement((judge > np.median(judge)) * 1.0, (human > np.median(human)) * 1.0, bootstrap=0)
    assert result["spearman"].value - grouped["spearman"].value > 0.1
    for name in ("spearman", "kendall", "mae"):
        interval = result[name].interval
        assert interval.low < result[name].value < interval.high


# --- confidence -------------------------------------------------------------------------------


def test_confidence_calibration_by_hand():
    # Bin [0.6, 0.7): confidences 0.6, 0.6, right once -> gap |0.5 - 0.6| = 0.1 over 2 items;
    # bin [0.9, 1.0]: 0.9, 1.0, right twice -> gap |1 - 0.95| = 0.05 over 2. ECE = 0.075.
    confidence = [0.6, 0.6, 0.9, 1.0]
    correct = [True, False, True, True]
    result = stats.confidence_calibration(confidence, correct, bootstrap=0)
    assert result["ece"].value == pytest.approx(0.075)
    assert result["brier"].value == pytest.approx((0.16 + 0.36 + 0.01 + 0.0) / 4)
    rows = result["reliability"]
    assert len(rows) == 10
    assert rows[6] == {
        "low": 0.6,
        "high": 0.7,
        "n": 2,
        "mean_confidence": pytest.approx(0.6),
        "accuracy": rows[6]["accuracy"],
    }
    assert rows[6]["accuracy"] == Estimate(0.5, stats.wilson(1, 2), 2)
    assert rows[9]["n"] == 2  # 1.0 falls in the last, closed bin
    assert rows[0] == {"low": 0.0, "high": 0.1, "n": 0, "mean_confidence": None, "accuracy": Estimate(None, None, 0)}
    # A confidence on an edge goes to the bin it starts.
    assert stats.confidence_calibration([0.3, 0.7], [True, True], bootstrap=0)["reliability"][3]["n"] == 1
    assert_json_clean(result)


def test_confidence_calibration_matches_scikit_learn_brier_and_a_perfectly_calibrated_judge():
    rng = np.random.default_rng(12)
    confidence = np.round(rng.uniform(0, 1, 20_000), 2)
    correct = rng.random(20_000) < confidence  # calibrated by construction
    weights = 1 / rng.uniform(0.1, 1, 20_000)
    for w in (None, weights):
        result = stats.confidence_calibration(confidence, correct, w, bootstrap=200)
        assert result["brier"].value == pytest.approx(brier_score_loss(correct, confidence, sample_weight=w))
        assert result["ece"].value < 0.02
        assert result["ece"].interval.low <= result["ece"].value <= result["ece"].interval.high
    overconfident = stats.confidence_calibration(np.full(1_000, 0.95), rng.random(1_000) < 0.7, bootstrap=200)
    assert overconfident["ece"].value == pytest.approx(0.25, abs=0.04)
    assert overconfident["ece"].interval.low > 0.18


def test_confidence_calibration_rejects_bad_input():
    with pytest.raises(ValueError, match="confidence"):
        stats.confidence_calibration([1.2], [True])
    with pytest.raises(ValueError, match="bins"):
        stats.confidence_calibration([0.2], [True], bins=0)
    assert stats.confidence_calibration([], [])["ece"] == Estimate(None, None, 0)


# --- pass rates -------------------------------------------------------------------------------


def test_rogan_gladen_by_hand():
    assert stats.rogan_gladen(0.5, 0.9, 0.8) == pytest.approx(0.3 / 0.7)
    assert stats.rogan_gladen(0.05, 0.9, 0.8) == 0.0  # clipped
    assert stats.rogan_gladen(1.0, 0.9, 0.8) == 1.0
    assert stats.rogan_gladen(0.5, 0.5, 0.5) is None  # a judge at chance says nothing
    assert stats.rogan_gladen(0.5, 0.3, 0.6) is None
    with pytest.raises(ValueError, match="tpr"):
        stats.rogan_gladen(0.5, 1.5, 0.5)


def _population(rng, n, rate=0.8, tpr=0.9, tnr=0.7):
    human = rng.random(n) < rate
    judge = np.where(human, rng.random(n) < tpr, rng.random(n) >= tnr)
    return judge, human


def test_ppi_matches_ppi_python_unweighted():
    rng = np.random.default_rng(13)
    judge, human = _population(rng, 20_000)
    labelled = rng.choice(20_000, 400, replace=False)
    result = stats.pass_rate_estimates(judge, judge[labelled], human[labelled], alpha=0.05, bootstrap=0)
    y, yhat, yhat_all = (a.astype(float) for a in (human[labelled], judge[labelled], judge))
    low, high = ppi_py.ppi_mean_ci(y, yhat, yhat_all, alpha=0.05, lam=None)
    point = ppi_py.ppi_mean_pointestimate(y, yhat, yhat_all, lam=None)
    assert result["method_used"] == "ppi"
    assert result["cross_fitted"] is False
    assert result["ppi"].value == pytest.approx(float(point[0]), abs=1e-12)
    assert result["ppi"].interval.low == pytest.approx(float(low[0]), abs=1e-12)
    assert result["ppi"].interval.high == pytest.approx(float(high[0]), abs=1e-12)
    assert 0.1 < result["lambda"] <= 1
    # ppi-python's default is a 90% interval: ours at alpha=0.10 is the same.
    low90, high90 = ppi_py.ppi_mean_ci(y, yhat, yhat_all, lam=None)
    at90 = stats.pass_rate_estimates(judge, judge[labelled], human[labelled], alpha=0.10, bootstrap=0)["ppi"]
    assert at90.interval == Interval(pytest.approx(float(low90[0])), pytest.approx(float(high90[0])))
    # The PPI interval is narrower than the human-only one: the judge's labels of all items help.
    human_only = result["human_only"].interval
    assert result["ppi"].interval.high - result["ppi"].interval.low < human_only.high - human_only.low


def test_ppi_point_matches_ppi_python_weighted():
    rng = np.random.default_rng(14)
    judge, human = _population(rng, 20_000)
    probability = np.where(judge, 0.02, 0.2)  # judge fails are sampled ten times as often
    sampled = rng.random(20_000) < probability
    result = stats.pass_rate_estimates(judge, judge[sampled], human[sampled], probability[sampled], bootstrap=0)
    point = ppi_py.ppi_mean_pointestimate(
        human[sampled].astype(float),
        judge[sampled].astype(float),
        judge.astype(float),
        lam=None,
        w=1 / probability[sampled],
    )
    assert result["method_used"] == "ppi"
    assert result["ppi"].value == pytest.approx(float(point[0]), abs=1e-12)
    # The HT-weighted human-only figure undoes the oversampling of fails; the plain mean does not.
    assert abs(result["human_only"].value - human.mean()) < 0.03
    assert human[sampled].mean() < human.mean() - 0.15


def test_ppi_cross_fits_lambda_below_100_labels():
    rng = np.random.default_rng(15)
    judge, human = _population(rng, 10_000)
    labelled = rng.choice(10_000, 60, replace=False)
    result = stats.pass_rate_estimates(judge, judge[labelled], human[labelled], alpha=0.05, seed=2, bootstrap=0)
    assert result["cross_fitted"] is True
    assert result["method_used"] == "ppi"
    y, yhat, yhat_all = (a.astype(float) for a in (human[labelled], judge[labelled], judge))
    plug_in = float(ppi_py.ppi_mean_pointestimate(y, yhat, yhat_all, lam=None)[0])
    low, high = ppi_py.ppi_mean_ci(y, yhat, yhat_all, alpha=0.05, lam=None)
    # Cross-fitting moves the point a little (each fold's lambda is estimated without it),
    # well inside the interval, and depends on the seed that splits the folds.
    assert result["ppi"].value != pytest.approx(plug_in, abs=1e-9)
    assert abs(result["ppi"].value - plug_in) < (high[0] - low[0]) / 4
    assert result["lambda"] == pytest.approx(
        stats._ppi_lambda(y, yhat, np.ones(60), yhat_all)  # the whole-sample lambda is reported
    )
    other_seed = stats.pass_rate_estimates(judge, judge[labelled], human[labelled], seed=3, bootstrap=0)
    assert other_seed["ppi"].value != result["ppi"].value


def test_ppi_falls_back_to_human_only_when_the_judge_is_noise():
    rng = np.random.default_rng(16)
    human = rng.random(50_000) < 0.7
    judge = rng.random(50_000) < 0.5  # unrelated to the truth
    labelled = rng.choice(50_000, 2_000, replace=False)
    result = stats.pass_rate_estimates(judge, judge[labelled], human[labelled], bootstrap=0)
    assert result["lambda"] < stats.PPI_MIN_LAMBDA
    assert result["method_used"] == "human_only"
    assert result["ppi"] == result["human_only"]
    assert result["cross_fitted"] is False
    # With a good judge on the same items, PPI is used.
    good = np.where(rng.random(50_000) < 0.9, human, ~human)
    assert stats.pass_rate_estimates(good, good[labelled], human[labelled], bootstrap=0)["method_used"] == "ppi"


def test_pass_rate_estimates_with_too_few_or_no_labels():
    judge = np.array([True] * 80 + [False] * 20)
    none = stats.pass_rate_estimates(judge, [], [])
    assert none["judge_only"].value == pytest.approx(0.8)
    assert none["judge_only"].interval == stats.wilson(80, 100)
    assert none["human_only"] == Estimate(None, None, 0)
    assert none["rogan_gladen"] == Estimate(None, None, 0)
    assert none["ppi"] == Estimate(None, None, 0)
    assert none["method_used"] == "human_only"
    assert none["lambda"] is None
    few = stats.pass_rate_estimates(judge, [True, False, True], [True, False, False])
    assert few["method_used"] == "human_only"
    assert few["ppi"] == few["human_only"]
    assert_json_clean(few)
    with pytest.raises(ValueError, match="inclusion_probability"):
        stats.pass_rate_estimates(judge, [True], [True], [0.0])
    with pytest.raises(ValueError, match="inclusion_probability"):
        stats.pass_rate_estimates(judge, [True], [True], [0.5, 0.5])


def test_rogan_gladen_estimate_and_its_bootstrap_interval():
    judge, human = table(80, 6, 10, 24)  # TPR 80/90, TNR 24/30
    judged = np.r_[np.ones(6_500, bool), np.zeros(3_500, bool)]  # the judge passes 65%
    result = stats.pass_rate_estimates(judged, judge, human, seed=1)
    expected = stats.rogan_gladen(0.65, 80 / 90, 24 / 30)
    assert result["rogan_gladen"].value == pytest.approx(expected)
    interval = result["rogan_gladen"].interval
    assert interval.low < expected < interval.high
    assert result == stats.pass_rate_estimates(judged, judge, human, seed=1)
    assert result["rogan_gladen"].n == 120


def test_rogan_gladen_interval_carries_the_judges_own_sampling_error():
    # 20,000 labels pin TPR and TNR down; the judge's rate over only 500 items is what is
    # uncertain, so the interval is about 2 x 1.96 x sqrt(q (1 - q) / 500) / (TPR + TNR - 1).
    rng = np.random.default_rng(23)
    judge, human = _population(rng, 20_000, rate=0.6, tpr=0.9, tnr=0.8)
    judged = rng.random(500) < 0.6
    q = judged.mean()
    result = stats.pass_rate_estimates(judged, judge, human, bootstrap=2_000)
    interval = result["rogan_gladen"].interval
    assert interval.high - interval.low == pytest.approx(2 * 1.96 * math.sqrt(q * (1 - q) / 500) / 0.7, rel=0.2)


def test_rogan_gladen_interval_covers_the_true_rate():
    # 200 draws, uniform labels: the bootstrap interval holds the true rate about 95% of the time.
    rng = np.random.default_rng(18)
    hits = 0
    for draw in range(200):
        judge, human = _population(rng, 5_000, rate=0.6, tpr=0.85, tnr=0.8)
        labelled = rng.choice(5_000, 300, replace=False)
        result = stats.pass_rate_estimates(judge, judge[labelled], human[labelled], seed=draw, bootstrap=400)
        interval = result["rogan_gladen"].interval
        hits += interval.low <= 0.6 <= interval.high
    assert 0.90 <= hits / 200 <= 0.99


def _simulated_draw(rng, size, base_rate):
    """A population whose failures the judge is less sure of, sampled by uncertainty: fails are
    over-represented among the labels."""
    human = rng.random(size) < 0.8
    confidence = np.where(human, rng.uniform(0.6, 1, size), rng.uniform(0.5, 0.8, size))
    judge = np.where(rng.random(size) < confidence, human, ~human)
    probability = stats.uncertainty_sampling_probability(confidence, base_rate=base_rate)
    sampled = rng.random(size) < probability
    return judge, human, probability, sampled


def test_ppi_and_ht_intervals_cover_the_true_rate_under_uncertainty_sampling():
    # 300 draws, half with about 60 labels (lambda cross-fitted) and half with about 180.
    rng = np.random.default_rng(19)
    covered = {"ppi": 0, "human_only": 0}
    methods = set()
    for draw in range(300):
        judge, human, probability, sampled = _simulated_draw(rng, 3_000, 0.02 if draw % 2 else 0.06)
        result = stats.pass_rate_estimates(
            judge, judge[sampled], human[sampled], probability[sampled], seed=draw, bootstrap=0
        )
        methods.add((result["method_used"], result["cross_fitted"]))
        for name in covered:
            interval = result[name].interval
            covered[name] += interval.low <= 0.8 <= interval.high
    assert ("ppi", True) in methods
    assert ("ppi", False) in methods
    for name, hits in covered.items():
        assert 0.91 <= hits / 300 <= 0.99, (name, hits)


def test_weighted_estimates_are_unbiased_under_non_uniform_sampling():
    rng = np.random.default_rng(20)
    ht, ppi, plain = [], [], []
    for draw in range(300):
        judge, human, probability, sampled = _simulated_draw(rng, 3_000, 0.05)
        result = stats.pass_rate_estimates(
            judge, judge[sampled], human[sampled], probability[sampled], seed=draw, bootstrap=0
        )
        ht.append(result["human_only"].value)
        ppi.append(result["ppi"].value)
        plain.append(human[sampled].mean())
    for values in (ht, ppi):
        assert abs(np.mean(values) - 0.8) < 3 * np.std(values) / math.sqrt(300)
    # The unweighted mean of the labels is what the weights correct: it is far off.
    assert np.mean(plain) < 0.8 - 10 * np.std(plain) / math.sqrt(300)


def test_horvitz_thompson_weights():
    assert stats.horvitz_thompson_weights([1.0, 0.5, 0.01]).tolist() == pytest.approx([1.0, 2.0, 100.0])
    for bad in ([0.0], [1.5], [-0.1], [math.nan], [[0.5]]):
        with pytest.raises(ValueError, match="inclusion_probability"):
            stats.horvitz_thompson_weights(bad)


# --- trust, bars, sampling --------------------------------------------------------------------


def test_trust_threshold_finds_the_lowest_trustworthy_confidence():
    # 200 items at 0.95 all agree; 100 at 0.8 agree 95%; 200 at 0.6 agree 50%.
    confidence = np.r_[np.full(200, 0.95), np.full(100, 0.8), np.full(200, 0.6)]
    agree = np.r_[np.ones(200, bool), np.arange(100) < 95, np.arange(200) < 100]
    result = stats.trust_threshold(confidence, agree, target=0.9)
    assert result["threshold"] == 0.8
    assert result["n"] == 300
    assert result["agreement"] == Estimate(pytest.approx(295 / 300), stats.wilson(295, 300), 300)
    assert result["coverage"] == pytest.approx(0.6)
    assert stats.wilson(395, 500).low < 0.9  # why 0.6 is not trusted
    assert_json_clean(result)
    assert stats.trust_threshold(confidence, agree, target=0.99) is None
    # min_n: 20 perfect items are too few to trust alone.
    assert (
        stats.trust_threshold(np.r_[np.full(20, 0.9), np.full(100, 0.5)], np.r_[np.ones(20, bool), np.zeros(100, bool)])
        is None
    )
    assert stats.trust_threshold([], []) is None


def test_trust_threshold_does_not_jump_over_a_dip():
    # From the top: 0.95 qualifies, 0.9 does not (a bad band), 0.5 would again (many good items
    # below); the threshold stays at 0.95.
    confidence = np.r_[np.full(100, 0.95), np.full(40, 0.9), np.full(2_000, 0.5)]
    agree = np.r_[np.ones(100, bool), np.zeros(40, bool), np.ones(2_000, bool)]
    assert stats.wilson(2_100, 2_140).low > 0.9
    result = stats.trust_threshold(confidence, agree, target=0.9)
    assert result["threshold"] == 0.95
    assert result["n"] == 100


def _agreement(tpr: tuple[int, int], tnr: tuple[int, int]) -> dict:
    tp, positives = tpr
    tn, negatives = tnr
    return stats.binary_agreement(*table(tp, negatives - tn, positives - tp, tn), bootstrap=200)


def test_bar_status():
    assert stats.bar_status(_agreement((190, 200), (95, 100))) == "ok"
    assert stats.bar_status(_agreement((170, 200), (95, 100))) == "below_bar"  # TPR 0.85
    # 34 human fails: even a perfect TNR could not show 0.9 (it needs 35).
    assert stats.bar_status(_agreement((200, 200), (34, 34))) == "too_few"
    assert stats.bar_status(_agreement((200, 200), (35, 35))) == "ok"
    # TPR 0.95 and TNR 0.90 meet their bars, but on these skewed classes kappa is 0.548.
    skewed = _agreement((950, 1_000), (36, 40))
    assert skewed["cohen_kappa"].value == pytest.approx(0.548, abs=0.001)
    assert stats.bar_status(skewed) == "below_bar"
    assert stats.bar_status(skewed, kappa_bar=0.5) == "ok"
    # A bar set to None is not checked.
    assert stats.bar_status(_agreement((200, 200), (20, 20)), tnr_bar=None) == "ok"
    assert stats.bar_status(stats.binary_agreement(*table(30, 0, 0, 0))) == "too_few"
    assert stats.bar_status(stats.binary_agreement(*table(100, 0, 0, 0)), tnr_bar=None) == "too_few"  # kappa undefined


def test_bar_cleared_asks_the_intervals():
    strong = _agreement((1_980, 2_000), (990, 1_000))
    assert stats.bar_status(strong) == "ok"
    assert stats.bar_cleared(strong)
    borderline = _agreement((183, 200), (92, 100))  # points above 0.9, lower bounds below
    assert stats.bar_status(borderline) == "ok"
    assert not stats.bar_cleared(borderline)


def test_uncertainty_sampling_probability():
    rng = np.random.default_rng(21)
    confidence = rng.uniform(0.5, 1, 10_000)
    p = stats.uncertainty_sampling_probability(confidence, base_rate=0.05)
    assert p.mean() == pytest.approx(0.05)
    order = np.argsort(confidence)
    assert np.all(np.diff(p[order]) <= 1e-15)  # less confident, more likely
    assert p.min() >= 0.05 * 0.2 - 1e-15  # the uniform share
    # Capped at 1, with the excess spread so the mean stays.
    high = stats.uncertainty_sampling_probability(confidence, base_rate=0.6, uniform_share=0.1)
    assert high.max() == 1.0
    assert high.mean() == pytest.approx(0.6)
    assert np.all(high > 0)
    assert stats.uncertainty_sampling_probability(np.ones(5), base_rate=0.1).tolist() == [0.1] * 5
    # A missing confidence counts as the mean uncertainty.
    mixed = stats.uncertainty_sampling_probability(np.array([0.5, 1.0, np.nan]), base_rate=0.1)
    assert mixed[2] == pytest.approx(0.1 * (0.2 + 0.8))
    # One item at a time, against the traffic's usual mean uncertainty.
    one = stats.uncertainty_sampling_probability([0.6], base_rate=0.1, mean_uncertainty=0.2)
    assert one.tolist() == pytest.approx([0.1 * (0.2 + 0.8 * 0.4 / 0.2)])
    for kwargs in ({"base_rate": 0.0}, {"base_rate": 0.1, "uniform_share": 0.0}, {"base_rate": 1.5}):
        with pytest.raises(ValueError):
            stats.uncertainty_sampling_probability([0.5], **kwargs)
    with pytest.raises(ValueError, match="judge_confidence"):
        stats.uncertainty_sampling_probability([1.5], base_rate=0.1)


def test_weekly_trend():
    judge, human = table(45, 5, 5, 45)
    week = np.array(["2026-W02", "2026-W01"] * 50)
    trend = stats.weekly_trend(week, judge, human, bootstrap=100)
    assert [row["week"] for row in trend] == ["2026-W01", "2026-W02"]
    for row in trend:
        mine = week == row["week"]
        assert row == {"week": row["week"], **stats.binary_agreement(judge[mine], human[mine], bootstrap=100)}
    dates = np.array(["2026-01-05", "2026-01-12"], dtype="datetime64[D]").repeat(50)
    by_date = stats.weekly_trend(dates, judge, human, bootstrap=0)
    assert stats.jsonable(by_date)[0]["week"] == "2026-01-05"
    assert_json_clean(stats.weekly_trend(week, judge, human, np.full(100, 2.0)))
    assert stats.weekly_trend([], [], []) == []
