"""Judge calibration over a million judge/human pairs: the pure statistics on compact arrays,
and (with --db) the calibration selector end to end on PostgreSQL.

    .venv/bin/python bench/calibration.py [--pairs 1000000] [--bootstrap 1000] [--repeat 3]
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench \
        .venv/bin/python bench/calibration.py --db [--pairs 1000000] [--repeat 3] [--keep-data] [--reuse]

The issue's target is 3 s for the whole calibration of 1,000,000 pairs, database included.
`--db` migrates, provisions a tenant whose rubric question names the judge's criterion, loads
`--pairs` conversations, queue items, judge scores and calibration pairs with generate_series
(as bench/claim.py loads items), then times `evaluation.selectors.calibration_report` (the
pairs read from the database as arrays, every figure with its bootstrap, the judge-only pass
rate's SQL count, the weekly trend) and prints the figures. Without `--db` it measures the
pure part: `evaluation/stats.py` on arrays already in memory, every figure the calibration API
answers, with 1,000-resample bootstrap intervals:

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


ORG = "bench-calibration"


def _setup_django() -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    import django

    django.setup()


def _cleanup() -> None:
    from bench.tenant import tenant_delete

    tenant_delete(ORG)


def _loaded(n: int) -> Any:
    """The bench tenant left by an earlier --keep-data run, if it holds exactly `n` pairs."""
    from evaluation.models import CalibrationPair
    from reviewapp.models import Organization, Project

    org = Organization.objects.filter(slug=ORG).first()
    project = org and Project.objects.filter(organization=org).first()
    if project and CalibrationPair.objects.filter(project=project).count() == n:
        return org, project
    return None


def _step(what: str, started: float) -> None:
    print(f"  {what} in by {time.perf_counter() - started:.1f}s", flush=True)


def db_load(n: int, *, reuse: bool = False) -> Any:
    """A tenant with `n` judged, labelled conversations and their pairs, loaded in SQL. The same
    shape as `pairs()`: humans pass 85%, the judge is right 90% of the time and less sure when
    wrong, confidences in hundredths; inclusion probabilities from uncertainty sampling at a
    5% base rate (so the estimates are weighted); labelled over 12 weeks."""
    from django.core.management import call_command
    from django.db import connection

    from bench.tenant import tenant_create
    from labeling import rubric
    from labeling import services as labeling

    call_command("migrate", verbosity=0)
    if reuse and (found := _loaded(n)):
        print(f"reusing the {n:,} pairs already loaded", flush=True)
        return found
    _cleanup()
    org, project, _ = tenant_create(slug=ORG, name="Calibration bench")
    schema = labeling.label_schema_create(
        project=project,
        rubric_in=rubric.Rubric.model_validate(
            {
                "name": "Correctness",
                "questions": [
                    {
                        "key": "quality",
                        "type": "single_choice",
                        "label": "Was the answer right?",
                        "options": ["good", "bad"],
                        "passing_options": ["good"],
                        "judge_criterion": "correctness",
                        "judge_pass_labels": ["pass"],
                    }
                ],
            }
        ),
        user=None,
    )
    queue = labeling.queue_create(
        project=project, spec=labeling.QueueSpec(name="Bench queue", schema=schema), user=None
    )
    started = time.perf_counter()
    # One statement per transaction (autocommit), not one transaction for the whole load: the
    # foreign keys are DEFERRABLE INITIALLY DEFERRED, so one transaction queued every row's check
    # (five per pair) until COMMIT, which took minutes at 200,000 pairs. Per statement, each
    # INSERT ... SELECT checks its own rows when it commits. The per-conversation draws live in an
    # unlogged table dropped at the end.
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_draw")
        cur.execute(
            """
            INSERT INTO reviewapp_conversation (organization_id, project_id, external_id, messages, occurred_at,
                received_at, agent_version, end_user_id, tags, metadata, feedback_rating, user_rephrased,
                escalated_by_user)
            SELECT %s, %s, 'cal-' || g, '[]'::jsonb, now() - (g || ' seconds')::interval, now(), 'v2',
                   'user-' || (g %% 5000), '[]'::jsonb, '{}'::jsonb, NULL, false, false
            FROM generate_series(1, %s) AS g
            """,
            [org.pk, project.pk, n],
        )
        _step("conversations", started)
        # Per conversation, drawn once: human verdict, whether the judge is right, its confidence.
        cur.execute(
            """
            CREATE UNLOGGED TABLE bench_draw AS
            SELECT id AS conversation_id, h, r,
                   round((CASE WHEN r THEN 0.6 + 0.4 * random() ELSE 0.5 + 0.3 * random() END)::numeric, 2)::float8
                       AS c,
                   row_number() OVER (ORDER BY id) AS k
            FROM (SELECT id, random() < 0.85 AS h, random() < 0.9 AS r
                  FROM reviewapp_conversation WHERE project_id = %s) AS d
            """,
            [project.pk],
        )
        cur.execute(
            """
            INSERT INTO reviewapp_judgescore (conversation_id, judge, judge_version, criterion, score, label,
                confidence, reasoning, created_at)
            SELECT conversation_id, 'gpt', 'v1', 'correctness', NULL,
                   CASE WHEN h = r THEN 'pass' ELSE 'fail' END, c, '', now()
            FROM bench_draw
            """
        )
        _step("judge scores", started)
        cur.execute(
            """
            INSERT INTO labeling_queueitem (organization_id, queue_id, conversation_id, status, priority,
                labels_needed, labels_done, leased_count, extra_annotations, source, sampling_rule,
                sampling_strategy, stratum, is_gold, final_source, created_at, inclusion_probability)
            SELECT %s, %s, conversation_id, 'completed', 0, 1, 1, 0, 0, 'manual', '', 'manual', '', false, '',
                   now(), 0.05 * (0.2 + 0.8 * (1 - c) / 0.25)
            FROM bench_draw
            """,
            [org.pk, queue.pk],
        )
        _step("queue items", started)
        cur.execute(
            """
            INSERT INTO evaluation_calibrationpair (organization_id, project_id, kind, conversation_id,
                queue_item_id, action_id, judge, judge_version, criterion, question_key, judge_score, judge_label,
                judge_confidence, judge_pass, human_pass, human_answer, human_score, inclusion_probability,
                agent_version, labeled_at, updated_at)
            SELECT %s, %s, 'judge', d.conversation_id, i.id, NULL, 'gpt', 'v1', 'correctness', 'quality', NULL,
                   CASE WHEN d.h = d.r THEN 'pass' ELSE 'fail' END, d.c, d.h = d.r, d.h,
                   to_jsonb(CASE WHEN d.h THEN 'good' ELSE 'bad' END), NULL, i.inclusion_probability, 'v2',
                   timestamptz '2026-09-07' + (d.k * interval '84 days') / %s, now()
            FROM bench_draw d JOIN labeling_queueitem i ON i.conversation_id = d.conversation_id AND i.queue_id = %s
            """,
            [org.pk, project.pk, n, queue.pk],
        )
        _step("pairs", started)
        cur.execute("DROP TABLE bench_draw")
    with connection.cursor() as cur:
        for table in (
            "reviewapp_conversation",
            "reviewapp_judgescore",
            "labeling_queueitem",
            "evaluation_calibrationpair",
        ):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("CHECKPOINT")
    print(f"loaded {n:,} conversations, scores, items and pairs in {time.perf_counter() - started:.1f}s", flush=True)
    return org, project


def db_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    _setup_django()
    from django.db import connection, reset_queries

    from evaluation import selectors

    if connection.vendor != "postgresql":
        raise SystemExit("--db needs DATABASE_URL pointing at PostgreSQL")
    org, project = db_load(args.pairs, reuse=args.reuse)
    try:
        times, report = [], None
        for _ in range(args.repeat):
            reset_queries()
            started = time.perf_counter()
            report = selectors.calibration_report(organization=org, project=project, filters=selectors.Filters())
            times.append(time.perf_counter() - started)
        assert report is not None
        group = report["judges"][0]
        b = group["binary"]
        print(
            f"calibration_report over {group['n']:,} pairs: best {min(times):.2f}s, all {[round(t, 2) for t in times]}"
        )
        print(
            f"  kappa {b['cohen_kappa']['value']:.4f} [{b['cohen_kappa']['interval']['low']:.4f}, "
            f"{b['cohen_kappa']['interval']['high']:.4f}]  TPR {b['tpr']['value']:.4f}  TNR {b['tnr']['value']:.4f}"
        )
        ppi = group["pass_rate"]["ppi"]
        print(
            f"  pass rate: judge-only {group['pass_rate']['judge_only']['value']:.4f}, "
            f"PPI {ppi['value']:.4f} [{ppi['interval']['low']:.4f}, {ppi['interval']['high']:.4f}] "
            f"({group['pass_rate']['method_used']}); ECE {group['confidence']['ece']['value']:.4f}; "
            f"trust >= {group['trust']['threshold'] if group['trust'] else None}; {len(group['trend'])} weeks; "
            f"status {group['status']}"
        )
    finally:
        if not args.keep_data:
            _cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", action="store_true", help="load pairs into PostgreSQL and time the selector")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="with --db: reuse pairs kept by --keep-data")
    args = parser.parse_args()
    if args.db:
        db_main(args)
        return
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
