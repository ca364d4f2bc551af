"""Batch ingestion through the real HTTP API under gunicorn on PostgreSQL.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/ingest.py

One run: migrate, provision an organization, project and API key through the services, start
gunicorn (`reviewapp.wsgi`, DEBUG off, from the repository root so ./gunicorn.conf.py applies) on
a free loopback port, post `--total` conversations (about 1.5 KB of JSON each, 2-3 judge scores,
a tag, metadata, feedback on about a third) in batches of `--batch` from `--clients` client
threads (httpx, keep-alive where the worker class allows it), stop at `--time-limit`, verify the
stored row counts, then time a PostgreSQL `COPY` of the same rows into a scratch table with the
columns of `reviewapp_conversation`: the ceiling the HTTP figure is read against. Prints one
`SUMMARY` line; exits 0 when the rows verify and the rate reaches the 5,000/s target. gunicorn,
the scratch table and the bench tenant's rows are removed on the way out (`--keep-data` keeps
the rows). Refuses to run on SQLite.

Request bodies are built before the clock starts, so the client threads spend their CPU on
sending bytes, not on building them: on a 2-core machine the client shares the cores with
gunicorn and PostgreSQL, and every cycle it burns is taken from the server. CPU per 1,000
conversations is reported beside the rate, because on a shared machine the rate moves with
whatever else runs and the CPU cost does not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

if TYPE_CHECKING:
    from reviewapp.models import Project
    from reviewapp.services import IssuedCredential

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TARGET_CONV_PER_S = 5_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

AGENT_VERSIONS = ["2024.11.3", "2024.12.0", "2025.01.1"]
TAGS = ["refund", "booking-change", "baggage", "cancellation", "loyalty", "complaint"]
JUDGES = [("helpfulness", "gpt-judge"), ("policy_compliance", "policy-judge"), ("tone", "gpt-judge")]
CITIES = ["LHR", "CDG", "JFK", "AMS", "FRA", "MAD", "LIS", "DUB", "BCN", "MUC"]
SYSTEM_PROMPT = (
    "You are the customer-support assistant for Skyline Air. Help with bookings, changes, "
    "refunds and baggage. Follow the refund policy; never promise compensation you cannot grant."
)


# --- data -----------------------------------------------------------------------------------


def conversation(rng: random.Random, external_id: str, occurred_at: dt.datetime) -> dict[str, Any]:
    """One airline-support exchange of about 1.5 KB as JSON: a tool call and its result, 2-3
    judge scores, one tag, metadata, and feedback on about a third of them."""
    booking = f"{rng.choice('ABCDEFGHJK')}{rng.randrange(10_000, 99_999)}"
    origin, destination = rng.sample(CITIES, 2)
    amount = rng.randrange(80, 900)
    call_id = f"call_{secrets.token_hex(6)}"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"Hi, my flight {origin}-{destination} on booking {booking} was cancelled. "
            "Can I get my money back rather than a voucher?",
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "lookup_booking", "arguments": orjson.dumps({"booking": booking}).decode()},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call_id,
            "content": orjson.dumps(
                {"booking": booking, "status": "cancelled_by_airline", "fare": amount, "currency": "EUR"}
            ).decode(),
        },
        {
            "role": "assistant",
            "content": f"I'm sorry about the cancellation. Because the airline cancelled flight {origin}-"
            f"{destination}, you are entitled to a full refund of EUR {amount} to your original payment "
            "method. I have started it; it usually arrives within 7 working days.",
        },
    ]
    scores = [
        {
            "judge": judge,
            "judge_version": "v3",
            "criterion": criterion,
            "score": round(rng.random(), 3),
            "confidence": round(rng.uniform(0.5, 1.0), 2),
            "reasoning": "Correct policy applied; refund amount matches the fare." if rng.random() < 0.5 else "",
        }
        for criterion, judge in JUDGES[: rng.choice((2, 3))]
    ]
    item: dict[str, Any] = {
        "external_id": external_id,
        "occurred_at": occurred_at.isoformat(),
        "agent_version": rng.choice(AGENT_VERSIONS),
        "end_user_id": f"user-{rng.randrange(1, 50_000)}",
        "tags": [rng.choice(TAGS)],
        "metadata": {"channel": rng.choice(["web", "app", "whatsapp"]), "locale": "en-GB", "latency_ms": amount * 3},
        "messages": messages,
        "judge_scores": scores,
    }
    if rng.random() < 0.3:
        item["feedback"] = {
            "rating": rng.choice(["up", "down"]),
            "comment": "" if rng.random() < 0.7 else "Took two tries to understand me.",
            "user_rephrased": rng.random() < 0.2,
        }
    return item


def build_batches(*, run_id: str, total: int, batch: int, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    items = [
        conversation(rng, f"{run_id}-{i:08d}", start + dt.timedelta(seconds=i * 7 % 2_592_000)) for i in range(total)
    ]
    return [items[i : i + batch] for i in range(0, total, batch)]


# --- server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(
    *, port: int, workers: int, worker_class: str, threads: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """The production command's shape (docs/architecture.md) on a loopback port. Run from the
    repository root, so gunicorn also reads ./gunicorn.conf.py as it does in production."""
    command = [
        str(VENV_BIN / "gunicorn"),
        "reviewapp.wsgi",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        f"--worker-class={worker_class}",
        f"--threads={threads}",
        "--timeout=120",
        "--keep-alive=30",
        "--log-level=warning",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with status {proc.returncode} before answering")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /healthz within {timeout:.0f}s")


def stop_gunicorn(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# --- CPU accounting ---------------------------------------------------------------------------
# The machine is small and may be shared: wall-clock throughput moves with whatever else runs.
# CPU seconds per 1,000 conversations (gunicorn workers, their PostgreSQL backends, this client)
# do not, and give the throughput two idle cores would reach.


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq + steal
    return busy / CLOCK_TICKS, (busy + idle + iowait) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by gunicorn's workers, their PostgreSQL backends (found by
    application_name), this process (the client) and the whole machine, and the WAL written,
    between start() and stop(). A sampler thread keeps the last reading of every process, so a backend that closes
    mid-run (CONN_MAX_AGE) still counts up to its last sample, at most `interval` short."""

    def __init__(self, *, gunicorn: subprocess.Popen[bytes], dsn: str, app_name: str, interval: float = 0.5):
        self.gunicorn, self.dsn, self.app_name, self.interval = gunicorn, dsn, app_name, interval
        self.baseline: dict[str, dict[int, float]] = {"server": {}, "database": {}}
        self.latest: dict[str, dict[int, float]] = {"server": {}, "database": {}}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def _sample(self, conn: Any) -> None:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [self.app_name]).fetchall()
        self.latest["server"].update({pid: proc_cpu(pid) for pid in child_pids(self.gunicorn.pid)})
        self.latest["database"].update({pid: proc_cpu(pid) for (pid,) in rows})

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                self._sample(conn)
            self._sample(conn)

    def start(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self._sample(conn)
            self.wal_start = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        self.baseline = {kind: dict(values) for kind, values in self.latest.items()}
        self.client_start, self.machine_start = time.process_time(), machine_busy()
        self._thread.start()

    def stop(self) -> dict[str, float]:
        client = time.process_time() - self.client_start
        busy, total = (end - start for end, start in zip(machine_busy(), self.machine_start, strict=True))
        self._stop.set()
        self._thread.join(timeout=30)
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            # Cluster-wide: includes whatever else writes to this PostgreSQL meanwhile.
            wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [self.wal_start]).fetchone()
        used = {
            kind: sum(cpu - self.baseline[kind].get(pid, 0.0) for pid, cpu in self.latest[kind].items())
            for kind in ("server", "database")
        }
        return {
            **used,
            "client": client,
            "machine_busy": busy,
            "machine_total": total,
            "others": max(0.0, busy - used["server"] - used["database"] - client),
            "wal_bytes": float(wal[0]) if wal else 0.0,
        }


