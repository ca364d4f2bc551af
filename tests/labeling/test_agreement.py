"""Agreement statistics: hand-computed and published cases. Pure maths, no database."""

import json
import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from labeling.agreement import (
    QuestionRatings,
    _Batch,
    _kappa_from_codes,
    _prepare,
    agreement_report,
    annotator_agreement_with_others,
    pairwise_agreement,
    question_agreement,
)

STATS = ("percent_agreement", "cohen_kappa", "cohen_kappa_weighted", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")


def two_raters(table: dict[tuple, int], level: str = "nominal", categories=None) -> QuestionRatings:
    """Items from a contingency table {(rater x's value, rater y's value): number of items}."""
    ratings, item = {}, 0
    for (x, y), n in table.items():
        for _ in range(n):
            ratings[item] = {"x": x, "y": y}
            item += 1
    return QuestionRatings("q", level, ratings, categories)


def from_rows(rows: list[list], level: str = "nominal") -> QuestionRatings:
    """Items from a coders x units matrix, None for missing (Krippendorff's layout)."""
    ratings: dict = {}
    for coder, row in enumerate(rows):
        for unit, value in enumerate(row):
            ratings.setdefault(unit, {})[f"coder{coder}"] = value
    return QuestionRatings("q", level, ratings)


def assert_json_clean(result) -> None:
    json.dumps(result, allow_nan=False)  # raises on NaN or infinity, or on non-JSON types


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4 coders x 12 units example
# (also on Wikipedia): nominal alpha 0.743, ordinal 0.815.
KRIPPENDORFF_ROWS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]

# Fleiss (1971) as on Wikipedia "Fleiss' kappa": 10 subjects, 14 raters, 5 categories; kappa 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_balanced_prevalence_ninety_percent_agreement_gives_kappa_080():
    # p_o = 0.90; marginals 0.5/0.5 so p_e = 0.5; kappa = (0.9 - 0.5) / 0.5 = 0.80.
    q = two_raters({("pass", "pass"): 45, ("pass", "fail"): 5, ("fail", "pass"): 5, ("fail", "fail"): 45})
    result = question_agreement(q, bootstrap=0)
    assert result["n_items"] == 100
    assert result["n_labels"] == 200
    assert result["n_items_cohen"] == 100
    assert result["percent_agreement"] == pytest.approx(0.90)
    assert result["items_fully_agreeing"] == pytest.approx(0.90)
    assert result["prevalence"] == {"fail": 0.5, "pass": 0.5}
    assert result["cohen_kappa"] == pytest.approx(0.80)
    assert result["fleiss_kappa"] == pytest.approx(0.80)
    # AC1: pi = 0.5 each, p_e = (0.25 + 0.25) / (2 - 1) = 0.5, the same as kappa here.
    assert result["gwet_ac1"] == pytest.approx(0.80)
    # alpha = 1 - (n - 1) * D_o / D_e with n = 200 values: 1 - 199 * 20 / (200^2 - 2 * 100^2) = 0.801.
    assert result["krippendorff_alpha"] == pytest.approx(1 - 199 * 20 / 20000)


def test_skewed_prevalence_ninety_percent_agreement_gives_kappa_044():
    # p_o = 0.90; both raters pass 90%, so p_e = 0.9^2 + 0.1^2 = 0.82; kappa = 0.08 / 0.18 = 0.444.
    q = two_raters({("pass", "pass"): 85, ("pass", "fail"): 5, ("fail", "pass"): 5, ("fail", "fail"): 5})
    result = question_agreement(q, bootstrap=0)
    assert result["percent_agreement"] == pytest.approx(0.90)
    assert result["prevalence"] == {"fail": pytest.approx(0.1), "pass": pytest.approx(0.9)}
    assert result["cohen_kappa"] == pytest.approx(0.44, abs=0.005)
    assert result["cohen_kappa"] == pytest.approx(4 / 9)
    # AC1: pi_pass = 0.9, p_e = 2 * 0.9 * 0.1 / (2 - 1) = 0.18; (0.9 - 0.18) / 0.82 = 36 / 41 = 0.878.
    assert result["gwet_ac1"] == pytest.approx(36 / 41)


