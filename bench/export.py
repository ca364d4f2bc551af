"""A million-item dataset version exported over HTTP as JSONL and Parquet, beside PostgreSQL's
own `COPY (SELECT ...) TO STDOUT` of the same rows as the ceiling, in the same run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench \
        .venv/bin/python bench/export.py [--items 1000000] [--server wsgi|asgi] [--reuse] [--keep-data]

One run: migrate; load a tenant with `--items` conversations and one frozen dataset version of
as many items (set-based `INSERT ... SELECT generate_series`, not the ORM: seconds, not
minutes), each with two messages, a reference turn, expected labels and lineage; start the
production server (one gunicorn worker, sync, or `--server asgi`) on a free loopback port;
then, one after the other:

1. the ceiling: `COPY (SELECT <the exported columns> ...) TO STDOUT` read by this process
   (psycopg `copy`): rows/s of PostgreSQL handing the rows over, no HTTP, no Python per row;
2. `GET /api/v1/datasets/{id}/versions/1/export?format=jsonl` with the project's key, read as
   it streams: rows/s (lines counted), rows per CPU-second of the worker (what it would do
   with a core to itself on a shared machine), time to first byte, and the worker's RSS
   (polled from /proc every 50 ms) above what it was before the request;
3. the same with `format=parquet`, the file's row count read back from its footer.

Targets (issue 11): at least 30,000 rows/s and server RSS growth under 150 MB. Cleans up its
tenant unless `--keep-data`; `--reuse` keeps the rows of an earlier `--keep-data` run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from harness import free_port, setup_django

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ORG = "bench-export"
TARGET_ROWS_S = 30_000
TARGET_RSS_MB = 150


def _tables() -> dict[str, str]:
    from evaluation.models import DatasetVersionItem
    from reviewapp.models import Conversation

    return {"conversation": Conversation._meta.db_table, "item": DatasetVersionItem._meta.db_table}


def load(items: int, reuse: bool) -> tuple[str, int]:
    """(the project key, the dataset id) of a tenant holding one version of `items` items."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from evaluation.models import Dataset, DatasetVersion
    from reviewapp import services as core
    from reviewapp.models import Organization

    call_command("migrate", verbosity=0)
    existing = Organization.objects.filter(slug=ORG).first()
    if reuse and existing is not None:
        dataset = Dataset.objects.get(organization=existing)
        version = DatasetVersion.objects.get(dataset=dataset, number=1)
        if version.item_count == items:
            project = dataset.project
            return core.api_key_create(project=project, name="bench").raw, dataset.pk
    _cleanup()
    org = core.organization_create(slug=ORG, name="Export bench")
    project = core.project_create(organization=org, slug="support")
    dataset = Dataset.objects.create(organization=org, project=project, name="Golden")
    version = DatasetVersion.objects.create(
        organization=org, dataset=dataset, number=1, content_hash="0" * 64, item_count=items
    )
    t = _tables()
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO {t["conversation"]} (organization_id, project_id, external_id, messages, occurred_at,
                received_at, agent_version, end_user_id, tags, metadata, user_rephrased, escalated_by_user)
            SELECT %(org)s, %(project)s, 'bench-' || g,
                jsonb_build_array(
                    jsonb_build_object('role', 'system', 'content', 'You are the airline''s support agent.'),
                    jsonb_build_object('role', 'user', 'content',
                        'Where is my refund for booking ' || g || '? It has been a week, "again".'),
                    jsonb_build_object('role', 'assistant', 'content',
                        'Your refund for booking ' || g || ' was issued on Monday; allow 5-7 days.')),
                now(), now(), 'v1', 'user-' || (g %% 5000), '[]'::jsonb, '{{}}'::jsonb, false, false
            FROM generate_series(1, %(n)s) AS g""",  # noqa: S608 - table names from the models
            {"org": org.pk, "project": project.pk, "n": items},
        )
        cur.execute(
            f"""INSERT INTO {t["item"]} (version_id, key, conversation_id, queue_item_id, input_messages,
                reference_output, expected_labels, critical, tags, split, lineage, content_hash)
            SELECT %(version)s, substr(md5('k' || c.id), 1, 16), c.id, NULL,
                jsonb_build_array(c.messages -> 0, c.messages -> 1), c.messages -> 2,
                '{{"quality": "good", "helpfulness": 4}}'::jsonb, c.id %% 50 = 0, '["refund"]'::jsonb,
                (ARRAY['train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'dev', 'test'])
                    [1 + c.id %% 10],
                jsonb_build_object('label_ids', jsonb_build_array(2 * c.id, 2 * c.id + 1),
                    'annotators', '["ann-a", "ann-b"]'::jsonb, 'final_source', 'agreement',
                    'label_source', 'human', 'schema', '{{"name": "Support quality", "version": 3}}'::jsonb,
                    'queue_id', 1),
                md5(c.id::text) || md5(c.id::text)
            FROM {t["conversation"]} AS c WHERE c.project_id = %(project)s""",  # noqa: S608
            {"version": version.pk, "project": project.pk},
        )
        cur.execute(f"ANALYZE {t['item']}")
        cur.execute(f"ANALYZE {t['conversation']}")
    print(f"loaded {items:,} conversations and dataset items in {time.monotonic() - started:.1f} s", flush=True)
    return core.api_key_create(project=project, name="bench").raw, dataset.pk


def ceiling(dataset_id: int) -> dict:
    """PostgreSQL alone: the same columns of the same rows, joined the same way, as COPY text."""
    from django.db import connection

    t = _tables()
    query = f"""COPY (SELECT i.key, i.conversation_id, i.queue_item_id, c.external_id, i.input_messages,
        i.reference_output, i.expected_labels, i.critical, i.tags, i.split, i.lineage
        FROM {t["item"]} AS i LEFT JOIN {t["conversation"]} AS c ON c.id = i.conversation_id
        WHERE i.version_id = (SELECT id FROM evaluation_datasetversion WHERE dataset_id = {int(dataset_id)}
        AND number = 1) ORDER BY i.id) TO STDOUT"""  # noqa: S608 - an int and the models' tables
    connection.ensure_connection()
    raw = connection.connection
    started = time.monotonic()
    rows = 0
    size = 0
    with raw.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            size += len(block)
            rows += bytes(block).count(b"\n")
    seconds = time.monotonic() - started
    return {"rows": rows, "seconds": seconds, "rows_s": rows / seconds, "mb": size / 1e6}


def start_gunicorn(port: int, server: str) -> subprocess.Popen:
    env = dict(os.environ, DEBUG="0", LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1")
    app = "reviewapp.wsgi" if server == "wsgi" else "reviewapp.asgi"
    cmd = [str(VENV_BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    cmd += ["--timeout", "600", "--log-level", "warning"]
    if server == "asgi":
        cmd += ["--worker-class", "asgi"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start")


def _worker_pid(arbiter: int) -> int:
    children = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()
    return int(children[0])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process: on a shared machine, rows per CPU-second of the
    worker says what it would do on a core of its own, whatever the others take."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export(port: int, arbiter: int, key: str, dataset_id: int, fmt: str) -> dict:
    worker = _worker_pid(arbiter)
    before = _rss_mb(worker)
    cpu_before = _cpu_s(worker)
    peak = [before]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _rss_mb(worker))

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    url = f"http://127.0.0.1:{port}/api/v1/datasets/{dataset_id}/versions/1/export?format={fmt}"
    started = time.monotonic()
    first = None
    size = 0
    lines = 0
    with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as out:
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as response:
            if response.status_code != 200:
                raise SystemExit(f"{fmt}: HTTP {response.status_code}: {response.read()[:500]!r}")
            for block in response.iter_raw(1 << 16):
                if first is None:
                    first = time.monotonic() - started
                size += len(block)
                if fmt == "jsonl":
                    lines += block.count(b"\n")
                else:
                    out.write(block)
        seconds = time.monotonic() - started
        cpu = _cpu_s(worker) - cpu_before
        done.set()
        watcher.join()
        if fmt == "parquet":
            import pyarrow.parquet as pq

            out.flush()
            lines = pq.ParquetFile(out.name).metadata.num_rows
    return {
        "rows": lines,
        "seconds": seconds,
        "rows_s": lines / seconds,
        "rows_cpu_s": lines / max(cpu, 1e-9),
        "first_byte_ms": (first or 0) * 1000,
        "mb": size / 1e6,
        "rss_before_mb": before,
        "rss_growth_mb": peak[0] - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--server", choices=["wsgi", "asgi"], default="wsgi")
    parser.add_argument("--reuse", action="store_true", help="keep the rows of an earlier --keep-data run")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench/export.py needs PostgreSQL: set DATABASE_URL.")
    key, dataset_id = load(args.items, args.reuse)
    copy = ceiling(dataset_id)
    print(f"ceiling COPY TO STDOUT: {copy['rows']:,} rows in {copy['seconds']:.1f} s = {copy['rows_s']:,.0f} rows/s "
          f"({copy['mb']:.0f} MB)", flush=True)  # fmt: skip
    connection.close()  # the server's worker gets the database to itself
    port = free_port()
    proc = start_gunicorn(port, args.server)
    results = {}
    try:
        for fmt in ("jsonl", "parquet"):
            r = results[fmt] = export(port, proc.pid, key, dataset_id, fmt)
            ok = r["rows"] == args.items
            print(
                f"{fmt:8} over HTTP ({args.server}): {r['rows']:,} rows{'' if ok else ' (WRONG COUNT)'} in "
                f"{r['seconds']:.1f} s = {r['rows_s']:,.0f} rows/s ({r['rows_s'] / copy['rows_s']:.0%} of COPY; "
                f"{r['rows_cpu_s']:,.0f} rows per worker CPU-second), "
                f"first byte {r['first_byte_ms']:.0f} ms, {r['mb']:.0f} MB, worker RSS {r['rss_before_mb']:.0f} MB "
                f"+{r['rss_growth_mb']:.0f} MB",
                flush=True,
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    worst = min(r["rows_s"] for r in results.values())
    growth = max(r["rss_growth_mb"] for r in results.values())
    verdict = "MEETS" if worst >= TARGET_ROWS_S and growth < TARGET_RSS_MB else "MISS"
    print(
        f"SUMMARY export slowest {worst:,.0f} rows/s target>={TARGET_ROWS_S:,}; RSS growth {growth:.0f} MB "
        f"target<{TARGET_RSS_MB}; ceiling {copy['rows_s']:,.0f} rows/s -> {verdict}"
    )
    if not args.keep_data:
        _cleanup()


def _cleanup() -> None:
    from django.db import connection, transaction

    from bench.tenant import tenant_delete

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT id FROM reviewapp_organization WHERE slug = %s", [ORG])
        row = cur.fetchone()
        if row is not None:
            # Dataset rows point at conversations: gone first (tenant_delete predates datasets).
            t = _tables()
            cur.execute(
                f"DELETE FROM {t['item']} WHERE version_id IN "  # noqa: S608
                "(SELECT id FROM evaluation_datasetversion WHERE organization_id = %s)",
                [row[0]],
            )
            cur.execute("DELETE FROM evaluation_datasetversion WHERE organization_id = %s", [row[0]])
            cur.execute("DELETE FROM evaluation_dataset WHERE organization_id = %s", [row[0]])
    tenant_delete(ORG)


if __name__ == "__main__":
    main()
