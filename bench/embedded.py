"""The embedded default (SQLite, no Redis, DEBUG on) as `make run` serves it, measured end to end.

    .venv/bin/python bench/embedded.py                    # the server `make run` starts (gunicorn)
    .venv/bin/python bench/embedded.py --server devserver # Django's development server (`make dev`)

One run, in a throwaway var dir (nothing of yours is touched): migrate, provision a tenant, an
API key, a rubric and `--annotators` annotators through the services, start the server the way
the Makefile does (`manage.py serve` or `manage.py devserver`, same environment as `make run`),
then measure, in this order:

1. `GET /healthz`, sequentially, on one kept-alive connection and on a new connection each time
   (`--pings` of each): what every browser and SDK session sees per request.
2. Ingest: `--total` conversations of `bench/ingest.py`'s workload in batches of `--batch` from
   `--clients` client threads: conversations/s and request p50/p99.
3. Claim and label: the ingested conversations become pending items of a one-label queue, and
   `bench/claim.py`'s annotator processes loop claim → label for `--seconds` with `--think-ms`
   between a label and the next claim: claim and label p50/p99, and no item handed to two people.

Prints one `SUMMARY` line. Defaults are kept short because the machine may be shared; the figures
and how they compare are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import claim, ingest  # noqa: E402 - the repository root must be importable first

ORG = "bench-embedded"
ANSWERS = b'{"answers": {"quality": "good", "helpfulness": 4}}'


def embedded_env(var_dir: Path, *, debug: bool) -> dict[str, str]:
    """`make run`'s environment: no DATABASE_URL or REDIS_URL, DEBUG on, its own var dir."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    env.update(REVIEWAPP_VAR_DIR=str(var_dir), DEBUG="1" if debug else "0", PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    if not debug:
        env.update(SECRET_KEY="bench-only-" + uuid.uuid4().hex * 2, ALLOWED_HOSTS="127.0.0.1")
    return env


def provision(annotators: int) -> dict:
    """Tenant, key, rubric, an empty one-label queue and annotator tokens, through the services."""
    from django.core.management import call_command

    from bench.tenant import tenant_create
    from reviewapp import services as core

    call_command("migrate", verbosity=0)
    org, project, schema = tenant_create(slug=ORG, name="Embedded bench")
    key = core.api_key_create(project=project, name="bench").raw
    return {
        "org": org,
        "project": project,
        "key": key,
        "schema": schema,
        "tokens": claim.annotator_tokens(org, annotators),
    }


def queue_fill(tenant: dict) -> tuple[int, int]:
    """A one-label queue holding every stored conversation as a pending item (one statement)."""
    from django.db import connection

    from labeling import services as labeling

    queue = labeling.queue_create(
        project=tenant["project"], spec=labeling.QueueSpec(name="Bench queue", schema=tenant["schema"]), user=None
    )
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO labeling_queueitem (organization_id, queue_id, conversation_id, status, priority,
                labels_needed, labels_done, leased_count, extra_annotations, source, sampling_rule,
                sampling_strategy, stratum, is_gold, final_source, created_at)
            SELECT %s, %s, id, 'open', 0, 1, 0, 0, 0, 'manual', '', 'manual', '', %s, '', %s
            FROM reviewapp_conversation WHERE project_id = %s
            """,
            [tenant["org"].pk, queue.pk, False, dt.datetime.now(dt.UTC), tenant["project"].pk],
        )
        count = cur.rowcount
    return queue.pk, count


def start_server(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "manage.py", kind, f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(command)} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"{kind} did not answer /healthz within 60 s")


def server_cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by the server: gunicorn's arbiter and worker, or the development
    server and its autoreloader. Read beside the rates: on a shared machine they move with the
    load; CPU per request does much less."""
    return ingest.proc_cpu(proc.pid) + sum(ingest.proc_cpu(pid) for pid in ingest.child_pids(proc.pid))


def ping(port: int, count: int, *, keep_alive: bool, path: str = "/healthz") -> list[float]:
    """Milliseconds per sequential GET of `path`, on one connection or a new one each time."""
    timings = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(count):
        if not keep_alive:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        timings.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
        if not keep_alive:
            conn.close()
    conn.close()
    return timings


