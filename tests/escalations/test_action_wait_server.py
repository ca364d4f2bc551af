"""Waits under the documented production server: gunicorn's ASGI worker serving reviewapp.asgi
in its own process, on the test's PostgreSQL database (committed rows: transaction=True).

The decisions are made in this test process, so the server hears of them only as another web
process would: through Redis pub/sub (REDIS_URL set), or through its status read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.db import connection

from escalations import waiting
from reviewapp import services
from tests.concurrency.racing import wait_for
from tests.escalations.waits import decide, decide_all, join_sides, no_wait_in_progress, pending_action, start_side

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
APP_NAME = "reviewapp-wait-server-test"
needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (set REDIS_URL)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def worker_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def worker_threads(self) -> int:
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def _start(*, redis: bool, poll_seconds: float) -> Server:
    db = connection.settings_dict
    auth = f"{db.get('USER') or 'postgres'}" + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    database_url = (
        f"postgresql://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        f"?application_name={APP_NAME}"
    )
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        ACTION_WAIT_POLL_SECONDS=str(poll_seconds),
        ACTION_WAIT_CHECK_SECONDS=str(poll_seconds),
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="0",
        LOG_LEVEL="WARNING",
    )
    if not redis:
        env.pop("REDIS_URL", None)
    log = ROOT / "var" / f"wait-server-{port}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "reviewapp.asgi",
                "--worker-class",
                "asgi",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    if not wait_for(up, timeout=30):
        proc.kill()
        pytest.fail(f"the ASGI server did not start:\n{log.read_text()}")
    return Server(proc, url, log)


def _stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
    server.log.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def fresh_hub(settings):
    settings.ACTION_WAIT_POLL_SECONDS = 30
    settings.ACTION_WAIT_CHECK_SECONDS = 30
    no_wait_in_progress()
    waiting.hub_reset()
    yield
    waiting.hub_reset()


@pytest.fixture(scope="module")
def server_with_redis(django_db_setup) -> Iterator[Server]:
    # Status reads every 30 s: within a test, only pub/sub can wake a waiter.
    server = _start(redis=True, poll_seconds=30)
    yield server
    _stop(server)


@pytest.fixture(scope="module")
def server_polling(django_db_setup) -> Iterator[Server]:
    """No Redis: this process's decisions reach the server through its status read."""
    server = _start(redis=False, poll_seconds=0.5)
    yield server
    _stop(server)


def _get(server: Server, raw_key: str | None, path: str, timeout: float = 70) -> tuple[httpx.Response, float]:
    headers = {"Authorization": f"Bearer {raw_key}"} if raw_key else {}
    start = time.monotonic()
    response = httpx.get(f"{server.url}{path}", headers=headers, timeout=timeout)
    return response, time.monotonic() - start


def _subscribers() -> int:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        return dict(client.pubsub_numsub(waiting.channel()))[waiting.channel().encode()]
    finally:
        client.close()


def _quiet_for_a_second() -> bool:
    """Whether the server held at most two connections at each of 20 readings over a second:
    the stragglers' first reads are done (under CI's parallel load a burst of 50 requests can
    take seconds to arrive; ten readings within a few milliseconds once passed between two)."""
    for _ in range(20):
        if _server_connections() > 2:
            return False
        time.sleep(0.05)
    return True


def _server_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [APP_NAME],
        )
        return cursor.fetchone()[0]


@needs_redis
def test_pubsub_wakes_a_waiter_in_another_process(server_with_redis, agent_client, project):
    action = pending_action(project)
    waiter = start_side(
        "waiter", lambda: _get(server_with_redis, agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=10")
    )
    # The server subscribes on its first wait. Subscribed before the decision, so the status
    # read it does on subscribing cannot be what sees it.
    assert wait_for(lambda: _subscribers() == 1, timeout=10), "the server never subscribed"
    time.sleep(0.3)
    assert waiter.is_alive()
    decided_at = time.monotonic()
    decide(action.pk)  # publishes through Redis after commit
    [(response, _)] = join_sides(waiter)
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    # Heard well before the 10 s wait and the 30 s status read: the publish woke it.
    assert time.monotonic() - decided_at < 1.5


@needs_redis
def test_the_pending_state_after_n_seconds_under_the_server(server_with_redis, agent_client, project):
    action = pending_action(project)
    response, elapsed = _get(server_with_redis, agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=1")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert 1.0 <= elapsed < 3.0


def test_the_status_read_wakes_a_waiter_without_redis(server_polling, agent_client, project):
    action = pending_action(project)
    waiter = start_side(
        "waiter", lambda: _get(server_polling, agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=10")
    )
    time.sleep(0.5)
    decided_at = time.monotonic()
    decide(action.pk)
    [(response, _)] = join_sides(waiter)
    assert response.json()["status"] == "approved"
    assert time.monotonic() - decided_at < 2.0  # a 0.5 s status read, not the 10 s wait


def test_errors_and_tenancy_under_the_server(server_polling, agent_client, other_project, api_client_for):
    theirs = pending_action(other_project)
    response, elapsed = _get(server_polling, agent_client.raw_key, f"/api/v1/actions/{theirs.pk}?wait=5")
    assert (response.status_code, response.json()) == (404, {"message": "Action not found.", "errors": {}})
    assert elapsed < 3.0
    response, _ = _get(server_polling, None, f"/api/v1/actions/{theirs.pk}?wait=5")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    annotator = services.personal_token_create(
        user=api_client_for("annotator").user, organization=agent_client.api_key.organization
    )
    response, _ = _get(server_polling, annotator.raw, f"/api/v1/actions/{theirs.pk}?wait=5")
    assert response.status_code == 403
    response, _ = _get(server_polling, agent_client.raw_key, f"/api/v1/actions/{theirs.pk}?wait=61")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["wait"]
    assert "no-store" in response.headers["Cache-Control"]


def test_fifty_waiters_hold_no_database_connection_and_no_thread(server_polling, agent_client, project):
    """While 50 agents wait, the server holds at most its status read's one connection (open
    for a moment every 0.5 s) and no thread per waiter; then every one hears its decision."""
    actions = [pending_action(project, external_id=f"refund-{n}") for n in range(50)]

    def wait(action_id: int):
        return lambda: _get(server_polling, agent_client.raw_key, f"/api/v1/actions/{action_id}?wait=50")

    threads_before = server_polling.worker_threads()
    waiters = [start_side(f"waiter on {a.pk}", wait(a.pk)) for a in actions]
    # All 50 have been read and are waiting: the status read polls for them (visible as the
    # server's connection coming and going). On a busy machine the first reads of stragglers can
    # take seconds, so wait for them to settle; a server holding a connection per waiter (50)
    # never would.
    time.sleep(1.0)
    assert wait_for(_quiet_for_a_second, timeout=30)
    assert all(waiter.is_alive() for waiter in waiters)
    samples = []
    for _ in range(20):
        samples.append(_server_connections())
        time.sleep(0.05)
    threads_during = server_polling.worker_threads()
    assert max(samples) <= 2, samples
    # The read pool (4) and the status-read thread at most, never one per waiter.
    assert threads_during - threads_before <= 6, (threads_before, threads_during)
    decide_all([a.pk for a in actions])
    results = join_sides(*waiters)
    assert all(r.status_code == 200 and r.json()["status"] == "approved" for r, _ in results)
    assert wait_for(lambda: _server_connections() == 0, timeout=5)