def test_gwet_ac1_and_cohen_kappa_on_a_small_two_rater_table():
    # 10 items: yes/yes 6, yes/no 1, no/yes 1, no/no 2. p_a = 0.8.
    # AC1: pi_yes = 14 / 20 = 0.7, p_e = 2 * 0.7 * 0.3 = 0.42, AC1 = 0.38 / 0.58 = 19 / 29.
    # Cohen: p_e = 0.7 * 0.7 + 0.3 * 0.3 = 0.58, kappa = 0.22 / 0.42 = 11 / 21.
    q = two_raters({("yes", "yes"): 6, ("yes", "no"): 1, ("no", "yes"): 1, ("no", "no"): 2})
    result = question_agreement(q, bootstrap=0)
    assert result["gwet_ac1"] == pytest.approx(19 / 29)
    assert result["cohen_kappa"] == pytest.approx(11 / 21)


def test_gwet_ac1_with_a_varying_number_of_raters():
    # Item A: a, a, b. Item B: a, a. Item C: a, b. Q = 2.
    # p_a = mean(2*1 / (3*2), 2*1 / (2*1), 0) = (1/3 + 1 + 0) / 3 = 4/9
    # pi_a = mean(2/3, 1, 1/2) = 13/18, pi_b = 5/18
    # p_e = 2 * 13/18 * 5/18 / (2 - 1) = 65/162
    # AC1 = (4/9 - 65/162) / (1 - 65/162) = (7/162) / (97/162) = 7/97
    q = QuestionRatings(
        "q",
        "nominal",
        {"A": {1: "a", 2: "a", 3: "b"}, "B": {1: "a", 2: "a"}, "C": {2: "a", 3: "b"}},
    )
    result = question_agreement(q, bootstrap=0)
    assert result["percent_agreement"] == pytest.approx(4 / 9)
    assert result["items_fully_agreeing"] == pytest.approx(1 / 3)
    assert result["gwet_ac1"] == pytest.approx(7 / 97)
    assert result["n_items_cohen"] == 2  # B and C have exactly two ratings
    assert result["n_items_fleiss"] == 2  # two raters is the modal count
    assert result["n_raters_fleiss"] == 2


def test_fleiss_kappa_textbook_example():
    ratings = {}
    for subject, row in enumerate(FLEISS_TABLE):
        values = [category for category, n in enumerate(row) for _ in range(n)]
        ratings[subject] = {rater: value for rater, value in enumerate(values)}
    result = question_agreement(QuestionRatings("q", "nominal", ratings), bootstrap=0)
    assert result["n_items_fleiss"] == 10
    assert result["n_raters_fleiss"] == 14
    assert result["fleiss_kappa"] == pytest.approx(0.210, abs=0.0005)
    # P-bar = 0.378 on Wikipedia; it is the mean share of agreeing pairs, our percent agreement.
    assert result["percent_agreement"] == pytest.approx(0.378, abs=0.0005)
    assert result["cohen_kappa"] is None  # no item has exactly two ratings
    assert result["n_items_cohen"] == 0


def test_krippendorff_alpha_canonical_example_with_missing_values():
    nominal = question_agreement(from_rows(KRIPPENDORFF_ROWS), bootstrap=0)
    assert nominal["krippendorff_alpha"] == pytest.approx(0.743, abs=0.0005)
    # Unit 12 has one value: not pairable, so outside every figure.
    assert nominal["n_items"] == 11
    assert nominal["n_items_rated_once"] == 1
    assert nominal["n_labels"] == 40
    # Per unit shares of agreeing pairs: 1, 1/2, 1, 1, 1, 0, 1, 1/2, 1, 1, 1 -> 9 / 11.
    assert nominal["percent_agreement"] == pytest.approx(9 / 11)
    assert nominal["items_fully_agreeing"] == pytest.approx(8 / 11)
    assert nominal["n_raters_fleiss"] == 4
    assert nominal["n_items_fleiss"] == 8

    ordinal = question_agreement(from_rows(KRIPPENDORFF_ROWS, "ordinal"), bootstrap=0)
    assert ordinal["krippendorff_alpha"] == pytest.approx(0.815, abs=0.0005)