def claim_run(port: int, queue_id: int, tokens: list[str], seconds: float, think_ms: int, warmup: int) -> dict:
    """`bench/claim.py`'s annotator processes, started (and their imports done) before the clock
    is set: on a loaded two-core machine sixteen interpreters take longer to start than
    claim.py's fixed five seconds of grace."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(len(tokens)) as pool:
        pool.map(time.sleep, [0.5] * len(tokens), chunksize=1)  # every process up and imported
        start_at = time.time() + 2 + warmup * 0.5
        stop_at = start_at + seconds
        parts = pool.starmap(
            claim.annotator, [(port, queue_id, t, start_at, stop_at, think_ms, warmup) for t in tokens]
        )
    merged: dict = {"claims": [], "labels": [], "handed": [], "errors": [], "elapsed": time.time() - start_at}
    for part in parts:
        for key in ("claims", "labels", "handed", "errors"):
            merged[key].extend(part[key])
    return merged


def sequential_pairs(port: int, queue_id: int, token: str, pairs: int) -> tuple[list[float], list[float]]:
    """One person alone, claim then label at once, on one kept-alive connection (a browser tab):
    the latency with no queueing behind other requests."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    claims, labels = [], []
    for _ in range(pairs):
        started = time.perf_counter()
        conn.request("POST", f"/api/v1/queues/{queue_id}/claim", body=b"", headers=headers)
        response = conn.getresponse()
        item = orjson.loads(response.read())["id"]
        claims.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        conn.request("POST", f"/api/v1/items/{item}/labels", body=ANSWERS, headers=headers)
        response = conn.getresponse()
        response.read()
        labels.append((time.perf_counter() - started) * 1000)
        if response.status != 201:
            raise SystemExit(f"label answered {response.status}")
    conn.close()
    return claims[5:], labels[5:]  # the first few open connections and fill caches


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["serve", "devserver"], default="serve")
    parser.add_argument("--pings", type=int, default=200, help="/healthz requests per connection mode")
    parser.add_argument("--total", type=int, default=20_000, help="conversations to ingest (default 20,000)")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=2, help="ingest client threads (default 2)")
    parser.add_argument("--pairs", type=int, default=60, help="sequential claim+label pairs by one person first")
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20, help="measured claim/label time (default 20)")
    parser.add_argument("--think-ms", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured claim+label rounds per annotator")
    parser.add_argument("--debug", type=int, choices=[0, 1], default=1, help="DEBUG as make run sets it (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the var dir and print where it is")
    return parser.parse_args()


def p(values: list[float], pct: float) -> float:
    return claim.percentile(values, pct)


def main() -> int:
    args = parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="reviewapp-embedded-bench-"))
    env = embedded_env(var_dir, debug=bool(args.debug))
    os.environ.clear()
    os.environ.update(env)
    claim.setup_django()
    tenant = provision(args.annotators)
    bodies = [
        orjson.dumps({"conversations": batch})
        for batch in ingest.build_batches(run_id=uuid.uuid4().hex[:8], total=args.total, batch=args.batch, seed=7)
    ]
    port = ingest.free_port()
    proc = start_server(args.server, port, env)
    try:
        ping(port, 20, keep_alive=True)  # warm-up: imports, the first database connection
        cpu = server_cpu(proc)
        kept = ping(port, args.pings, keep_alive=True)
        fresh = ping(port, args.pings, keep_alive=False)
        ping_cpu_ms = (server_cpu(proc) - cpu) * 1000 / (2 * args.pings)
        print(
            f"{args.server}: /healthz p50 {p(kept, 50):.1f} ms kept-alive, {p(fresh, 50):.1f} ms new connection "
            f"(p99 {p(kept, 99):.1f} / {p(fresh, 99):.1f}); server CPU {ping_cpu_ms:.2f} ms a request; "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        cpu = server_cpu(proc)

        loaded = ingest.post_batches(
            base_url=f"http://127.0.0.1:{port}", key=tenant["key"], bodies=bodies, clients=args.clients, time_limit=300
        )
        rate = loaded.created / loaded.elapsed if loaded.elapsed else 0.0
        ingest_cpu_ms = (server_cpu(proc) - cpu) * 1e6 / max(loaded.created, 1)
        took = [seconds * 1000 for seconds in loaded.latencies]
        print(
            f"ingest: {loaded.created:,} conversations in {loaded.elapsed:.1f}s = {rate:,.0f}/s, "
            f"request p50 {p(took, 50):.0f} ms p99 {p(took, 99):.0f} ms, errors {len(loaded.errors)}; "
            f"server CPU {ingest_cpu_ms:.0f} ms per 1,000; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for error in loaded.errors[:3]:
            print("  error:", error)

        queue_id, items = queue_fill(tenant)
        cpu = server_cpu(proc)
        alone_claims, alone_labels = sequential_pairs(port, queue_id, tenant["tokens"][0], args.pairs)
        alone_cpu_ms = (server_cpu(proc) - cpu) * 1000 / args.pairs
        print(
            f"one person, sequential: claim p50 {p(alone_claims, 50):.1f} p99 {p(alone_claims, 99):.1f} ms, "
            f"label p50 {p(alone_labels, 50):.1f} p99 {p(alone_labels, 99):.1f} ms; "
            f"server CPU {alone_cpu_ms:.1f} ms a pair; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        cpu = server_cpu(proc)
        result = claim_run(port, queue_id, tenant["tokens"], args.seconds, args.think_ms, args.warmup)
        pair_cpu_s = server_cpu(proc) - cpu
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    doubled, labeled = claim.check_no_double_handing(queue_id)
    pair_cpu_ms = pair_cpu_s * 1000 / max(labeled, 1)  # every label stored, warm-up included
    c, lab = result["claims"], result["labels"]
    print(
        f"claim/label: {args.annotators} annotators, {items:,} items, think {args.think_ms} ms, "
        f"{result['elapsed']:.0f}s: claims n={len(c)} p50 {p(c, 50):.1f} p99 {p(c, 99):.1f} ms; "
        f"labels n={len(lab)} p50 {p(lab, 50):.1f} p99 {p(lab, 99):.1f} ms; double-handed {doubled}; "
        f"errors {len(result['errors'])}; server CPU {pair_cpu_ms:.1f} ms per claim+label; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for error in result["errors"][:3]:
        print("  error:", error)
    print(
        f"SUMMARY server={args.server} debug={args.debug} healthz_keepalive_p50_ms={p(kept, 50):.1f} "
        f"healthz_new_conn_p50_ms={p(fresh, 50):.1f} ingest_conv_per_s={rate:.0f} "
        f"alone_claim_p50_ms={p(alone_claims, 50):.1f} alone_label_p50_ms={p(alone_labels, 50):.1f} "
        f"claim_p50_ms={p(c, 50):.1f} claim_p99_ms={p(c, 99):.1f} label_p50_ms={p(lab, 50):.1f} "
        f"label_p99_ms={p(lab, 99):.1f} double_handed={doubled}"
    )
    if args.keep:
        print(f"var dir kept: {var_dir}")
    else:
        shutil.rmtree(var_dir, ignore_errors=True)
    ok = doubled == 0 and not result["errors"] and not loaded.errors and loaded.created == args.total
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
