"""Inter-annotator agreement. Pure maths: no Django, no ORM; plain data in, JSON-ready dicts out.

Population. For one question, an item counts when it has at least two ratings (a rating of None
or NaN is missing). Every figure of `question_agreement` (labels, prevalence, all coefficients)
is computed over exactly those items, so the numbers describe one set of items and the bootstrap
resamples that set. Items rated once are only counted (`n_items_rated_once`).

Point estimates come from maintained implementations: Cohen's kappa from scikit-learn, Fleiss'
kappa from statsmodels, Krippendorff's alpha from the `krippendorff` package. Percent agreement
and Gwet's AC1 have no maintained implementation for varying rater counts, so they are written
here. Bootstrap intervals need every coefficient 200 times on resampled items; calling the
packages that often is too slow, so `_Batch` recomputes each coefficient in closed form from
per-item count tables, for many resamples at once. The tests check `_Batch` against the packages.

Bootstrap: items are resampled with replacement (numpy `default_rng(seed)`), a resample is a
vector of multiplicities per item, and the interval is the percentile interval. Resamples in
which a coefficient is undefined (for example every rating in one category) are left out, so an
interval is conditional on the coefficient being defined. No interval is given when the point
estimate is undefined or rests on fewer than two items.

Kappa misleads on skewed classes (DOMAIN.md), hence `prevalence` next to it and Gwet's AC1.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Bounds the resample-weight matrix (rows x items, float64) to about 32 MB however many items
# there are; resamples are drawn in chunks of at most this many cells.
_MAX_BOOTSTRAP_CELLS = 4_000_000
_STATS = ("percent_agreement", "cohen_kappa", "cohen_kappa_weighted", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")
_SEQUENCE_TYPES = (list, tuple, set, frozenset)


@dataclass(frozen=True)
class QuestionRatings:
    """One question's ratings: item_id -> {annotator_id: value}.

    `categories` lists the known options in order (the scale order for ordinal ratings); values
    outside it are appended in sorted order. Without it, categories are the observed values,
    sorted. Multi-choice answers (lists) become sorted tuples and are always treated as nominal;
    for them only tuple-valued `categories` are kept (plain option names are not answers).
    """

    key: str
    level: Literal["nominal", "ordinal"]
    ratings: dict[Hashable, dict[Hashable, Hashable]]
    categories: list[Hashable] | None = None


@dataclass(frozen=True)
class _Prepared:
    level: str
    categories: list[Hashable]
    annotators: list[Hashable]  # sorted; position = annotator index
    item_ids: list[Hashable]  # items with >= 2 ratings, input order
    n_rated_once: int
    counts: IntArray  # (items, categories): how many annotators chose each category
    # One row per rating, sorted by (item, annotator index).
    rating_item: IntArray
    rating_annotator: IntArray
    rating_code: IntArray


def _sorted(values: Iterable[Any]) -> list[Any]:
    values = list(values)
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, repr(v)))


def _normalise(value: Any) -> Any:
    """A hashable rating, or None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, _SEQUENCE_TYPES):
        return tuple(_sorted(value))
    return value


