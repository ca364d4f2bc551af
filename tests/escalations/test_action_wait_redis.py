"""Redis goes away while agents wait, and comes back: a Redis of this test's own (the shared
one serves other test runs) is stopped and restarted under the process's subscriber."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from escalations import waiting
from escalations.apis import waiting as waiting_api
from tests.concurrency.racing import wait_for
from tests.escalations.waits import asgi_get, decide, pending_action
from tests.labeling.test_sampling_broker_outage import RedisServer, _free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server on PATH"),
]


@pytest.fixture
def own_redis(settings) -> Iterator[RedisServer]:
    server = RedisServer(_free_port())
    server.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
    # While subscribed, no status read within the test: a wake-up then comes from a message.
    settings.ACTION_WAIT_CHECK_SECONDS = 30
    settings.ACTION_WAIT_POLL_SECONDS = 0.3
    waiting.hub_reset()
    try:
        yield server
    finally:
        waiting.hub_reset()
        if server.proc is not None:
            server.stop()


def _wait_in_thread(raw_key: str, action_id: int, results: dict) -> threading.Thread:
    def run() -> None:
        response = asgi_get(raw_key, f"/api/v1/actions/{action_id}?wait=20")
        results[action_id] = (response, time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_waiters_poll_while_redis_is_down_and_hear_messages_again_once_it_is_back(own_redis, agent_client, project):
    first = pending_action(project, external_id="first")
    second = pending_action(project, external_id="second")
    results: dict[int, tuple] = {}
    hub = waiting.hub()

    thread = _wait_in_thread(agent_client.raw_key, first.pk, results)
    assert wait_for(lambda: hub.listening and waiting_api.asleep.taken == 1, timeout=10)

    own_redis.stop()
    assert wait_for(lambda: not hub.listening, timeout=10), "the subscriber did not notice Redis going away"
    decided_at = time.monotonic()
    decide(first.pk, publish=False)  # a publish would fail now too; only a status read can see it
    thread.join(timeout=10)
    response, answered_at = results[first.pk]
    assert response.json()["status"] == "approved"
    assert answered_at - decided_at < 2.0  # the 0.3 s status read, not the 20 s wait

    own_redis.start()
    # Reconnected with backoff (at most a few seconds after so short an outage).
    assert wait_for(lambda: hub.listening, timeout=15), "the subscriber did not come back"
    thread = _wait_in_thread(agent_client.raw_key, second.pk, results)
    assert wait_for(lambda: waiting_api.asleep.taken == 1, timeout=10)
    decide(second.pk, publish=False)
    published_at = time.monotonic()
    client = redis.Redis(port=own_redis.port)
    try:
        assert client.publish(waiting.channel(), str(second.pk)) == 1  # one subscriber: us
    finally:
        client.close()
    thread.join(timeout=10)
    response, answered_at = results[second.pk]
    assert response.json()["status"] == "approved"
    assert answered_at - published_at < 1.0  # the message, not a status read (every 30 s now)


def test_a_malformed_message_is_ignored(own_redis, agent_client, project):
    action = pending_action(project)
    results: dict[int, tuple] = {}
    hub = waiting.hub()
    thread = _wait_in_thread(agent_client.raw_key, action.pk, results)
    assert wait_for(lambda: hub.listening and waiting_api.asleep.taken == 1, timeout=10)
    client = redis.Redis(port=own_redis.port)
    try:
        client.publish(waiting.channel(), "not an id")
        time.sleep(0.3)
        assert hub.listening and action.pk not in results
        decide(action.pk)  # publishes the real id through this Redis
    finally:
        client.close()
    thread.join(timeout=10)
    assert results[action.pk][0].json()["status"] == "approved"
