"""Judge calibration statistics. Pure maths: no Django, no ORM; numpy arrays in, dataclasses out.

Every figure is an `Estimate`: a value (None when undefined), a 95% interval (None when it
cannot be given) and the number of items it rests on. `jsonable` turns results into JSON.

Weights. Items may carry weights, normally Horvitz-Thompson weights 1/p from the inclusion
probability p that sampling recorded (`horvitz_thompson_weights`), so that a non-uniform sample
(uncertainty sampling, a budget that changed) still estimates the whole traffic. Weighted means
are Hajek ratios sum(w y) / sum(w); pairs of items (Kendall) weigh w_i w_j.

Proportions (accuracy, TPR, TNR, prevalence, a reliability bin, the human-only pass rate):
Wilson score intervals. Weighted, the Wilson interval is taken at an effective sample size,
n_eff = p (1 - p) / v, where v = sum(w^2 (y - p)^2) / sum(w)^2 is the linearised variance of
the Hajek ratio (Korn and Graubard's effective n). When the weights are unrelated to the outcome
this is Kish's n_eff = sum(w)^2 / sum(w^2); unlike Kish it stays right when they are related,
which uncertainty sampling makes them (low judge confidence is both sampled more and wrong more).
Kish's figure is used where v is 0 (p is 0 or 1), and n_eff never exceeds the item count.

Everything else (Cohen's kappa, Spearman, Kendall, MAE, ECE, Brier, the Rogan-Gladen rate) gets
a seeded percentile bootstrap over items. Items that share every value a statistic reads (a
cell of the 2x2 table, a weight) are interchangeable, so drawing n items with replacement is
drawing the multiplicities of these "patterns" from Multinomial(n, share of each pattern): the
cost is resamples x patterns, not resamples x items (a million unweighted binary pairs are four
patterns). From `POISSON_FROM` items on, each pattern's multiplicity is Poisson(its count)
instead (the Poisson bootstrap), twice as fast to draw and indistinguishable at that size.
Weights are grouped on a log scale (1% steps) for the resampling only, and where values are
continuous (confidences, scores) they are grouped finely (confidence to 0.001, scores to at most
64 x 64 quantile cells); when that still leaves more than `MAX_PATTERNS` patterns the grouping
coarsens step by step. Point estimates always use the exact values; the
replicates are shifted by (exact point - point on the grouped patterns), a shift that is 0 where
nothing was grouped. Resamples on which a statistic is undefined are left out (the interval is
conditional on it being defined); no interval rests on fewer than two items.

Binary agreement (`binary_agreement`): pass is the positive class, the human is the truth.
tp = judge pass and human pass, fp = judge pass and human fail, and so on; accuracy =
(tp + tn) / W; TPR = tp / (tp + fn); TNR = tn / (tn + fp); prevalence = (tp + fn) / W; kappa =
(p_o - p_e) / (1 - p_e) with p_e from the two marginals, None when p_e = 1. Kappa misleads on
skewed classes (90% raw agreement is kappa 0.80 at 50% prevalence and 0.44 at 90%), so TPR, TNR
and prevalence always come with it.

Scores (`score_agreement`): Spearman is the weighted Pearson correlation of weighted mid-ranks
(a level's rank is the weight below it plus half its own); Kendall is tau-b over item pairs
weighted w_i w_j, computed from the judge x human contingency table by cumulative sums (exact;
SciPy's O(n log n) routine for large unweighted tables; a weighted table above `_MAX_TABLE`
cells is first grouped into quantile levels, an approximation only reached when both sides take
over a thousand distinct values). MAE is the weighted mean absolute difference.

Confidence (`confidence_calibration`): `bins` equal-width bins on [0, 1] (the last closed).
ECE = sum over bins of (W_b / W) |accuracy_b - mean confidence_b| = sum_b |sum_{i in b}
w_i (y_i - c_i)| / W; Brier = sum w (c - y)^2 / W. ECE is biased upward on small samples,
and so is its bootstrap; read it with its n.

True pass rate (`pass_rate_estimates`), from the judge's verdicts on all N judged items and a
labelled sample of n of them:
- judge_only: the judge's pass rate, Wilson on N (the rate of the judge, not of the agent).
- rogan_gladen: (q + TNR - 1) / (TPR + TNR - 1), clipped to [0, 1], with q the judge's rate
  and TPR, TNR from the labelled pairs; undefined when TPR + TNR <= 1. Bootstrap: labelled
  pairs resampled, q redrawn as Binomial(N, q) / N.
- human_only: the Hajek (HT-weighted) mean of the human verdicts, Wilson at n_eff.
- ppi: PPI++ (Angelopoulos, Duchi and Zrnic 2023). theta = lambda mean(f_all) +
  sum w (y - lambda f) / sum w, var = lambda^2 var(f_all) / N + sum w^2 (r - R)^2 / (sum w)^2
  with r = y - lambda f and R its weighted mean, a normal interval clipped to [0, 1]. lambda is
  ppi-python's power-tuning estimate (`_calc_lam_glm`: cov(w y, w f) / ((1 + n/N) var f),
  clipped to [0, 1]), so unweighted figures equal `ppi_py.ppi_mean_ci`; weighted, the point
  equals ppi-python's and the variance is the Hajek linearisation above (ppi-python centres the
  weighted terms, not the residuals). Under `CROSS_FIT_BELOW` labelled items lambda is cross-
  fitted: items fall in `CROSS_FIT_FOLDS` seeded folds and each fold's residuals use the lambda
  estimated without it, so lambda never tunes itself to the residuals it weighs (the small-n
  over-confidence of plug-in lambda). Fall-back: when the whole-sample lambda is under
  `PPI_MIN_LAMBDA` the judge barely predicts the human (lambda is the slope of human on judge
  scaled by the variance the judge can remove; at 0 PPI++ is the human-only mean), or with
  fewer than `PPI_MIN_LABELLED` labels, "ppi" is the human_only estimate and method_used says so.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse, stats

from labeling import sampling

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

CONFIDENCE = 0.95
# Bootstrap resamples are drawn in chunks of at most this many (resample x pattern) cells, which
# bounds the multiplicity matrix and its products to a few tens of MB whatever the data.
_MAX_BOOTSTRAP_CELLS = 2_000_000
# Multinomial draws cost about 85 ns per (resample x pattern), Poisson draws about 50: 4,096
# patterns x 1,000 resamples is 0.2 to 0.35 s. Above it the grouping for the resampling coarsens.
MAX_PATTERNS = 4096
# Log-weight step of each grouping level (1% relative, then coarser; inf = one level, the mean).
_WEIGHT_STEPS = (0.01, 0.05, 0.2, 1.0, math.inf)
# Confidence grid of each grouping level (0.001 keeps judges' two- and three-decimal values exact).
_CONFIDENCE_STEPS = (0.001, 0.001, 0.005, 0.02, 0.02)
# Judge x human cells per bootstrap table at each level (Kendall reads the whole table per resample).
_SCORE_CELLS = (4096, 1024, 256, 256, 64)
# Cells of an exact weighted Kendall table (8 MB of float64).
_MAX_TABLE = 1_000_000
_MAX_BOOTSTRAP = 100_000

# Items from which resamples are Poisson rather than multinomial draws (see _resamples).
POISSON_FROM = 10_000

PPI_MIN_LAMBDA = 0.1
PPI_MIN_LABELLED = 10
CROSS_FIT_BELOW = 100
CROSS_FIT_FOLDS = 5


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    value: float | None
    interval: Interval | None
    n: int


def jsonable(value: Any) -> Any:
    """Results as plain JSON data: dataclasses become dicts, numpy scalars Python numbers, dates
    ISO text, and a non-finite float None."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime.date):  # datetime is a date too
        return value.isoformat()
    return value


