"""A real broker outage mid-ingest: a Redis of this test's own (the shared one serves other
test runs) is stopped while an agent keeps sending, then restarted. Every accepted conversation
must be sampled exactly once afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from django.utils import timezone

from labeling import sampling, services, tasks
from labeling.models import Queue, QueueItem, SamplingBatch, SamplingCounter
from tests.celery_worker import worker_start, worker_stop
from tests.factories import conversation_payload
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.celery_worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server without persistence: a restart comes back empty, as a broker
    that lost its messages would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert _wait_for(self._answers, timeout=10), "redis-server did not start"

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False


def _wait_for(predicate: Callable[[], object], *, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.2)


def _point_app_at(app, broker_url: str) -> None:
    app.conf.broker_url = broker_url
    # Connections and producers are pooled per app; drop them so the next send uses the URL.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def own_broker(django_db_blocker, settings) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server on PATH")
    from reviewapp.celery import app

    redis = RedisServer(_free_port())
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}/0"
    queue = f"outage-{os.getpid()}"
    with django_db_blocker.unblock():
        proc, log = worker_start(queue=queue, broker_url=url)
    saved = (app.conf.broker_url, app.conf.task_default_queue)
    _point_app_at(app, url)
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield redis
    finally:
        app.conf.task_always_eager = True
        app.conf.task_default_queue = saved[1]
        _point_app_at(app, saved[0])
        worker_stop(proc, log)
        if redis.proc is not None:
            redis.stop()


def _post(client, prefix: str, n: int) -> list[str]:
    ids = [f"{prefix}{i}" for i in range(n)]
    started = time.monotonic()
    response = client.post(
        "/api/v1/conversations", {"conversations": [conversation_payload(e) for e in ids]}, format="json"
    )
    assert response.status_code == 201, response.content
    assert time.monotonic() - started < 15, "an unreachable broker held the request up"
    assert [r["status"] for r in response.json()["results"]] == ["created"] * n
    return ids


def test_a_broker_outage_mid_ingest_delays_sampling_and_loses_nothing(own_broker, agent_client, project):
    queue = make_queue(project, sampling=({"rate": 0.5},), max_per_day=24_000, backfill_days=0)
    done = lambda: Queue.objects.filter(pk=queue.pk, backfill_done_at__isnull=False).exists()  # noqa: E731
    assert _wait_for(done), "the worker never ran the queue's (empty) backfill"

    def expected(external_ids: list[str]) -> list[str]:
        return sorted(e for e in external_ids if sampling.sample_hash(queue.pk, e) < 0.5)

    def sampled() -> list[str]:
        return sorted(QueueItem.objects.filter(queue=queue).values_list("conversation__external_id", flat=True))

    before = _post(agent_client, "before-", 20)
    assert _wait_for(lambda: sampled() == expected(before)), sampled()

    own_broker.stop()
    during = _post(agent_client, "during-", 20) + _post(agent_client, "late-", 5)
    # Accepted and stored; the sampling they are owed is recorded, not lost with the message.
    assert SamplingBatch.objects.count() == 2
    assert sampled() == expected(before)

    own_broker.start()  # empty: whatever was in flight is gone

    def sweep() -> bool:
        # Make the batches due now instead of waiting out the retry delay, then sweep as beat would.
        SamplingBatch.objects.update(enqueued_at=timezone.now() - timezone.timedelta(seconds=3600))
        tasks.sampling_batches_sweep.apply()
        return _wait_for(lambda: not SamplingBatch.objects.exists(), timeout=10)

    assert _wait_for(sweep, timeout=60), "the swept batches were never sampled"

    everything = expected(before + during)
    assert sampled() == everything
    assert len(everything) > 10  # the hash let a fair share in: the assertion has teeth
    # Each admitted exactly once, and counted once against the budget.
    assert list(SamplingCounter.objects.filter(queue=queue).values_list("candidates", "admitted")) == [
        (len(everything), len(everything))
    ]
    assert services.sampling_batches_due() == []
