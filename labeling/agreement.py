"""Inter-annotator agreement. Pure maths: no Django, no ORM; plain data in, JSON-ready dicts out.

Input. One question's ratings are parallel arrays, one entry per rating: item, annotator and
category code (`CodedRatings`; the snapshot builds these straight from a database cursor).
`QuestionRatings` (item -> {annotator: value}) is the small-data form, coded by `code_questions`.

Population. For one question, an item counts when it has at least two ratings (a rating of None
or NaN is missing). Every queue-level figure of `question_agreement` (labels, prevalence, all
coefficients) is computed over exactly those items, so the numbers describe one set of items
and the bootstrap resamples that set. Items rated once are only counted (`n_items_rated_once`).

Order of raters. Queue-level figures are percent agreement, Fleiss' kappa, Krippendorff's
alpha and Gwet's AC1. Each is a function of the items' count tables (how many annotators put
item i in category c) alone, and is computed from those tables here, so renumbering or
reordering annotators cannot change a single bit of them. Cohen's kappa is defined for one
pair of raters, so it is reported per annotator pair (`pairwise_agreement`) and nowhere else:
a queue-level Cohen's kappa needs a "rater 1" and "rater 2" on every item, and which annotator
plays which role changed the figure.

Closed forms. `_Batch` computes every coefficient from count tables, for many item weightings
at once; the tests check it against the maintained packages (statsmodels for Fleiss,
`krippendorff`, scikit-learn for the pairs' Cohen) and Gwet's AC1 against irrCAC.

Bootstrap. Items are resampled with replacement (numpy `default_rng(seed)`); the interval is
the percentile interval. Every coefficient depends on an item only through its count table,
so items with the same table ("pattern") are interchangeable: drawing n items uniformly is
drawing pattern multiplicities from Multinomial(n, share of each pattern), the same
distribution at a cost in patterns, not items (a two-category question with two annotators
per item has three patterns however many items it has). Resamples in which a coefficient is
undefined (for example every rating in one category) are left out, so an interval is
conditional on the coefficient being defined. No interval is given when the point estimate is
undefined or rests on fewer than two items.

Kappa misleads on skewed classes (DOMAIN.md), hence `prevalence` next to it and Gwet's AC1.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Bounds the resample-weight matrix (rows x patterns, float64) to about 32 MB however many
# patterns there are; resamples are drawn in chunks of at most this many cells.
_MAX_BOOTSTRAP_CELLS = 4_000_000
_STATS = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")
_SEQUENCE_TYPES = (list, tuple, set, frozenset)
# The answer-pair table is kept for questions with at most this many categories: a 101-point
# scale would make a 10,201-cell table nobody reads.
MAX_PAIR_TABLE_CATEGORIES = 20


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
class CodedRatings:
    """One question's ratings as parallel arrays, one entry per (item, annotator) rating.

    `code` indexes `categories` (for ordinal questions, in scale order). `item` is any integer
    id; `annotator` is a position in the caller's list of annotator ids (0 .. A-1), used only to
    name pairs (a < b), never by a queue-level figure. An (item, annotator) pair appears at
    most once. Sorting by (item, annotator) beforehand saves a sort.
    """

    key: str
    level: str
    categories: list[Any]
    item: IntArray
    annotator: IntArray
    code: IntArray


def _sorted(values: Iterable[Any]) -> list[Any]:
    values = list(values)
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, repr(v)))


def normalise(value: Any) -> Any:
    """A hashable rating, or None when missing: lists become sorted tuples."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, _SEQUENCE_TYPES):
        return tuple(_sorted(value))
    return value


def question_categories(level: str, given: list[Any] | None, observed: Iterable[Any]) -> tuple[str, list[Any]]:
    """The level and category order of a question: the given categories in their order, then
    observed values outside them, sorted. Multi-choice (tuple) answers make it nominal."""
    observed = set(observed)
    multi_choice = any(isinstance(v, tuple) for v in observed)
    known = [normalise(c) for c in given or []]
    if multi_choice:
        known = [c for c in known if isinstance(c, tuple)]
    categories = list(dict.fromkeys(c for c in known if c is not None))
    categories += _sorted(observed - set(categories))
    return ("nominal" if multi_choice else level), categories


