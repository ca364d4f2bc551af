"""Claim latency with a million pending items: annotators claiming and labeling over HTTP.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/claim.py

One run: migrate, provision a tenant, a rubric and a queue, bulk-load `--items` conversations
and pending items with SQL (generate_series: seconds, not minutes), start gunicorn on a free
loopback port, then let `--annotators` threads each loop claim → label through the real API for
`--seconds`, with `--think-ms` of pause between label and next claim (people read before they
click; 0 measures saturation). Prints claim and label latency percentiles, throughput, and
checks that no item was handed to two people (overlap 1). Bounded in time and count; cleans up
its tenant on the way out unless `--keep-data`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from harness import free_port, percentile, setup_django

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ORG = "bench-claim"


def reset(items: int, annotators: int) -> tuple[int, list[str]] | None:
    """Reuse a tenant a previous `--keep-data` run loaded with the same item count: drop its
    labels, leases and events and reopen the items it touched (seconds, not a reload)."""
    from django.db import connection

    from labeling.models import Queue, QueueItem

    queue = Queue.objects.filter(organization__slug=ORG).first()
    if queue is None or QueueItem.objects.filter(queue=queue).count() != items:
        return None
    with connection.cursor() as cur:
        for table in ("labeling_itemevent", "labeling_label", "labeling_assignment"):
            cur.execute(f"DELETE FROM {table} WHERE organization_id = %s", [queue.organization_id])  # noqa: S608
        cur.execute(
            "UPDATE labeling_queueitem SET status = 'open', labels_done = 0, leased_count = 0, labels_needed = 1,"
            " final_answers = NULL, final_source = '', completed_at = NULL"
            " WHERE queue_id = %s AND (status <> 'open' OR labels_done > 0 OR leased_count > 0)",
            [queue.pk],
        )
        for table in ("labeling_queueitem", "labeling_assignment", "labeling_label", "labeling_itemevent"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("CHECKPOINT")
    print(f"reused the {items:,} items loaded by an earlier run", flush=True)
    return queue.pk, annotator_tokens(queue.organization, annotators)


def annotator_tokens(organization, annotators: int) -> list[str]:
    """A fresh personal token for each bench annotator (created on the first run)."""
    from reviewapp import services as core

    tokens = []
    for i in range(annotators):
        membership = core.membership_add(organization=organization, username=f"bench-annotator-{i}", role="annotator")
        tokens.append(core.personal_token_create(user=membership.user, organization=organization).raw)
    return tokens


def load(items: int, annotators: int, reuse: bool = False) -> tuple[int, list[str]]:
    from django.core.management import call_command
    from django.db import connection

    from bench.tenant import tenant_create
    from labeling import services

    call_command("migrate", verbosity=0)
    if reuse and (found := reset(items, annotators)):
        return found
    _cleanup()
    org, project, schema = tenant_create(slug=ORG, name="Claim bench")
    queue = services.queue_create(
        project=project, spec=services.QueueSpec(name="Bench queue", schema=schema), user=None
    )
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO reviewapp_conversation (organization_id, project_id, external_id, messages, occurred_at,
                received_at, agent_version, end_user_id, tags, metadata, feedback_rating, user_rephrased,
                escalated_by_user)
            SELECT %s, %s, 'bench-' || g,
                   jsonb_build_array(
                     jsonb_build_object('role', 'user', 'content', 'Where is my refund for booking ' || g || '?'),
                     jsonb_build_object('role', 'assistant',
                                        'content', 'Your refund of $' || (g %% 900) || ' was issued.')),
                   now() - (g || ' seconds')::interval, now(), 'v2', 'user-' || (g %% 5000), '["refund"]'::jsonb,
                   '{}'::jsonb, NULL, false, false
            FROM generate_series(1, %s) AS g
            """,
            [org.pk, project.pk, items],
        )
        cur.execute(
            """
            INSERT INTO labeling_queueitem (organization_id, queue_id, conversation_id, status, priority,
                labels_needed, labels_done, leased_count, extra_annotations, source, sampling_rule,
                sampling_strategy, stratum, is_gold, final_source, created_at)
            SELECT %s, %s, id, 'open', 0, 1, 0, 0, 0, 'manual', '', 'manual', '', false, '', now()
            FROM reviewapp_conversation WHERE project_id = %s
            """,
            [org.pk, queue.pk, project.pk],
        )
    # Settle the freshly loaded tables before measuring: otherwise autovacuum and the checkpoint
    # after a million-row load take one of the two cores in the middle of the run.
    with connection.cursor() as cur:
        for table in ("reviewapp_conversation", "labeling_queueitem", "labeling_assignment", "labeling_label"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("CHECKPOINT")
    print(f"loaded {items:,} conversations and items in {time.perf_counter() - started:.1f}s", flush=True)
    return queue.pk, annotator_tokens(org, annotators)


def start_gunicorn(port: int, workers: int, threads: int, worker_class: str) -> subprocess.Popen:
    env = dict(os.environ, DEBUG="0", LOG_LEVEL="WARNING")
    cmd = [str(VENV_BIN / "gunicorn"), "reviewapp.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    cmd += ["--worker-class", worker_class, "--log-level", "warning", "--backlog", "256"]
    if worker_class == "gthread":
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start")


def annotator(
    port: int, queue_id: int, token: str, start_at: float, stop_at: float, think_ms: int, warmup: int
) -> dict:
    """One annotator in its own process (so no client shares a GIL with another and the
    latency measured is the server's, not the load generator's): claim, label, pause, repeat.
    Uses the standard library's http.client: a few hundred microseconds of client CPU per
    request, where httpx took a few milliseconds on these two shared cores."""
    import http.client
    import json

    rng = random.Random(token)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    claims: list[float] = []
    labels: list[float] = []
    items: list[int] = []
    errors: list[str] = []

    def post(path: str, body: bytes) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, data, (time.perf_counter() - t0) * 1000

    # Warm-up, unmeasured: a gunicorn worker's first claim and label open its database
    # connection and prepare its statements. With every annotator doing a few rounds, every
    # worker has served both before the clock starts (8 workers: a miss is under 1% likely).
    for _ in range(warmup):
        code, data, _ms = post(f"/api/v1/queues/{queue_id}/claim", b"")
        if code != 200:
            break
        item = json.loads(data)["id"]
        post(f"/api/v1/items/{item}/labels", b'{"answers": {"quality": "good", "helpfulness": 4}}')
    time.sleep(max(0.0, start_at - time.time()))
    # Spread the first claims over one think time, as people do not all click at once.
    time.sleep(think_ms / 1000 * rng.random())
    while time.time() < stop_at:
        code, data, ms = post(f"/api/v1/queues/{queue_id}/claim", b"")
        claims.append(ms)
        if code == 204:
            break
        if code != 200:
            errors.append(f"claim {code}: {data[:200]!r}")
            break
        item = json.loads(data)["id"]
        items.append(item)
        code, data, ms = post(f"/api/v1/items/{item}/labels", b'{"answers": {"quality": "good", "helpfulness": 4}}')
        labels.append(ms)
        if code != 201:
            errors.append(f"label {code}: {data[:200]!r}")
            break
        if think_ms:
            # Jittered (0.5x-1.5x) so the annotators drift apart instead of clicking in step.
            time.sleep(think_ms / 1000 * rng.uniform(0.5, 1.5))
    conn.close()
    return {"claims": claims, "labels": labels, "handed": items, "errors": errors}


def run(port: int, queue_id: int, tokens: list[str], seconds: float, think_ms: int, warmup: int) -> dict:
    import multiprocessing

    start_at = time.time() + 5  # time for every process to start and warm up
    stop_at = start_at + seconds
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(tokens)) as pool:
        parts = pool.starmap(annotator, [(port, queue_id, t, start_at, stop_at, think_ms, warmup) for t in tokens])
    elapsed = time.time() - start_at
    merged: dict = {"claims": [], "labels": [], "handed": [], "errors": [], "elapsed": elapsed}
    for part in parts:
        for key in ("claims", "labels", "handed", "errors"):
            merged[key].extend(part[key])
    return merged


def check_no_double_handing(queue_id: int) -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM (SELECT item_id FROM labeling_label WHERE queue_id = %s"
            " GROUP BY item_id HAVING count(*) > 1) x",
            [queue_id],
        )
        doubled = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM labeling_label WHERE queue_id = %s", [queue_id])
        total = cur.fetchone()[0]
    return doubled, total


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would be noise
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think-ms", type=int, default=1000, help="pause between a label and the next claim")
    parser.add_argument("--workers", type=int, default=8, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured claim+label rounds per annotator first")
    parser.add_argument("--keep-data", action="store_true", help="leave the tenant for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="reset and reuse a tenant left by --keep-data")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/claim.py measures PostgreSQL: set DATABASE_URL=postgresql://...")
    setup_django()
    queue_id, tokens = load(args.items, args.annotators, reuse=args.reuse)
    port = free_port()
    proc = start_gunicorn(port, args.workers, args.threads, args.worker_class)
    try:
        result = run(port, queue_id, tokens, args.seconds, args.think_ms, args.warmup)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    doubled, total = check_no_double_handing(queue_id)
    c, lab = result["claims"], result["labels"]
    print(
        f"annotators={args.annotators} items={args.items:,} think={args.think_ms}ms "
        f"gunicorn={args.workers} {args.worker_class}"
        f"{'x' + str(args.threads) if args.worker_class == 'gthread' else ''} seconds={result['elapsed']:.1f}"
    )
    print(
        f"claims: n={len(c)} p50={percentile(c, 50):.1f}ms p95={percentile(c, 95):.1f}ms "
        f"p99={percentile(c, 99):.1f}ms max={max(c, default=float('nan')):.1f}ms "
        f"mean={statistics.fmean(c) if c else 0:.1f}ms"
    )
    print(
        f"labels: n={len(lab)} p50={percentile(lab, 50):.1f}ms p95={percentile(lab, 95):.1f}ms "
        f"p99={percentile(lab, 99):.1f}ms"
    )
    print(
        f"throughput: {len(lab) / result['elapsed']:.0f} labeled items/s; labels stored {total} (with warm-up); "
        f"items handed to two people: {doubled}; errors: {len(result['errors'])}"
    )
    for e in result["errors"][:5]:
        print("  error:", e)
    verdict = "PASS" if c and percentile(c, 99) < 25 and doubled == 0 and not result["errors"] else "MISS"
    print(f"SUMMARY claim_p99_ms={percentile(c, 99):.1f} target<25 double_handed={doubled} -> {verdict}")
    if not args.keep_data:
        from labeling.models import Label, LabelSchema, Queue

        # Labels and queues protect their schema versions: delete them first, then the tenant.
        Label.objects.filter(organization__slug=ORG).delete()
        Queue.objects.filter(organization__slug=ORG).delete()
        LabelSchema.objects.filter(organization__slug=ORG).delete()
        _cleanup()


def _cleanup() -> None:
    from bench.tenant import tenant_delete

    tenant_delete(ORG)


if __name__ == "__main__":
    main()
