"""Auto-decided action requests over HTTP, against the ceiling of a bare Django view.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/actions.py

One run: migrate, provision a tenant with a project key and a policy whose first rule carries a
velocity condition (the sum of refunds to the same end user over a day: one indexed query per
request) and whose second auto-approves small confident refunds, give the project a history
(HISTORY earlier actions over two days, then ANALYZE), start the documented production
server (sync gunicorn workers, `--workers 4 --max-requests 20000`; `--server asgi` for gunicorn's
ASGI worker, the one process type docs/architecture.md allows) on a free loopback port with
`bench.settings_actions` (the app plus `/bench/bare`, a JSON view that touches nothing), then:

1. Saturation, the ceiling: `--clients` processes post to `/bench/bare` back to back for
   `--seconds`: requests per second.
2. Saturation, actions: the same clients post `POST /api/v1/actions` back to back: requests per
   second, and its share of the ceiling (target: at least 30%).
3. Fixed rate: `--rate` requests per second (300) of actions, spread over the clients, each
   request sent at its scheduled time. Latency is measured from the scheduled time, so a slow
   response delays the next and is counted in its latency too (no coordinated omission); the
   service time (send to answer) is printed next to it. Target: p99 under 15 ms.
4. The bare view at the same rate, the same way: the latency floor of this server and machine
   at that rate, printed beside the actions' figure.

Each phase also prints the CPU a request costs, by whom: the server's processes, the database's
backends, the clients (from /proc, Linux). From the actions' cost back to back, the summary
says how many of the machine's cores the target rate keeps busy: a latency target is only
meaningful well below 100%.

Every answer must be 201 with status `approved` by the policy (counted as errors otherwise), and
the run checks afterwards that the database holds exactly as many approved actions as were
answered and none pending. Clients are processes using http.client (a few hundred microseconds
of client CPU per request), as in bench/claim.py. Bounded in time; cleans up its tenant unless
`--keep-data`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from harness import cpu_seconds, cpu_used, free_port, percentile, setup_django

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ORG = "bench-actions"
PROJECT = "agents"
USERS = 50_000  # end users the refunds go to: velocity windows hold a few rows each
# Earlier actions of the project, over the last two days, before the clock starts: a production
# table has a history, and the velocity query's plan is made against its statistics (on a table
# just emptied by the last run's clean-up, a plan could be made for an empty table and kept by
# the workers' prepared statements: PostgreSQL's share of the CPU went from 1.5 to 5 ms a
# request between runs minutes apart).
HISTORY = 100_000
POLICY = {
    "rules": [
        {
            "name": "busy customers",
            "if": {
                "action": "refund",
                "velocity": [
                    {
                        "window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400},
                        "op": ">",
                        "value": 1_000_000,
                    }
                ],
            },
            "then": "escalate",
            "reason": "More than $1M refunded to one customer in a day",
        },
        {
            "name": "small confident refunds",
            "if": {
                "action": "refund",
                "confidence_at_least": 0.8,
                "args": [{"path": "amount", "op": "<=", "value": 500}],
            },
            "then": "approve",
        },
    ],
    "default_ladder": "default",
}


def load() -> str:
    """A fresh tenant, its project key (returned) and the policy."""
    from django.core.management import call_command

    from escalations import services
    from reviewapp import services as core

    call_command("migrate", verbosity=0)
    _cleanup()
    org = core.organization_create(slug=ORG, name="Actions bench")
    project = core.project_create(organization=org, slug=PROJECT)
    services.policy_version_create(principal=None, project=project, data=POLICY)
    _history(project)
    return core.api_key_create(project=project, name="bench").raw


def _history(project) -> None:
    """HISTORY approved refunds spread over the last two days, to USERS end users (a few each
    in any day's window), then ANALYZE: the tables as a project in use has them."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO escalations_action (organization_id, project_id, external_id, action, args,
                confidence, risk_tags, reasoning, end_user_id, conversation_external_id, agent_version,
                callback_url, status, decided_by, decided_at, reason, comment, matched_rule,
                policy_outcome, policy_explanation, final_args, args_digest, created_at)
            SELECT %(org)s, %(project)s, 'seed-' || g, 'refund',
                jsonb_build_object('amount', 1 + (g * 7919) %% 500, 'currency', 'USD'), 0.9, '[]', '',
                'user-' || (1 + (g * 104729) %% %(users)s), '', 'v1', '', 'approved', 'policy',
                now() - make_interval(secs => (g * 172800.0 / %(n)s)), '', '', '', 'approve', '[]',
                jsonb_build_object('amount', 1 + (g * 7919) %% 500, 'currency', 'USD'), '',
                now() - make_interval(secs => (g * 172800.0 / %(n)s))
            FROM generate_series(1::bigint, %(n)s) AS g
            """,
            {"org": project.organization_id, "project": project.pk, "users": USERS, "n": HISTORY},
        )
        cur.execute("ANALYZE escalations_action")
        cur.execute("ANALYZE escalations_actionevent")


def start_gunicorn(
    port: int, workers: int, server: str, max_requests: int = 20000, preload: bool = False
) -> subprocess.Popen:
    """The production command of docs/architecture.md, on a loopback port."""
    env = dict(os.environ, DEBUG="0", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="bench.settings_actions")
    app = "reviewapp.asgi" if server == "asgi" else "reviewapp.wsgi"
    cmd = [str(VENV_BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    cmd += ["--max-requests", str(max_requests), "--max-requests-jitter", str(max_requests // 10)]
    cmd += ["--timeout", "60", "--log-level", "warning"]
    if preload:
        cmd += ["--preload"]
    if server == "asgi":
        cmd += ["--worker-class", "asgi"]
    else:
        env["ACTION_WAIT_THREADED_MAX"] = "0"
        if server.startswith("gthread"):  # gthread:N, N threads a worker
            cmd += ["--worker-class", "gthread", "--threads", server.partition(":")[2] or "4"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/bench/bare", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start")


def _body(client: int, i: int, run: str) -> bytes:
    import json
    import random

    rng = random.Random(f"{run}-{client}-{i}")
    return json.dumps(
        {
            "external_id": f"{run}-{client}-{i}",
            "action": "refund",
            "args": {"amount": rng.randint(1, 500), "order_id": f"ord-{rng.randint(1, 10**9)}", "currency": "USD"},
            "confidence": round(rng.uniform(0.85, 1.0), 3),
            "end_user_id": f"user-{rng.randint(1, USERS)}",
            "agent_version": "v1",
            "reasoning": "The order arrived damaged; the customer sent a photo.",
        }
    ).encode()


def client(
    port: int, key: str, target: str, client_no: int, run: str, start_at: float, stop_at: float, interval: float
) -> dict:
    """One client process. `interval` 0: back to back (saturation); else one request every
    `interval` seconds from `start_at` (offset per client), latency counted from the schedule."""
    import http.client

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    path = "/bench/bare" if target == "bare" else "/api/v1/actions"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    service: list[float] = []
    errors: list[str] = []
    sent = ok_count = 0
    i = 0
    time.sleep(max(0.0, start_at - time.time()))
    cpu_at_start = time.process_time()
    next_at = start_at + (interval * client_no / 1000 if interval else 0)
    while True:
        now = time.time()
        if now >= stop_at:
            break
        if interval:
            if next_at >= stop_at:
                break
            if next_at > now:
                time.sleep(next_at - now)
        body = _body(client_no, i, run)
        i += 1
        t0 = time.perf_counter()
        scheduled_lag = (time.time() - next_at) if interval else 0.0
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError) as exc:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        ms = (time.perf_counter() - t0) * 1000
        sent += 1
        service.append(ms)
        latencies.append(ms + max(0.0, scheduled_lag) * 1000)
        if target == "bare":
            ok = response.status == 200
        else:
            ok = response.status == 201 and b'"status":"approved"' in data.replace(b" ", b"")
        if ok:
            ok_count += 1
        else:
            errors.append(f"{response.status}: {data[:200]!r}")
        if interval:
            next_at += interval
    conn.close()
    cpu = time.process_time() - cpu_at_start
    return {"latencies": latencies, "service": service, "errors": errors, "sent": sent, "ok": ok_count, "cpu": cpu}


def phase(
    port: int, key: str, target: str, clients: int, seconds: float, rate: float, run: str, server: int = 0
) -> dict:
    """One phase; `server`: the server's session id, whose CPU (and that of the database's
    backends) is counted over the phase."""
    import multiprocessing

    from django.db import connection

    start_at = time.time() + 3  # every process started before the clock
    stop_at = start_at + seconds
    interval = clients / rate if rate else 0.0
    ctx = multiprocessing.get_context("spawn")
    database = connection.settings_dict["NAME"]
    with ctx.Pool(clients) as pool:
        cpu_before = (cpu_seconds(session=server), cpu_seconds(database=database))
        parts = pool.starmap(client, [(port, key, target, c, run, start_at, stop_at, interval) for c in range(clients)])
        cpu_after = (cpu_seconds(session=server), cpu_seconds(database=database))
    merged: dict = {"latencies": [], "service": [], "errors": [], "sent": 0, "ok": 0, "elapsed": seconds}
    for part in parts:
        for k in ("latencies", "service", "errors"):
            merged[k].extend(part[k])
        merged["sent"] += part["sent"]
        merged["ok"] += part["ok"]
    merged["cpu"] = {
        "server": cpu_used(cpu_before[0], cpu_after[0]),
        "database": cpu_used(cpu_before[1], cpu_after[1]),
        "clients": sum(part["cpu"] for part in parts),
    }
    return merged


def check_database() -> tuple[int, int, int]:
    """(approved by policy, pending, other) actions of the bench tenant."""
    from escalations.models import Action

    actions = Action.objects.filter(organization__slug=ORG).exclude(external_id__startswith="seed-")
    approved = actions.filter(status="approved", decided_by="policy").count()
    pending = actions.filter(status="pending").count()
    return approved, pending, actions.count() - approved - pending


def describe(name: str, result: dict) -> str:
    lat, svc = result["latencies"], result["service"]
    return (
        f"{name}: n={result['sent']} {result['sent'] / result['elapsed']:.0f} req/s "
        f"p50={percentile(lat, 50):.1f}ms p99={percentile(lat, 99):.1f}ms max={max(lat, default=float('nan')):.1f}ms "
        f"(service p50={percentile(svc, 50):.1f}ms p99={percentile(svc, 99):.1f}ms "
        f"mean={statistics.fmean(svc) if svc else 0:.1f}ms) errors={len(result['errors'])}"
        f"\n    CPU a request: {cpu_split(result)}"
    )


def cpu_ms(result: dict) -> dict[str, float]:
    """CPU milliseconds a request, by whom: the server's processes, the database's backends,
    the clients."""
    sent = max(result["sent"], 1)
    return {who: 1000 * seconds / sent for who, seconds in result["cpu"].items()}


def cpu_split(result: dict) -> str:
    ms = cpu_ms(result)
    return " ".join(f"{who} {value:.2f} ms" for who, value in ms.items()) + f" (total {sum(ms.values()):.2f} ms)"


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="length of each of the four phases")
    parser.add_argument("--rate", type=float, default=300, help="requests/s of the fixed-rate phase")
    parser.add_argument("--clients", type=int, default=8, help="client processes")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (the documented 4)")
    parser.add_argument(
        "--server", default="wsgi", help="wsgi (sync workers), asgi (gunicorn's ASGI worker) or gthread:N (N threads)"
    )
    parser.add_argument(
        "--max-requests", type=int, default=20000, help="gunicorn's worker recycling (0: never; documented 20000)"
    )
    parser.add_argument("--preload", action="store_true", help="gunicorn --preload")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/actions.py measures PostgreSQL: set DATABASE_URL=postgresql://...")
    setup_django("bench.settings_actions")
    key = load()
    port = free_port()
    proc = start_gunicorn(port, args.workers, args.server, args.max_requests, args.preload)
    run = f"r{int(time.time())}"
    try:
        # Warm-up, unmeasured: every worker opens its connection and loads the policy.
        sid = proc.pid  # start_new_session: the arbiter leads the server's session
        warm = phase(port, key, "actions", args.clients, 2, 0, run + "w", sid)
        phase(port, key, "bare", args.clients, 2, 0, run + "wb", sid)
        bare = phase(port, key, "bare", args.clients, args.seconds, 0, run + "b", sid)
        saturated = phase(port, key, "actions", args.clients, args.seconds, 0, run + "s", sid)
        paced = phase(port, key, "actions", args.clients, args.seconds, args.rate, run + "p", sid)
        # The latency floor at the same rate: the bare view paced like the actions.
        bare_paced = phase(port, key, "bare", args.clients, args.seconds, args.rate, run + "bp", sid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    approved, pending, other = check_database()
    answered = warm["ok"] + saturated["ok"] + paced["ok"]
    print(
        f"server=gunicorn {args.server} workers={args.workers} clients={args.clients} seconds={args.seconds} "
        f"rate={args.rate:.0f}/s"
    )
    print(describe("ceiling  /bench/bare back to back", bare))
    print(describe("actions  back to back", saturated))
    print(describe(f"actions  at {args.rate:.0f}/s", paced))
    print(describe(f"ceiling  /bench/bare at {args.rate:.0f}/s", bare_paced))
    share = (saturated["sent"] / saturated["elapsed"]) / max(bare["sent"] / bare["elapsed"], 1e-9)
    print(f"database: {approved} approved by the policy, {pending} pending, {other} other; answered {answered}")
    errors = warm["errors"] + bare["errors"] + saturated["errors"] + paced["errors"] + bare_paced["errors"]
    for e in errors[:5]:
        print("  error:", e)
    p99 = percentile(paced["latencies"], 99)
    achieved = paced["sent"] / paced["elapsed"]
    verdict = (
        "PASS"
        if p99 < 15
        and share >= 0.30
        and not errors
        and (approved, pending, other) == (answered, 0, 0)
        and achieved >= 0.95 * args.rate
        else "MISS"
    )
    # What the target rate asks of the machine: the CPU an action costs (server, database,
    # clients), measured back to back, times the rate, against the cores there are.
    per_action = sum(cpu_ms(saturated).values())
    cores = os.cpu_count() or 1
    print(
        f"load at {args.rate:.0f}/s: {args.rate * per_action / 1000:.2f} of {cores} cores busy "
        f"({args.rate * per_action / 1000 / cores:.0%}; the bare view at that rate: "
        f"{args.rate * sum(cpu_ms(bare).values()) / 1000 / cores:.0%})"
    )
    print(
        f"SUMMARY actions_p99_ms={p99:.1f} target<15 at {achieved:.0f}/s "
        f"(bare view {percentile(bare_paced['latencies'], 99):.1f}); saturation {share:.0%} of the bare view "
        f"target>=30% -> {verdict}"
    )
    if not args.keep_data:
        _cleanup()


def _cleanup() -> None:
    from bench.tenant import tenant_delete

    tenant_delete(ORG)


if __name__ == "__main__":
    main()
