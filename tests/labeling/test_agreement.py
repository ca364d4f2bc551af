"""Agreement statistics: hand-computed and published cases. Pure maths, no database."""

import json

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from labeling.agreement import (
    QuestionRatings,
    _Batch,
    _count_rows,
    _prepare,
    agreement_report,
    annotator_agreement_with_others,
    code_questions,
    pairwise_agreement,
    question_agreement,
)

STATS = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")


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
    assert result["percent_agreement"] == pytest.approx(0.90)
    assert result["items_fully_agreeing"] == pytest.approx(0.90)
    assert result["prevalence"] == {"fail": 0.5, "pass": 0.5}
    [pair] = pairwise_agreement([q])
    assert pair["questions"]["q"]["cohen_kappa"] == pytest.approx(0.80)
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
    [pair] = pairwise_agreement([q])
    assert pair["questions"]["q"]["cohen_kappa"] == pytest.approx(0.44, abs=0.005)
    assert pair["questions"]["q"]["cohen_kappa"] == pytest.approx(4 / 9)
    # AC1: pi_pass = 0.9, p_e = 2 * 0.9 * 0.1 / (2 - 1) = 0.18; (0.9 - 0.18) / 0.82 = 36 / 41 = 0.878.
    assert result["gwet_ac1"] == pytest.approx(36 / 41)


def test_gwet_ac1_and_cohen_kappa_on_a_small_two_rater_table():
    # 10 items: yes/yes 6, yes/no 1, no/yes 1, no/no 2. p_a = 0.8.
    # AC1: pi_yes = 14 / 20 = 0.7, p_e = 2 * 0.7 * 0.3 = 0.42, AC1 = 0.38 / 0.58 = 19 / 29.
    # Cohen: p_e = 0.7 * 0.7 + 0.3 * 0.3 = 0.58, kappa = 0.22 / 0.42 = 11 / 21.
    q = two_raters({("yes", "yes"): 6, ("yes", "no"): 1, ("no", "yes"): 1, ("no", "no"): 2})
    result = question_agreement(q, bootstrap=0)
    assert result["gwet_ac1"] == pytest.approx(19 / 29)
    assert pairwise_agreement([q])[0]["questions"]["q"]["cohen_kappa"] == pytest.approx(11 / 21)


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
    [pair] = pairwise_agreement([q])
    assert pair["questions"]["q"]["cohen_kappa"] == pytest.approx(4 / 13)
    assert pair["questions"]["q"]["cohen_kappa_weighted"] == pytest.approx(5 / 14)

    [nominal] = pairwise_agreement([two_raters({pair: 1 for pair in pairs})])
    assert nominal["questions"]["q"]["cohen_kappa_weighted"] is None


def test_ordinal_scale_order_comes_from_categories():
    # Same data; in "bad < ok < good" order the disagreements are one step apart, alphabetically not.
    table = {("bad", "bad"): 3, ("ok", "ok"): 3, ("good", "good"): 3, ("bad", "ok"): 2, ("ok", "good"): 2}
    ordered = question_agreement(two_raters(table, "ordinal", ["bad", "ok", "good"]), bootstrap=0)
    alphabetical = question_agreement(two_raters(table, "ordinal"), bootstrap=0)
    assert ordered["categories"] == ["bad", "ok", "good"]
    assert alphabetical["categories"] == ["bad", "good", "ok"]
    [ordered_pair] = pairwise_agreement([two_raters(table, "ordinal", ["bad", "ok", "good"])])
    [alphabetical_pair] = pairwise_agreement([two_raters(table, "ordinal")])
    ordered_q, alphabetical_q = ordered_pair["questions"]["q"], alphabetical_pair["questions"]["q"]
    assert ordered_q["cohen_kappa"] == pytest.approx(alphabetical_q["cohen_kappa"])
    assert ordered_q["cohen_kappa_weighted"] > alphabetical_q["cohen_kappa_weighted"]
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
    # ann and bob share items 1 and 2 (cat's values there are missing): (good, good), (good, bad).
    pairs = {(p["annotator_a"], p["annotator_b"]): p["questions"]["q"] for p in pairwise_agreement([q])}
    assert pairs == {
        ("ann", "bob"): {"n_items": 2, "percent_agreement": 0.5, "cohen_kappa": 0.0, "cohen_kappa_weighted": None},
        ("ann", "cat"): {"n_items": 1, "percent_agreement": 1.0, "cohen_kappa": None, "cohen_kappa_weighted": None},
    }


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
        [coded], _, _ = code_questions([QuestionRatings("q", level, ratings, [0, 1, 2, 3])])
        prep = _prepare(coded)
        batch = _Batch(_count_rows(prep), level)
        weights = rng.integers(0, 4, size=prep.n_items).astype(float)
        batch.set_fleiss_population(weights)
        got = {name: float(values[0]) for name, values in batch.compute(weights[None, :]).items()}

        # Every item has two or more ratings, so kept item k is input item k.
        repeated = [item for item, times in enumerate(weights.astype(int)) for _ in range(times)]
        units = [ratings[item] for item in repeated]
        reliability = np.full((6, len(units)), np.nan)
        for u, unit in enumerate(units):
            for rater, value in unit.items():
                reliability[rater, u] = value
        alpha = krippendorff.alpha(reliability, value_domain=[0, 1, 2, 3], level_of_measurement=level)
        assert got["krippendorff_alpha"] == pytest.approx(alpha)

        modal = [list(unit.values()) for unit in units if len(unit) == batch.fleiss_raters]
        table, _ = aggregate_raters(np.array(modal), n_cat=4)
        assert got["fleiss_kappa"] == pytest.approx(fleiss_kappa(table))

        shares = [
            sum(v * (v - 1) for v in np.bincount(list(unit.values()), minlength=4)) / (len(unit) * (len(unit) - 1))
            for unit in units
        ]
        assert got["percent_agreement"] == pytest.approx(np.mean(shares))