def test_ordinal_weighted_and_unweighted_cohen_kappa_by_hand():
    # Rater x by rater y on a 1..3 scale, one item each: (1,1) (2,2) (3,3) (1,2) (2,3) (1,3).
    # Confusion rows [1 1 1], [0 1 1], [0 0 1]; row sums r = 3 2 1, column sums c = 1 2 3, N = 6.
    # Unweighted: p_o = 3/6, p_e = (3*1 + 2*2 + 1*3) / 36 = 10/36, kappa = (8/36) / (26/36) = 4/13.
    # Quadratic: sum w*observed = 1 + 4 + 1 = 6; sum w*expected = (6 + 36 + 2 + 6 + 4 + 2) / 6 = 56/6;
    # kappa_w = 1 - 6 / (56/6) = 5/14.
    pairs = [(1, 1), (2, 2), (3, 3), (1, 2), (2, 3), (1, 3)]
    q = two_raters({pair: 1 for pair in pairs}, level="ordinal", categories=[1, 2, 3])
    result = question_agreement(q, bootstrap=0)
    assert result["cohen_kappa"] == pytest.approx(4 / 13)
    assert result["cohen_kappa_weighted"] == pytest.approx(5 / 14)

    nominal = question_agreement(two_raters({pair: 1 for pair in pairs}), bootstrap=0)
    assert nominal["cohen_kappa_weighted"] is None


def test_ordinal_scale_order_comes_from_categories():
    # Same data; in "bad < ok < good" order the disagreements are one step apart, alphabetically not.
    table = {("bad", "bad"): 3, ("ok", "ok"): 3, ("good", "good"): 3, ("bad", "ok"): 2, ("ok", "good"): 2}
    ordered = question_agreement(two_raters(table, "ordinal", ["bad", "ok", "good"]), bootstrap=0)
    alphabetical = question_agreement(two_raters(table, "ordinal"), bootstrap=0)
    assert ordered["categories"] == ["bad", "ok", "good"]
    assert alphabetical["categories"] == ["bad", "good", "ok"]
    assert ordered["cohen_kappa"] == pytest.approx(alphabetical["cohen_kappa"])
    assert ordered["cohen_kappa_weighted"] > alphabetical["cohen_kappa_weighted"]
    assert ordered["krippendorff_alpha"] > alphabetical["krippendorff_alpha"]


def test_missing_values_are_dropped_and_single_ratings_counted_apart():
    q = QuestionRatings(
        "q",
        "nominal",
        {
            1: {"ann": "good", "bob": "good", "cat": None},
            2: {"ann": "good", "bob": "bad", "cat": float("nan")},
            3: {"ann": "bad", "bob": None},
            4: {"ann": None, "bob": None},
            5: {},
            6: {"ann": "bad", "cat": "bad"},
        },
    )
    result = question_agreement(q, bootstrap=0)
    assert result["n_items"] == 3
    assert result["n_items_rated_once"] == 1
    assert result["n_labels"] == 6
    assert result["n_annotators"] == 3
    assert result["prevalence"] == {"bad": 0.5, "good": 0.5}
    assert result["percent_agreement"] == pytest.approx(2 / 3)
    # Cohen pairs each item's smaller id first: (good, good), (good, bad), (bad, bad).
    # p_o = 2/3; x says good 2/3, y good 1/3: p_e = 2/9 + 2/9 = 4/9; kappa = (2/9) / (5/9) = 0.4.
    assert result["cohen_kappa"] == pytest.approx(0.4)


