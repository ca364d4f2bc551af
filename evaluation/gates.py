"""The release gate: an agent version's per-item results on a frozen dataset version, judged
against the dataset's thresholds. Pure: dataclasses in and out, no ORM, tested without a
database (`tests/evaluation/test_gates.py`).

Figures. pass_rate = passed / items and critical_pass_rate = critical passed / critical items,
where an item of the version with no result counts as failed (and is listed as missing). Per
segment (each tag, each split) the same counts with a Wilson interval. `wilson_lower` is the
lower end of the two-sided Wilson interval at `confidence` (stats.wilson), so it is a one-sided
lower bound at level (1 + confidence) / 2: 97.5% for the default 0.95.

Verdict, observed mode (the default, what teams do today): pass_rate >= pass target and
critical_pass_rate >= critical target. A version with no critical items cannot fail the second
clause; a warning says it was not checked.

Verdict, confident mode: the claim must hold at the confidence level, not just on this sample.
- Overall: wilson_lower >= pass target.
- Critical items: the exact (Clopper-Pearson) one-sided lower bound at the same level,
  alpha = (1 - confidence) / 2, must clear the critical target. With all n critical items
  passing that bound is alpha^(1/n) (the exact form of the rule of three), so the target asks for
  enough critical items: 0.9 at confidence 0.95 needs 36. A version with no critical items fails
  here unless the critical target is 0.
- A target of 1.0 can never be shown by a lower bound (no finite sample rules out a rare
  failure). Rather than a gate that can never pass, a target of 1.0 in confident mode means: no
  failure at all, and enough items that the lower bound reaches PERFECT_CLAIM_FLOOR (0.95). For
  the default critical target that is 72 critical items, all passing, at confidence 0.95; for
  the overall rate, 73 items all passing (Wilson).

`needed_items` says how many items a confident claim of the pass target would need: the
smallest n whose Wilson lower bound clears the target, assuming the observed pass rate holds
(`observed_rate`), or, with no failure observed, that none would occur (`zero_failures`); None
when the observed rate is at or below the target (`unreachable`: no sample size helps). The
critical figure always assumes zero failures (alpha^(1/n) >= target).

"Not worse than prod": an optional `PairwiseSummary` of a human side-by-side comparison of this
agent version (the candidate) against the one tagged prod. The candidate is shown worse only
when the whole interval of its win rate lies below one half, so not_worse = high >= 0.5. When
the dataset requires it and no comparison (or one with no pairs) is given, the gate fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scipy import stats as scipy_stats

from evaluation import stats

OBSERVED = "observed"
CONFIDENT = "confident"
VERDICT_PASS = "pass"  # noqa: S105 (a verdict, not a password)
VERDICT_FAIL = "fail"

# What a target of 1.0 means in confident mode (see the module docstring).
PERFECT_CLAIM_FLOOR = 0.95
# needed_items gives up past this: the observed rate is then a hair above the target.
MAX_NEEDED_ITEMS = 1_000_000_000
# Missing item ids named in a reason; the run keeps them all.
_NAMED = 10


@dataclass(frozen=True)
class GateSettings:
    """The dataset's thresholds, as a run copies them."""

    pass_rate: float = 0.95
    critical_pass_rate: float = 1.0
    mode: str = OBSERVED
    # Two-sided level of the intervals (the lower bounds are one-sided at (1 + confidence) / 2).
    confidence: float = 0.95
    require_not_worse: bool = False


@dataclass(frozen=True)
class VersionItem:
    """An item of the frozen version: its key (the results' `item_id`) and segments."""

    key: str
    critical: bool = False
    tags: tuple[str, ...] = ()
    split: str = ""


@dataclass(frozen=True)
class ItemOutcome:
    key: str
    passed: bool
    critical: bool = False
    tags: tuple[str, ...] = ()
    split: str = ""
    # No result was sent for the item: it counts as failed.
    missing: bool = False


@dataclass(frozen=True)
class PairwiseSummary:
    """A human pairwise comparison of the candidate agent version against the baseline (the
    version tagged prod): the candidate's win rate with ties as half, its interval (the one the
    comparison reports; the gate reads only `high`), the decisive-or-tied pairs it rests on, and
    the baseline's agent version. Supplied by the pairwise comparison; optional everywhere."""

    candidate_win_rate: float
    low: float
    high: float
    n_pairs: int
    baseline_agent_version: str


@dataclass(frozen=True)
class Segment:
    kind: str  # "tag" or "split"
    name: str
    n: int
    passed: int
    pass_rate: float | None
    low: float
    high: float
    critical: int
    critical_passed: int


@dataclass(frozen=True)
class NeededItems:
    n: int | None
    # "observed_rate", "zero_failures" or "unreachable".
    assumption: str
    target: float
    # Whether the items at hand already suffice.
    enough: bool