def code_questions(questions: list[QuestionRatings]) -> tuple[list[CodedRatings], list[Hashable], list[Hashable]]:
    """Code dict-form questions: items and annotators become indices shared by every question
    (annotators in sorted order, items in first-seen order). Returns the coded questions, the
    annotator ids and the item ids, by index."""
    if any(q.level not in ("nominal", "ordinal") for q in questions):
        raise ValueError("level must be 'nominal' or 'ordinal'")
    items: dict[Hashable, int] = {}
    everyone: set[Hashable] = set()
    cleaned = []
    for q in questions:
        kept = {}
        for item_id, by_annotator in q.ratings.items():
            items.setdefault(item_id, len(items))
            kept[item_id] = {a: v for a, raw in by_annotator.items() if (v := normalise(raw)) is not None}
            everyone.update(kept[item_id])
        cleaned.append(kept)
    annotators = _sorted(everyone)
    index = {a: i for i, a in enumerate(annotators)}
    coded = []
    for q, kept in zip(questions, cleaned, strict=True):
        level, categories = question_categories(q.level, q.categories, (v for r in kept.values() for v in r.values()))
        code_of = {c: i for i, c in enumerate(categories)}
        rows = [(items[i], index[a], code_of[v]) for i, r in kept.items() for a, v in r.items()]
        table = np.array(rows, dtype=np.intp).reshape(-1, 3)
        coded.append(CodedRatings(q.key, level, categories, table[:, 0], table[:, 1], table[:, 2]))
    return coded, annotators, list(items)


@dataclass(frozen=True)
class _Prepared:
    """A question's items with at least two ratings, ratings sorted by (item, annotator)."""

    key: str
    level: str
    categories: list[Any]
    n_items: int
    n_rated_once: int
    n_annotators: int
    sizes: IntArray  # ratings per kept item
    item: IntArray  # per rating: the item's id
    annotator: IntArray
    code: IntArray


def _prepare(q: CodedRatings) -> _Prepared:
    item = np.asarray(q.item, dtype=np.int64)
    annotator = np.asarray(q.annotator, dtype=np.int64)
    code = np.asarray(q.code, dtype=np.intp)
    if len(item):
        # One int64 key per rating; the snapshot hands ratings over already sorted by it, so the
        # sort (the costliest step at a million ratings) is usually skipped.
        key = (item - item.min()) * (int(annotator.max()) + 1) + annotator
        if not np.all(key[1:] > key[:-1]):
            order = np.argsort(key, kind="stable")
            item, annotator, code = item[order], annotator[order], code[order]
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]]) if len(item) else np.zeros(0, dtype=np.intp)
    sizes = np.diff(np.r_[starts, len(item)]).astype(np.intp)
    keep = np.repeat(sizes >= 2, sizes)
    return _Prepared(
        key=q.key,
        level=q.level,
        categories=list(q.categories),
        n_items=int(np.count_nonzero(sizes >= 2)),
        n_rated_once=int(np.count_nonzero(sizes == 1)),
        n_annotators=int(np.count_nonzero(np.bincount(annotator))) if len(annotator) else 0,
        sizes=sizes[sizes >= 2],
        item=item[keep],
        annotator=annotator[keep],
        code=code[keep],
    )


def _count_rows(prep: _Prepared) -> sparse.csr_matrix:
    """(items, categories): how many annotators put each kept item in each category."""
    rows = np.repeat(np.arange(prep.n_items), prep.sizes)
    shape = (prep.n_items, len(prep.categories))
    return sparse.csr_matrix((np.ones(len(rows)), (rows, prep.code)), shape=shape)


def _patterns(prep: _Prepared) -> tuple[sparse.csr_matrix, FloatArray]:
    """The distinct count tables among the kept items, and how many items have each. An
    item's table is its sorted list of codes (padded), so the key is small however many
    categories there are."""
    if prep.n_items == 0:
        return sparse.csr_matrix((0, len(prep.categories))), np.zeros(0)
    width = int(prep.sizes.max())
    starts = np.cumsum(prep.sizes) - prep.sizes
    rows = np.repeat(np.arange(prep.n_items), prep.sizes)
    position = np.arange(len(rows)) - np.repeat(starts, prep.sizes)
    order = np.lexsort((prep.code, rows))
    keys = np.full((prep.n_items, width), -1, dtype=np.int64)
    keys[rows, position] = prep.code[order]
    base = len(prep.categories) + 1
    if width * math.log2(base) < 62:
        # Each row as one integer (digits code + 1 in base Q + 1): a 1-d unique is a plain sort.
        packed = (keys + 1) @ (base ** np.arange(width, dtype=np.int64))
        _, first, _, frequency = _group(packed)
        unique = keys[first]
    else:
        unique, frequency = np.unique(keys, axis=0, return_counts=True)
    present = unique >= 0
    pattern_rows = np.repeat(np.arange(len(unique)), present.sum(axis=1))
    counts = sparse.csr_matrix(
        (np.ones(len(pattern_rows)), (pattern_rows, unique[present])), shape=(len(unique), len(prep.categories))
    )
    return counts, frequency.astype(np.float64)


