"""Does sampling keep up with ingestion? Time the sampling task over freshly ingested batches.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/sampling.py

Ingests `--total` conversations (like bench/ingest.py's: judge scores, tags, feedback) through
the ingest service with `--queues` active sampling queues whose rules mix a uniform rate,
feedback signals, low judge scores and a per-rule daily quota, then times
`labeling.services.conversations_sample` — what the Celery task `sampling_batch_process` runs
for each recorded batch — per batch of `--batch`. Prints conversations sampled per second for one worker process;
the ingest target is 5,000/s, so one worker at or above that keeps up (add workers to scale).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORG = "bench-sampling"

RULE_SETS = [
    [{"rate": 0.05}, {"rate": 1.0, "if": {"feedback_rating": "down"}}],
    [{"rate": 0.5, "if": {"judge": "gpt-judge", "criterion": "helpfulness", "score_below": 0.4}, "max_per_day": 500}],
    [{"rate": 0.2, "if": {"tags_any": ["refund", "cancellation"]}}, {"rate": 1.0, "if": {"user_rephrased": True}}],
    [{"rate": 0.1, "if": {"agent_version": "2025.01.1"}}, {"rate": 0.3, "if": {"confidence_below": 0.6}}],
    [{"rate": 0.02, "if": {"metadata": {"channel": "web"}}}],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=5)
    parser.add_argument("--cprofile", action="store_true", help="print the top functions of the sampling step")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from bench.ingest import conversation
    from labeling import rubric, services
    from labeling.models import QueueItem
    from reviewapp import hooks
    from reviewapp import services as core
    from reviewapp.ingest_schemas import ConversationIn

    call_command("migrate", verbosity=0)
    _cleanup()
    org = core.organization_create(slug=ORG)
    project = core.project_create(organization=org, slug="support")
    schema = services.label_schema_create(
        project=project,
        rubric_in=rubric.Rubric.model_validate(
            {"name": "r", "questions": [{"key": "q", "type": "boolean", "label": "ok?"}]}
        ),
        user=None,
    )
    for i in range(args.queues):
        services.queue_create(
            project=project,
            spec=services.QueueSpec(name=f"q{i}", schema=schema, sampling=tuple(RULE_SETS[i % len(RULE_SETS)])),
            user=None,
        )
    # Measure the sampling step alone: detach the on-ingest hook while loading.
    receivers = list(hooks._conversations_created)
    hooks._conversations_created.clear()
    rng = random.Random(1)
    now = dt.datetime.now(dt.UTC)
    batches: list[list[int]] = []
    for start in range(0, args.total, args.batch):
        payloads = [
            ConversationIn.model_validate(conversation(rng, f"s-{i}", now - dt.timedelta(seconds=i)))
            for i in range(start, min(args.total, start + args.batch))
        ]
        results = core.conversations_ingest(project=project, conversations=payloads)
        batches.append([r.id for r in results])
    hooks._conversations_created.extend(receivers)
    profiler = cProfile.Profile() if args.cprofile else None
    started = time.perf_counter()
    per_batch = []
    for ids in batches:
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        services.conversations_sample(project_id=project.pk, conversation_ids=ids)
        if profiler:
            profiler.disable()
        per_batch.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    items = QueueItem.objects.filter(queue__project=project).count()
    per_batch.sort()
    rate = args.total / elapsed
    p50_ms = per_batch[len(per_batch) // 2] * 1000
    print(
        f"sampled {args.total:,} conversations against {args.queues} queues in {elapsed:.2f}s: "
        f"{rate:,.0f} conv/s in one process; batch of {args.batch}: p50 {p50_ms:.0f} ms, "
        f"max {per_batch[-1] * 1000:.0f} ms; {items:,} items created"
    )
    print(f"SUMMARY sampling_conv_per_s={rate:.0f} target>=5000 -> {'PASS' if rate >= 5000 else 'MISS'}")
    _cleanup()


def _cleanup() -> None:
    from bench.tenant import tenant_delete

    tenant_delete(ORG)


if __name__ == "__main__":
    main()