def test_bootstrap_interval_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, size=300)
    ratings = {
        i: {a: int(t) if rng.random() < 0.8 else int(rng.integers(0, 3)) for a in ("a", "b", "c")}
        for i, t in enumerate(truth)
    }
    q = QuestionRatings("q", "ordinal", ratings, [0, 1, 2])
    first = question_agreement(q, bootstrap=200, seed=3)
    again = question_agreement(q, bootstrap=200, seed=3)
    other_seed = question_agreement(q, bootstrap=200, seed=4)
    assert first == again
    assert first["gwet_ac1_ci"] != other_seed["gwet_ac1_ci"]
    for name in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1"):
        low, high = first[f"{name}_ci"]
        assert low < first[name] < high
        assert high - low < 0.2
    # Three ratings on every item: no item for Cohen, so neither figure nor interval.
    assert first["cohen_kappa"] is None
    assert first["cohen_kappa_ci"] is None
    narrower = question_agreement(q, bootstrap=200, seed=3, confidence=0.5)
    low, high = narrower["fleiss_kappa_ci"]
    assert first["fleiss_kappa_ci"][0] < low < high < first["fleiss_kappa_ci"][1]


def test_batch_formulas_match_the_packages_on_weighted_data():
    # The bootstrap uses closed forms weighted by how often each item was drawn; a weighting
    # must give what the packages give on the data with items repeated that many times.
    rng = np.random.default_rng(11)
    for level in ("nominal", "ordinal"):
        ratings = {}
        for item in range(60):
            raters = rng.choice(6, size=int(rng.choice([2, 2, 3, 4])), replace=False)
            base = int(rng.integers(0, 4))
            ratings[item] = {int(r): min(3, max(0, base + int(rng.choice([-1, 0, 0, 0, 1, 2])))) for r in raters}
        prep = _prepare(QuestionRatings("q", level, ratings, [0, 1, 2, 3]))
        batch = _Batch(prep)
        weights = rng.integers(0, 4, size=len(prep.item_ids))
        got = {name: float(values[0]) for name, values in batch.compute(weights[None, :].astype(float)).items()}

        repeated = [item for item, times in zip(prep.item_ids, weights, strict=True) for _ in range(times)]
        units = [ratings[item] for item in repeated]
        reliability = np.full((6, len(units)), np.nan)
        for u, unit in enumerate(units):
            for rater, value in unit.items():
                reliability[rater, u] = value
        alpha = krippendorff.alpha(reliability, value_domain=[0, 1, 2, 3], level_of_measurement=level)
        assert got["krippendorff_alpha"] == pytest.approx(alpha)

        pairs = [sorted(unit.items()) for unit in units if len(unit) == 2]
        x, y = [p[0][1] for p in pairs], [p[1][1] for p in pairs]
        assert got["cohen_kappa"] == pytest.approx(cohen_kappa_score(x, y, labels=[0, 1, 2, 3]))
        if level == "ordinal":
            quadratic = cohen_kappa_score(x, y, labels=[0, 1, 2, 3], weights="quadratic")
            assert got["cohen_kappa_weighted"] == pytest.approx(quadratic)
        else:
            assert math.isnan(got["cohen_kappa_weighted"])

        modal = [list(unit.values()) for unit in units if len(unit) == batch.fleiss_raters]
        table, _ = aggregate_raters(np.array(modal), n_cat=4)
        assert got["fleiss_kappa"] == pytest.approx(fleiss_kappa(table))

        shares = [
            sum(v * (v - 1) for v in np.bincount(list(unit.values()), minlength=4)) / (len(unit) * (len(unit) - 1))
            for unit in units
        ]
        assert got["percent_agreement"] == pytest.approx(np.mean(shares))


def test_everyone_always_agreeing_on_one_category_gives_none_not_nan():
    ratings = {i: {"a": "good", "b": "good"} for i in range(20)}
    result = question_agreement(QuestionRatings("q", "nominal", ratings, ["good", "bad"]), bootstrap=50)
    assert result["percent_agreement"] == 1.0
    assert result["percent_agreement_ci"] == [1.0, 1.0]
    assert result["items_fully_agreeing"] == 1.0
    assert result["prevalence"] == {"good": 1.0, "bad": 0.0}
    for name in ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha"):
        assert result[name] is None
        assert result[f"{name}_ci"] is None
    # pi_good = 1, so p_e = 0 and AC1 = p_a = 1.
    assert result["gwet_ac1"] == 1.0
    assert result["gwet_ac1_ci"] == [1.0, 1.0]
    assert_json_clean(result)

    # Without declared categories there is only one; AC1 is still 1.
    inferred = question_agreement(QuestionRatings("q", "nominal", ratings), bootstrap=0)
    assert inferred["categories"] == ["good"]
    assert inferred["gwet_ac1"] == 1.0