class _Batch:
    """Every queue-level coefficient as a closed form of count tables, for a batch of weightings.

    Rows are count tables (one per item, or one per distinct pattern). `compute(W)` takes W of
    shape (resamples, rows), W[b, r] = how many items of row r resample b holds, and returns one
    array per statistic, NaN where it is undefined. Sums over items become products with W.
    """

    def __init__(self, counts: sparse.csr_matrix, level: str) -> None:
        counts = sparse.csr_matrix(counts, dtype=np.float64)
        counts.sum_duplicates()
        n_rows, q = counts.shape
        m = np.asarray(counts.sum(axis=1)).ravel()
        self.q = q
        self.ordinal = level == "ordinal"
        self.counts = counts
        self.m = m
        pairs = counts.copy()
        pairs.data = pairs.data * (pairs.data - 1)
        same = np.asarray(pairs.sum(axis=1)).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            # Share of agreeing ordered annotator pairs on each item.
            self.agree_share = same / (m * (m - 1))
            # Krippendorff: unit u adds (r_uc r_uk - [c = k] r_uc) / (m_u - 1) to coincidence o_ck.
            self.coincidence_diagonal = same / (m - 1)
        self.category_share = sparse.csr_matrix(counts.multiply(1 / m[:, None])) if n_rows else counts

        # Fleiss: the rows with the modal number of raters (ties: the larger number); the mode
        # is taken over items, so it is fixed by the data, not by the weights.
        self.fleiss_raters = 0
        self.fleiss_rows = np.zeros(0, dtype=np.intp)
        if self.ordinal and n_rows:
            # Sparse (rows x Q*Q): only pairs of categories present in the same row contribute.
            unit = np.repeat(np.arange(n_rows), np.diff(counts.indptr))
            c, value_of = counts.indices, counts.data
            present = np.diff(counts.indptr)
            begin = counts.indptr[:-1]
            left = np.repeat(np.arange(len(unit)), present[unit])
            right = np.repeat(begin[unit], present[unit]) + _ragged_arange(present[unit])
            u, cl, cr = unit[left], c[left], c[right]
            vl, vr = value_of[left], value_of[right]
            value = (vl * vr - np.where(cl == cr, vl, 0.0)) / (m[u] - 1)
            self.coincidence = sparse.csr_matrix((value, (u, cl * q + cr)), shape=(n_rows, q * q))

    def set_fleiss_population(self, items_per_row: FloatArray) -> None:
        if not len(self.m):
            return
        sizes = self.m.astype(np.intp)
        frequency = np.bincount(sizes, weights=items_per_row)
        best = frequency.max()
        self.fleiss_raters = int(np.flatnonzero(frequency == best).max())
        self.fleiss_rows = np.flatnonzero(sizes == self.fleiss_raters)
        self.fleiss_counts = self.counts[self.fleiss_rows]

    def compute(self, w: FloatArray) -> dict[str, FloatArray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            total = w.sum(axis=1)
            percent = (w @ self.agree_share) / total
            out = {
                "percent_agreement": percent,
                "fleiss_kappa": self._fleiss(w),
                "krippendorff_alpha": self._krippendorff(w),
                "gwet_ac1": self._gwet_ac1(w, total, percent),
            }
        return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}

    @staticmethod
    def _times(w: FloatArray, matrix: sparse.csr_matrix) -> FloatArray:
        """w @ matrix for a dense w and a sparse matrix, as a dense array."""
        return np.asarray((matrix.T @ w.T).T)

    def _gwet_ac1(self, w: FloatArray, total: FloatArray, percent: FloatArray) -> FloatArray:
        pi = self._times(w, self.category_share) / total[:, None]
        chance = (pi * (1 - pi)).sum(axis=1) / (self.q - 1) if self.q > 1 else np.zeros(len(w))
        return (percent - chance) / (1 - chance)

    def _fleiss(self, w: FloatArray) -> FloatArray:
        if not len(self.fleiss_rows):
            return np.full(len(w), np.nan)
        wf = w[:, self.fleiss_rows]
        total = wf.sum(axis=1)
        p = self._times(wf, self.fleiss_counts) / (self.fleiss_raters * total)[:, None]
        observed = (wf @ self.agree_share[self.fleiss_rows]) / total
        chance = (p * p).sum(axis=1)
        return np.where((total > 0) & (1 - chance > 1e-12), (observed - chance) / (1 - chance), np.nan)

    def _krippendorff(self, w: FloatArray) -> FloatArray:
        n = w @ self.m
        n_c = self._times(w, self.counts)
        if not self.ordinal:
            disagreement = w @ (self.m - self.coincidence_diagonal)
            expected = n * n - (n_c * n_c).sum(axis=1)
            return np.where(expected > 0, 1 - (n - 1) * disagreement / expected, np.nan)
        q = self.q
        coincidence = self._times(w, self.coincidence).reshape(-1, q, q)
        # delta_ck = (sum of n_g for g between c and k inclusive - (n_c + n_k) / 2) ** 2
        cumulative = np.concatenate((np.zeros((len(w), 1)), np.cumsum(n_c, axis=1)), axis=1)
        grid = np.arange(q)
        low, high = np.minimum.outer(grid, grid), np.maximum.outer(grid, grid)
        between = cumulative[:, high + 1] - cumulative[:, low]
        delta = (between - (n_c[:, :, None] + n_c[:, None, :]) / 2) ** 2
        observed = (coincidence * delta).sum(axis=(1, 2))
        expected = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2))
        return np.where(expected > 0, 1 - (n - 1) * observed / expected, np.nan)