@dataclass(frozen=True)
class GateResult:
    gate: str
    mode: str
    item_count: int
    passed_count: int
    critical_count: int
    critical_passed_count: int
    pass_rate: float | None
    critical_pass_rate: float | None
    wilson_lower: float
    wilson_upper: float
    critical_lower: float | None
    needed_items: NeededItems
    critical_needed_items: int | None
    segments: list[Segment]
    missing: list[str]
    reasons: list[str]
    warnings: list[str]
    not_worse: bool | None = None
    comparison: PairwiseSummary | None = None
    settings: GateSettings = field(default_factory=GateSettings)


class UnknownItems(ValueError):
    """Results name item ids that are not in the version."""

    def __init__(self, keys: list[str]):
        super().__init__(f"unknown item ids: {', '.join(keys[:_NAMED])}")
        self.keys = keys


def outcomes(items: Iterable[VersionItem], results: Mapping[str, bool]) -> list[ItemOutcome]:
    """Each version item with its result; an item with none is a failed, missing one. Raises
    UnknownItems (every unknown id, sorted) when a result names no item of the version."""
    rows = []
    seen = set()
    for item in items:
        seen.add(item.key)
        passed = results.get(item.key)
        rows.append(
            ItemOutcome(
                key=item.key,
                passed=bool(passed),
                critical=item.critical,
                tags=tuple(item.tags),
                split=item.split,
                missing=passed is None,
            )
        )
    unknown = sorted(k for k in results if k not in seen)
    if unknown:
        raise UnknownItems(unknown)
    return rows


def _alpha(confidence: float) -> float:
    return (1 - confidence) / 2


def exact_lower(passed: int, n: int, confidence: float) -> float:
    """Clopper-Pearson one-sided lower bound at level 1 - (1 - confidence) / 2: 0 with no
    success, alpha^(1/n) with no failure."""
    if n <= 0 or passed <= 0:
        return 0.0
    alpha = _alpha(confidence)
    if passed >= n:
        return float(alpha ** (1 / n))
    return float(scipy_stats.beta.ppf(alpha, passed, n - passed + 1))


def claim_target(target: float) -> float:
    """The lower bound a confident claim of `target` must reach (1.0 is unreachable)."""
    return PERFECT_CLAIM_FLOOR if target >= 1 else target


def zero_failure_items(target: float, confidence: float) -> int:
    """The fewest items all passing whose exact lower bound alpha^(1/n) reaches `target`."""
    if target <= 0:
        return 0
    target = claim_target(target)
    n = max(1, math.ceil(math.log(_alpha(confidence)) / math.log(target) - 1e-9))
    while exact_lower(n, n, confidence) < target:
        n += 1
    return n


def needed_items(passed: int, n: int, target: float, confidence: float) -> NeededItems:
    """How many items a confident claim of `target` needs (see the module docstring)."""
    goal = claim_target(target)
    if goal <= 0:
        return NeededItems(0, "zero_failures" if passed == n else "observed_rate", goal, True)
    if passed >= n:
        needed = stats.min_items_for_bar(goal, confidence)
        return NeededItems(needed, "zero_failures", goal, needed is not None and n >= needed)
    rate = passed / n
    if rate <= goal:
        return NeededItems(None, "unreachable", goal, False)

    def clears(m: int) -> bool:
        return stats.wilson(rate * m, m, confidence).low >= goal

    high = 1
    while not clears(high):
        high *= 2
        if high > MAX_NEEDED_ITEMS:
            return NeededItems(None, "observed_rate", goal, False)
    low = high // 2  # does not clear (or is 0)
    while high - low > 1:
        middle = (low + high) // 2
        if clears(middle):
            high = middle
        else:
            low = middle
    return NeededItems(high, "observed_rate", goal, n >= high)


def _rate(passed: int, n: int) -> float | None:
    return passed / n if n else None