def _prepare(q: QuestionRatings) -> _Prepared:
    if q.level not in ("nominal", "ordinal"):
        raise ValueError(f"level must be 'nominal' or 'ordinal', not {q.level!r}")
    kept: list[tuple[Hashable, dict[Hashable, Any]]] = []
    n_rated_once = 0
    for item_id, by_annotator in q.ratings.items():
        values = {a: v for a, raw in by_annotator.items() if (v := _normalise(raw)) is not None}
        if len(values) >= 2:
            kept.append((item_id, values))
        elif len(values) == 1:
            n_rated_once += 1

    observed = {v for _, values in kept for v in values.values()}
    multi_choice = any(isinstance(v, tuple) for v in observed)
    given = [_normalise(c) for c in q.categories or []]
    if multi_choice:
        given = [c for c in given if isinstance(c, tuple)]
    categories = list(dict.fromkeys(c for c in given if c is not None))
    known = set(categories)
    categories += _sorted(observed - known)
    code_of = {c: i for i, c in enumerate(categories)}

    annotators = _sorted({a for _, values in kept for a in values})
    annotator_index = {a: i for i, a in enumerate(annotators)}
    rows = [(i, annotator_index[a], code_of[v]) for i, (_, values) in enumerate(kept) for a, v in values.items()]
    table = np.array(rows, dtype=np.intp).reshape(-1, 3)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    counts = np.zeros((len(kept), len(categories)), dtype=np.intp)
    np.add.at(counts, (table[:, 0], table[:, 2]), 1)
    return _Prepared(
        level="nominal" if multi_choice else q.level,
        categories=categories,
        annotators=annotators,
        item_ids=[item_id for item_id, _ in kept],
        n_rated_once=n_rated_once,
        counts=counts,
        rating_item=table[:, 0],
        rating_annotator=table[:, 1],
        rating_code=table[:, 2],
    )