def test_pattern_table_gives_the_same_figures_as_one_row_per_item():
    # question_agreement works on distinct count tables with their multiplicities; the point
    # estimates must equal the per-item computation.
    rng = np.random.default_rng(2)
    ratings = {i: {int(a): int(rng.integers(0, 3)) for a in rng.choice(5, size=3, replace=False)} for i in range(200)}
    q = QuestionRatings("q", "ordinal", ratings, [0, 1, 2])
    [coded], _, _ = code_questions([q])
    prep = _prepare(coded)
    per_item = _Batch(_count_rows(prep), "ordinal")
    per_item.set_fleiss_population(np.ones(prep.n_items))
    expected = {name: float(v[0]) for name, v in per_item.compute(np.ones((1, prep.n_items))).items()}
    result = question_agreement(q, bootstrap=0)
    for name in STATS:
        assert result[name] == pytest.approx(expected[name], abs=1e-12)


def test_everyone_always_agreeing_on_one_category_gives_none_not_nan():
    ratings = {i: {"a": "good", "b": "good"} for i in range(20)}
    result = question_agreement(QuestionRatings("q", "nominal", ratings, ["good", "bad"]), bootstrap=50)
    assert result["percent_agreement"] == 1.0
    assert result["percent_agreement_ci"] == [1.0, 1.0]
    assert result["items_fully_agreeing"] == 1.0
    assert result["prevalence"] == {"good": 1.0, "bad": 0.0}
    for name in ("fleiss_kappa", "krippendorff_alpha"):
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
    assert (
        pairwise_agreement([QuestionRatings("q", "nominal", {1: {"a": "good", "b": "bad"}})])[0]["questions"]["q"][
            "cohen_kappa"
        ]
        is None
    )  # needs two items
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
    # Values seen only on items rated once are still known categories; no label counts.
    assert result["prevalence"] == {"bad": None, "good": None}
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
    assert_json_clean(result)


