"""Agents waiting for decisions: `--waiters` long polls at once, decisions at `--rate` per second.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/wait.py

One run: migrate, provision a tenant with `--waiters` pending actions per round, start the
documented ASGI server (`gunicorn reviewapp.asgi -k asgi`) on a free loopback port, then:

- the waiters (one asyncio loop in this process, one HTTP connection each, a minimal HTTP/1.1
  client so the load generator stays cheap) send `GET /api/v1/actions/{id}?wait=60` and ask
  again whenever the answer is still pending;
- once every waiter has been sent, has had `--settle` seconds, and the server has read every
  waiter's action (its database connections back to its status reads' for a second), a decider process decides
  the actions in random order at `--rate` per second, each in its own transaction (as the
  decision services do: compare-and-set, then `services.action_decided`, which publishes after
  commit), stamping the moment each commit returned;
- a monitor samples the server's database connections (pg_stat_activity, by application
  name) every 100 ms, and the server workers' resident memory.

Each waiter's latency is the time from its action's commit to the moment its answer arrived
(both clocks of this machine). `--rounds` repeats the whole with fresh actions, so memory can
be compared across rounds. Targets (issue 9): p99 within 250 ms, at most 20 connections, memory
flat. Bounded in count and time; the tenant is removed afterwards. `--worker-class` swaps
gunicorn's ASGI worker for another (`uvicorn.workers.UvicornWorker`) to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harness import free_port, percentile, setup_django

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ORG = "bench-wait"
APP_NAME = "reviewapp-bench-wait"


def _cleanup() -> None:
    from django.db import connection, transaction

    from bench.tenant import tenant_delete

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT id FROM reviewapp_organization WHERE slug = %s", [ORG])
        row = cur.fetchone()
        if row is not None:
            for table in ("escalations_actionevent", "escalations_webhookdelivery", "escalations_action"):
                cur.execute(f"DELETE FROM {table} WHERE organization_id = %s", [row[0]])  # noqa: S608
    tenant_delete(ORG)


def load(waiters: int, rounds: int) -> tuple[str, list[list[int]]]:
    """The tenant, an API key, and `waiters` pending actions per round."""
    import datetime as dt

    from django.core.management import call_command
    from django.utils import timezone

    from escalations.models import Action, ActionStatus
    from reviewapp import services as core

    call_command("migrate", verbosity=0)
    _cleanup()
    org = core.organization_create(slug=ORG, name="Wait bench")
    project = core.project_create(organization=org, slug="agent")
    key = core.api_key_create(project=project, name="bench agents").raw
    now = timezone.now()
    ids: list[list[int]] = []
    for r in range(rounds):
        created = Action.objects.bulk_create(
            Action(
                organization=org,
                project=project,
                external_id=f"bench-{r}-{n}",
                action="refund",
                args={"amount": 400 + n},
                confidence=0.5,
                status=ActionStatus.PENDING,
                tier=0,
                tier_entered_at=now,
                due_at=now + dt.timedelta(hours=1),
            )
            for n in range(waiters)
        )
        ids.append([a.pk for a in created])
    return key, ids


def server_env(workers: int) -> dict[str, str]:
    url = urlsplit(os.environ["DATABASE_URL"])
    query = dict(parse_qsl(url.query), application_name=APP_NAME)
    return dict(
        os.environ,
        DATABASE_URL=urlunsplit(url._replace(query=urlencode(query))),
        DEBUG="0",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="bench.settings_wait",
    )


def start_server(port: int, workers: int, worker_class: str = "asgi") -> subprocess.Popen:
    """The production command for waits (docs/architecture.md, "Production topology")."""
    cmd = [str(VENV_BIN / "gunicorn"), "reviewapp.asgi", "--worker-class", worker_class, "--workers", str(workers)]
    cmd += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "2048", "--no-control-socket"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(workers), start_new_session=True)
    import http.client

    deadline = time.monotonic() + 120  # a loaded machine takes its time to import Django twice
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start")


def worker_pids(arbiter: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()]


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def threads_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                total += int(line.split()[1])
    return total


# --- the decider (its own process: its commits and this process's clock reads never share a GIL)


def decider(ids: list[int], rate: float, start_at: float, seed: int) -> dict[int, float]:
    setup_django()
    from django.db import transaction
    from django.utils import timezone

    from escalations import services
    from escalations.models import Action, ActionStatus, DecidedBy

    order = list(ids)
    random.Random(seed).shuffle(order)
    committed: dict[int, float] = {}
    time.sleep(max(0.0, start_at - time.time()))
    began = time.monotonic()
    for n, action_id in enumerate(order):
        time.sleep(max(0.0, began + n / rate - time.monotonic()))
        with transaction.atomic():
            updated = Action.objects.filter(pk=action_id, status=ActionStatus.PENDING).update(
                status=ActionStatus.APPROVED,
                decided_by=DecidedBy.POLICY,
                decided_at=timezone.now(),
                reason="bench",
                final_args={"amount": 400},
                tier=None,
                due_at=None,
            )
            assert updated == 1
            # First of the on-commit callbacks: runs right after COMMIT, before the publish.
            transaction.on_commit(lambda a=action_id: committed.__setitem__(a, time.time()))
            services.action_decided(action=Action.objects.get(pk=action_id))
    return committed


# --- the waiters ------------------------------------------------------------------------------


async def _get(host: str, port: int, path: str, key: str, conn: list) -> tuple[int, dict]:
    """One GET on the waiter's kept-alive connection (reopened if the server closed it)."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    for attempt in range(2):
        if not conn:
            conn.extend(await asyncio.open_connection(host, port))
        reader, writer = conn
        try:
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length")
            body = await reader.readexactly(length)
            return status, json.loads(body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            conn.clear()
            if attempt:
                raise
    raise AssertionError("unreachable")


async def waiters(
    port: int, key: str, ids: list[int], sent: threading.Event, stop_at: float
) -> tuple[dict[int, float], list[str], int]:
    heard: dict[int, float] = {}
    errors: list[str] = []
    asks = 0
    ready = 0

    async def one(action_id: int) -> None:
        nonlocal asks, ready
        conn: list = []
        first = True
        try:
            while time.time() < stop_at:
                task = asyncio.create_task(_get("127.0.0.1", port, f"/api/v1/actions/{action_id}?wait=60", key, conn))
                if first:
                    first = False
                    await asyncio.sleep(0)
                    ready += 1
                    if ready == len(ids):
                        sent.set()
                status, body = await task
                asks += 1
                if status != 200:
                    errors.append(f"{action_id}: {status} {body}")
                    return
                if body["status"] != "pending":
                    heard[action_id] = time.time()
                    return
        except Exception as exc:  # reported, not raised: one broken waiter must not end the run
            errors.append(f"{action_id}: {exc!r}")
        finally:
            if conn:
                conn[1].close()

    # Opened in batches: a thousand connects at once overflow the listen backlog's SYN queue.
    tasks = []
    for start in range(0, len(ids), 100):
        tasks += [asyncio.create_task(one(a)) for a in ids[start : start + 100]]
        await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    return heard, errors, asks


def server_connections() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME])
        return cur.fetchone()[0]


