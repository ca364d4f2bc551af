"""The release gate's arithmetic (evaluation/gates.py), every branch in both modes against
hand-computed figures, with SciPy and statsmodels as oracles for the bounds. No database."""

import json
import math

import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from evaluation import gates, stats
from evaluation.gates import GateSettings, ItemOutcome, PairwiseSummary, VersionItem

OBSERVED = GateSettings()
CONFIDENT = GateSettings(mode="confident")


def rows(passed: int, failed: int = 0, *, critical_passed: int = 0, critical_failed: int = 0) -> list[ItemOutcome]:
    """passed/failed ordinary items plus critical ones."""
    out = [ItemOutcome(f"p{i}", True) for i in range(passed)]
    out += [ItemOutcome(f"f{i}", False) for i in range(failed)]
    out += [ItemOutcome(f"cp{i}", True, critical=True) for i in range(critical_passed)]
    out += [ItemOutcome(f"cf{i}", False, critical=True) for i in range(critical_failed)]
    return out


# --- observed mode ----------------------------------------------------------------------------


def test_observed_pass_at_exactly_the_targets():
    result = gates.evaluate(rows(17, 1, critical_passed=2), OBSERVED)  # 19 of 20 = 0.95

    assert result.gate == "pass"
    assert (result.item_count, result.passed_count) == (20, 19)
    assert result.pass_rate == 0.95
    assert (result.critical_count, result.critical_passed_count, result.critical_pass_rate) == (2, 2, 1.0)
    assert result.reasons == []
    assert result.warnings == []


def test_observed_fail_on_the_pass_rate():
    result = gates.evaluate(rows(18, 2), OBSERVED)  # 0.90

    assert result.gate == "fail"
    assert result.reasons == ["Pass rate 90.00% (18 of 20) is below the target 95.00%."]
    # No critical items: that clause holds, and the run says it was not checked.
    assert result.critical_pass_rate is None
    assert result.warnings == ["No critical items: the critical pass rate was not checked."]


def test_observed_fail_on_a_critical_item_alone():
    result = gates.evaluate(rows(95, 0, critical_passed=4, critical_failed=1), OBSERVED)  # 99 of 100

    assert result.pass_rate == 0.99
    assert result.critical_pass_rate == 0.8
    assert result.gate == "fail"
    assert result.reasons == ["Critical pass rate 80.00% (4 of 5) is below the target 100.00%."]


def test_observed_critical_target_below_one():
    settings = GateSettings(pass_rate=0.5, critical_pass_rate=0.75)
    assert gates.evaluate(rows(0, 0, critical_passed=3, critical_failed=1), settings).gate == "pass"
    assert gates.evaluate(rows(0, 0, critical_passed=2, critical_failed=1), settings).gate == "fail"


def test_observed_no_critical_items_passes_with_a_warning():
    result = gates.evaluate(rows(20), OBSERVED)

    assert result.gate == "pass"
    assert result.warnings == ["No critical items: the critical pass rate was not checked."]


def test_missing_items_count_as_failed_and_are_listed():
    items = [VersionItem("a"), VersionItem("b", critical=True), VersionItem("c")]
    outcome = gates.outcomes(items, {"a": True})

    assert [(o.key, o.passed, o.missing) for o in outcome] == [
        ("a", True, False),
        ("b", False, True),
        ("c", False, True),
    ]
    result = gates.evaluate(outcome, OBSERVED)
    assert result.missing == ["b", "c"]
    assert result.pass_rate == pytest.approx(1 / 3)
    assert result.critical_pass_rate == 0.0
    assert result.reasons[0] == "2 item(s) have no result and count as failed: b, c."


def test_many_missing_items_are_named_up_to_ten():
    outcome = gates.outcomes([VersionItem(f"k{i:02}") for i in range(12)], {})
    reason = gates.evaluate(outcome, OBSERVED).reasons[0]
    assert (
        reason
        == "12 item(s) have no result and count as failed: " + ", ".join(f"k{i:02}" for i in range(10)) + " and 2 more."
    )


