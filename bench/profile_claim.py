"""Where a claim and a label spend their time, in process, on the tenant `bench/claim.py
--keep-data` leaves behind (a million pending items).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/profile_claim.py

Runs `--rounds` sequential claim → label pairs through Django's full stack (test client: URL
routing, middleware, authentication, views, serializers; no socket, no gunicorn) as one
annotator, and prints per-request wall time, CPU time and query count. `--cprofile` prints the
top functions by cumulative time. The labels it makes stay until the next `bench/claim.py --reuse`
resets the tenant.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORG = "bench-claim"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ["DEBUG"] = "0"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import gc

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from labeling.models import Queue
    from reviewapp import services as core

    queue = Queue.objects.filter(organization__slug=ORG).first()
    if queue is None:
        raise SystemExit("run bench/claim.py --keep-data first")
    membership = core.membership_add(organization=queue.organization, username="bench-profiler", role="annotator")
    token = core.personal_token_create(user=membership.user, organization=queue.organization).raw
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = '{"answers": {"quality": "good", "helpfulness": 4}}'

    def one_round(timings: dict[str, list[tuple[float, float, int]]]) -> None:
        for kind in ("claim", "label"):
            with CaptureQueriesContext(connection) as q:
                w0, c0 = time.perf_counter(), time.process_time()
                if kind == "claim":
                    r = client.post(f"/api/v1/queues/{queue.pk}/claim")
                    assert r.status_code == 200, r.content
                    item = r.json()["id"]
                else:
                    r = client.post(f"/api/v1/items/{item}/labels", body, content_type="application/json")
                    assert r.status_code == 201, r.content
                w1, c1 = time.perf_counter(), time.process_time()
            timings[kind].append(((w1 - w0) * 1000, (c1 - c0) * 1000, len(q.captured_queries)))

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)  # as gunicorn.conf.py does
    warm: dict[str, list] = {"claim": [], "label": []}
    for _ in range(10):
        one_round(warm)
    timings: dict[str, list] = {"claim": [], "label": []}
    profiler = cProfile.Profile() if args.cprofile else None
    if profiler:
        profiler.enable()
    for _ in range(args.rounds):
        one_round(timings)
    if profiler:
        profiler.disable()
    for kind, rows in timings.items():
        wall = [w for w, _, _ in rows]
        cpu = [c for _, c, _ in rows]
        print(
            f"{kind}: n={len(rows)} wall p50={statistics.median(wall):.2f}ms"
            f" p99={sorted(wall)[int(len(wall) * 0.99)]:.2f}ms"
            f" cpu p50={statistics.median(cpu):.2f}ms queries={rows[-1][2]}"
        )
    if args.cprofile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    if os.environ.get("SHOW_QUERIES"):
        with CaptureQueriesContext(connection) as q:
            one_round({"claim": [], "label": []})
        for query in q.captured_queries:
            print(query["time"], query["sql"][:300])


if __name__ == "__main__":
    main()