class _Batch:
    """Every coefficient as a closed form of per-item counts, for a batch of item weightings.

    `compute(W)` takes W of shape (resamples, items), W[b, i] = how often item i was drawn in
    resample b (all ones = the observed data), and returns one array per statistic, NaN where
    the statistic is undefined. All sums over items become matrix products with W.
    """

    def __init__(self, prep: _Prepared) -> None:
        counts = prep.counts.astype(np.float64)
        n_items, q = counts.shape
        m = counts.sum(axis=1)
        self.q = q
        self.ordinal = prep.level == "ordinal"
        self.counts = counts
        self.m = m
        # Share of agreeing ordered annotator pairs on each item.
        self.agree_share = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))
        self.category_share = counts / m[:, None]

        # Cohen: items with exactly two ratings; rater 1 is the smaller annotator id.
        starts = np.concatenate(([0], np.cumsum(m.astype(np.intp))[:-1]))
        self.cohen_items = np.flatnonzero(m == 2)
        self.cohen_first = first = prep.rating_code[starts[self.cohen_items]]
        self.cohen_second = second = prep.rating_code[starts[self.cohen_items] + 1]
        self.cohen_cells = sparse.csr_matrix(
            (np.ones(len(first)), (np.arange(len(first)), first * q + second)), shape=(len(first), q * q)
        )
        grid = np.arange(q)
        self.unweighted = (grid[:, None] != grid[None, :]).astype(np.float64)
        self.quadratic = ((grid[:, None] - grid[None, :]) ** 2).astype(np.float64)

        # Fleiss: the items with the modal number of raters (ties: the larger number).
        self.fleiss_raters = 0
        self.fleiss_items = np.zeros(0, dtype=np.intp)
        if n_items:
            sizes, frequency = np.unique(m.astype(np.intp), return_counts=True)
            self.fleiss_raters = int(max(zip(frequency, sizes, strict=True))[1])
            self.fleiss_items = np.flatnonzero(m == self.fleiss_raters)
        self.fleiss_starts = starts[self.fleiss_items]

        # Krippendorff: unit u adds (r_uc r_uk - [c = k] r_uc) / (m_u - 1) to coincidence o_ck.
        self.coincidence_diagonal = (counts * (counts - 1)).sum(axis=1) / (m - 1)
        if self.ordinal:
            # Sparse (units x Q*Q): only pairs of categories present in the same unit contribute.
            unit, c = np.nonzero(counts)  # row-major, so grouped by unit
            present = np.bincount(unit, minlength=n_items)
            begin = np.concatenate(([0], np.cumsum(present)[:-1]))
            left = np.repeat(np.arange(len(unit)), present[unit])
            right = np.repeat(begin[unit], present[unit]) + _ragged_arange(present[unit])
            u, cl, cr = unit[left], c[left], c[right]
            value = (counts[u, cl] * counts[u, cr] - np.where(cl == cr, counts[u, cl], 0.0)) / (m[u] - 1)
            self.coincidence = sparse.csr_matrix((value, (u, cl * q + cr)), shape=(n_items, q * q))

    def compute(self, w: FloatArray) -> dict[str, FloatArray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            total = w.sum(axis=1)
            percent = (w @ self.agree_share) / total
            out = {
                "percent_agreement": percent,
                "gwet_ac1": self._gwet_ac1(w, total, percent),
                "krippendorff_alpha": self._krippendorff(w),
                "fleiss_kappa": self._fleiss(w),
            }
            out["cohen_kappa"], out["cohen_kappa_weighted"] = self._cohen(w)
        return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}

    def _gwet_ac1(self, w: FloatArray, total: FloatArray, percent: FloatArray) -> FloatArray:
        pi = (w @ self.category_share) / total[:, None]
        chance = (pi * (1 - pi)).sum(axis=1) / (self.q - 1) if self.q > 1 else np.zeros(len(w))
        return (percent - chance) / (1 - chance)

    def _cohen(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        q = self.q
        confusion = np.asarray(w[:, self.cohen_items] @ self.cohen_cells).reshape(-1, q, q)
        n = confusion.sum(axis=(1, 2))
        expected = confusion.sum(axis=2)[:, :, None] * confusion.sum(axis=1)[:, None, :] / n[:, None, None]
        kappas = []
        for weights in (self.unweighted, self.quadratic):
            observed = (weights * confusion).sum(axis=(1, 2))
            chance = (weights * expected).sum(axis=(1, 2))
            kappas.append(np.where((n >= 2) & (chance > 0), 1 - observed / chance, np.nan))
        weighted = kappas[1] if self.ordinal else np.full(len(w), np.nan)
        return kappas[0], weighted

    def _fleiss(self, w: FloatArray) -> FloatArray:
        wf = w[:, self.fleiss_items]
        total = wf.sum(axis=1)
        p = (wf @ self.counts[self.fleiss_items]) / (self.fleiss_raters * total)[:, None]
        observed = (wf @ self.agree_share[self.fleiss_items]) / total
        chance = (p * p).sum(axis=1)
        return np.where((total > 0) & (1 - chance > 1e-12), (observed - chance) / (1 - chance), np.nan)

    def _krippendorff(self, w: FloatArray) -> FloatArray:
        n = w @ self.m
        n_c = w @ self.counts
        if not self.ordinal:
            disagreement = w @ (self.m - self.coincidence_diagonal)
            expected = n * n - (n_c * n_c).sum(axis=1)
            return np.where(expected > 0, 1 - (n - 1) * disagreement / expected, np.nan)
        q = self.q
        coincidence = np.asarray(w @ self.coincidence).reshape(-1, q, q)
        # delta_ck = (sum of n_g for g between c and k inclusive - (n_c + n_k) / 2) ** 2
        cumulative = np.concatenate((np.zeros((len(w), 1)), np.cumsum(n_c, axis=1)), axis=1)
        grid = np.arange(q)
        low, high = np.minimum.outer(grid, grid), np.maximum.outer(grid, grid)
        between = cumulative[:, high + 1] - cumulative[:, low]
        delta = (between - (n_c[:, :, None] + n_c[:, None, :]) / 2) ** 2
        observed = (coincidence * delta).sum(axis=(1, 2))
        expected = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2))
        return np.where(expected > 0, 1 - (n - 1) * observed / expected, np.nan)


def _ragged_arange(lengths: IntArray) -> IntArray:
    """Concatenation of arange(k) for each k in lengths."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.intp)
    ends = np.cumsum(lengths)
    return np.arange(total) - np.repeat(ends - lengths, lengths)


def _bootstrap(batch: _Batch, n_items: int, resamples: int, seed: int) -> dict[str, FloatArray]:
    """Each statistic on `resamples` resamples of the items, drawn with replacement."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _MAX_BOOTSTRAP_CELLS // max(n_items, 1)))
    parts: dict[str, list[FloatArray]] = defaultdict(list)
    done = 0
    while done < resamples:
        rows = min(chunk, resamples - done)
        drawn = rng.integers(0, n_items, size=(rows, n_items))
        drawn += (np.arange(rows) * n_items)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=rows * n_items).reshape(rows, n_items).astype(np.float64)
        for name, values in batch.compute(weights).items():
            parts[name].append(values)
        done += rows
    return {name: np.concatenate(values) for name, values in parts.items()}


