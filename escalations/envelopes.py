"""Confidence envelopes from what approvers decided. Pure (numpy and statsmodels, no ORM).

Input: for one action type, the escalated actions people decided, each with the agent's
confidence and whether it was approved as asked. An approval with edited args is NOT an
approval here: the args the agent proposed were not the ones run, so auto-approving them would
have been wrong. Expired actions (nobody decided) are not in the sample: no one judged them.

- The reliability table: confidence bins (tenths; 1.0 falls in the last), each with n, the
  approval rate and its Wilson 95% interval; actions without a confidence in their own row
  (a policy never lets them through `confidence_at_least`).
- The threshold: the lowest t on a 0.01 grid such that, among the sampled actions with
  confidence >= t, the Wilson lower bound of the approval rate is at least `target` (default
  0.99). It is judged on the whole set a rule `confidence_at_least: t` would let through, which
  is what auto-approving would risk; a sparse high bin does not veto a lower threshold whose
  set as a whole qualifies. None ("not enough data") when no t qualifies: with no rejection at
  all, Wilson needs n >= z^2 p / (1 - p) approvals (381 for 99%, 73 for 95%) before any t does.

Wilson's interval is statsmodels' `proportion_confint(method="wilson")`, vectorised over every
candidate threshold at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_TARGET = 0.99
ALPHA = 0.05  # 95% intervals
BINS = 10
GRID = 100  # thresholds 0.00, 0.01, ..., 1.00


def wilson_interval(successes: Any, n: Any, *, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval(s) for `successes` out of `n` (arrays or numbers); NaN where n is 0."""
    # Imported here: statsmodels takes about a second to import, which web workers that never
    # open the envelopes should not pay at start-up.
    from statsmodels.stats.proportion import proportion_confint

    k = np.asarray(successes, dtype=float)
    total = np.asarray(n, dtype=float)
    safe = np.where(total > 0, total, 1.0)
    low, high = proportion_confint(k, safe, alpha=alpha, method="wilson")
    low = np.where(total > 0, low, np.nan)
    high = np.where(total > 0, high, np.nan)
    return np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)


def samples_needed(target: float, *, alpha: float = ALPHA) -> int:
    """The fewest decisions, all approvals, whose Wilson lower bound reaches `target`:
    n / (n + z^2) >= target, so n >= z^2 target / (1 - target)."""
    from scipy.stats import norm

    if target >= 1:
        return 0  # never reachable; callers show "not enough data"
    z = float(norm.ppf(1 - alpha / 2))
    return math.ceil(z * z * target / (1 - target) - 1e-9)


@dataclass(frozen=True)
class Bin:
    low: float | None  # None: the actions without a confidence
    high: float | None
    n: int
    approved: int
    rate: float | None
    wilson_low: float | None
    wilson_high: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "confidence_from": self.low,
            "confidence_to": self.high,
            "n": self.n,
            "approved": self.approved,
            "approval_rate": self.rate,
            "wilson_low": self.wilson_low,
            "wilson_high": self.wilson_high,
        }


@dataclass(frozen=True)
class Threshold:
    confidence_at_least: float
    n: int  # sampled decisions at or above it
    approved: int
    rate: float
    wilson_low: float

    def as_json(self) -> dict[str, Any]:
        return {
            "confidence_at_least": self.confidence_at_least,
            "n": self.n,
            "approved": self.approved,
            "approval_rate": self.rate,
            "wilson_low": self.wilson_low,
        }