def monitor(stop: threading.Event, samples: list[int]) -> None:
    from django.db import connection

    while not stop.is_set():
        samples.append(server_connections())
        stop.wait(0.1)
    connection.close()


def run_round(port: int, key: str, ids: list[int], rate: float, settle: float, seed: int, arbiter: int) -> dict:
    import multiprocessing

    sent = threading.Event()
    duration = len(ids) / rate
    stop_at = time.time() + 30 + settle + duration + 70  # every wait (60 s) ends before this
    result: dict = {}

    def client() -> None:
        result["heard"], result["errors"], result["asks"] = asyncio.run(waiters(port, key, ids, sent, stop_at))

    thread = threading.Thread(target=client, name="waiters")
    thread.start()
    if not sent.wait(60):
        raise SystemExit("the waiters could not all be sent within 60 s")
    sent_at = time.monotonic()
    time.sleep(settle)
    # The waiters wait once the server has read their actions: a thousand first reads go through
    # each worker's few wait database threads (a connection each, open while it reads), which
    # takes seconds. Deciding earlier would time the queue of first reads, not the wake-up.
    # Done when the server's connections have stayed at its status reads' (one a worker) for 1 s.
    quiet_since = None
    while time.monotonic() - sent_at < 120:
        if server_connections() <= 2:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.0:
                break
        else:
            quiet_since = None
        time.sleep(0.05)
    result["first_reads_s"] = (quiet_since or time.monotonic()) - sent_at
    pids = worker_pids(arbiter)
    result["rss_waiting_mb"] = rss_mb(pids)
    result["threads_waiting"] = threads_of(pids)
    start_at = time.time() + 2
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        committed = pool.apply(decider, (ids, rate, start_at, seed))
    thread.join()
    result["rss_after_mb"] = rss_mb(pids)
    result["decisions_s"] = max(committed.values()) - min(committed.values()) if committed else 0.0
    result["latency_ms"] = [
        (result["heard"][a] - committed[a]) * 1000 for a in ids if a in committed and a in result["heard"]
    ]
    result["unheard"] = len(ids) - len(result["latency_ms"])
    return result