# --- input ------------------------------------------------------------------------------------


def _one_dimensional(values: Any, name: str, n: int | None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if n is not None and len(array) != n:
        raise ValueError(f"{name} must have {n} entries, not {len(array)}")
    return array


def _bools(values: Any, name: str, n: int | None = None) -> BoolArray:
    array = _one_dimensional(values, name, n)
    if array.dtype == np.bool_:
        return array
    if array.size and (array.dtype.kind not in "iuf" or not np.all((array == 0) | (array == 1))):
        raise ValueError(f"{name} must be booleans (or 0/1)")
    return array.astype(np.bool_)


def _floats(values: Any, name: str, n: int | None = None) -> FloatArray:
    array = _one_dimensional(values, name, n)
    if array.size and array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numbers")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def _weights(values: Any, n: int) -> FloatArray | None:
    if values is None:
        return None
    w = _floats(values, "weights", n)
    if np.any(w <= 0):
        raise ValueError("weights must be positive")
    return w


def _check_bootstrap(bootstrap: int) -> None:
    if not 0 <= bootstrap <= _MAX_BOOTSTRAP:
        raise ValueError(f"bootstrap must be between 0 and {_MAX_BOOTSTRAP}")


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return float(stats.norm.ppf(0.5 + confidence / 2))


# --- proportions ------------------------------------------------------------------------------


def _wilson_bounds(successes: FloatArray, n: FloatArray, z: float) -> tuple[FloatArray, FloatArray]:
    """Vectorised Wilson score bounds; n = 0 gives [0, 1]."""
    successes = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.clip(successes / n, 0.0, 1.0)
        z2 = z * z
        denominator = 1 + z2 / n
        centre = (p + z2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = np.where(successes <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(successes >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return np.where(n > 0, low, 0.0), np.where(n > 0, high, 1.0)


def wilson(successes: float, n: float, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval for successes out of n. n may be a (weighted) effective sample size;
    n = 0 gives [0, 1] (no information)."""
    if not (math.isfinite(successes) and math.isfinite(n)) or n < 0:
        raise ValueError("n must be a finite number >= 0")
    if not -1e-9 * max(n, 1) <= successes <= n * (1 + 1e-9) + 1e-9:
        raise ValueError("successes must be between 0 and n")
    low, high = _wilson_bounds(np.array([successes]), np.array([n]), _z(confidence))
    return Interval(float(low[0]), float(high[0]))


def _proportions(group: IntArray, y: BoolArray, w: FloatArray | None, groups: int, z: float) -> list[Estimate]:
    """The (weighted) share of y in each group, each with a Wilson interval at its n_eff."""
    counts = np.bincount(group, minlength=groups)
    yf = y.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if w is None:
            value = np.bincount(group, weights=yf, minlength=groups) / counts
            n_eff = counts.astype(np.float64)
        else:
            total = np.bincount(group, weights=w, minlength=groups)
            value = np.bincount(group, weights=w * yf, minlength=groups) / total
            w2 = w * w
            sum_w2 = np.bincount(group, weights=w2, minlength=groups)
            # sum w^2 (y - p)^2 = sum w^2 y (1 - 2p) + p^2 sum w^2, since y^2 = y.
            spread = np.bincount(group, weights=w2 * yf, minlength=groups) * (1 - 2 * value) + value**2 * sum_w2
            variance = spread / total**2
            design = value * (1 - value) / variance
            usable = (value > 0) & (value < 1) & (variance > 1e-300)
            n_eff = np.minimum(np.where(usable, design, total**2 / sum_w2), counts)
    low, high = _wilson_bounds(value * n_eff, n_eff, z)
    return [
        Estimate(float(value[g]), Interval(float(low[g]), float(high[g])), int(counts[g]))
        if counts[g]
        else Estimate(None, None, 0)
        for g in range(groups)
    ]


def _proportion(y: BoolArray, w: FloatArray | None, z: float) -> Estimate:
    return _proportions(np.zeros(len(y), dtype=np.intp), y, w, 1, z)[0]


def horvitz_thompson_weights(inclusion_probability: Any) -> FloatArray:
    """1 / p for each item's inclusion probability; every p must be in (0, 1]."""
    p = _floats(inclusion_probability, "inclusion_probability")
    if np.any((p <= 0) | (p > 1)):
        raise ValueError("inclusion_probability must be in (0, 1]")
    return 1.0 / p


# --- the pattern bootstrap --------------------------------------------------------------------


@dataclass(frozen=True)
class _Patterns:
    inverse: IntArray  # per item: its pattern
    count: FloatArray  # items per pattern
    weight: FloatArray  # mean weight of a pattern's items (1 unweighted)
    member: IntArray  # per pattern: one of its items (any: they share every grouped code)

    def mean(self, values: FloatArray, w: FloatArray | None) -> FloatArray:
        """Per pattern, the (weighted) mean of an item value."""
        if w is None:
            return np.bincount(self.inverse, weights=values, minlength=len(self.count)) / self.count
        total = np.bincount(self.inverse, weights=w, minlength=len(self.count))
        return np.bincount(self.inverse, weights=w * values, minlength=len(self.count)) / total


def _group(keys: npt.NDArray[np.int64]) -> tuple[IntArray, npt.NDArray[np.int64]]:
    """Pattern index per key and keys per pattern, by counting when the keys are dense."""
    low = int(keys.min())
    span = int(keys.max()) - low + 1
    if span <= max(4 * len(keys), 1 << 16):
        counts = np.bincount(keys - low, minlength=span)
        present = np.flatnonzero(counts)
        index = np.zeros(span, dtype=np.intp)
        index[present] = np.arange(len(present))
        return index[keys - low], counts[present]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return inverse.astype(np.intp), counts


def _weight_codes(log_w: FloatArray, step: float) -> tuple[IntArray, int]:
    """Log-weights (relative to the smallest) grouped in steps of `step`."""
    if not math.isfinite(step):
        return np.zeros(len(log_w), dtype=np.intp), 1
    codes = np.rint(log_w / step).astype(np.intp)
    return codes, int(codes.max()) + 1


def _patterns(columns: Callable[[int], list[tuple[IntArray, int]]], w: FloatArray | None, n: int) -> _Patterns:
    """Group items on integer code columns (code, radix) and their weight, coarsening level by
    level (`columns(level)` and the weight step) until there are at most MAX_PATTERNS."""
    levels = len(_WEIGHT_STEPS)
    log_w = None
    if w is not None:
        log_w = np.log(w)
        log_w -= log_w.min()
    for level in range(levels):
        cols = columns(level)
        if log_w is not None:
            cols = [*cols, _weight_codes(log_w, _WEIGHT_STEPS[level])]
        key = np.zeros(n, dtype=np.int64)
        for codes, radix in cols:
            key = key * radix + codes
        inverse, counts = _group(key)
        if len(counts) <= MAX_PATTERNS or level == levels - 1:
            break
    count = counts.astype(np.float64)
    weight = np.ones(len(count)) if w is None else np.bincount(inverse, weights=w, minlength=len(count)) / count
    member = np.empty(len(count), dtype=np.intp)
    member[inverse] = np.arange(n)
    return _Patterns(inverse, count, weight, member)


def _resamples(count: FloatArray, resamples: int, rng: np.random.Generator, cells: int) -> Iterator[FloatArray]:
    """Multiplicity matrices (rows x patterns) of `resamples` resamples of the items, in chunks:
    row b holds how many copies of each pattern resample b drew. From `POISSON_FROM` items on,
    each pattern's copies are Poisson(count) (the Poisson bootstrap: every item drawn
    Poisson(1) times), which is about twice as fast to draw; a resample's size then varies by
    about 1/sqrt(n), which no figure here (all ratios) notices at that n."""
    n = int(count.sum())
    shares = count / n
    chunk = max(1, min(resamples, _MAX_BOOTSTRAP_CELLS // max(cells, 1)))
    done = 0
    while done < resamples:
        rows = min(chunk, resamples - done)
        if n >= POISSON_FROM:
            yield rng.poisson(count, size=(rows, len(count))).astype(np.float64)
        else:
            yield rng.multinomial(n, shares, size=rows).astype(np.float64)
        done += rows


def _bootstrap(
    patterns: _Patterns,
    statistic: Callable[[FloatArray, int | None], dict[str, FloatArray]],
    resamples: int,
    seed: int,
    cells: int | None = None,
) -> tuple[dict[str, FloatArray], dict[str, float]]:
    """Replicates of each statistic, and each statistic on the patterns themselves (for the
    shift to the exact point). `statistic(m, start)` takes multiplicities (rows x patterns) and
    the index of the first resample among them, None for the patterns themselves."""
    on_patterns = {k: float(v[0]) for k, v in statistic(patterns.count[None, :], None).items()}
    parts: dict[str, list[FloatArray]] = {k: [] for k in on_patterns}
    rng = np.random.default_rng(seed)
    start = 0
    for multiplicity in _resamples(patterns.count, resamples, rng, cells or len(patterns.count)):
        for name, values in statistic(multiplicity, start).items():
            parts[name].append(values)
        start += len(multiplicity)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}, on_patterns


def _percentile(
    replicates: FloatArray, exact: float, on_patterns: float, confidence: float, bounds: tuple[float, float]
) -> Interval | None:
    defined = replicates[np.isfinite(replicates)]
    if not len(defined) or not math.isfinite(on_patterns):
        return None
    tail = (1 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1 - tail]) + (exact - on_patterns)
    return Interval(float(np.clip(low, *bounds)), float(np.clip(high, *bounds)))


def _estimate(
    name: str,
    exact: float | None,
    n: int,
    replicates: dict[str, FloatArray],
    on_patterns: dict[str, float],
    confidence: float,
    bounds: tuple[float, float],
) -> Estimate:
    if exact is None or n < 2 or name not in replicates:
        return Estimate(exact, None, n)
    return Estimate(exact, _percentile(replicates[name], exact, on_patterns[name], confidence, bounds), n)


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- binary agreement -------------------------------------------------------------------------

_TP, _FP, _FN, _TN = 0, 1, 2, 3


def _kappa(cells: FloatArray) -> FloatArray:
    """Cohen's kappa from rows of (tp, fp, fn, tn); NaN where p_e = 1 or there are no items."""
    tp, fp, fn, tn = cells[:, _TP], cells[:, _FP], cells[:, _FN], cells[:, _TN]
    total = cells.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (tp + tn) / total
        chance = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / total**2
        return np.where((total > 0) & (1 - chance > 1e-12), (observed - chance) / (1 - chance), np.nan)


def _cells(judge: BoolArray, human: BoolArray) -> IntArray:
    return np.where(judge, _TP, _FN) + np.where(human, 0, 1)


def _cell_mass(patterns: _Patterns, cell: IntArray) -> FloatArray:
    """(patterns x 4): the weight one copy of each pattern adds to each cell of the 2x2 table."""
    mass = np.zeros((len(patterns.count), 4))
    mass[np.arange(len(patterns.count)), cell[patterns.member]] = patterns.weight
    return mass


def binary_agreement(
    judge_pass: Any,
    human_pass: Any,
    weights: Any = None,
    *,
    seed: int = 0,
    bootstrap: int = 1000,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Agreement of a judge's pass/fail with the humans' (the truth) on the same items.

    Returns n, accuracy, cohen_kappa, tpr (share of human passes the judge passes), tnr (share
    of human fails the judge fails), prevalence (human pass rate), each an Estimate, and the
    (weighted) confusion counts tp, fp, fn, tn. Kappa is None when undefined (every item in one
    class for both), with a bootstrap interval otherwise.
    """
    judge = _bools(judge_pass, "judge_pass")
    n = len(judge)
    human = _bools(human_pass, "human_pass", n)
    w = _weights(weights, n)
    _check_bootstrap(bootstrap)
    z = _z(confidence)
    cell = _cells(judge, human)
    counts = np.bincount(cell, weights=w, minlength=4)
    kappa = _number(_kappa(counts[None, :])[0]) if n else None
    replicates: dict[str, FloatArray] = {}
    on_patterns: dict[str, float] = {}
    if bootstrap and kappa is not None and n >= 2:
        patterns = _patterns(lambda _level: [(cell, 4)], w, n)
        # Each pattern is one cell: its weighted total per resample is multiplicity x mean weight.
        mass = _cell_mass(patterns, cell)

        def statistic(m: FloatArray, _start: int | None) -> dict[str, FloatArray]:
            return {"cohen_kappa": _kappa(m @ mass)}

        replicates, on_patterns = _bootstrap(patterns, statistic, bootstrap, seed)
    human_classes = np.where(human, 0, 1).astype(np.intp)
    tpr, tnr = _proportions(human_classes, judge == human, w, 2, z)
    confusion = {name: counts[i] for i, name in enumerate(("tp", "fp", "fn", "tn"))}
    return {
        "n": n,
        "accuracy": _proportion(judge == human, w, z),
        "cohen_kappa": _estimate("cohen_kappa", kappa, n, replicates, on_patterns, confidence, (-1.0, 1.0)),
        "tpr": tpr,
        "tnr": tnr,
        "prevalence": _proportion(human, w, z),
        "confusion": {k: (int(v) if w is None else float(v)) for k, v in confusion.items()},
    }


# --- scores -----------------------------------------------------------------------------------


# Values that are exact multiples of 1/1000 (ratings, hundredths) are coded by counting, not
# sorting, when their range allows a table of at most this many slots.
_GRID = 1000
_MAX_GRID_SLOTS = 10_000_000


def _levels(values: FloatArray) -> tuple[IntArray, FloatArray]:
    """Each value's rank among the distinct values (ties share a code), and the distinct values
    in order. Exact: a value is coded by its grid slot only when slot / 1000 gives it back."""
    if len(values):
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: no grid, sort below
            slots = np.rint(values * _GRID)
            low, high = slots.min(), slots.max()
            on_grid = high - low < _MAX_GRID_SLOTS and np.array_equal(slots / _GRID, values)
        if on_grid:
            offset = (slots - low).astype(np.intp)
            present = np.bincount(offset, minlength=int(high - low) + 1) > 0
            rank = np.cumsum(present) - 1
            return rank[offset], (np.flatnonzero(present) + low) / _GRID
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]] if len(values) else np.zeros(0, dtype=bool)
    codes = np.empty(len(values), dtype=np.intp)
    codes[order] = np.cumsum(new) - 1
    return codes, ordered[new]


def _coarsen(codes: IntArray, levels: int, w: FloatArray | None, target: int) -> tuple[IntArray, int]:
    """Ordered codes grouped into at most `target` levels of about equal weight (order kept)."""
    if levels <= target:
        return codes, levels
    mass = np.bincount(codes, weights=w, minlength=levels)
    middle = (np.cumsum(mass) - mass / 2) / mass.sum()
    group = np.minimum((middle * target).astype(np.intp), target - 1)
    _, renumbered = np.unique(group, return_inverse=True)
    return renumbered[codes].astype(np.intp), int(renumbered.max()) + 1


def _fit_table(
    xc: IntArray, a: int, yc: IntArray, b: int, w: FloatArray | None, cells: int
) -> tuple[IntArray, int, IntArray, int]:
    """Codes grouped so that the judge x human table has at most `cells` cells."""
    if a * b <= cells:
        return xc, a, yc, b
    side = max(2, math.isqrt(cells))
    if a <= side:
        yc, b = _coarsen(yc, b, w, max(2, cells // a))
    elif b <= side:
        xc, a = _coarsen(xc, a, w, max(2, cells // b))
    else:
        xc, a = _coarsen(xc, a, w, side)
        yc, b = _coarsen(yc, b, w, side)
    return xc, a, yc, b


def _mid_ranks(mass: FloatArray) -> FloatArray:
    """Weighted mid-rank of each level (last axis): the weight below it plus half its own. The
    unit-weight mid-ranks are these plus 1/2, a shift no correlation sees."""
    return np.cumsum(mass, axis=-1) - mass / 2


def _spearman_items(xc: IntArray, a: int, yc: IntArray, b: int, w: FloatArray | None) -> float | None:
    if a < 2 or b < 2:
        return None
    mx = np.bincount(xc, weights=w, minlength=a)
    my = np.bincount(yc, weights=w, minlength=b)
    total = mx.sum()
    rx, ry = _mid_ranks(mx), _mid_ranks(my)
    dx = rx - (mx @ rx) / total
    dy = ry - (my @ ry) / total
    product = dx[xc] * dy[yc]
    cov = product.sum() if w is None else product @ w
    return _number(cov / math.sqrt((mx @ dx**2) * (my @ dy**2)))


def _spearman_tables(t: FloatArray) -> FloatArray:
    mx, my = t.sum(axis=2), t.sum(axis=1)
    total = mx.sum(axis=1)
    rx, ry = _mid_ranks(mx), _mid_ranks(my)
    dx = rx - ((mx * rx).sum(axis=1) / total)[:, None]
    dy = ry - ((my * ry).sum(axis=1) / total)[:, None]
    cov = np.einsum("rab,ra,rb->r", t, dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / np.sqrt((mx * dx**2).sum(axis=1) * (my * dy**2).sum(axis=1))


def _kendall_tables(t: FloatArray) -> FloatArray:
    """Kendall's tau-b from rows of judge x human tables of weights. Item pairs weigh w_i w_j:
    sum_{i<j} w_i w_j = (W^2 - sum w^2) / 2, and the same within a judge level (row R) or a
    human level (column). The sum w^2 terms cancel in "pairs - ties" = (W^2 - sum R^2) / 2,
    which is why integer weights give exactly the tau-b of repeated items."""
    # above[i, j] = weight in cells (i' >= i, j' >= j); below_left[i, j]: (i' >= i, j' <= j).
    above = t[:, ::-1, ::-1].cumsum(axis=1).cumsum(axis=2)[:, ::-1, ::-1]
    below_left = t[:, ::-1, :].cumsum(axis=1)[:, ::-1, :].cumsum(axis=2)
    concordant = (t[:, :-1, :-1] * above[:, 1:, 1:]).sum(axis=(1, 2))
    discordant = (t[:, :-1, 1:] * below_left[:, 1:, :-1]).sum(axis=(1, 2))
    squared_total = t.sum(axis=(1, 2)) ** 2
    untied_judge = (squared_total - (t.sum(axis=2) ** 2).sum(axis=1)) / 2
    untied_human = (squared_total - (t.sum(axis=1) ** 2).sum(axis=1)) / 2
    denominator = untied_judge * untied_human
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (concordant - discordant) / np.sqrt(denominator), np.nan)


def _table(xc: IntArray, a: int, yc: IntArray, b: int, weights: FloatArray | None) -> FloatArray:
    return np.bincount(xc * b + yc, weights=weights, minlength=a * b).reshape(1, a, b).astype(np.float64)


def _kendall_items(
    x: FloatArray, xc: IntArray, a: int, y: FloatArray, yc: IntArray, b: int, w: FloatArray | None
) -> float | None:
    if a < 2 or b < 2:
        return None
    if a * b > _MAX_TABLE:
        if w is None:
            return _number(stats.kendalltau(x, y).statistic)
        xc, a, yc, b = _fit_table(xc, a, yc, b, w, _MAX_TABLE)
    return _number(_kendall_tables(_table(xc, a, yc, b, w))[0])


def score_agreement(
    judge_scores: Any,
    human_scores: Any,
    weights: Any = None,
    *,
    seed: int = 0,
    bootstrap: int = 1000,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Agreement of a judge's numeric scores with the humans' on the same items: spearman,
    kendall (tau-b) and mae (mean absolute difference), each an Estimate with a bootstrap
    interval. A correlation is None when either side takes a single value."""
    x = _floats(judge_scores, "judge_scores")
    n = len(x)
    y = _floats(human_scores, "human_scores", n)
    w = _weights(weights, n)
    _check_bootstrap(bootstrap)
    if n == 0:
        return {
            "n": 0,
            "spearman": Estimate(None, None, 0),
            "kendall": Estimate(None, None, 0),
            "mae": Estimate(None, None, 0),
        }
    distance = np.abs(x - y)
    mae = float(distance.mean() if w is None else distance @ w / w.sum())
    xc, x_levels = _levels(x)
    yc, y_levels = _levels(y)
    a, b = len(x_levels), len(y_levels)
    exact = {
        "spearman": _spearman_items(xc, a, yc, b, w),
        "kendall": _kendall_items(x, xc, a, y, yc, b, w),
        "mae": mae,
    }
    replicates: dict[str, FloatArray] = {}
    on_patterns: dict[str, float] = {}
    if bootstrap and n >= 2:
        fitted: dict[int, tuple[IntArray, int, IntArray, int]] = {}

        def columns(level: int) -> list[tuple[IntArray, int]]:
            fitted[level] = _fit_table(xc, a, yc, b, w, _SCORE_CELLS[level])
            fx, fa, fy, fb = fitted[level]
            return [(fx * fb + fy, fa * fb)]

        patterns = _patterns(columns, w, n)
        level = max(fitted)
        fx, fa, fy, fb = fitted[level]
        cell = (fx * fb + fy)[patterns.member]
        to_cells = sparse.csr_matrix((np.ones(len(cell)), (np.arange(len(cell)), cell)), shape=(len(cell), fa * fb))
        v = patterns.weight
        mean_distance = patterns.mean(distance, w)

        def statistic(m: FloatArray, _start: int | None) -> dict[str, FloatArray]:
            mass = m * v
            t = np.asarray((to_cells.T @ mass.T).T).reshape(-1, fa, fb)
            return {
                "spearman": _spearman_tables(t),
                "kendall": _kendall_tables(t),
                "mae": (mass @ mean_distance) / mass.sum(axis=1),
            }

        replicates, on_patterns = _bootstrap(
            patterns, statistic, bootstrap, seed, cells=max(len(patterns.count), fa * fb) * 4
        )
    result: dict[str, Any] = {"n": n}
    for name, bounds in (("spearman", (-1.0, 1.0)), ("kendall", (-1.0, 1.0)), ("mae", (0.0, math.inf))):
        result[name] = _estimate(name, exact[name], n, replicates, on_patterns, confidence, bounds)
    return result


# --- confidence -------------------------------------------------------------------------------


def confidence_calibration(
    confidence: Any,
    correct: Any,
    weights: Any = None,
    *,
    bins: int = 10,
    seed: int = 0,
    bootstrap: int = 1000,
    interval_confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """How well stated confidences (in [0, 1]) match how often the judge (or agent) was right.

    Returns n, ece (expected calibration error over `bins` equal-width bins), brier (mean
    squared difference between confidence and correctness), each an Estimate with a bootstrap
    interval, and `reliability`: one row per bin (low, high, n items, mean_confidence, and
    accuracy as an Estimate with a Wilson interval), empty bins included with None figures.
    """
    c = _floats(confidence, "confidence")
    n = len(c)
    y = _bools(correct, "correct", n)
    w = _weights(weights, n)
    _check_bootstrap(bootstrap)
    if not 1 <= bins <= 1000:
        raise ValueError("bins must be between 1 and 1000")
    if np.any((c < 0) | (c > 1)):
        raise ValueError("confidence must be in [0, 1]")
    z = _z(interval_confidence)
    edges = np.arange(bins + 1) / bins
    bin_of = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1).astype(np.intp)
    yf = y.astype(np.float64)
    gap = yf - c
    mass = np.bincount(bin_of, weights=w, minlength=bins).astype(np.float64)
    confidence_mass = np.bincount(bin_of, weights=c if w is None else w * c, minlength=bins)
    total = mass.sum()
    ece = brier = None
    if n:
        ece = float(np.abs(np.bincount(bin_of, weights=gap if w is None else w * gap, minlength=bins)).sum() / total)
        brier = float((gap**2).mean() if w is None else gap**2 @ w / total)
    replicates: dict[str, FloatArray] = {}
    on_patterns: dict[str, float] = {}
    if bootstrap and n >= 2:

        def columns(level: int) -> list[tuple[IntArray, int]]:
            step = _CONFIDENCE_STEPS[level]
            grid = round(1 / step)
            return [(bin_of, bins), (np.rint(c * grid).astype(np.intp), grid + 1), (y.astype(np.intp), 2)]

        patterns = _patterns(columns, w, n)
        size = len(patterns.count)
        to_bins = sparse.csr_matrix((np.ones(size), (np.arange(size), bin_of[patterns.member])), shape=(size, bins))
        v = patterns.weight
        mean_gap = patterns.mean(gap, w)
        mean_squared = patterns.mean(gap**2, w)

        def statistic(m: FloatArray, _start: int | None) -> dict[str, FloatArray]:
            weighted = m * v
            per_bin = np.asarray((to_bins.T @ (weighted * mean_gap).T).T)
            weight = weighted.sum(axis=1)
            return {"ece": np.abs(per_bin).sum(axis=1) / weight, "brier": (weighted @ mean_squared) / weight}

        replicates, on_patterns = _bootstrap(patterns, statistic, bootstrap, seed)
    accuracy = _proportions(bin_of, y, w, bins, z)
    counts = np.bincount(bin_of, minlength=bins)
    reliability = [
        {
            "low": float(edges[i]),
            "high": float(edges[i + 1]),
            "n": int(counts[i]),
            "mean_confidence": float(confidence_mass[i] / mass[i]) if counts[i] else None,
            "accuracy": accuracy[i],
        }
        for i in range(bins)
    ]
    conf = interval_confidence
    return {
        "n": n,
        "ece": _estimate("ece", ece, n, replicates, on_patterns, conf, (0.0, 1.0)),
        "brier": _estimate("brier", brier, n, replicates, on_patterns, conf, (0.0, 1.0)),
        "reliability": reliability,
    }


# --- pass rates -------------------------------------------------------------------------------


def rogan_gladen(judge_rate: float, tpr: float, tnr: float) -> float | None:
    """The true pass rate behind a judge's pass rate, given the judge's TPR and TNR:
    (q + TNR - 1) / (TPR + TNR - 1), clipped to [0, 1]; None when TPR + TNR <= 1 (a judge no
    better than chance says nothing about the truth)."""
    for name, value in (("judge_rate", judge_rate), ("tpr", tpr), ("tnr", tnr)):
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"{name} must be in [0, 1]")
    informedness = tpr + tnr - 1
    if informedness <= 1e-12:
        return None
    return min(1.0, max(0.0, (judge_rate + tnr - 1) / informedness))


def _ppi_lambda(y: FloatArray, f: FloatArray, w: FloatArray, f_all: FloatArray) -> float:
    """ppi-python's power-tuning lambda for a mean (`_calc_lam_glm` with an identity Hessian),
    w the labelled items' weights normalised to mean 1. 0 when the judge's verdicts are constant."""
    n, big_n = len(y), len(f_all)
    theta = f_all.mean() + np.mean(w * (y - f))
    gradient = w * (y - theta)
    predicted = w * (f - theta)
    covariance = np.mean((gradient - gradient.mean()) * (predicted - predicted.mean()))
    # Variance (ddof 1) of the labelled predicted gradients pooled with the unlabelled ones.
    unlabelled = f_all - theta
    pooled = n + big_n
    mean = (predicted.sum() + unlabelled.sum()) / pooled
    variance = ((predicted**2).sum() + (unlabelled**2).sum() - pooled * mean**2) / (pooled - 1)
    if variance <= 1e-15:
        return 0.0
    return float(np.clip(covariance / ((1 + n / big_n) * variance), 0.0, 1.0))


def _ppi(
    y: FloatArray, f: FloatArray, f_all: FloatArray, w: FloatArray | None, z: float, rng: np.random.Generator
) -> tuple[Estimate, float, bool]:
    """The PPI++ mean, its whole-sample lambda, and whether lambda was cross-fitted."""
    n, big_n = len(y), len(f_all)
    weight = np.ones(n) if w is None else w
    normalised = weight * n / weight.sum()
    lam = _ppi_lambda(y, f, normalised, f_all)
    cross_fitted = n < CROSS_FIT_BELOW
    if cross_fitted:
        fold = rng.permutation(n) % CROSS_FIT_FOLDS
        per_item = np.empty(n)
        for k in range(CROSS_FIT_FOLDS):
            out = fold != k
            rest = weight[out] * out.sum() / weight[out].sum()
            per_item[~out] = _ppi_lambda(y[out], f[out], rest, f_all)
    else:
        per_item = np.full(n, lam)
    total = weight.sum()
    residual = y - per_item * f
    rectifier = residual @ weight / total
    lam_bar = per_item @ weight / total
    value = lam_bar * f_all.mean() + rectifier
    variance = lam_bar**2 * f_all.var() / big_n + ((weight * (residual - rectifier)) ** 2).sum() / total**2
    half = z * math.sqrt(variance)
    interval = Interval(max(0.0, value - half), min(1.0, value + half))
    return Estimate(float(np.clip(value, 0.0, 1.0)), interval, n), lam, cross_fitted


def pass_rate_estimates(
    judge_pass_all: Any,
    judge_pass_labeled: Any,
    human_pass_labeled: Any,
    inclusion_probability: Any = None,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    bootstrap: int = 1000,
) -> dict[str, Any]:
    """The agent's true pass rate on a criterion, four ways (see the module docstring).

    judge_pass_all: the judge's verdict on every judged item (N); judge_pass_labeled and
    human_pass_labeled: the judge's and the final human verdicts on the labelled sample (n),
    which is a sample of those items; inclusion_probability: each labelled item's recorded
    probability of having been sampled (None: a uniform sample). Intervals are 1 - alpha.

    Returns judge_only, rogan_gladen, human_only and ppi (Estimates), method_used ("ppi", or
    "human_only" when "ppi" fell back to the human-only estimate), lambda (the whole-sample
    power-tuning lambda, None without enough labels) and cross_fitted.
    """
    f_all = _bools(judge_pass_all, "judge_pass_all")
    f = _bools(judge_pass_labeled, "judge_pass_labeled")
    n = len(f)
    y = _bools(human_pass_labeled, "human_pass_labeled", n)
    w = None
    if inclusion_probability is not None:
        w = horvitz_thompson_weights(_floats(inclusion_probability, "inclusion_probability", n))
    _check_bootstrap(bootstrap)
    confidence = 1 - alpha
    z = _z(confidence)
    big_n = len(f_all)
    judge_only = _proportion(f_all, None, z)
    human_only = _proportion(y, w, z)

    cell = _cells(f, y)
    counts = np.bincount(cell, weights=w, minlength=4)
    rg_value = None
    if big_n and counts[_TP] + counts[_FN] > 0 and counts[_TN] + counts[_FP] > 0:
        tpr = counts[_TP] / (counts[_TP] + counts[_FN])
        tnr = counts[_TN] / (counts[_TN] + counts[_FP])
        rg_value = rogan_gladen(float(f_all.mean()), float(tpr), float(tnr))
    replicates: dict[str, FloatArray] = {}
    on_patterns: dict[str, float] = {}
    if bootstrap and rg_value is not None and n >= 2:
        patterns = _patterns(lambda _level: [(cell, 4)], w, n)
        mass = _cell_mass(patterns, cell)
        judge_rate = float(f_all.mean())
        # The judge's rate is itself a sample of N verdicts: each resample redraws it.
        redrawn = np.random.default_rng([seed, 1]).binomial(big_n, judge_rate, size=bootstrap) / big_n

        def statistic(m: FloatArray, start: int | None) -> dict[str, FloatArray]:
            table = m @ mass
            q = np.array([judge_rate]) if start is None else redrawn[start : start + len(m)]
            with np.errstate(divide="ignore", invalid="ignore"):
                tpr_b = table[:, _TP] / (table[:, _TP] + table[:, _FN])
                tnr_b = table[:, _TN] / (table[:, _TN] + table[:, _FP])
                informedness = tpr_b + tnr_b - 1
                rate = np.where(informedness > 1e-12, (q + tnr_b - 1) / informedness, np.nan)
            return {"rogan_gladen": np.clip(rate, 0.0, 1.0)}

        replicates, on_patterns = _bootstrap(patterns, statistic, bootstrap, seed)
    rg = _estimate("rogan_gladen", rg_value, n, replicates, on_patterns, confidence, (0.0, 1.0))

    ppi, lam, cross_fitted = human_only, None, False
    method = "human_only"
    if n >= PPI_MIN_LABELLED and big_n:
        rng_folds = np.random.default_rng([seed, 0])
        estimate, lam, cross_fitted = _ppi(
            y.astype(np.float64), f.astype(np.float64), f_all.astype(np.float64), w, z, rng_folds
        )
        if lam >= PPI_MIN_LAMBDA:
            ppi, method = estimate, "ppi"
    return {
        "n_judged": big_n,
        "n_labelled": n,
        "judge_only": judge_only,
        "rogan_gladen": rg,
        "human_only": human_only,
        "ppi": ppi,
        "method_used": method,
        "lambda": lam,
        "cross_fitted": cross_fitted if method == "ppi" else False,
    }


# --- trust, bars, sampling --------------------------------------------------------------------


def trust_threshold(
    confidence: Any, agree: Any, *, target: float = 0.9, min_n: int = 30, interval_confidence: float = CONFIDENCE
) -> dict[str, Any] | None:
    """The lowest judge confidence above which the judge can be trusted, or None.

    Thresholds are the distinct confidences. Lowering the threshold from the top, the first one
    at which at least `min_n` items lie at or above it and the Wilson lower bound of their
    agreement with humans reaches `target` starts a run; the threshold is the lowest of that run
    (lowering stops at the first threshold that fails, so a dip is never jumped over). Returns
    threshold, n (items at or above it), agreement (an Estimate), coverage (their share of all
    items) and target. Choosing the best of many thresholds flatters the bound a little; the
    run rule and min_n keep that small.
    """
    c = _floats(confidence, "confidence")
    n = len(c)
    ok = _bools(agree, "agree", n)
    if not 0 < target < 1:
        raise ValueError("target must be between 0 and 1")
    if min_n < 1:
        raise ValueError("min_n must be at least 1")
    if n == 0:
        return None
    z = _z(interval_confidence)
    codes, levels = _levels(c)
    # Per distinct confidence, from the highest down: items at or above it, and agreeing ones.
    above = np.cumsum(np.bincount(codes, minlength=len(levels))[::-1])
    agreeing = np.cumsum(np.bincount(codes, weights=ok, minlength=len(levels))[::-1])
    low, _ = _wilson_bounds(agreeing, above.astype(np.float64), z)
    passes = (above >= min_n) & (low >= target)
    if not passes.any():
        return None
    start = int(np.argmax(passes))
    failing = np.flatnonzero(~passes[start:])
    end = start + (int(failing[0]) - 1 if len(failing) else len(passes) - start - 1)
    count = int(above[end])
    hits = round(float(agreeing[end]))
    return {
        "threshold": float(levels[::-1][end]),
        "n": count,
        "agreement": Estimate(hits / count, wilson(hits, count, interval_confidence), count),
        "coverage": count / n,
        "target": target,
    }


def min_items_for_bar(bar: float, confidence: float = CONFIDENCE) -> int | None:
    """The fewest items on which even a perfect score's Wilson lower bound reaches `bar`:
    n / (n + z^2) >= bar, so n >= z^2 bar / (1 - bar) (35 for 0.9, 73 for 0.95, 381 for 0.99).
    None for a bar of 1 or more, which no sample can show."""
    if bar >= 1:
        return None
    if bar <= 0:
        return 1
    z = _z(confidence)
    n = max(1, math.ceil(z * z * bar / (1 - bar) - 1e-9))
    while wilson(n, n, confidence).low < bar:
        n += 1
    return n


def bar_status(
    result: dict[str, Any],
    *,
    kappa_bar: float | None = 0.6,
    tpr_bar: float | None = 0.9,
    tnr_bar: float | None = 0.9,
) -> str:
    """ "too_few", "below_bar" or "ok" for a `binary_agreement` result against a bar (a None bar
    is not checked).

    too_few: the pairs cannot show the bar at all: fewer human passes than a perfect TPR needs
    for its Wilson lower bound to reach tpr_bar (`min_items_for_bar`: 35 at 0.9), the same for
    human fails and tnr_bar, or kappa is undefined. below_bar: a point estimate is under its
    bar. ok otherwise (the points meet the bar; `bar_cleared` asks the same of the intervals).
    """
    kappa: Estimate = result["cohen_kappa"]
    tpr: Estimate = result["tpr"]
    tnr: Estimate = result["tnr"]
    for estimate, bar in ((tpr, tpr_bar), (tnr, tnr_bar)):
        needed = None if bar is None else min_items_for_bar(bar)
        if bar is not None and (needed is None or estimate.n < needed or estimate.value is None):
            return "too_few"
    if kappa_bar is not None and kappa.value is None:
        return "too_few"
    for estimate, bar in ((kappa, kappa_bar), (tpr, tpr_bar), (tnr, tnr_bar)):
        if bar is not None and estimate.value is not None and estimate.value < bar:
            return "below_bar"
    return "ok"


def bar_cleared(
    result: dict[str, Any],
    *,
    kappa_bar: float | None = 0.6,
    tpr_bar: float | None = 0.9,
    tnr_bar: float | None = 0.9,
) -> bool:
    """Whether every checked figure's interval lies at or above its bar (its lower bound does):
    the stronger claim a budget controller needs before trimming human labels."""
    for name, bar in (("cohen_kappa", kappa_bar), ("tpr", tpr_bar), ("tnr", tnr_bar)):
        estimate: Estimate = result[name]
        if bar is not None and (estimate.interval is None or estimate.interval.low < bar):
            return False
    return True


def uncertainty_sampling_probability(
    judge_confidence: Any,
    *,
    base_rate: float,
    uniform_share: float = 0.2,
    mean_uncertainty: float | None = None,
) -> FloatArray:
    """Inclusion probabilities that rise as the judge's confidence falls, always mixed with a
    uniform share so every item can be sampled.

    With uncertainty u = 1 - confidence and m its mean, p = base_rate (s + (1 - s) u / m), s the
    uniform share: the mean is base_rate and no p is under base_rate x s. Probabilities over 1
    are capped and the excess spread over the others (so the mean stays base_rate when it can).
    A missing confidence (NaN) counts as the mean uncertainty. For items decided one at a time,
    pass `mean_uncertainty` (the traffic's usual mean, e.g. from recent history) instead of
    letting the batch's own mean stand for it; then no spreading is done.
    """
    c = _one_dimensional(judge_confidence, "judge_confidence", None).astype(np.float64)
    if np.any(np.isinf(c)) or np.any((c < 0) | (c > 1)):
        raise ValueError("judge_confidence must be in [0, 1]")
    if not (math.isfinite(base_rate) and 0 < base_rate <= 1):
        raise ValueError("base_rate must be in (0, 1]")
    if not (math.isfinite(uniform_share) and 0 < uniform_share <= 1):
        raise ValueError("uniform_share must be in (0, 1]")
    if mean_uncertainty is not None and not (math.isfinite(mean_uncertainty) and 0 <= mean_uncertainty <= 1):
        raise ValueError("mean_uncertainty must be in [0, 1]")
    uncertainty = 1 - c
    known = np.isfinite(uncertainty)
    batch_mean = float(uncertainty[known].mean()) if known.any() else 0.5
    uncertainty = np.where(known, uncertainty, batch_mean if mean_uncertainty is None else mean_uncertainty)
    mean = batch_mean if mean_uncertainty is None else mean_uncertainty
    if mean <= 0:
        return np.full(len(c), base_rate)
    if mean_uncertainty is not None:
        # Items decided one at a time: the sampler's own rule (labeling.sampling), item by item.
        return np.array(
            [
                sampling.uncertainty_probability(
                    1 - v, rate=base_rate, uniform_share=uniform_share, mean_uncertainty=mean_uncertainty
                )
                for v in uncertainty.tolist()
            ],
            dtype=np.float64,
        )
    p = base_rate * (uniform_share + (1 - uniform_share) * uncertainty / mean)
    # Water-filling: cap at 1 and scale the rest up to keep the mean; scaling keeps their order,
    # so each pass caps at least one more item or ends.
    target = base_rate * len(p)
    while np.any(p > 1):
        capped = p >= 1
        p[capped] = 1.0
        room = target - capped.sum()
        if room <= 0:
            break
        p[~capped] *= room / p[~capped].sum()
    return np.clip(p, np.finfo(np.float64).tiny, 1.0)


def weekly_trend(
    week: Any,
    judge_pass: Any,
    human_pass: Any,
    weights: Any = None,
    *,
    seed: int = 0,
    bootstrap: int = 200,
) -> list[dict[str, Any]]:
    """`binary_agreement` per week, oldest first: one dict per distinct value of `week` (any
    sortable labels: the start date of each pair's week, an ISO week string) with "week" and
    every figure of binary_agreement. Each week gets the same seed, so a week's figures do not
    change when another week is added."""
    weeks = _one_dimensional(week, "week", None)
    n = len(weeks)
    judge = _bools(judge_pass, "judge_pass", n)
    human = _bools(human_pass, "human_pass", n)
    w = _weights(weights, n)
    if n == 0:
        return []
    labels, inverse = np.unique(weeks, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(labels)))]
    out = []
    for i, label in enumerate(labels):
        items = order[bounds[i] : bounds[i + 1]]
        figures = binary_agreement(
            judge[items], human[items], None if w is None else w[items], seed=seed, bootstrap=bootstrap
        )
        out.append({"week": label.item() if isinstance(label, np.generic) else label, **figures})
    return out