def test_results_for_unknown_items_are_refused_naming_them():
    with pytest.raises(gates.UnknownItems) as caught:
        gates.outcomes([VersionItem("a")], {"a": True, "zz": False, "b": True})
    assert caught.value.keys == ["b", "zz"]


def test_an_empty_version_fails():
    result = gates.evaluate([], OBSERVED)
    assert result.gate == "fail"
    assert result.pass_rate is None
    assert result.reasons == ["The dataset version has no items."]


# --- confident mode ---------------------------------------------------------------------------


def test_confident_pass_with_enough_critical_items():
    # 100 of 100: Wilson lower bound n / (n + z^2) = 100 / 103.8415 = 0.96301 >= 0.95.
    # 72 critical items all passing: 0.025^(1/72) = 0.950056 >= 0.95 (the floor for a target of 1.0).
    result = gates.evaluate(rows(28, critical_passed=72), CONFIDENT)

    assert result.wilson_lower == pytest.approx(0.9630065, abs=1e-6)
    assert result.critical_lower == pytest.approx(0.025 ** (1 / 72))
    assert result.critical_lower == pytest.approx(0.950056, abs=1e-6)
    assert result.critical_needed_items == 72
    assert result.gate == "pass", result.reasons


def test_confident_fail_with_one_critical_item_too_few():
    # 0.025^(1/71) = 0.949371 < 0.95
    result = gates.evaluate(rows(29, critical_passed=71), CONFIDENT)

    assert result.critical_lower == pytest.approx(0.949371, abs=1e-6)
    assert result.gate == "fail"
    assert result.reasons == [
        "Lower bound of the critical pass rate 94.94% (97.5% one-sided exact) is below 95.00%: at least 72 "
        "critical items, all passing, are needed."
    ]


def test_confident_fail_on_the_lower_bound_where_observed_passes():
    # 97 of 100: Wilson 95% lower bound 0.915481 < 0.95; observed 0.97 >= 0.95.
    data = rows(97, 3)
    assert gates.evaluate(data, GateSettings(critical_pass_rate=0)).gate == "pass"
    result = gates.evaluate(data, GateSettings(mode="confident", critical_pass_rate=0))

    assert result.wilson_lower == pytest.approx(proportion_confint(97, 100, alpha=0.05, method="wilson")[0])
    assert result.wilson_lower == pytest.approx(0.915481, abs=1e-6)
    assert result.needed_items == gates.NeededItems(457, "observed_rate", 0.95, False)
    assert result.gate == "fail"
    assert result.reasons == [
        "Lower bound of the pass rate 91.55% (97.5% one-sided Wilson; observed 97.00%, 97 of 100) is below "
        "95.00%: about 457 items at this pass rate would show it."
    ]


def test_confident_critical_target_below_one_uses_the_exact_bound():
    settings = GateSettings(mode="confident", pass_rate=0.5, critical_pass_rate=0.9)
    # 49 of 50 critical: Clopper-Pearson 95% two-sided lower = 0.893530 < 0.9.
    failing = gates.evaluate(rows(0, critical_passed=49, critical_failed=1), settings)
    assert failing.critical_lower == pytest.approx(binomtest(49, 50).proportion_ci(0.95, "exact").low)
    assert failing.critical_lower == pytest.approx(0.893530, abs=1e-6)
    assert failing.gate == "fail"
    assert failing.reasons == [
        "Lower bound of the critical pass rate 89.35% (97.5% one-sided exact) is below 90.00%: 49 of 50 passed."
    ]
    # 99 of 100 critical: 0.945541 >= 0.9.
    passing = gates.evaluate(rows(0, critical_passed=99, critical_failed=1), settings)
    assert passing.critical_lower == pytest.approx(0.945541, abs=1e-6)
    assert passing.gate == "pass", passing.reasons
    # All passing but too few: 0.025^(1/35) = 0.8999 < 0.9; 36 clear it.
    assert gates.evaluate(rows(0, critical_passed=35), settings).gate == "fail"
    assert gates.evaluate(rows(0, critical_passed=36), settings).gate == "pass"


