"""Redis goes away while agents wait, and comes back: a Redis of this test's own (the shared
one serves other test runs) is stopped and restarted under the process's subscriber."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
import redis

from escalations import waiting
from tests.escalations.waits import (
    Side,
    asgi_get,
    asleep,
    decide,
    join_sides,
    key_used,
    no_wait_in_progress,
    pending_action,
    settle,
    start_side,
)
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
    no_wait_in_progress()
    waiting.hub_reset()
    try:
        yield server
    finally:
        waiting.hub_reset()
        if server.proc is not None:
            server.stop()


@pytest.fixture
def agent_client(agent_client):
    """The agent's key, used a moment ago (to request the action), as when an agent waits."""
    return key_used(agent_client)


def _wait_in_thread(raw_key: str, action_id: int) -> Side:
    """A waiting agent; its result is (response, when it was answered)."""

    def run() -> tuple:
        response = asgi_get(raw_key, f"/api/v1/actions/{action_id}?wait=20")
        return response, time.monotonic()

    return start_side(f"waiter on {action_id}", run)


def test_waiters_poll_while_redis_is_down_and_hear_messages_again_once_it_is_back(own_redis, agent_client, project):
    first = pending_action(project, external_id="first")
    second = pending_action(project, external_id="second")
    hub = waiting.hub()

    waiter = _wait_in_thread(agent_client.raw_key, first.pk)
    settle(lambda: hub.listening, "the subscriber listening")
    asleep(1)

    own_redis.stop()
    settle(lambda: not hub.listening, "the subscriber noticing Redis going away")
    decided_at = time.monotonic()
    decide(first.pk, publish=False)  # a publish would fail now too; only a status read can see it
    [(response, answered_at)] = join_sides(waiter, timeout=10)
    assert response.json()["status"] == "approved"
    assert answered_at - decided_at < 2.0  # the 0.3 s status read, not the 20 s wait

    own_redis.start()
    # Reconnected with backoff (at most a few seconds after so short an outage).
    settle(lambda: hub.listening, "the subscriber coming back", timeout=15)
    waiter = _wait_in_thread(agent_client.raw_key, second.pk)
    asleep(1)
    decide(second.pk, publish=False)
    published_at = time.monotonic()
    client = redis.Redis(port=own_redis.port)
    try:
        assert client.publish(waiting.channel(), str(second.pk)) == 1  # one subscriber: us
    finally:
        client.close()
    [(response, answered_at)] = join_sides(waiter, timeout=10)
    assert response.json()["status"] == "approved"
    assert answered_at - published_at < 1.0  # the message, not a status read (every 30 s now)


def test_a_malformed_message_is_ignored(own_redis, agent_client, project):
    action = pending_action(project)
    hub = waiting.hub()
    waiter = _wait_in_thread(agent_client.raw_key, action.pk)
    settle(lambda: hub.listening, "the subscriber listening")
    asleep(1)
    client = redis.Redis(port=own_redis.port)
    try:
        client.publish(waiting.channel(), "not an id")
        time.sleep(0.3)
        assert hub.listening and waiter.is_alive()
        decide(action.pk)  # publishes the real id through this Redis
    finally:
        client.close()
    [(response, _)] = join_sides(waiter, timeout=10)
    assert response.json()["status"] == "approved"
