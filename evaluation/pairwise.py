"""The result of a pairwise comparison of a candidate agent version against a baseline. Pure: no
Django, no ORM; outcomes in, dataclasses out (tests/evaluation/test_pairwise_stats.py).

Each item contributes one outcome per question, its final answer with the side shuffle undone
(labeling.pairwise.outcome): `candidate` (the candidate won), `baseline`, `equivalent` or
`both_bad`. Over n items with W candidate wins, L baseline wins and T ties (equivalent + both
bad):

- win_rate = (W + T / 2) / n: ties count as half a win. 0.5 is "as good as the baseline".
- Wilson interval on the decisive pairs: the Wilson score interval of W out of W + L, the share of
  decisive pairs the candidate won (`decisive_win_rate`); [0, 1] with no decisive pair.
- Bootstrap interval over items: the percentile interval of win_rate over `BOOTSTRAP` resamples of
  the n items with replacement, seeded (`SEED`) so a result reads the same every time. An item
  is one of three values (1, 1/2, 0), so a resample is a draw of the three counts from
  Multinomial(n, (W, T, L) / n): the same distribution as drawing items, at a cost independent
  of n.
- Sign test: exact two-sided binomial test of W out of W + L against 1/2 (ties dropped, as the
  sign test does); p = min(1, 2 P(X <= min(W, L))), which is what scipy.stats.binomtest gives for
  p = 1/2. None with no decisive pair.

Which interval the release gate reads: the Wilson interval on decisive pairs (`gate_interval`).
It is the interval of the same quantity the sign test tests, so "worse" in the gate and a
significant sign test agree; and it stays honest on small samples, where a percentile bootstrap
collapses (three items all lost give a bootstrap interval of [0, 0], "certainly worse", where
Wilson gives [0, 0.56], "not shown"). A candidate is shown worse only when the whole interval
lies below 1/2 (evaluation/gates.py). Ties leave the decisive share alone and pull win_rate toward
1/2, so a pile of "equivalent" answers never makes a candidate look worse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from evaluation import stats

CANDIDATE = "candidate"
BASELINE = "baseline"
EQUIVALENT = "equivalent"
BOTH_BAD = "both_bad"
OUTCOMES = (CANDIDATE, BASELINE, EQUIVALENT, BOTH_BAD)

CONFIDENCE = 0.95
BOOTSTRAP = 4000
SEED = 20_240_611
GATE_INTERVAL = "wilson_decisive"


@dataclass(frozen=True)
class Counts:
    candidate: int = 0
    baseline: int = 0
    equivalent: int = 0
    both_bad: int = 0

    @property
    def n(self) -> int:
        return self.candidate + self.baseline + self.equivalent + self.both_bad

    @property
    def decisive(self) -> int:
        return self.candidate + self.baseline

    @property
    def ties(self) -> int:
        return self.equivalent + self.both_bad


@dataclass(frozen=True)
class Figures:
    counts: Counts
    n: int
    decisive: int
    # (W + T/2) / n, None with no item.
    win_rate: float | None
    # W / (W + L), None with no decisive pair.
    decisive_win_rate: float | None
    wilson: stats.Interval
    bootstrap: stats.Interval | None
    sign_test_p: float | None


@dataclass(frozen=True)
class Segment:
    tag: str
    figures: Figures


@dataclass(frozen=True)
class QuestionResult:
    key: str
    label: str
    figures: Figures
    segments: list[Segment]
    # Items of the queue with no final answer to this question yet: left out of the figures.
    unanswered: int


@dataclass(frozen=True)
class ItemOutcomes:
    """One item: its segments and, per question key, its outcome (None: no final answer)."""

    tags: tuple[str, ...]
    outcomes: dict[str, str | None]


def count(outcomes: Iterable[str]) -> Counts:
    tally = dict.fromkeys(OUTCOMES, 0)
    for outcome in outcomes:
        if outcome not in tally:
            raise ValueError(f"unknown outcome {outcome!r}")
        tally[outcome] += 1
    return Counts(**tally)


def win_rate(c: Counts) -> float | None:
    return (c.candidate + c.ties / 2) / c.n if c.n else None


def sign_test(wins: int, losses: int) -> float | None:
    """Exact two-sided sign test of `wins` against `losses` (p = 1/2)."""
    n = wins + losses
    if n == 0:
        return None
    tail = float(scipy_stats.binom.cdf(min(wins, losses), n, 0.5))
    return min(1.0, 2 * tail)


def bootstrap_interval(
    c: Counts, *, confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP, seed: int = SEED
) -> stats.Interval | None:
    """Percentile interval of win_rate over item resamples (see the module docstring); None
    with fewer than two items."""
    if c.n < 2:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(c.n, np.array([c.candidate, c.ties, c.baseline], dtype=np.float64) / c.n, size=resamples)
    rates = (draws[:, 0] + draws[:, 1] / 2) / c.n
    alpha = (1 - confidence) / 2
    low, high = np.quantile(rates, [alpha, 1 - alpha])
    return stats.Interval(float(low), float(high))


def figures(c: Counts, *, confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP) -> Figures:
    return Figures(
        counts=c,
        n=c.n,
        decisive=c.decisive,
        win_rate=win_rate(c),
        decisive_win_rate=c.candidate / c.decisive if c.decisive else None,
        wilson=stats.wilson(c.candidate, c.decisive, confidence),
        bootstrap=bootstrap_interval(c, confidence=confidence, resamples=resamples),
        sign_test_p=sign_test(c.candidate, c.baseline),
    )


def gate_interval(f: Figures) -> stats.Interval:
    """The interval the release gate reads (see the module docstring)."""
    return f.wilson


def question_result(
    key: str, label: str, items: Sequence[ItemOutcomes], *, confidence: float = CONFIDENCE
) -> QuestionResult:
    answered = [(item.tags, item.outcomes.get(key)) for item in items]
    outcomes = [o for _, o in answered if o is not None]
    by_tag: dict[str, list[str]] = {}
    for tags, outcome in answered:
        if outcome is None:
            continue
        for tag in dict.fromkeys(tags):
            by_tag.setdefault(tag, []).append(outcome)
    return QuestionResult(
        key=key,
        label=label,
        figures=figures(count(outcomes), confidence=confidence),
        segments=[Segment(tag, figures(count(by_tag[tag]), confidence=confidence)) for tag in sorted(by_tag)],
        unanswered=len(answered) - len(outcomes),
    )