def _interval(replicates: FloatArray, confidence: float) -> list[float] | None:
    defined = replicates[np.isfinite(replicates)]
    if not len(defined):
        return None
    tail = (1 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    return [float(low), float(high)]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_key(category: Hashable) -> Any:
    """A category as a JSON object key: multi-choice tuples become their JSON list text."""
    return json.dumps(list(category)) if isinstance(category, tuple) else category


def _json_value(category: Hashable) -> Any:
    return list(category) if isinstance(category, tuple) else category


def _krippendorff_alpha(prep: _Prepared) -> float | None:
    import krippendorff

    if np.count_nonzero(prep.counts.sum(axis=0)) < 2:
        return None  # one value used: expected disagreement is zero
    reliability = np.full((len(prep.annotators), len(prep.item_ids)), np.nan)
    reliability[prep.rating_annotator, prep.rating_item] = prep.rating_code
    return _number(
        krippendorff.alpha(
            reliability_data=reliability,
            value_domain=np.arange(len(prep.categories), dtype=np.float64),
            level_of_measurement=prep.level,
        )
    )


def _cohen_kappa(first: IntArray, second: IntArray, n_categories: int, weights: str | None) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(first) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined kappa is reported as None, not warned about
        value = cohen_kappa_score(
            first, second, labels=list(range(n_categories)), weights=weights, replace_undefined_by=np.nan
        )
    return _number(value)


def _fleiss_kappa(prep: _Prepared, batch: _Batch) -> float | None:
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    if not len(batch.fleiss_items):
        return None
    positions = batch.fleiss_starts[:, None] + np.arange(batch.fleiss_raters)[None, :]
    table, _ = aggregate_raters(prep.rating_code[positions], n_cat=len(prep.categories))
    shares = table.sum(axis=0) / table.sum()
    if 1 - (shares * shares).sum() <= 1e-12:
        return None  # every rating in one category: chance agreement is 1
    return _number(fleiss_kappa(table, method="fleiss"))


def question_agreement(
    q: QuestionRatings, *, bootstrap: int = 200, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """Agreement on one question, over items with at least two ratings.

    - percent_agreement: mean over items of the share of agreeing annotator pairs on the item;
      items_fully_agreeing: share of items on which all annotators gave the same value.
    - cohen_kappa (scikit-learn, unweighted) over items with exactly two ratings, rater 1 being
      the smaller annotator id; cohen_kappa_weighted (quadratic weights on category positions)
      for ordinal questions only.
    - fleiss_kappa (statsmodels) over the items with the modal number of raters (ties: the
      larger number), since Fleiss needs a constant count.
    - krippendorff_alpha (`krippendorff` package), nominal or ordinal, any raters, missing
      values allowed.
    - gwet_ac1: Gwet's first-order agreement coefficient (Gwet 2008; Handbook of Inter-Rater
      Reliability, ch. 2, for a varying number of raters r_i per item). With r_iq the number
      of raters who put item i in category q and Q the number of categories:

          p_a  = (1/n) * sum_i sum_q r_iq (r_iq - 1) / (r_i (r_i - 1))
          pi_q = (1/n) * sum_i r_iq / r_i
          p_e  = 1/(Q - 1) * sum_q pi_q (1 - pi_q)
          AC1  = (p_a - p_e) / (1 - p_e)

      summing over the n items with r_i >= 2 (Gwet's pi_q also averages over items rated once;
      here they are left out so every figure covers the same items). Q counts every known
      category, used or not. p_e <= 1/Q, so AC1 is defined whenever there are items; with a
      single category the sum is 0 and p_e is taken as 0.

    Each coefficient has `<name>_ci`, a percentile bootstrap interval over resampled items.
    Undefined figures are None, never NaN. prevalence is each category's share of all labels.
    """
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    prep = _prepare(q)
    batch = _Batch(prep)
    n_items = len(prep.item_ids)
    n_labels = int(prep.counts.sum())
    label_counts = prep.counts.sum(axis=0)

    result: dict[str, Any] = {
        "key": q.key,
        "level": prep.level,
        "categories": [_json_value(c) for c in prep.categories],
        "n_items": n_items,
        "n_labels": n_labels,
        "n_annotators": len(prep.annotators),
        "n_items_rated_once": prep.n_rated_once,
        "prevalence": {
            _json_key(c): (float(label_counts[i] / n_labels) if n_labels else None)
            for i, c in enumerate(prep.categories)
        },
    }
    if n_items == 0:
        result |= {"percent_agreement": None, "items_fully_agreeing": None}
        result |= {name: None for name in _STATS[1:]}
        result |= {"n_items_cohen": 0, "n_items_fleiss": 0, "n_raters_fleiss": None}
        result |= {f"{name}_ci": None for name in _STATS}
        result |= {"bootstrap": bootstrap, "confidence": confidence}
        return _ordered(result)

    own = {name: _number(values[0]) for name, values in batch.compute(np.ones((1, n_items))).items()}
    cohen_first, cohen_second = batch.cohen_first, batch.cohen_second
    n_categories = len(prep.categories)
    point = {
        "percent_agreement": own["percent_agreement"],
        "cohen_kappa": _cohen_kappa(cohen_first, cohen_second, n_categories, None),
        "cohen_kappa_weighted": (
            _cohen_kappa(cohen_first, cohen_second, n_categories, "quadratic") if prep.level == "ordinal" else None
        ),
        "fleiss_kappa": _fleiss_kappa(prep, batch),
        "krippendorff_alpha": _krippendorff_alpha(prep),
        "gwet_ac1": own["gwet_ac1"],
    }
    population = {
        "percent_agreement": n_items,
        "cohen_kappa": len(batch.cohen_items),
        "cohen_kappa_weighted": len(batch.cohen_items),
        "fleiss_kappa": len(batch.fleiss_items),
        "krippendorff_alpha": n_items,
        "gwet_ac1": n_items,
    }
    replicates = _bootstrap(batch, n_items, bootstrap, seed) if bootstrap else {}
    result |= point
    result["items_fully_agreeing"] = float(np.mean(prep.counts.max(axis=1) == prep.counts.sum(axis=1)))
    result |= {
        "n_items_cohen": len(batch.cohen_items),
        "n_items_fleiss": len(batch.fleiss_items),
        "n_raters_fleiss": batch.fleiss_raters,
    }
    for name in _STATS:
        defined = point[name] is not None and population[name] >= 2 and name in replicates
        result[f"{name}_ci"] = _interval(replicates[name], confidence) if defined else None
    result |= {"bootstrap": bootstrap, "confidence": confidence}
    return _ordered(result)


_KEY_ORDER = (
    *("key", "level", "categories", "n_items", "n_labels", "n_annotators", "n_items_rated_once", "prevalence"),
    *("percent_agreement", "percent_agreement_ci", "items_fully_agreeing"),
    *("cohen_kappa", "cohen_kappa_ci", "cohen_kappa_weighted", "cohen_kappa_weighted_ci", "n_items_cohen"),
    *("fleiss_kappa", "fleiss_kappa_ci", "n_items_fleiss", "n_raters_fleiss"),
    *("krippendorff_alpha", "krippendorff_alpha_ci", "gwet_ac1", "gwet_ac1_ci", "bootstrap", "confidence"),
)


def _ordered(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in _KEY_ORDER}


def _kappa_from_codes(first: IntArray, second: IntArray, n_categories: int) -> float | None:
    """Unweighted Cohen's kappa; the same figure as scikit-learn, without its per-call cost."""
    n = len(first)
    if n < 2:
        return None
    confusion = np.bincount(first * n_categories + second, minlength=n_categories**2).reshape(
        n_categories, n_categories
    )
    observed = np.trace(confusion) / n
    chance = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (n * n)
    return None if 1 - chance <= 1e-12 else _number((observed - chance) / (1 - chance))


@dataclass
class _PairQuestion:
    first: list[int]
    second: list[int]
    items: list[Hashable]


def _comparisons(
    questions: list[QuestionRatings],
) -> tuple[dict[tuple[Hashable, Hashable], dict[str, _PairQuestion]], dict[str, int], list[Hashable]]:
    """For each annotator pair (a < b) and question, the codes both gave on shared items."""
    pairs: dict[tuple[Hashable, Hashable], dict[str, _PairQuestion]] = defaultdict(dict)
    n_categories: dict[str, int] = {}
    everyone: set[Hashable] = set()
    for q in questions:
        prep = _prepare(q)
        n_categories[q.key] = len(prep.categories)
        everyone.update(a for values in q.ratings.values() for a, v in values.items() if _normalise(v) is not None)
        sizes = prep.counts.sum(axis=1)
        starts = np.cumsum(sizes) - sizes  # right for zero items too
        annotator = prep.rating_annotator.tolist()
        code = prep.rating_code.tolist()
        for i, (start, size) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
            for x in range(start, start + size):
                for y in range(x + 1, start + size):
                    pair = (prep.annotators[annotator[x]], prep.annotators[annotator[y]])
                    entry = pairs[pair].get(q.key)
                    if entry is None:
                        entry = pairs[pair][q.key] = _PairQuestion([], [], [])
                    entry.first.append(code[x])
                    entry.second.append(code[y])
                    entry.items.append(prep.item_ids[i])
    return pairs, n_categories, _sorted(everyone)


def pairwise_agreement(questions: list[QuestionRatings], *, min_items: int = 1) -> list[dict[str, Any]]:
    """Agreement of each annotator pair that co-labeled at least `min_items` items.

    Pairs are (annotator_a < annotator_b), listed in that order; n_items counts distinct items
    both labeled on any question. Every question appears under "questions", with n_items 0 and
    None figures when the pair shares no item on it. cohen_kappa needs two shared items.
    """
    pairs, n_categories, _ = _comparisons(questions)
    out = []
    for a, b in _sorted(pairs):
        by_question = pairs[(a, b)]
        shared = {item for entry in by_question.values() for item in entry.items}
        if len(shared) < min_items:
            continue
        figures = {}
        for q in questions:
            entry = by_question.get(q.key)
            if entry is None:
                figures[q.key] = {"n_items": 0, "percent_agreement": None, "cohen_kappa": None}
                continue
            first, second = np.array(entry.first, dtype=np.intp), np.array(entry.second, dtype=np.intp)
            figures[q.key] = {
                "n_items": len(first),
                "percent_agreement": float(np.mean(first == second)),
                "cohen_kappa": _kappa_from_codes(first, second, n_categories[q.key]),
            }
        out.append({"annotator_a": a, "annotator_b": b, "n_items": len(shared), "questions": figures})
    return out


def annotator_agreement_with_others(questions: list[QuestionRatings]) -> dict[Hashable, float | None]:
    """Per annotator, the share of comparisons with another annotator on the same item and
    question that agree; None for an annotator who never shared an item."""
    pairs, _, everyone = _comparisons(questions)
    agree: dict[Hashable, int] = defaultdict(int)
    total: dict[Hashable, int] = defaultdict(int)
    for (a, b), by_question in pairs.items():
        for entry in by_question.values():
            same = sum(x == y for x, y in zip(entry.first, entry.second, strict=True))
            for annotator in (a, b):
                agree[annotator] += same
                total[annotator] += len(entry.first)
    return {a: (agree[a] / total[a] if total[a] else None) for a in everyone}


def agreement_report(questions: list[QuestionRatings], *, bootstrap: int = 200, seed: int = 0) -> dict[str, Any]:
    return {
        "questions": {q.key: question_agreement(q, bootstrap=bootstrap, seed=seed) for q in questions},
        "pairs": pairwise_agreement(questions),
    }