# --- load -------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    finished: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, conversations)
    sent_conversations: int = 0
    created: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def post_batches(*, base_url: str, key: str, bodies: list[bytes], clients: int, time_limit: float) -> LoadResult:
    """Each client thread keeps one connection open and takes the next body until none are left
    or the time limit has passed (a request in flight is allowed to finish)."""
    result = LoadResult()
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    start = time.perf_counter()
    deadline = start + time_limit

    def client() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
            for _ in range(len(bodies)):
                with lock:
                    index = next(next_index, None)
                if index is None or time.perf_counter() > deadline or len(result.errors) >= 5:
                    return
                sent = time.perf_counter()
                try:
                    response = http.post("/api/v1/conversations", content=bodies[index])
                except httpx.HTTPError as exc:
                    with lock:
                        result.errors.append(f"batch {index}: {exc!r}")
                    continue
                took = time.perf_counter() - sent
                if response.status_code != 201:
                    with lock:
                        result.errors.append(f"batch {index}: {response.status_code} {response.text[:300]}")
                    continue
                results = orjson.loads(response.content)["results"]
                with lock:
                    result.latencies.append(took)
                    result.finished.append((time.perf_counter() - start, len(results)))
                    result.sent_conversations += len(results)
                    result.created += sum(1 for r in results if r["status"] == "created")

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=time_limit + 180)
    result.elapsed = time.perf_counter() - start
    return result


