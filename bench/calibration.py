"""Judge calibration over a million judge/human pairs: the pure statistics on compact arrays.

    .venv/bin/python bench/calibration.py [--pairs 1000000] [--bootstrap 1000] [--repeat 3]

The issue's target is 3 s for the whole calibration of 1,000,000 pairs, database included; the
database part (aggregating pairs into arrays) comes with the calibration models. This measures
what follows it: `evaluation/stats.py` on arrays already in memory, every figure the
calibration API answers, with 1,000-resample bootstrap intervals:

- binary_agreement: accuracy, kappa, TPR, TNR, prevalence, confusion;
- confidence_calibration: ECE, Brier, the 10-bin reliability table;
- score_agreement: Spearman, Kendall, MAE (judge scores 0-1 in hundredths, human ratings 1-5);
- trust_threshold; pass_rate_estimates (judge verdicts on 1,000,000 items, the pairs as labels).

Each is timed unweighted and with Horvitz-Thompson weights from uncertainty sampling (the
inclusion probabilities are continuous, so the weights are too). Best of --repeat runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation import stats


def pairs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic pairs: 85% of answers pass; the judge is right about 90% of the time and less
    sure when it is wrong; confidences and scores in hundredths, human ratings on 1-5."""
    rng = np.random.default_rng(seed)
    human = rng.random(n) < 0.85
    right = rng.random(n) < 0.9
    judge = np.where(right, human, ~human)
    confidence = np.round(np.where(right, rng.uniform(0.6, 1.0, n), rng.uniform(0.5, 0.8, n)), 2)
    rating = np.clip(np.where(human, rng.integers(3, 6, n), rng.integers(1, 4, n)), 1, 5).astype(np.float64)
    score = np.round(np.clip((rating - 1) / 4 + rng.normal(0, 0.15, n), 0, 1), 2)
    probability = stats.uncertainty_sampling_probability(confidence, base_rate=0.05)
    return {
        "judge": judge,
        "human": human,
        "confidence": confidence,
        "right": right,
        "score": score,
        "rating": rating,
        "weights": 1 / probability,
    }


def best_of(repeat: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    data = pairs(args.pairs)
    print(f"generated {args.pairs:,} pairs in {time.perf_counter() - started:.2f}s", flush=True)
    b = args.bootstrap

    figures: dict[str, Callable[[np.ndarray | None], Any]] = {
        "binary_agreement": lambda w: stats.binary_agreement(data["judge"], data["human"], w, bootstrap=b),
        "confidence_calibration": lambda w: stats.confidence_calibration(
            data["confidence"], data["right"], w, bootstrap=b
        ),
        "score_agreement": lambda w: stats.score_agreement(data["score"], data["rating"], w, bootstrap=b),
        "trust_threshold": lambda _w: stats.trust_threshold(data["confidence"], data["right"]),
        "pass_rate_estimates": lambda w: stats.pass_rate_estimates(
            data["judge"], data["judge"], data["human"], None if w is None else 1 / w, bootstrap=b
        ),
    }
    totals = {"unweighted": 0.0, "weighted": 0.0}
    print(f"{'':24s} {'unweighted':>11s} {'weighted':>9s}")
    for name, work in figures.items():
        plain = best_of(args.repeat, lambda work=work: work(None))
        weighted = best_of(args.repeat, lambda work=work: work(data["weights"]))
        totals["unweighted"] += plain
        totals["weighted"] += weighted
        print(f"{name:24s} {plain:10.3f}s {weighted:8.3f}s", flush=True)
    print(f"{'calibration (all above)':24s} {totals['unweighted']:10.3f}s {totals['weighted']:8.3f}s")
    result = stats.binary_agreement(data["judge"], data["human"], data["weights"], bootstrap=b)
    kappa = result["cohen_kappa"]
    print(f"check: weighted kappa {kappa.value:.4f} [{kappa.interval.low:.4f}, {kappa.interval.high:.4f}]")


if __name__ == "__main__":
    main()