def test_a_single_item():
    result = question_agreement(QuestionRatings("q", "nominal", {1: {"a": "good", "b": "bad"}}))
    assert result["n_items"] == 1
    assert result["percent_agreement"] == 0.0
    assert result["cohen_kappa"] is None  # needs two items
    # Fleiss: p = (0.5, 0.5), P_e = 0.5, P = 0 -> -1. Alpha: 1 - (2 - 1) * 2 / (4 - 2) = 0.
    assert result["fleiss_kappa"] == pytest.approx(-1.0)
    assert result["krippendorff_alpha"] == pytest.approx(0.0)
    assert result["gwet_ac1"] == pytest.approx(-1.0)
    for name in STATS:
        assert result[f"{name}_ci"] is None  # an interval on one item would be a false certainty
    assert_json_clean(result)


def test_no_item_with_two_ratings():
    q = QuestionRatings("q", "nominal", {1: {"a": "good"}, 2: {"b": "bad"}, 3: {}})
    result = question_agreement(q)
    assert result["n_items"] == 0
    assert result["n_labels"] == 0
    assert result["n_items_rated_once"] == 2
    assert result["prevalence"] == {}
    for name in STATS:
        assert result[name] is None
        assert result[f"{name}_ci"] is None
    assert result["items_fully_agreeing"] is None
    assert_json_clean(result)

    empty = question_agreement(QuestionRatings("q", "ordinal", {}, [1, 2, 3]))
    assert empty["prevalence"] == {1: None, 2: None, 3: None}
    assert_json_clean(empty)


def test_multi_choice_lists_compare_as_sets_and_are_nominal():
    q = QuestionRatings(
        "issues",
        "ordinal",
        {
            1: {"a": ["tone", "facts"], "b": ["facts", "tone"]},
            2: {"a": [], "b": []},
            3: {"a": ["facts"], "b": ["facts", "tone"]},
        },
        categories=["facts", "tone"],  # option names, not answers: ignored
    )
    result = question_agreement(q, bootstrap=0)
    assert result["level"] == "nominal"
    assert result["categories"] == [[], ["facts"], ["facts", "tone"]]
    assert result["percent_agreement"] == pytest.approx(2 / 3)
    assert result["prevalence"] == {
        "[]": pytest.approx(2 / 6),
        '["facts"]': pytest.approx(1 / 6),
        '["facts", "tone"]': pytest.approx(3 / 6),
    }
    assert result["cohen_kappa_weighted"] is None
    assert_json_clean(result)


def test_booleans():
    q = two_raters({(True, True): 6, (True, False): 1, (False, True): 1, (False, False): 2})
    result = question_agreement(q, bootstrap=20)
    assert result["categories"] == [False, True]
    assert result["prevalence"] == {False: pytest.approx(0.3), True: pytest.approx(0.7)}
    assert result["cohen_kappa"] == pytest.approx(11 / 21)
    assert_json_clean(result)


def test_invalid_arguments():
    q = QuestionRatings("q", "nominal", {})
    with pytest.raises(ValueError, match="bootstrap"):
        question_agreement(q, bootstrap=-1)
    with pytest.raises(ValueError, match="confidence"):
        question_agreement(q, confidence=1.0)
    with pytest.raises(ValueError, match="level"):
        question_agreement(QuestionRatings("q", "interval", {}))  # type: ignore[arg-type]