def test_confident_critical_target_one_needs_every_critical_item_to_pass():
    result = gates.evaluate(rows(100, critical_passed=199, critical_failed=1), CONFIDENT)
    assert result.gate == "fail"
    assert result.reasons == ["Every critical item must pass; 1 of 200 failed."]


def test_confident_needs_critical_items_unless_the_critical_target_is_zero():
    result = gates.evaluate(rows(100), CONFIDENT)
    assert result.gate == "fail"
    assert result.reasons == [
        "No critical items: a confident gate needs at least 72 critical items, all passing, for a lower bound "
        "of 95.00%."
    ]
    assert gates.evaluate(rows(100), GateSettings(mode="confident", critical_pass_rate=0)).gate == "pass"


def test_confident_overall_target_of_one():
    settings = GateSettings(mode="confident", pass_rate=1.0, critical_pass_rate=0)
    # 73 / (73 + z^2) = 0.950007 >= 0.95; 72 / (72 + z^2) = 0.949360.
    assert gates.evaluate(rows(73), settings).gate == "pass"
    short = gates.evaluate(rows(72), settings)
    assert short.gate == "fail"
    assert short.needed_items == gates.NeededItems(73, "zero_failures", 0.95, False)
    failed = gates.evaluate(rows(99, 1), settings)
    assert failed.reasons == ["The target is 100% and 1 of 100 items failed."]
    # The observed mode takes 1.0 literally: any failure fails.
    assert gates.evaluate(rows(99, 1), GateSettings(pass_rate=1.0, critical_pass_rate=0)).gate == "fail"


def test_missing_items_fail_the_confident_gate_too():
    outcome = gates.outcomes([VersionItem(f"k{i}") for i in range(100)], {f"k{i}": True for i in range(99)})
    result = gates.evaluate(outcome, GateSettings(mode="confident", pass_rate=0.9, critical_pass_rate=0))
    assert result.wilson_lower > 0.9  # 99 of 100 clears 0.9 ...
    assert result.gate == "fail"  # ... but a missing result is always a reason
    assert result.reasons == ["1 item(s) have no result and count as failed: k99."]


# --- needed items -----------------------------------------------------------------------------


def test_needed_items_at_the_observed_rate_is_the_smallest_n_that_clears():
    need = gates.needed_items(97, 100, 0.95, 0.95)
    assert need.n == 457
    assert proportion_confint(0.97 * 457, 457, alpha=0.05, method="wilson")[0] >= 0.95
    assert proportion_confint(0.97 * 456, 456, alpha=0.05, method="wilson")[0] < 0.95


def test_needed_items_assumptions():
    assert gates.needed_items(5, 5, 0.95, 0.95) == gates.NeededItems(73, "zero_failures", 0.95, False)
    assert gates.needed_items(80, 80, 0.95, 0.95) == gates.NeededItems(73, "zero_failures", 0.95, True)
    assert gates.needed_items(0, 0, 0.9, 0.95) == gates.NeededItems(
        stats.min_items_for_bar(0.9), "zero_failures", 0.9, False
    )
    assert gates.needed_items(95, 100, 0.95, 0.95) == gates.NeededItems(None, "unreachable", 0.95, False)
    assert gates.needed_items(90, 100, 0.95, 0.95).assumption == "unreachable"
    # Past a billion items it gives up rather than search further.
    assert gates.needed_items(950_001, 1_000_000, 0.95, 0.95) == gates.NeededItems(None, "observed_rate", 0.95, False)
    assert gates.needed_items(3, 4, 0, 0.95) == gates.NeededItems(0, "observed_rate", 0, True)