def _group(values: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], IntArray, IntArray, IntArray]:
    """np.unique(values, return_index, return_inverse, return_counts) by one stable sort:
    numpy's hash-based unique took four times as long on a million int64 keys."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]] if len(values) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    inverse = np.empty(len(values), dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return ordered[starts], order[starts], inverse, np.diff(np.r_[starts, len(values)])


def _ragged_arange(lengths: IntArray) -> IntArray:
    """Concatenation of arange(k) for each k in lengths."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.intp)
    ends = np.cumsum(lengths)
    return np.arange(total) - np.repeat(ends - lengths, lengths)


def _bootstrap(batch: _Batch, frequency: FloatArray, resamples: int, seed: int) -> dict[str, FloatArray]:
    """Each statistic on `resamples` resamples of the items, drawn with replacement: pattern
    multiplicities ~ Multinomial(n_items, frequency / n_items)."""
    rng = np.random.default_rng(seed)
    n_items = int(frequency.sum())
    shares = frequency / n_items
    chunk = max(1, min(resamples, _MAX_BOOTSTRAP_CELLS // max(len(frequency), 1)))
    parts: dict[str, list[FloatArray]] = defaultdict(list)
    done = 0
    while done < resamples:
        rows = min(chunk, resamples - done)
        weights = rng.multinomial(n_items, shares, size=rows).astype(np.float64)
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


def question_agreement(
    q: QuestionRatings | CodedRatings, *, bootstrap: int = 200, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """Agreement on one question, over items with at least two ratings.

    - percent_agreement: mean over items of the share of agreeing annotator pairs on the item;
      items_fully_agreeing: share of items on which all annotators gave the same value.
    - fleiss_kappa over the items with the modal number of raters (ties: the larger number),
      since Fleiss needs a constant count.
    - krippendorff_alpha, nominal or ordinal, any raters, missing values allowed.
    - gwet_ac1: Gwet's first-order agreement coefficient (Gwet 2008; Handbook of Inter-Rater
      Reliability, ch. 2, for a varying number of raters r_i per item). With r_iq the number
      of raters who put item i in category q and Q the number of categories:

          p_a  = (1/n) * sum_i sum_q r_iq (r_iq - 1) / (r_i (r_i - 1))
          pi_q = (1/n) * sum_i r_iq / r_i
          p_e  = 1/(Q - 1) * sum_q pi_q (1 - pi_q)
          AC1  = (p_a - p_e) / (1 - p_e)

      summing over the n items with r_i >= 2. Gwet's pi_q (and irrCAC's) also averages over
      items rated once; here they are left out so every figure covers the same items, which
      is the only difference from irrCAC (the tests check both). Q counts every known
      category, used or not. p_e <= 1/Q, so AC1 is defined whenever there are items; with a
      single category the sum is 0 and p_e is taken as 0.

    Each coefficient has `<name>_ci`, a percentile bootstrap interval over resampled items.
    Undefined figures are None, never NaN. prevalence is each category's share of all labels.
    """
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    coded = code_questions([q])[0][0] if isinstance(q, QuestionRatings) else q
    return _question_agreement(_prepare(coded), bootstrap=bootstrap, seed=seed, confidence=confidence)


def _question_agreement(prep: _Prepared, *, bootstrap: int, seed: int, confidence: float) -> dict[str, Any]:
    counts, frequency = _patterns(prep)
    batch = _Batch(counts, prep.level)
    batch.set_fleiss_population(frequency)
    n_items = prep.n_items
    label_counts = np.asarray(counts.T @ frequency).ravel() if n_items else np.zeros(len(prep.categories))
    n_labels = int(np.rint(label_counts.sum()))

    result: dict[str, Any] = {
        "key": prep.key,
        "level": prep.level,
        "categories": [_json_value(c) for c in prep.categories],
        "n_items": n_items,
        "n_labels": n_labels,
        "n_annotators": prep.n_annotators,
        "n_items_rated_once": prep.n_rated_once,
        "prevalence": {
            _json_key(c): (float(label_counts[i] / n_labels) if n_labels else None)
            for i, c in enumerate(prep.categories)
        },
    }
    if n_items == 0:
        result |= {"percent_agreement": None, "items_fully_agreeing": None}
        result |= {name: None for name in _STATS[1:]}
        result |= {"n_items_fleiss": 0, "n_raters_fleiss": None}
        result |= {f"{name}_ci": None for name in _STATS}
        result |= {"bootstrap": bootstrap, "confidence": confidence}
        return _ordered(result)

    point = {name: _number(values[0]) for name, values in batch.compute(frequency[None, :]).items()}
    n_fleiss = int(frequency[batch.fleiss_rows].sum())
    population = {"percent_agreement": n_items, "fleiss_kappa": n_fleiss, "krippendorff_alpha": n_items}
    population["gwet_ac1"] = n_items
    replicates = _bootstrap(batch, frequency, bootstrap, seed) if bootstrap else {}
    result |= point
    unanimous = counts.max(axis=1).toarray().ravel() == batch.m
    result["items_fully_agreeing"] = float(frequency[unanimous].sum() / n_items)
    result |= {"n_items_fleiss": n_fleiss, "n_raters_fleiss": batch.fleiss_raters}
    for name in _STATS:
        defined = point[name] is not None and population[name] >= 2 and name in replicates
        result[f"{name}_ci"] = _interval(replicates[name], confidence) if defined else None
    result |= {"bootstrap": bootstrap, "confidence": confidence}
    return _ordered(result)


_KEY_ORDER = (
    *("key", "level", "categories", "n_items", "n_labels", "n_annotators", "n_items_rated_once", "prevalence"),
    *("percent_agreement", "percent_agreement_ci", "items_fully_agreeing"),
    *("fleiss_kappa", "fleiss_kappa_ci", "n_items_fleiss", "n_raters_fleiss"),
    *("krippendorff_alpha", "krippendorff_alpha_ci", "gwet_ac1", "gwet_ac1_ci", "bootstrap", "confidence"),
)


def _ordered(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in _KEY_ORDER}


# --- annotator pairs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Comparisons:
    """Every comparison of one question: two annotators (a < b) rating the same item."""

    a: IntArray
    b: IntArray
    first: IntArray  # a's code
    second: IntArray  # b's code
    item: IntArray


def _comparisons(prep: _Prepared) -> _Comparisons:
    """All annotator pairs within each item, vectorised: one pass per pair of positions
    (i, j) within an item, so the loop runs over at most (raters per item)^2 / 2 offsets."""
    starts = np.cumsum(prep.sizes) - prep.sizes
    parts: list[tuple[IntArray, IntArray]] = []
    width = int(prep.sizes.max()) if len(prep.sizes) else 0
    for i in range(width):
        for j in range(i + 1, width):
            has = prep.sizes > j
            parts.append((starts[has] + i, starts[has] + j))
    x = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.intp)
    y = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.intp)
    # Ratings are sorted by annotator within an item, so x's annotator is the smaller id.
    return _Comparisons(prep.annotator[x], prep.annotator[y], prep.code[x], prep.code[y], prep.item[x])


def _pair_kappas(
    pair: IntArray, first: IntArray, second: IntArray, n_pairs: int, q: int, ordinal: bool
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """Per pair: comparisons, percent agreement, Cohen's kappa and quadratic-weighted kappa
    (category positions as scores), all from marginals, never a q x q table per pair."""
    n = np.bincount(pair, minlength=n_pairs).astype(np.float64)
    agree = np.bincount(pair, weights=(first == second).astype(np.float64), minlength=n_pairs)
    rows = np.bincount(pair * q + first, minlength=n_pairs * q).reshape(n_pairs, q).astype(np.float64)
    cols = np.bincount(pair * q + second, minlength=n_pairs * q).reshape(n_pairs, q).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = agree / n
        chance = (rows * cols).sum(axis=1) / (n * n)
        kappa = np.where(1 - chance > 1e-12, (observed - chance) / (1 - chance), np.nan)
        weighted = np.full(n_pairs, np.nan)
        if ordinal:
            score = np.arange(q, dtype=np.float64)
            r1, r2 = rows @ score, rows @ score**2
            c1, c2 = cols @ score, cols @ score**2
            disagreement = np.bincount(pair, weights=((first - second) ** 2).astype(np.float64), minlength=n_pairs)
            expected = (r2 * n + c2 * n - 2 * r1 * c1) / n  # sum of w * (row x col / n)
            weighted = np.where(expected > 0, 1 - disagreement / expected, np.nan)
    return n.astype(np.intp), observed, kappa, weighted


def _pairwise(
    preps: list[_Prepared], everyone: list[int], annotator_ids: list[Hashable], min_items: int, kappa_min_items: int
) -> tuple[list[dict[str, Any]], dict[Hashable, float | None]]:
    """Pair figures and each annotator's agreement with others. `everyone`: the annotators
    (positions in annotator_ids) with any rating, rated-once items included."""
    comparisons = [_comparisons(p) for p in preps]
    n_annotators = max(everyone, default=-1) + 1
    keys = np.concatenate([c.a.astype(np.int64) * n_annotators + c.b for c in comparisons] or [np.zeros(0, np.int64)])
    pair_keys, _, pair_of, _ = _group(keys)
    n_pairs = len(pair_keys)
    bounds = np.cumsum([0] + [len(c.a) for c in comparisons])

    # Distinct items per pair, over all questions.
    all_items = np.concatenate([c.item for c in comparisons] or [np.zeros(0, np.int64)])
    span = int(all_items.max(initial=0)) + 1
    pair_items, _, _, _ = _group(pair_of.astype(np.int64) * span + all_items)
    shared = np.bincount(pair_items // span, minlength=n_pairs)

    agree_by_annotator = np.zeros(n_annotators)
    total_by_annotator = np.zeros(n_annotators)
    figures = []
    for i, (prep, c) in enumerate(zip(preps, comparisons, strict=True)):
        pair = pair_of[bounds[i] : bounds[i + 1]]
        n, observed, kappa, weighted = _pair_kappas(
            pair, c.first, c.second, n_pairs, len(prep.categories), prep.level == "ordinal"
        )
        figures.append((prep.key, n, observed, kappa, weighted))
        same = (c.first == c.second).astype(np.float64)
        for side in (c.a, c.b):
            agree_by_annotator += np.bincount(side, weights=same, minlength=n_annotators)
            total_by_annotator += np.bincount(side, minlength=n_annotators)

    out = []
    for p in np.flatnonzero(shared >= max(min_items, 1)):
        a, b = divmod(int(pair_keys[p]), n_annotators)
        by_question = {}
        for key, n, observed, kappa, weighted in figures:
            enough = n[p] >= max(kappa_min_items, 2)
            by_question[key] = {
                "n_items": int(n[p]),
                "percent_agreement": _number(observed[p]) if n[p] else None,
                "cohen_kappa": _number(kappa[p]) if enough else None,
                "cohen_kappa_weighted": _number(weighted[p]) if enough else None,
            }
        out.append(
            {
                "annotator_a": annotator_ids[a],
                "annotator_b": annotator_ids[b],
                "n_items": int(shared[p]),
                "questions": by_question,
            }
        )
    with_others = {
        annotator_ids[a]: (float(agree_by_annotator[a] / total_by_annotator[a]) if total_by_annotator[a] else None)
        for a in everyone
    }
    return out, with_others


def pairwise_agreement(
    questions: list[QuestionRatings], *, min_items: int = 1, kappa_min_items: int = 2
) -> list[dict[str, Any]]:
    """Agreement of each annotator pair that co-labeled at least `min_items` items.

    Pairs are (annotator_a < annotator_b), listed in that order; n_items counts distinct items
    both labeled on any question. Every question appears under "questions", with n_items 0 and
    None figures when the pair shares no item on it. cohen_kappa (and, for ordinal questions,
    cohen_kappa_weighted with quadratic weights on category positions) needs `kappa_min_items`
    shared items on that question, and at least two. Kappa is symmetric in its two raters, so
    a pair's figures do not depend on which of the two has the smaller id.
    """
    coded, annotators, _ = code_questions(questions)
    return _pairwise([_prepare(q) for q in coded], _everyone(coded), annotators, min_items, kappa_min_items)[0]


def annotator_agreement_with_others(questions: list[QuestionRatings]) -> dict[Hashable, float | None]:
    """Per annotator, the share of comparisons with another annotator on the same item and
    question that agree; None for an annotator who never shared an item."""
    coded, annotators, _ = code_questions(questions)
    return _pairwise([_prepare(q) for q in coded], _everyone(coded), annotators, 1, 2)[1]


def _everyone(coded: list[CodedRatings]) -> list[int]:
    if not coded:
        return []
    present = np.concatenate([np.asarray(q.annotator, dtype=np.int64) for q in coded])
    return np.flatnonzero(np.bincount(present)).tolist() if len(present) else []


def _answer_pairs(prep: _Prepared) -> dict[str, Any] | None:
    """For items with exactly two ratings, how often each unordered pair of answers occurred:
    rows[i][j] (i <= j) counts items answered {categories[i], categories[j]}; cells below the
    diagonal are 0. Unordered, so it does not depend on which annotator is "first". None when
    the question has more than MAX_PAIR_TABLE_CATEGORIES categories."""
    k = len(prep.categories)
    if k > MAX_PAIR_TABLE_CATEGORIES:
        return None
    starts = (np.cumsum(prep.sizes) - prep.sizes)[prep.sizes == 2]
    low = np.minimum(prep.code[starts], prep.code[starts + 1])
    high = np.maximum(prep.code[starts], prep.code[starts + 1])
    table = np.bincount(low * k + high, minlength=k * k).reshape(k, k)
    return {"categories": [_json_value(c) for c in prep.categories], "rows": table.tolist(), "n_items": len(starts)}


def coded_report(
    coded: list[CodedRatings],
    annotator_ids: list[Hashable],
    *,
    bootstrap: int = 200,
    seed: int = 0,
    kappa_min_items: int = 2,
) -> dict[str, Any]:
    """The whole report for coded questions: per question figures, pairs, answer-pair tables
    and each annotator's agreement with others (keyed by position in `annotator_ids`)."""
    preps = [_prepare(q) for q in coded]
    pairs, with_others = _pairwise(preps, _everyone(coded), annotator_ids, 1, kappa_min_items)
    return {
        "questions": {p.key: _question_agreement(p, bootstrap=bootstrap, seed=seed, confidence=0.95) for p in preps},
        "pairs": pairs,
        "answer_pairs": {p.key: _answer_pairs(p) for p in preps},
        "agreement_with_others": with_others,
    }


def agreement_report(questions: list[QuestionRatings], *, bootstrap: int = 200, seed: int = 0) -> dict[str, Any]:
    coded, annotators, _ = code_questions(questions)
    report = coded_report(coded, annotators, bootstrap=bootstrap, seed=seed)
    return {"questions": report["questions"], "pairs": report["pairs"]}