PAIR_QUESTIONS = [
    QuestionRatings(
        "quality",
        "nominal",
        {
            1: {"ann": "good", "bob": "good", "cy": "bad"},
            2: {"ann": "bad", "bob": "bad"},
            3: {"ann": "good", "bob": "bad"},
            4: {"bob": "good", "cy": "good"},
        },
    ),
    QuestionRatings("score", "ordinal", {1: {"ann": 3, "bob": 3}, 5: {"ann": 1, "cy": 2}}, [1, 2, 3]),
]


def test_pairwise_agreement():
    pairs = pairwise_agreement(PAIR_QUESTIONS)
    # ann-bob on quality: (good, good), (bad, bad), (good, bad): p_o = 2/3,
    # ann good 2/3, bob good 1/3: p_e = 2/9 + 2/9 = 4/9, kappa = (2/9) / (5/9) = 0.4.
    assert pairs == [
        {
            "annotator_a": "ann",
            "annotator_b": "bob",
            "n_items": 3,
            "questions": {
                "quality": {"n_items": 3, "percent_agreement": pytest.approx(2 / 3), "cohen_kappa": pytest.approx(0.4)},
                "score": {"n_items": 1, "percent_agreement": 1.0, "cohen_kappa": None},
            },
        },
        {
            "annotator_a": "ann",
            "annotator_b": "cy",
            "n_items": 2,
            "questions": {
                "quality": {"n_items": 1, "percent_agreement": 0.0, "cohen_kappa": None},
                "score": {"n_items": 1, "percent_agreement": 0.0, "cohen_kappa": None},
            },
        },
        {
            "annotator_a": "bob",
            "annotator_b": "cy",
            "n_items": 2,
            "questions": {
                # (good, bad), (good, good): both kinds from cy, bob always good: p_e = 1 * 1/2 = 0.5,
                # p_o = 0.5, kappa 0.
                "quality": {"n_items": 2, "percent_agreement": 0.5, "cohen_kappa": pytest.approx(0.0)},
                "score": {"n_items": 0, "percent_agreement": None, "cohen_kappa": None},
            },
        },
    ]
    assert [(p["annotator_a"], p["annotator_b"]) for p in pairwise_agreement(PAIR_QUESTIONS, min_items=3)] == [
        ("ann", "bob")
    ]
    assert_json_clean(pairwise_agreement(PAIR_QUESTIONS))


def test_pair_kappa_matches_scikit_learn():
    rng = np.random.default_rng(5)
    for _ in range(20):
        x, y = rng.integers(0, 4, size=30), rng.integers(0, 4, size=30)
        y[:15] = x[:15]
        assert _kappa_from_codes(x, y, 4) == pytest.approx(cohen_kappa_score(x, y, labels=[0, 1, 2, 3]))
    assert _kappa_from_codes(np.array([1, 1]), np.array([1, 1]), 3) is None


def test_annotator_agreement_with_others():
    # ann: vs bob 3/4 agree (quality 2 of 3, score 1 of 1), vs cy 0/2 -> 3/6.
    # bob: vs ann 3/4, vs cy 1/2 -> 4/6. cy: vs ann 0/2, vs bob 1/2 -> 1/4.
    shares = annotator_agreement_with_others(PAIR_QUESTIONS)
    assert shares == {"ann": pytest.approx(0.5), "bob": pytest.approx(4 / 6), "cy": pytest.approx(0.25)}
    assert list(shares) == ["ann", "bob", "cy"]

    alone = QuestionRatings("q", "nominal", {1: {"dee": "good"}, 2: {"eve": "good", "fay": "bad"}})
    assert annotator_agreement_with_others([alone]) == {"dee": None, "eve": 0.0, "fay": 0.0}


def test_agreement_report_is_json():
    report = agreement_report(PAIR_QUESTIONS, bootstrap=30, seed=1)
    assert list(report["questions"]) == ["quality", "score"]
    assert report["questions"]["quality"] == question_agreement(PAIR_QUESTIONS[0], bootstrap=30, seed=1)
    assert report["pairs"] == pairwise_agreement(PAIR_QUESTIONS)
    assert_json_clean(report)
