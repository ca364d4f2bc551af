"""Agreement and annotator statistics at scale: the snapshot computation and the pages.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/agreement.py

One run: migrate, provision a tenant, a rubric (a two-option choice and a 1-5 rating) and a
queue with overlap 2, then load `--labels` labels (default 1,000,000) with SQL: half as many
conversations and items, every item labeled by two of `--annotators` people, answers drawn so
that annotators agree about 80% of the time, a submitted assignment per label, 2% gold items.
Then it times, each beside a ceiling measured in the same run:

- `SELECT count(*)` of the queue's labels, and the bare fetch of the columns the snapshot
  reads (item, user, time, two answers as JSON text) through the same server-side cursor;
- `agreement_snapshot_compute` (labels read once into numpy arrays, counts in SQL, a
  200-resample bootstrap), with the growth of the process's peak RSS;
- the agreement page, the annotators page and both GET APIs through Django's test client
  (`--requests` each, after one warm-up), reading the stored snapshot.

Cleans up its tenant unless `--keep-data`; `--reuse` takes a tenant an earlier `--keep-data`
run left with the same label count.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORG = "bench-agreement"


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def load(labels: int, annotators: int, reuse: bool) -> int:
    from django.core.management import call_command
    from django.db import connection

    from bench.tenant import tenant_create
    from labeling import services
    from labeling.models import Label, Queue
    from reviewapp import services as core

    call_command("migrate", verbosity=0)
    queue = Queue.objects.filter(organization__slug=ORG).first()
    if reuse and queue is not None and Label.objects.filter(queue=queue).count() == labels:
        print(f"reused the {labels:,} labels loaded by an earlier run", flush=True)
        return queue.pk
    _cleanup()
    org, project, schema = tenant_create(slug=ORG, name="Agreement bench", notes=True)
    queue = services.queue_create(
        project=project,
        spec=services.QueueSpec(name="Bench queue", schema=schema, annotations_per_item=2),
        user=None,
    )
    users = [
        core.membership_add(organization=org, username=f"bench-agree-{i}", role="annotator").user.pk
        for i in range(annotators)
    ]
    items = labels // 2
    started = time.perf_counter()
    params = {"org": org.pk, "project": project.pk, "queue": queue.pk, "items": items}
    params |= {"version": schema.latest_version_id, "users": users, "k": annotators}
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO reviewapp_conversation (organization_id, project_id, external_id, messages, occurred_at,
                received_at, agent_version, end_user_id, tags, metadata, feedback_rating, user_rephrased,
                escalated_by_user)
            SELECT %(org)s, %(project)s, 'agree-' || g, '[]'::jsonb, now(), now(), 'v2', '', '[]'::jsonb,
                   '{}'::jsonb, NULL, false, false
            FROM generate_series(1, %(items)s) AS g
            """,
            params,
        )
        # 2% gold items; the rest completed with two labels.
        cur.execute(
            """
            INSERT INTO labeling_queueitem (organization_id, queue_id, conversation_id, status, priority,
                labels_needed, labels_done, leased_count, extra_annotations, source, sampling_rule,
                sampling_strategy, stratum, is_gold, gold_answers, final_source, created_at)
            SELECT %(org)s, %(queue)s, id, 'completed', 0, 2, 2, 0, 0, 'manual', '', 'manual', '',
                   id %% 50 = 0, CASE WHEN id %% 50 = 0 THEN '{"quality": "good"}'::jsonb END, '', now()
            FROM reviewapp_conversation WHERE project_id = %(project)s
            """,
            params,
        )
        # Two labels per item from two different annotators; each item has a hidden truth
        # (good 80%, helpfulness 1-5) and an annotator gives it 85% of the time.
        cur.execute(
            """
            CREATE TEMP TABLE bench_labels AS
            SELECT i.id AS item_id, (%(users)s::bigint[])[1 + (i.id + s.slot * (1 + i.id / %(k)s %% (%(k)s - 1)))
                                                           %% %(k)s] AS user_id,
                   jsonb_build_object(
                     'quality', CASE WHEN random() < 0.85 THEN (CASE WHEN i.id %% 5 = 0 THEN 'bad' ELSE 'good' END)
                                     ELSE (CASE WHEN random() < 0.5 THEN 'bad' ELSE 'good' END) END,
                     'helpfulness', CASE WHEN random() < 0.85 THEN 1 + i.id %% 5 ELSE 1 + floor(random() * 5)::int END
                   ) AS answers,
                   (1000 + floor(random() * 60000))::int AS time_spent_ms,
                   now() - ((i.id %% 86400) || ' seconds')::interval AS created_at
            FROM labeling_queueitem i CROSS JOIN (VALUES (0), (1)) AS s(slot)
            WHERE i.queue_id = %(queue)s
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO labeling_label (organization_id, queue_id, item_id, user_id, schema_version_id, answers,
                client_token, time_spent_ms, created_at, updated_at)
            SELECT %(org)s, %(queue)s, item_id, user_id, %(version)s, answers, '', time_spent_ms, created_at,
                   created_at
            FROM bench_labels
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO labeling_assignment (organization_id, queue_id, item_id, user_id, status, leased_at,
                lease_expires_at, finished_at, draft_answers, skip_reason)
            SELECT %(org)s, %(queue)s, item_id, user_id, 'submitted', created_at, created_at, created_at, '{}', ''
            FROM bench_labels
            """,
            params,
        )
        cur.execute("DROP TABLE bench_labels")
        for table in ("reviewapp_conversation", "labeling_queueitem", "labeling_assignment", "labeling_label"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("CHECKPOINT")
    print(f"loaded {labels:,} labels on {items:,} items in {time.perf_counter() - started:.1f}s", flush=True)
    return queue.pk


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def ceilings(queue_id: int) -> dict[str, float]:
    from django.db import connection

    from labeling import selectors
    from labeling.models import Label, Queue

    queue = Queue.objects.select_related("schema__latest_version").get(pk=queue_id)

    def count() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM labeling_label WHERE queue_id = %s", [queue_id])
            return cur.fetchone()[0]

    def fetch() -> int:
        rows = (
            Label.objects.filter(queue=queue)
            .order_by()
            .annotate(a0=selectors._AnswerJson("quality"), a1=selectors._AnswerJson("helpfulness"))
            .values_list("item_id", "user_id", "time_spent_ms", "a0", "a1")
            .iterator(chunk_size=selectors._STATS_CHUNK)
        )
        return sum(1 for _ in rows)

    def arrays() -> int:
        return len(selectors.queue_label_arrays(queue=queue).item)

    out = {}
    out["count_s"], n = timed(count, 3)
    out["fetch_s"], fetched = timed(fetch, 2)
    out["arrays_s"], coded = timed(arrays, 1)
    assert n == fetched == coded, (n, fetched, coded)
    out["labels"] = n
    return out


def snapshot(queue_id: int) -> dict[str, float]:
    from labeling import services

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, snap = timed(lambda: services.agreement_snapshot_compute(queue_id=queue_id))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    quality = snap.payload["agreement"]["questions"]["quality"]
    print(
        f"  snapshot: {snap.label_count:,} labels, {len(snap.payload['agreement']['pairs'])} pairs, "
        f"quality: agreement {quality['percent_agreement']:.3f}, Fleiss {quality['fleiss_kappa']:.3f}, "
        f"Krippendorff {quality['krippendorff_alpha']:.3f}, AC1 {quality['gwet_ac1']:.3f} "
        f"{[round(x, 3) for x in quality['gwet_ac1_ci']]}",
        flush=True,
    )
    return {"snapshot_s": seconds, "peak_rss_growth_mb": (after - before) / 1024}


def pages(queue_id: int, requests: int) -> dict[str, list[float]]:
    from django.test import Client

    from labeling.models import Queue
    from reviewapp import services as core

    queue = Queue.objects.get(pk=queue_id)
    engineer = core.membership_add(organization=queue.organization, username="bench-agree-eng", role="engineer")
    token = core.personal_token_create(user=engineer.user, organization=queue.organization).raw
    browser = Client()
    browser.force_login(engineer.user)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    urls = {
        "agreement page": (browser, f"/labeling/queues/{queue_id}/agreement"),
        "annotators page": (browser, f"/labeling/queues/{queue_id}/annotators"),
        "agreement API": (api, f"/api/v1/queues/{queue_id}/agreement"),
        "annotators API": (api, f"/api/v1/queues/{queue_id}/annotators"),
    }
    out: dict[str, list[float]] = {}
    for name, (client, url) in urls.items():
        first = client.get(url)  # warm-up: templates, connection
        assert first.status_code == 200, (url, first.status_code)
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        out[name] = times
    return out


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=40)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/agreement.py measures PostgreSQL: set DATABASE_URL=postgresql://...")
    setup_django()
    print(load_average(), flush=True)
    queue_id = load(args.labels, args.annotators, args.reuse)
    try:
        print(load_average(), flush=True)
        ceiling = ceilings(queue_id)
        print(
            f"ceilings: count(*) {ceiling['count_s'] * 1000:.0f} ms; bare fetch of the read columns "
            f"{ceiling['fetch_s']:.2f} s; the same fetch coded into arrays {ceiling['arrays_s']:.2f} s "
            f"({ceiling['labels']:,} labels)",
            flush=True,
        )
        snap = snapshot(queue_id)
        print(
            f"snapshot compute: {snap['snapshot_s']:.2f} s (target < 30 s), "
            f"peak RSS +{snap['peak_rss_growth_mb']:.0f} MB",
            flush=True,
        )
        timings = pages(queue_id, args.requests)
        worst = 0.0
        for name, times in timings.items():
            p50, high = statistics.median(times), max(times)
            worst = max(worst, p50)
            print(f"{name}: p50 {p50:.1f} ms, max {high:.1f} ms over {len(times)} requests", flush=True)
        print(load_average(), flush=True)
        verdict = "PASS" if snap["snapshot_s"] < 30 and worst < 300 else "MISS"
        print(
            f"SUMMARY labels={ceiling['labels']:,} snapshot_s={snap['snapshot_s']:.2f} (<30) "
            f"worst_page_p50_ms={worst:.1f} (<300) -> {verdict}"
        )
    finally:
        if not args.keep_data:
            _cleanup()


def _cleanup() -> None:
    from bench.tenant import tenant_delete

    tenant_delete(ORG)


if __name__ == "__main__":
    main()