def test_booleans():
    q = two_raters({(True, True): 6, (True, False): 1, (False, True): 1, (False, False): 2})
    result = question_agreement(q, bootstrap=20)
    assert result["categories"] == [False, True]
    assert result["prevalence"] == {False: pytest.approx(0.3), True: pytest.approx(0.7)}
    assert pairwise_agreement([q])[0]["questions"]["q"]["cohen_kappa"] == pytest.approx(11 / 21)
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
                "quality": {
                    "n_items": 3,
                    "percent_agreement": pytest.approx(2 / 3),
                    "cohen_kappa": pytest.approx(0.4),
                    "cohen_kappa_weighted": None,
                },
                "score": {"n_items": 1, "percent_agreement": 1.0, "cohen_kappa": None, "cohen_kappa_weighted": None},
            },
        },
        {
            "annotator_a": "ann",
            "annotator_b": "cy",
            "n_items": 2,
            "questions": {
                "quality": {"n_items": 1, "percent_agreement": 0.0, "cohen_kappa": None, "cohen_kappa_weighted": None},
                "score": {"n_items": 1, "percent_agreement": 0.0, "cohen_kappa": None, "cohen_kappa_weighted": None},
            },
        },
        {
            "annotator_a": "bob",
            "annotator_b": "cy",
            "n_items": 2,
            "questions": {
                # (good, bad), (good, good): both kinds from cy, bob always good: p_e = 1 * 1/2 = 0.5,
                # p_o = 0.5, kappa 0.
                "quality": {
                    "n_items": 2,
                    "percent_agreement": 0.5,
                    "cohen_kappa": pytest.approx(0.0),
                    "cohen_kappa_weighted": None,
                },
                "score": {"n_items": 0, "percent_agreement": None, "cohen_kappa": None, "cohen_kappa_weighted": None},
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
        q = QuestionRatings(
            "q",
            "ordinal",
            {i: {"x": int(a), "y": int(b)} for i, (a, b) in enumerate(zip(x, y, strict=True))},
            [0, 1, 2, 3],
        )
        [pair] = pairwise_agreement([q])
        figures = pair["questions"]["q"]
        assert figures["cohen_kappa"] == pytest.approx(cohen_kappa_score(x, y, labels=[0, 1, 2, 3]))
        quadratic = cohen_kappa_score(x, y, labels=[0, 1, 2, 3], weights="quadratic")
        assert figures["cohen_kappa_weighted"] == pytest.approx(quadratic)
    same = QuestionRatings("q", "nominal", {1: {"x": 1, "y": 1}, 2: {"x": 1, "y": 1}}, [0, 1, 2])
    assert pairwise_agreement([same])[0]["questions"]["q"]["cohen_kappa"] is None
    # Too few shared items for a kappa: the pair is listed, its kappa is not given.
    q = two_raters({("a", "a"): 5, ("a", "b"): 2, ("b", "b"): 2})
    [pair] = pairwise_agreement([q], kappa_min_items=10)
    assert (pair["n_items"], pair["questions"]["q"]["cohen_kappa"]) == (9, None)


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


# --- Gwet's AC1 against irrCAC ------------------------------------------------------------------
# Expected values come from irrCAC, Gwet's own package (the R original, and its Python port
# `irrcac` 0.4.4 whose results were read to 10 digits; neither is a dependency). irrCAC's
# pi_q averages over every rated item, ours over items rated at least twice (see
# question_agreement), so the examples are data where the two agree, and the one published
# example with an item rated once is checked both ways.

# irrCAC `raw_5observers` (Gwet 2014): 15 units, 5 observers, scores 0-3, 3 to 5 scores a unit.
FIVE_OBSERVERS = [
    [1, 1, 2, None, 2],
    [1, 1, 0, 1, None],
    [2, 3, 3, 3, None],
    [None, 0, 0, None, 0],
    [0, 0, 0, None, 0],
    [0, 0, 0, None, 0],
    [1, 0, 2, None, 1],
    [1, None, 2, 0, None],
    [2, 2, 2, None, 2],
    [2, 1, 1, 1, None],
    [None, 1, 0, 0, None],
    [0, 0, 0, 0, None],
    [1, 2, 2, 2, None],
    [3, 3, 2, 2, 3],
    [1, 1, 1, None, 1],
]

# irrCAC `cont3x3abstractors`: two abstractors classifying 100 pregnancies (rows: abstractor 1).
ABSTRACTORS = {
    ("Ectopic", "Ectopic"): 13,
    ("AIU", "AIU"): 20,
    ("AIU", "NIU"): 7,
    ("NIU", "AIU"): 4,
    ("NIU", "NIU"): 56,
}


def test_gwet_ac1_matches_irrcac_on_five_observers():
    ratings = {unit: {o: v for o, v in enumerate(row) if v is not None} for unit, row in enumerate(FIVE_OBSERVERS)}
    result = question_agreement(QuestionRatings("q", "nominal", ratings, [0, 1, 2, 3]), bootstrap=0)
    assert result["n_items"] == 15
    # irrCAC gwet(): pa 0.6155555556, pe 0.2362707819, AC1 0.4966220549.
    assert result["percent_agreement"] == pytest.approx(0.6155555556, abs=1e-10)
    assert result["gwet_ac1"] == pytest.approx(0.4966220549, abs=1e-10)
    # irrCAC krippendorff(): 0.4805302403.
    assert result["krippendorff_alpha"] == pytest.approx(0.4805302403, abs=1e-10)


def test_gwet_ac1_matches_irrcac_on_the_abstractors_table():
    result = question_agreement(two_raters(ABSTRACTORS, categories=["Ectopic", "AIU", "NIU"]), bootstrap=0)
    # irrCAC gwet.ac1.table(cont3x3abstractors): pa 0.89, pe 0.269925, AC1 0.8493305482;
    # fleiss 0.7962396962, krippendorff 0.7972584977.
    assert result["percent_agreement"] == pytest.approx(0.89)
    assert result["gwet_ac1"] == pytest.approx(0.8493305482, abs=1e-10)
    assert result["fleiss_kappa"] == pytest.approx(0.7962396962, abs=1e-10)
    assert result["krippendorff_alpha"] == pytest.approx(0.7972584977, abs=1e-10)


def test_gwet_ac1_on_irrcacs_four_raters_example_differs_only_by_the_item_rated_once():
    result = question_agreement(from_rows(KRIPPENDORFF_ROWS), bootstrap=0)
    # irrCAC on the 11 units rated twice or more: pa 0.8181818182, AC1 0.7751517087.
    assert result["percent_agreement"] == pytest.approx(0.8181818182, abs=1e-10)
    assert result["gwet_ac1"] == pytest.approx(0.7751517087, abs=1e-10)
    # Published for all 12 units (irrCAC's README: gwet.ac1.raw(cac.raw4raters), 0.77544): the
    # same formula with unit 12's single rating added to pi_q, p_e 0.1903211806.
    p_a, p_e = 9 / 11, 0.1903211806
    assert (p_a - p_e) / (1 - p_e) == pytest.approx(0.77544, abs=5e-6)


# --- renumbering annotators --------------------------------------------------------------------


def _renumbered(questions: list[QuestionRatings], mapping: dict) -> list[QuestionRatings]:
    return [
        QuestionRatings(
            q.key, q.level, {i: {mapping[a]: v for a, v in r.items()} for i, r in q.ratings.items()}, q.categories
        )
        for q in questions
    ]


def test_queue_level_figures_do_not_depend_on_how_annotators_are_numbered():
    # 400 items, 7 annotators, 2 or 3 labels per item, a skewed nominal question and an ordinal one.
    rng = np.random.default_rng(8)
    quality, score = {}, {}
    for item in range(400):
        raters = [int(a) for a in rng.choice(7, size=int(rng.choice([2, 2, 3])), replace=False)]
        truth = "good" if rng.random() < 0.85 else "bad"
        quality[item] = {a: truth if rng.random() < 0.8 else str(rng.choice(["good", "bad"])) for a in raters}
        score[item] = {a: int(min(5, max(1, 3 + rng.integers(-1, 2)))) for a in raters}
    questions = [
        QuestionRatings("quality", "nominal", quality, ["good", "bad"]),
        QuestionRatings("score", "ordinal", score, [1, 2, 3, 4, 5]),
    ]
    swap_three = {0: 2, 1: 0, 2: 1, 3: 3, 4: 4, 5: 5, 6: 6}  # three annotators renumbered
    reverse = {a: 6 - a for a in range(7)}
    names = {a: f"user-{(a * 5) % 7}" for a in range(7)}  # other ids altogether

    before = agreement_report(questions, bootstrap=200, seed=3)
    for mapping in (swap_three, reverse, names):
        after = agreement_report(_renumbered(questions, mapping), bootstrap=200, seed=3)
        # Exactly equal, intervals included: not approximately.
        assert after["questions"] == before["questions"]
        # Pairs are renamed, their figures unchanged (kappa is symmetric in its two raters).
        by_pair = {frozenset((p["annotator_a"], p["annotator_b"])): p["questions"] for p in after["pairs"]}
        for p in before["pairs"]:
            assert by_pair[frozenset((mapping[p["annotator_a"]], mapping[p["annotator_b"]]))] == p["questions"]
        with_others = annotator_agreement_with_others(_renumbered(questions, mapping))
        assert {a: with_others[mapping[a]] for a in range(7)} == annotator_agreement_with_others(questions)

    # The test has teeth: a queue-level Cohen's kappa with "rater 1 = the smaller id" on the
    # items rated twice moves when three annotators are renumbered.
    def ordered_kappa(ratings):
        two = [sorted(r.items()) for r in ratings.values() if len(r) == 2]
        return cohen_kappa_score([t[0][1] for t in two], [t[1][1] for t in two])

    assert ordered_kappa(quality) != pytest.approx(ordered_kappa(_renumbered(questions, swap_three)[0].ratings))