def test_zero_failure_items_is_the_exact_rule_of_three():
    for target, confidence in ((0.9, 0.95), (0.95, 0.95), (0.99, 0.9), (1.0, 0.95)):
        n = gates.zero_failure_items(target, confidence)
        goal = gates.claim_target(target)
        alpha = (1 - confidence) / 2
        assert alpha ** (1 / n) >= goal > alpha ** (1 / (n - 1))
    # The rule of three: n ~ -ln(alpha) / (1 - target).
    assert gates.zero_failure_items(0.99, 0.9) == pytest.approx(-math.log(0.05) / 0.01, rel=0.01)
    assert gates.zero_failure_items(0, 0.95) == 0


# --- segments ---------------------------------------------------------------------------------


def test_segments_per_tag_and_split_with_counts():
    outcome = [
        ItemOutcome("a", True, tags=("billing", "refund"), split="test"),
        ItemOutcome("b", False, critical=True, tags=("billing",), split="train"),
        ItemOutcome("c", True, critical=True, tags=("billing", "billing"), split="train"),
        ItemOutcome("d", True, split="train"),
    ]
    result = gates.evaluate(outcome, OBSERVED)
    got = [(s.kind, s.name, s.n, s.passed, s.pass_rate, s.critical, s.critical_passed) for s in result.segments]

    assert got == [
        ("tag", "billing", 3, 2, pytest.approx(2 / 3), 2, 1),
        ("tag", "refund", 1, 1, 1.0, 0, 0),
        ("split", "test", 1, 1, 1.0, 0, 0),
        ("split", "train", 3, 2, pytest.approx(2 / 3), 2, 1),
    ]
    billing = result.segments[0]
    assert (billing.low, billing.high) == pytest.approx(proportion_confint(2, 3, alpha=0.05, method="wilson"))


# --- not worse than prod ----------------------------------------------------------------------


def summary(high: float, n_pairs: int = 40) -> PairwiseSummary:
    return PairwiseSummary(
        candidate_win_rate=high - 0.1, low=high - 0.2, high=high, n_pairs=n_pairs, baseline_agent_version="v1"
    )


def test_required_comparison_missing_fails():
    settings = GateSettings(require_not_worse=True, critical_pass_rate=0)
    result = gates.evaluate(rows(20), settings)
    assert result.gate == "fail"
    assert result.reasons == ["No human comparison against prod yet."]
    assert result.not_worse is None
    # A comparison with no pairs says nothing either.
    assert gates.evaluate(rows(20), settings, summary(0.9, n_pairs=0)).reasons == [
        "No human comparison against prod yet."
    ]


def test_required_comparison_not_worse_is_an_upper_bound_of_at_least_a_half():
    settings = GateSettings(require_not_worse=True, critical_pass_rate=0)
    at_half = gates.evaluate(rows(20), settings, summary(0.5))
    assert at_half.gate == "pass"
    assert at_half.not_worse is True

    worse = gates.evaluate(rows(20), settings, summary(0.49))
    assert worse.gate == "fail"
    assert worse.not_worse is False
    assert worse.reasons == [
        "People judged this version worse than prod (v1): win rate 39.00%, interval 29.00% to 49.00% over 40 pairs."
    ]


def test_an_unrequired_comparison_only_warns():
    result = gates.evaluate(rows(20), GateSettings(critical_pass_rate=0), summary(0.3))
    assert result.gate == "pass"
    assert result.not_worse is False
    assert result.warnings[-1].endswith("(not required by this dataset)")


def test_the_result_is_plain_json():
    result = gates.evaluate(rows(3, 1, critical_passed=1), CONFIDENT, summary(0.7))
    data = stats.jsonable(result)
    json.dumps(data, allow_nan=False)
    assert data["needed_items"] == {"n": None, "assumption": "unreachable", "target": 0.95, "enough": False}
    assert data["comparison"]["baseline_agent_version"] == "v1"


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        gates.evaluate([], GateSettings(mode="vibes"))
