"""Where a 1,000-conversation ingest request spends its time, measured in-process.

    DATABASE_URL=postgresql://... .venv/bin/python bench/profile_ingest.py [--batches 20] [--cprofile]

Builds the same conversations as bench/ingest.py, then:

1. posts `--batches` requests through Django's full stack (test client: middleware, DRF,
   authentication, the view, the service) and reports per request the CPU of this process,
   the CPU of its PostgreSQL backend (from /proc, so run it on the database's host), the
   garbage collector's share and wall time;
2. posts as many again phase by phase (JSON decode, pydantic validation, the service), with
   the service's inserts, audit event and commit timed separately;
3. with `--cprofile`, prints the top functions of one more request.

CPU time rather than wall time is the figure to read on a shared machine: it does not grow
when other processes compete for the cores. Everything created is deleted afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from ingest import ROOT, build_batches, delete_bench_tenant, proc_cpu


class Meter:
    """Accumulates wall, own-process CPU, database-backend CPU and GC time per label."""

    def __init__(self, backend_pid: int) -> None:
        self.backend_pid = backend_pid
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        self.gc_seconds = 0.0
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # CPU, not wall: on a shared machine a collection can be descheduled half-way.
        if phase == "start":
            self._gc_started = time.process_time()
        else:
            self.gc_seconds += time.process_time() - self._gc_started

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        wall, cpu, db, gcs = time.perf_counter(), time.process_time(), proc_cpu(self.backend_pid), self.gc_seconds
        try:
            yield
        finally:
            total = self.totals[label]
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu
            total[2] += proc_cpu(self.backend_pid) - db
            total[3] += self.gc_seconds - gcs

    def wrap(self, label: Callable[..., str], func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.measure(label(*args, **kwargs)):
                return func(*args, **kwargs)

        return wrapped

    def report(self, title: str, per: int) -> None:
        print(f"\n{title} (ms per request, mean of {per})")
        print(f"  {'':34} {'wall':>7} {'app CPU':>8} {'PG CPU':>7} {'GC CPU':>9}")
        for label, totals in self.totals.items():
            wall, cpu, db, gcs = (value / per * 1e3 for value in totals)
            print(f"  {label:34} {wall:7.1f} {cpu:8.1f} {db:7.1f} {gcs:9.1f}")
        self.totals.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20, help="requests per measurement (default 20)")
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile's top functions")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after start-up, as a server could")
    parser.add_argument("--gc-threshold", default="", help="gc.set_threshold(...) after start-up, e.g. 50000,20,10")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("Set DATABASE_URL=postgresql://...: this profiles the PostgreSQL path.", file=sys.stderr)
        return 2
    os.environ.update(
        DJANGO_SETTINGS_MODULE="reviewapp.settings",
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.db.models import QuerySet
    from django.test import Client

    from reviewapp import services
    from reviewapp.ingest_schemas import ConversationBatchIn, attach_raw_messages
    from reviewapp.principal import AGENT, Principal

    run_id = f"profile-{secrets.token_hex(3)}"
    organization = services.organization_create(slug=run_id)
    project = services.project_create(organization=organization, slug="support")
    issued = services.api_key_create(project=project, name="profile")
    total = 1000 * (2 * args.batches + 2)
    bodies = [
        orjson.dumps({"conversations": batch})
        for batch in build_batches(run_id=run_id, total=total, batch=1000, seed=7)
    ]
    gc.collect()
    if args.gc_freeze:
        gc.freeze()
    if args.gc_threshold:
        gc.set_threshold(*(int(part) for part in args.gc_threshold.split(",")))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (backend_pid,) = cursor.fetchone()
        meter = Meter(backend_pid)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")

        def post(body: bytes) -> None:
            response = client.post("/api/v1/conversations", data=body, content_type="application/json")
            assert response.status_code == 201, response.content[:500]

        post(bodies.pop())  # warm-up: first-request imports and caches
        print(f"tracked objects after start-up: {len(gc.get_objects())}; gc thresholds {gc.get_threshold()}")
        for _ in range(args.batches):
            with meter.measure("full request (test client)"):
                post(bodies.pop())
        meter.report("Full stack", args.batches)

        principal = Principal(organization=organization, role=AGENT, api_key=issued.record, project=project)
        # The service's inserts: through reviewapp.bulk where it exists, else QuerySet.bulk_create
        # (so this also profiles trees from before reviewapp.bulk).
        bulk = sys.modules.get("reviewapp.bulk")
        bulk_insert = bulk.insert_rows if bulk else None
        bulk_create = QuerySet.bulk_create
        QuerySet.bulk_create = meter.wrap(lambda qs, *a, **k: f"  insert {qs.model.__name__}", bulk_create)
        audit = services.audit_event_record
        if bulk:
            bulk.insert_rows = meter.wrap(lambda model, *a, **k: f"  insert {model.__name__}", bulk_insert)
        services.audit_event_record = meter.wrap(lambda *a, **k: "  audit event", audit)
        commit = connection.commit
        connection.commit = meter.wrap(lambda *a, **k: "  commit (deferred FK checks)", commit)
        try:
            for _ in range(args.batches):
                body = bodies.pop()
                with meter.measure("orjson.loads"):
                    payload = orjson.loads(body)
                with meter.measure("pydantic validation"):
                    batch = ConversationBatchIn.model_validate(payload)
                with meter.measure("attach raw messages"):
                    attach_raw_messages(batch.conversations, payload["conversations"])
                with meter.measure("service conversations_ingest"):
                    services.conversations_ingest(
                        project=project, conversations=batch.conversations, principal=principal
                    )
                del payload, batch
        finally:
            QuerySet.bulk_create, services.audit_event_record, connection.commit = bulk_create, audit, commit
            if bulk:
                bulk.insert_rows = bulk_insert
        meter.report("Phases (service lines are parts of the service line)", args.batches)

        if args.cprofile:
            profiler = cProfile.Profile()
            profiler.enable()
            post(bodies.pop())
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(25)
            print(out.getvalue())
    finally:
        delete_bench_tenant(organization.pk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