@dataclass(frozen=True)
class Envelope:
    action: str
    target: float
    n: int  # decisions sampled (with and without a confidence)
    bins: tuple[Bin, ...]
    threshold: Threshold | None
    samples_needed: int


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def reliability_table(confidence: np.ndarray, approved: np.ndarray, *, bins: int = BINS) -> tuple[Bin, ...]:
    """Per confidence bin [i/bins, (i+1)/bins), the last closed at 1.0; the NaN confidences
    (none given) in a last row of their own when there are any."""
    known = ~np.isnan(confidence)
    index = np.clip(np.floor(confidence[known] * bins).astype(int), 0, bins - 1)
    n = np.bincount(index, minlength=bins)
    k = np.bincount(index, weights=approved[known].astype(float), minlength=bins).astype(int)
    low, high = wilson_interval(k, n)
    out = [
        Bin(
            low=round(i / bins, 6),
            high=round((i + 1) / bins, 6),
            n=int(n[i]),
            approved=int(k[i]),
            rate=_round(k[i] / n[i]) if n[i] else None,
            wilson_low=_round(low[i]),
            wilson_high=_round(high[i]),
        )
        for i in range(bins)
    ]
    missing = int((~known).sum())
    if missing:
        k_missing = int(approved[~known].sum())
        lo, hi = wilson_interval(k_missing, missing)
        out.append(
            Bin(
                low=None,
                high=None,
                n=missing,
                approved=k_missing,
                rate=_round(k_missing / missing),
                wilson_low=_round(float(lo)),
                wilson_high=_round(float(hi)),
            )
        )
    return tuple(out)


def threshold_find(
    confidence: np.ndarray, approved: np.ndarray, *, target: float = DEFAULT_TARGET, grid: int = GRID
) -> Threshold | None:
    """The lowest t in {0, 1/grid, ..., 1} whose set {confidence >= t} has a Wilson lower bound
    of at least `target`; None when none has."""
    known = ~np.isnan(confidence)
    conf = confidence[known]
    ok = approved[known].astype(float)
    order = np.argsort(conf, kind="stable")
    conf, ok = conf[order], ok[order]
    # Exactly the comparison a rule makes (`confidence >= t` on the float t), per candidate.
    candidates = np.array([round(i / grid, 10) for i in range(grid + 1)])
    start = np.searchsorted(conf, candidates, side="left")
    suffix_k = np.concatenate([np.cumsum(ok[::-1])[::-1], [0.0]])
    n = len(conf) - start
    k = suffix_k[start]
    low, _ = wilson_interval(k, n)
    qualifies = (n > 0) & (np.nan_to_num(low, nan=-1.0) >= target)
    hits = np.flatnonzero(qualifies)
    if hits.size == 0:
        return None
    i = int(hits[0])
    return Threshold(
        confidence_at_least=float(candidates[i]),
        n=int(n[i]),
        approved=int(k[i]),
        rate=float(round(k[i] / n[i], 6)),
        wilson_low=float(round(low[i], 6)),
    )


def envelope_compute(
    action: str, confidence: list[float | None], approved: list[bool], *, target: float = DEFAULT_TARGET
) -> Envelope:
    """The reliability table and threshold for one action type from its decided escalations."""
    if len(confidence) != len(approved):
        raise ValueError("confidence and approved differ in length")
    conf = np.array([np.nan if c is None else float(c) for c in confidence], dtype=float)
    ok = np.array(approved, dtype=bool)
    return Envelope(
        action=action,
        target=target,
        n=len(conf),
        bins=reliability_table(conf, ok),
        threshold=threshold_find(conf, ok, target=target),
        samples_needed=samples_needed(target),
    )


def suggested_rule(action: str, threshold: Threshold, *, target: float) -> dict[str, Any]:
    """The rule an admin may add (first in the policy) to auto-approve inside the envelope.
    Only shown: nothing applies it."""
    # The rule's `action` is a glob: the name is matched literally, whatever it holds.
    literal = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in action)
    return {
        "name": f"auto-approve {action}"[:100],
        "if": {"action": literal, "confidence_at_least": threshold.confidence_at_least},
        "then": "approve",
        "reason": (
            f"Inside the confidence envelope: approvers approved {threshold.approved} of {threshold.n} "
            f"at confidence >= {threshold.confidence_at_least} (Wilson 95% lower bound "
            f"{threshold.wilson_low:.4f} >= {target})"
        )[:500],
    }


__all__ = [
    "ALPHA",
    "BINS",
    "DEFAULT_TARGET",
    "GRID",
    "Bin",
    "Envelope",
    "Threshold",
    "envelope_compute",
    "reliability_table",
    "samples_needed",
    "suggested_rule",
    "threshold_find",
    "wilson_interval",
]
