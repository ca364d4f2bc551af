"""The ingest workload of `bench/ingest.py`, sent to a running Label Studio instead, for comparison.

    LS_URL=http://127.0.0.1:8200 LS_TOKEN=... .venv/bin/python bench/labelstudio_ingest.py

Label Studio is not a dependency of this project and is never installed into its virtualenv:
install it elsewhere (`python3.11 -m venv /tmp/ls-venv && /tmp/ls-venv/bin/pip install
label-studio`), start its default (`label-studio start --no-browser --port 8200 --username ...
--password ... --user-token ...`: SQLite and Django's development server, as it ships), and
point this script at it. It creates a project whose labeling config shows the transcript and
asks one question, then imports the same conversations (same generator, seed and batch size)
through `POST /api/projects/{id}/import` from the same number of client threads, and prints
tasks/s beside request p50/p99, then `GET /api/projects/{id}/next` and
`POST /api/tasks/{id}/annotations` latencies on one kept-alive connection: Label Studio's claim
and label.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import claim, embedded, ingest

LABEL_CONFIG = """<View>
  <Paragraphs name="dialogue" value="$messages" layout="dialogue" nameKey="role" textKey="content"/>
  <Choices name="quality" toName="dialogue" choice="single"><Choice value="good"/><Choice value="bad"/></Choices>
</View>"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--labels", type=int, default=100, help="sequential next + annotation pairs")
    parser.add_argument("--server-pid", type=int, default=None, help="Label Studio's pid: report its CPU")
    args = parser.parse_args()
    base, token = os.environ["LS_URL"].rstrip("/"), os.environ["LS_TOKEN"]
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    port = urlsplit(base).port
    embedded.ping(port, 20, keep_alive=True, path="/health")
    kept = embedded.ping(port, 100, keep_alive=True, path="/health")
    fresh = embedded.ping(port, 100, keep_alive=False, path="/health")
    print(
        f"label studio /health p50 {claim.percentile(kept, 50):.1f} ms kept-alive, "
        f"{claim.percentile(fresh, 50):.1f} ms new connection"
    )
    response = httpx.post(
        f"{base}/api/projects",
        headers=headers,
        json={"title": f"bench {uuid.uuid4().hex[:6]}", "label_config": LABEL_CONFIG},
    )
    response.raise_for_status()
    project = response.json()["id"]
    bodies = [
        orjson.dumps(batch)
        for batch in ingest.build_batches(run_id=uuid.uuid4().hex[:8], total=args.total, batch=args.batch, seed=7)
    ]
    result = ingest.LoadResult()

    def server_cpu() -> float:
        if args.server_pid is None:
            return 0.0
        return ingest.proc_cpu(args.server_pid) + sum(ingest.proc_cpu(p) for p in ingest.child_pids(args.server_pid))

    cpu = server_cpu()
    # ingest.post_batches posts to this project's endpoint with Label Studio's token scheme.
    loaded = _post(base, headers, project, bodies, args.clients, result)
    rate = loaded.created / loaded.elapsed if loaded.elapsed else 0.0
    import_cpu_ms = (server_cpu() - cpu) * 1e6 / max(loaded.created, 1)
    took = [s * 1000 for s in loaded.latencies]
    stored = httpx.get(f"{base}/api/projects/{project}", headers=headers, timeout=60).json().get("task_number")
    print(
        f"label studio import: {loaded.created:,} tasks in {loaded.elapsed:.1f}s = {rate:,.0f}/s, request p50 "
        f"{claim.percentile(took, 50):.0f} ms p99 {claim.percentile(took, 99):.0f} ms; tasks stored {stored}; "
        f"errors {len(loaded.errors)}; server CPU {import_cpu_ms:.0f} ms per 1,000; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for error in loaded.errors[:3]:
        print("  error:", error)

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    nexts, annotations = [], []
    cpu = server_cpu()
    for _ in range(args.labels):
        started = time.perf_counter()
        conn.request("GET", f"/api/projects/{project}/next", headers=headers)
        got = conn.getresponse()
        task = json.loads(got.read())
        nexts.append((time.perf_counter() - started) * 1000)
        body = json.dumps(
            {
                "result": [
                    {"from_name": "quality", "to_name": "dialogue", "type": "choices", "value": {"choices": ["good"]}}
                ]
            }
        )
        started = time.perf_counter()
        conn.request("POST", f"/api/tasks/{task['id']}/annotations?project={project}", body=body, headers=headers)
        done = conn.getresponse()
        done.read()
        annotations.append((time.perf_counter() - started) * 1000)
        if done.status != 201:
            print(f"  annotation answered {done.status}")
            break
    pair_cpu_ms = (server_cpu() - cpu) * 1000 / max(len(annotations), 1)
    print(
        f"label studio next: p50 {claim.percentile(nexts, 50):.1f} p99 {claim.percentile(nexts, 99):.1f} ms; "
        f"annotation: p50 {claim.percentile(annotations, 50):.1f} p99 {claim.percentile(annotations, 99):.1f} ms "
        f"({len(annotations)} sequential pairs on one kept-alive connection); server CPU {pair_cpu_ms:.1f} ms a pair"
    )
    print(
        f"SUMMARY labelstudio import_tasks_per_s={rate:.0f} next_p50_ms={claim.percentile(nexts, 50):.1f} "
        f"annotation_p50_ms={claim.percentile(annotations, 50):.1f}"
    )
    return 0 if not loaded.errors and loaded.created == args.total else 1


def _post(base: str, headers: dict, project: int, bodies: list[bytes], clients: int, result: ingest.LoadResult):
    """Each client thread keeps one connection and takes the next batch until none are left."""
    import threading

    lock = threading.Lock()
    next_index = iter(range(len(bodies)))
    start = time.perf_counter()

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None or len(result.errors) >= 5:
                    return
                sent = time.perf_counter()
                response = http.post(f"/api/projects/{project}/import", content=bodies[index])
                took = time.perf_counter() - sent
                with lock:
                    if response.status_code == 201:
                        result.latencies.append(took)
                        result.created += response.json().get("task_count", 0)
                    else:
                        result.errors.append(f"batch {index}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - start
    return result


if __name__ == "__main__":
    sys.exit(main())