def rate_by_fifth(finished: list[tuple[float, int]]) -> list[float]:
    """Conversations/s over each fifth of the run's requests, in completion order: shows whether
    the rate holds as the tables grow past the database's buffer cache."""
    done = sorted(finished)
    rates, previous = [], 0.0
    for part in range(5):
        chunk = done[len(done) * part // 5 : len(done) * (part + 1) // 5]
        if chunk:
            rates.append(sum(n for _, n in chunk) / max(chunk[-1][0] - previous, 1e-9))
            previous = chunk[-1][0]
    return rates


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


# --- COPY ceiling ---------------------------------------------------------------------------

COPY_COLUMNS = [
    "organization_id",
    "project_id",
    "external_id",
    "messages",
    "occurred_at",
    "received_at",
    "agent_version",
    "end_user_id",
    "tags",
    "metadata",
    "feedback_rating",
    "user_rephrased",
    "escalated_by_user",
    "ingested_by_key_id",
    "ingested_by_user_id",
]
COPY_SQL = f"COPY bench_copy_conversation ({', '.join(COPY_COLUMNS)}) FROM STDIN"
COUNT_SQL = "SELECT count(*) FROM bench_copy_conversation"


def copy_ceiling(*, dsn: str, rows: list[tuple[Any, ...]], with_indexes: bool, repeat: int) -> float:
    """Best rows/s of `repeat` COPYs of `rows` into a scratch table with the columns of
    reviewapp_conversation (and, with `with_indexes`, its unique constraint and indexes), each
    committed. Rows are built before the clock starts; JSON columns go as text for the server to
    parse as jsonb, exactly as the ingest path sends them."""
    import psycopg

    table = "bench_copy_conversation"
    like = "INCLUDING DEFAULTS INCLUDING IDENTITY"
    if with_indexes:
        like += " INCLUDING INDEXES INCLUDING CONSTRAINTS"
    best = 0.0
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            for _ in range(repeat):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(f"CREATE TABLE {table} (LIKE reviewapp_conversation {like})")
                start = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                    for row in rows:
                        copy.write_row(row)
                elapsed = time.perf_counter() - start
                (count,) = conn.execute(COUNT_SQL).fetchone() or (0,)
                if count != len(rows):
                    raise SystemExit(f"COPY stored {count} rows, expected {len(rows)}")
                best = max(best, len(rows) / elapsed)
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return best


def copy_rows(items: list[dict[str, Any]], *, organization_id: int, project_id: int, key_id: int) -> list[tuple]:
    now = dt.datetime.now(dt.UTC)
    return [
        (
            organization_id,
            project_id,
            f"copy-{item['external_id']}",
            orjson.dumps(item["messages"]).decode(),
            item["occurred_at"],
            now,
            item["agent_version"],
            item["end_user_id"],
            orjson.dumps(item["tags"]).decode(),
            orjson.dumps(item["metadata"]).decode(),
            (item.get("feedback") or {}).get("rating"),
            bool((item.get("feedback") or {}).get("user_rephrased")),
            False,
            key_id,
            None,
        )
        for item in items
    ]


# --- set-up and clean-up ------------------------------------------------------------------------


def delete_bench_tenant(organization_id: int) -> None:
    """Remove a run's tenant with set-based statements (the ORM's cascade would load every
    conversation into Python first)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        for statement in CLEANUP_SQL:
            cur.execute(statement, [organization_id])
    if connection.vendor == "postgresql":
        # Reclaim the dead rows now rather than have autovacuum compete with the next run.
        with connection.cursor() as cur:
            for table in VACUUM_TABLES:
                cur.execute(f"VACUUM {table}")


VACUUM_TABLES = ("reviewapp_judgescore", "reviewapp_feedback", "reviewapp_conversationtag", "reviewapp_conversation")
CLEANUP_SQL = [
    "DELETE FROM reviewapp_judgescore WHERE conversation_id IN "
    "(SELECT id FROM reviewapp_conversation WHERE organization_id = %s)",
    "DELETE FROM reviewapp_feedback WHERE conversation_id IN "
    "(SELECT id FROM reviewapp_conversation WHERE organization_id = %s)",
    "DELETE FROM reviewapp_conversationtag WHERE conversation_id IN "
    "(SELECT id FROM reviewapp_conversation WHERE organization_id = %s)",
    "DELETE FROM reviewapp_conversation WHERE organization_id = %s",
    "DELETE FROM reviewapp_auditevent WHERE organization_id = %s",
    "DELETE FROM reviewapp_apikey WHERE organization_id = %s",
    "DELETE FROM reviewapp_project WHERE organization_id = %s",
    "DELETE FROM reviewapp_organization WHERE id = %s",
]


# --- main -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=100_000, help="conversations to post (default 100000)")
    parser.add_argument("--batch", type=int, default=1_000, help="conversations per request (max 1000)")
    parser.add_argument("--clients", type=int, default=3, help="concurrent client threads (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, one per core)")
    parser.add_argument(
        "--worker-class",
        default="sync",
        help="gunicorn worker class (default sync, as in docs/architecture.md; gthread keeps connections "
        "alive but pins each to one worker, which can leave a worker idle)",
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (default 1)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="stop sending after this many seconds")
    parser.add_argument("--copy-rows", type=int, default=None, help="rows for the COPY ceiling (default: --total)")
    parser.add_argument("--copy-repeat", type=int, default=2, help="COPY runs per variant; the best counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-data", action="store_true", help="keep the bench tenant's rows afterwards")
    args = parser.parse_args()
    if not 1 <= args.batch <= 1_000:
        parser.error("--batch must be between 1 and 1000 (the API's limit)")
    if min(args.total, args.clients, args.workers, args.threads, args.copy_repeat) < 1:
        parser.error("--total, --clients, --workers, --threads and --copy-repeat must be positive")
    if args.time_limit <= 0:
        parser.error("--time-limit must be positive")
    return args


def main() -> int:
    args = parse_args()
    dsn = os.environ.get("DATABASE_URL", "")
    if not dsn.startswith(("postgres://", "postgresql://")):
        print(
            "bench/ingest.py measures PostgreSQL: set DATABASE_URL=postgresql://... "
            f"(got {dsn or 'nothing, i.e. the SQLite default'}). Refusing to run on SQLite.",
            file=sys.stderr,
        )
        return 2

    run_id = f"bench-{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="reviewapp.settings",
        DEBUG="0",
        SECRET_KEY=env.get("SECRET_KEY") or secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL=env.get("LOG_LEVEL", "WARNING"),
    )
    os.environ.update(env)
    # libpq labels the workers' connections (and only theirs), so their backends' CPU can be found.
    server_app_name = f"{run_id}-server"
    server_env = {**env, "PGAPPNAME": server_app_name}
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from reviewapp import services

    # WhiteNoise warns on every worker start when the static root is missing.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; database {connection.settings_dict['NAME']}",
        flush=True,
    )
    call_command("migrate", interactive=False, verbosity=0)
    organization = services.organization_create(slug=run_id, name="Ingest bench")
    project = services.project_create(organization=organization, slug="support", name="Support agent")
    issued = services.api_key_create(project=project, name="bench")

    try:
        return run(args, dsn=dsn, env=server_env, project=project, issued=issued, run_id=run_id)
    finally:
        if not args.keep_data:
            delete_bench_tenant(organization.pk)


def run(
    args: argparse.Namespace, *, dsn: str, env: dict[str, str], project: Project, issued: IssuedCredential, run_id: str
) -> int:
    """Build the requests, serve, load, verify, measure COPY; 0 = verified and on target,
    1 = the stored rows do not match what the server answered, 3 = verified but below target."""
    from reviewapp.models import Conversation, Feedback, JudgeScore

    t0 = time.perf_counter()
    batches = build_batches(run_id=run_id, total=args.total, batch=args.batch, seed=args.seed)
    bodies = [orjson.dumps({"conversations": b}) for b in batches]
    # Two small requests per worker first: imports and connections warm up off the clock.
    warmup = build_batches(run_id=f"{run_id}-warm", total=args.workers * 2 * 50, batch=50, seed=args.seed + 1)
    warm_bodies = [orjson.dumps({"conversations": b}) for b in warmup]
    items = [item for b in batches for item in b]
    every = [*items, *(item for b in warmup for item in b)]
    mean_item = statistics.mean(len(orjson.dumps(item)) for item in items[:2000])
    print(
        f"built {len(items)} conversations in {len(bodies)} requests in {time.perf_counter() - t0:.1f}s: "
        f"{mean_item:.0f} B/conversation, {sum(map(len, bodies)) / len(bodies) / 1e6:.2f} MB/request",
        flush=True,
    )

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    proc = start_gunicorn(
        port=port, workers=args.workers, worker_class=args.worker_class, threads=args.threads, env=env
    )
    try:
        wait_healthy(base_url, proc)
        warm = post_batches(base_url=base_url, key=issued.raw, bodies=warm_bodies, clients=args.workers, time_limit=60)
        if warm.errors:
            raise SystemExit(f"warm-up failed: {warm.errors[0]}")
        print(
            f"gunicorn on {base_url}: {args.workers} {args.worker_class} workers x {args.threads} threads, "
            f"{args.clients} client threads, batches of {args.batch}",
            flush=True,
        )
        meter = CpuMeter(gunicorn=proc, dsn=dsn, app_name=env["PGAPPNAME"])
        meter.start()
        load = post_batches(
            base_url=base_url, key=issued.raw, bodies=bodies, clients=args.clients, time_limit=args.time_limit
        )
        cpu = meter.stop()
        stop_gunicorn(proc)

        sent = load.sent_conversations + warm.sent_conversations
        checks = {
            "conversations": (Conversation.objects.filter(project=project).count(), sent),
            "created": (load.created + warm.created, sent),
        }
        if load.sent_conversations == len(items):
            checks["judge_scores"] = (
                JudgeScore.objects.filter(conversation__project=project).count(),
                sum(len(item["judge_scores"]) for item in every),
            )
            checks["feedback"] = (
                Feedback.objects.filter(conversation__project=project).count(),
                sum(1 for item in every if "feedback" in item),
            )
        verified = all(a == b for a, b in checks.values()) and not load.errors
        for error in load.errors:
            print(f"error: {error}", file=sys.stderr)
        conv_per_s = load.sent_conversations / load.elapsed if load.elapsed else 0.0
        p50 = percentile(load.latencies, 50) * 1000
        p99 = percentile(load.latencies, 99) * 1000
        print(
            f"HTTP: {load.sent_conversations} conversations in {load.elapsed:.2f}s = {conv_per_s:,.0f} conv/s; "
            f"{len(load.latencies)} requests, latency p50 {p50:.0f} ms, p99 {p99:.0f} ms; by fifths of the run: "
            + " / ".join(f"{rate:,.0f}" for rate in rate_by_fifth(load.finished))
            + " conv/s",
            flush=True,
        )
        print(
            "verify: "
            + ", ".join(f"{name} {a}/{b}" for name, (a, b) in checks.items())
            + (" OK" if verified else " MISMATCH"),
            flush=True,
        )
        per_k = 1000 / max(load.sent_conversations, 1)
        own = cpu["server"] + cpu["database"] + cpu["client"]
        idle_capacity = (os.cpu_count() or 1) * load.sent_conversations / own if own else 0.0
        print(
            f"CPU per 1000 conversations: gunicorn {cpu['server'] * per_k * 1e3:.0f} ms, PostgreSQL "
            f"{cpu['database'] * per_k * 1e3:.0f} ms, client {cpu['client'] * per_k * 1e3:.0f} ms; "
            f"machine {cpu['machine_busy'] / cpu['machine_total'] * 100:.0f}% busy, other processes "
            f"{cpu['others'] / cpu['machine_total'] * 100:.0f}% of it; "
            f"at that cost {os.cpu_count()} idle cores would take {idle_capacity:,.0f} conv/s; "
            f"WAL {cpu['wal_bytes'] * per_k / 1e6:.1f} MB",
            flush=True,
        )

        rows = copy_rows(
            items[: args.copy_rows or len(items)],
            organization_id=project.organization_id,
            project_id=project.pk,
            key_id=issued.record.pk,
        )
        copy_plain = copy_ceiling(dsn=dsn, rows=rows, with_indexes=False, repeat=args.copy_repeat)
        copy_indexed = copy_ceiling(dsn=dsn, rows=rows, with_indexes=True, repeat=args.copy_repeat)
        print(
            f"COPY {len(rows)} conversation rows: {copy_plain:,.0f} rows/s into a bare table, "
            f"{copy_indexed:,.0f} rows/s with the table's unique constraint and indexes",
            flush=True,
        )
        verdict = "PASS" if verified and conv_per_s >= TARGET_CONV_PER_S else "FAIL"
        print(
            f"SUMMARY conv_per_s={conv_per_s:.0f} p50_ms={p50:.0f} p99_ms={p99:.0f} "
            f"copy_rows_per_s={copy_plain:.0f} copy_indexed_rows_per_s={copy_indexed:.0f} "
            f"http_over_copy={conv_per_s / copy_plain if copy_plain else 0:.3f} "
            f"idle_capacity_conv_per_s={idle_capacity:.0f} target={TARGET_CONV_PER_S} verified={verified} {verdict}",
            flush=True,
        )
        return 0 if verdict == "PASS" else 3 if verified else 1
    finally:
        stop_gunicorn(proc)


if __name__ == "__main__":
    sys.exit(main())