def segments(rows: Sequence[ItemOutcome], confidence: float) -> list[Segment]:
    """Per tag (sorted by name), then per split (train, dev, test order as found sorted)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        names = [("tag", tag) for tag in dict.fromkeys(row.tags)]
        if row.split:
            names.append(("split", row.split))
        for name in names:
            counts = groups.setdefault(name, [0, 0, 0, 0])
            counts[0] += 1
            counts[1] += row.passed
            counts[2] += row.critical
            counts[3] += row.critical and row.passed
    result = []
    for (kind, name), (n, passed, critical, critical_passed) in sorted(
        groups.items(), key=lambda g: (g[0][0] != "tag", g[0][1])
    ):
        interval = stats.wilson(passed, n, confidence)
        result.append(
            Segment(kind, name, n, passed, _rate(passed, n), interval.low, interval.high, critical, critical_passed)
        )
    return result


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def evaluate(
    rows: Sequence[ItemOutcome], settings: GateSettings, comparison: PairwiseSummary | None = None
) -> GateResult:
    """The gate's figures and verdict for one run.

    `comparison`: the human pairwise comparison of this agent version against the prod one, if
    any; only read when `settings.require_not_worse` (then its absence fails the gate) and
    otherwise reported, with a warning when it shows the candidate worse."""
    if settings.mode not in (OBSERVED, CONFIDENT):
        raise ValueError(f"unknown gate mode {settings.mode!r}")
    n = len(rows)
    passed = sum(1 for r in rows if r.passed)
    critical = [r for r in rows if r.critical]
    critical_n = len(critical)
    critical_passed = sum(1 for r in critical if r.passed)
    pass_rate = _rate(passed, n)
    critical_rate = _rate(critical_passed, critical_n)
    interval = stats.wilson(passed, n, settings.confidence)
    critical_lower = exact_lower(critical_passed, critical_n, settings.confidence) if critical_n else None
    need = needed_items(passed, n, settings.pass_rate, settings.confidence)
    critical_need = zero_failure_items(settings.critical_pass_rate, settings.confidence)
    missing = [r.key for r in rows if r.missing]
    reasons: list[str] = []
    warnings: list[str] = []
    level = f"{(1 + settings.confidence) / 2:.1%} one-sided"

    if n == 0:
        reasons.append("The dataset version has no items.")
    if missing:
        named = ", ".join(missing[:_NAMED]) + (f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else "")
        reasons.append(f"{len(missing)} item(s) have no result and count as failed: {named}.")

    if settings.mode == OBSERVED:
        if pass_rate is not None and pass_rate < settings.pass_rate:
            reasons.append(
                f"Pass rate {_pct(pass_rate)} ({passed} of {n}) is below the target {_pct(settings.pass_rate)}."
            )
        if critical_n == 0:
            warnings.append("No critical items: the critical pass rate was not checked.")
        elif critical_rate is not None and critical_rate < settings.critical_pass_rate:
            reasons.append(
                f"Critical pass rate {_pct(critical_rate)} ({critical_passed} of {critical_n}) is below the "
                f"target {_pct(settings.critical_pass_rate)}."
            )
    else:
        goal = claim_target(settings.pass_rate)
        if n and settings.pass_rate >= 1 and passed < n:
            reasons.append(f"The target is 100% and {n - passed} of {n} items failed.")
        elif n and interval.low < goal:
            hint = (
                f"about {need.n} items at this pass rate would show it"
                if need.n is not None
                else "no number of items would show it at this pass rate"
            )
            reasons.append(
                f"Lower bound of the pass rate {_pct(interval.low)} ({level} Wilson; observed {_pct(pass_rate)}, "
                f"{passed} of {n}) is below {_pct(goal)}: {hint}."
            )
        critical_goal = claim_target(settings.critical_pass_rate)
        if settings.critical_pass_rate > 0:
            if critical_n == 0:
                reasons.append(
                    f"No critical items: a confident gate needs at least {critical_need} critical items, all "
                    f"passing, for a lower bound of {_pct(critical_goal)}."
                )
            elif settings.critical_pass_rate >= 1 and critical_passed < critical_n:
                reasons.append(f"Every critical item must pass; {critical_n - critical_passed} of {critical_n} failed.")
            elif critical_lower is not None and critical_lower < critical_goal:
                if critical_passed == critical_n:
                    why = f"at least {critical_need} critical items, all passing, are needed"
                else:
                    why = f"{critical_passed} of {critical_n} passed"
                reasons.append(
                    f"Lower bound of the critical pass rate {_pct(critical_lower)} ({level} exact) is below "
                    f"{_pct(critical_goal)}: {why}."
                )

    not_worse = None
    usable = comparison if comparison is not None and comparison.n_pairs > 0 else None
    if usable is not None:
        not_worse = usable.high >= 0.5
    if settings.require_not_worse:
        if usable is None:
            reasons.append("No human comparison against prod yet.")
        elif not not_worse:
            reasons.append(_worse(usable))
    elif usable is not None and not not_worse:
        warnings.append(_worse(usable) + " (not required by this dataset)")

    return GateResult(
        gate=VERDICT_FAIL if reasons else VERDICT_PASS,
        mode=settings.mode,
        item_count=n,
        passed_count=passed,
        critical_count=critical_n,
        critical_passed_count=critical_passed,
        pass_rate=pass_rate,
        critical_pass_rate=critical_rate,
        wilson_lower=interval.low,
        wilson_upper=interval.high,
        critical_lower=critical_lower,
        needed_items=need,
        critical_needed_items=critical_need,
        segments=segments(rows, settings.confidence),
        missing=missing,
        reasons=reasons,
        warnings=warnings,
        not_worse=not_worse,
        comparison=comparison,
        settings=settings,
    )


def _worse(c: PairwiseSummary) -> str:
    return (
        f"People judged this version worse than prod ({c.baseline_agent_version}): win rate "
        f"{_pct(c.candidate_win_rate)}, interval {_pct(c.low)} to {_pct(c.high)} over {c.n_pairs} pairs."
    )
