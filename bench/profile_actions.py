"""Where an auto-decided action request spends its time, in process, on the policy of
`bench/actions.py` (a velocity rule, then auto-approval of small confident refunds).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/profile_actions.py

Provisions the bench tenant afresh (as bench/actions.py does), then runs `--rounds` sequential
`POST /api/v1/actions` through Django's full stack (test client: URL routing, middleware,
authentication, view, serializers; no socket, no gunicorn) with the project key, and prints
per-request wall time, CPU time and statement count. `--cprofile` prints the top functions by
cumulative time (SORT=tottime: by their own time; `--cpu`: CPU time, so waits on PostgreSQL
drop out); SHOW_QUERIES=1 prints one request's
statements. Deletes the tenant afterwards unless `--keep-data`.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="with --cprofile: time functions by CPU, not wall (waits on the database drop out)",
    )
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/profile_actions.py measures PostgreSQL: set DATABASE_URL=postgresql://...")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ["DEBUG"] = "0"
    sys.path.insert(0, str(ROOT))
    from bench import actions as bench

    bench.setup_django()
    import gc

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    key = bench.load()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    run = f"p{int(time.time())}"
    counter = iter(range(10**9))

    def one(timings: list[tuple[float, float, int]]) -> None:
        body = bench._body(0, next(counter), run)
        with CaptureQueriesContext(connection) as q:
            w0, c0 = time.perf_counter(), time.process_time()
            r = client.post("/api/v1/actions", body, content_type="application/json")
            w1, c1 = time.perf_counter(), time.process_time()
        assert r.status_code == 201 and r.json()["status"] == "approved", r.content
        timings.append(((w1 - w0) * 1000, (c1 - c0) * 1000, len(q.captured_queries)))

    try:
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)  # as gunicorn.conf.py does
        for _ in range(20):
            one([])
        timings: list[tuple[float, float, int]] = []
        profiler = (cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()) if args.cprofile else None
        if profiler:
            profiler.enable()
        for _ in range(args.rounds):
            one(timings)
        if profiler:
            profiler.disable()
        wall = [w for w, _, _ in timings]
        cpu = [c for _, c, _ in timings]
        print(
            f"action request: n={len(timings)} wall p50={statistics.median(wall):.2f}ms"
            f" p99={sorted(wall)[int(len(wall) * 0.99)]:.2f}ms"
            f" cpu p50={statistics.median(cpu):.2f}ms p10={sorted(cpu)[len(cpu) // 10]:.2f}ms"
            f" statements={timings[-1][2]}"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(50)
            if os.environ.get("PSTATS_OUT"):
                profiler.dump_stats(os.environ["PSTATS_OUT"])
        if os.environ.get("SHOW_QUERIES"):
            with CaptureQueriesContext(connection) as q:
                one([])
            for query in q.captured_queries:
                print(query["time"], str(query["sql"])[:400])
    finally:
        if not args.keep_data:
            bench._cleanup()


if __name__ == "__main__":
    main()