def main() -> None:
    import resource

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50, help="decisions per second")
    parser.add_argument("--rounds", type=int, default=2, help="fresh actions each round (memory across rounds)")
    parser.add_argument("--workers", type=int, default=2, help="ASGI worker processes")
    parser.add_argument(
        "--worker-class", default="asgi", help="gunicorn worker class (asgi: gunicorn's own, the documented one)"
    )
    parser.add_argument("--settle", type=float, default=3, help="seconds between the last wait sent and decisions")
    parser.add_argument(
        "--tracemalloc",
        metavar="DIR",
        help="the server traces allocations and dumps a snapshot into DIR after each round (bench/memtrace.py)",
    )
    args = parser.parse_args()
    if not 1 <= args.waiters <= 5000 or not 0 < args.rate <= 1000 or not 1 <= args.rounds <= 12:
        raise SystemExit("bounded: --waiters 1..5000, --rate up to 1000/s, --rounds 1..12")
    if args.tracemalloc:
        Path(args.tracemalloc).mkdir(parents=True, exist_ok=True)
        os.environ["BENCH_TRACEMALLOC"] = str(Path(args.tracemalloc).resolve())
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/wait.py measures PostgreSQL: set DATABASE_URL=postgresql://...")
    if not os.environ.get("REDIS_URL"):
        print("note: REDIS_URL is unset: decisions reach the server through its 1 s status read only", flush=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.waiters + 256)), hard))
    setup_django()
    key, rounds = load(args.waiters, args.rounds)
    port = free_port()
    proc = start_server(port, args.workers, args.worker_class)
    samples: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=monitor, args=(stop, samples), name="monitor")
    results = []
    try:
        time.sleep(1)
        rss_idle = rss_mb(worker_pids(proc.pid))
        if args.tracemalloc:
            (Path(args.tracemalloc) / "request").write_text("start")
            time.sleep(2)
        watcher.start()
        for n, ids in enumerate(rounds):
            results.append(run_round(port, key, ids, args.rate, args.settle, n, proc.pid))
            if args.tracemalloc:
                (Path(args.tracemalloc) / "request").write_text(str(n + 1))
                time.sleep(5)  # each worker collects and dumps its snapshot
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        _cleanup()

    print(
        f"waiters={args.waiters} rate={args.rate:g}/s rounds={args.rounds} workers={args.workers} "
        f"redis={'yes' if os.environ.get('REDIS_URL') else 'no'}"
    )
    all_latency: list[float] = []
    errors = 0
    for n, r in enumerate(results, 1):
        lat = r["latency_ms"]
        all_latency += lat
        errors += len(r["errors"]) + r["unheard"]
        print(
            f"round {n}: first reads done {r['first_reads_s']:.1f}s after the last wait was sent; "
            f"heard={len(lat)}/{args.waiters} asks={r['asks']} decisions over {r['decisions_s']:.1f}s "
            f"latency p50={percentile(lat, 50):.1f}ms p90={percentile(lat, 90):.1f}ms p99={percentile(lat, 99):.1f}ms "
            f"max={max(lat, default=float('nan')):.1f}ms; server rss while waiting={r['rss_waiting_mb']:.1f}MB "
            f"after={r['rss_after_mb']:.1f}MB threads while waiting={r['threads_waiting']}; "
            f"errors={len(r['errors'])} unheard={r['unheard']}"
        )
        for e in r["errors"][:5]:
            print("  error:", e)
    peak_connections = max(samples, default=0)
    rss_growth = results[-1]["rss_after_mb"] - results[0]["rss_after_mb"] if len(results) > 1 else 0.0
    print(
        f"server db connections: peak={peak_connections} (samples={len(samples)}, every 100 ms); "
        f"rss idle={rss_idle:.1f}MB, growth from round 1 to round {len(results)} after={rss_growth:+.1f}MB"
    )
    p99 = percentile(all_latency, 99)
    ok = p99 <= 250 and peak_connections <= 20 and errors == 0 and (len(results) < 2 or rss_growth < 10)
    print(
        f"SUMMARY wait_p99_ms={p99:.1f} target<=250 peak_db_connections={peak_connections} target<=20 "
        f"rss_growth_mb={rss_growth:+.1f} errors={errors} -> {'PASS' if ok else 'MISS'}"
    )


if __name__ == "__main__":
    main()
