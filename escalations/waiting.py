"""Waking agents that wait on an action (`GET /api/v1/actions/{id}?wait=N`).

A decision publishes the action's id after commit (`action_decided_publish`). Each process that
serves waits keeps one `WaitHub`: the asyncio waiters of that process keyed by action id, and
one background thread that hears about decisions made elsewhere and wakes them:

- With `REDIS_URL`: one pub/sub connection per process, subscribed to one channel that carries
  the ids of decided actions. If Redis drops, the thread reconnects with backoff and, until it
  listens again, reads the waited-on actions' statuses every `ACTION_WAIT_POLL_SECONDS`. While
  it listens it still reads them every `ACTION_WAIT_CHECK_SECONDS`, which catches a publish that
  was lost (publishing never fails the decision: it is logged).
- Without `REDIS_URL` (the embedded default, one process): the deciding process wakes its own
  waiters directly, and the same status read every `ACTION_WAIT_POLL_SECONDS` sees decisions made
  by another process (a `manage.py` command, a second server).

The status read is one query for all of a process's waiters, not one per waiter, and no waiter
holds a database connection while it waits: the hub's thread closes its connection after each
read, and the waiters' own reads close theirs (apis/waiting.py).

A wake-up is only a hint: the waiter re-reads the action through its tenant-scoped reader and
answers what it finds, so a spurious wake (another deployment's id on a shared Redis, a tier
change) costs one read and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections, transaction

logger = logging.getLogger(__name__)

# Reconnect delays after Redis drops: quick at first (a restart takes a second), then at most
# every 10 s so a long outage does not spin. Waiters are served by the status read meanwhile.
_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 10.0
# Publishing runs after the decision committed, in the deciding request: a Redis that does not
# answer may delay that answer by this much, never fail it.
_PUBLISH_TIMEOUT = 0.5
# Ids per status query: under SQLite's bound-parameter limit, one round trip per 500 waiters.
_POLL_CHUNK = 500


def channel() -> str:
    """The pub/sub channel for this deployment. Channels are global to a Redis server (the
    database number does not separate them), so the number is part of the name: two
    deployments on one Redis with different databases do not wake each other's waiters. The
    key prefix is `reviewapp` but for parallel test processes, which get one each."""
    path = urlsplit(settings.REDIS_URL).path.strip("/")
    return f"{settings.CACHE_KEY_PREFIX}:actions:decided:{path or '0'}"


def _redis_client(**options: object):  # -> redis.Redis
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, **options)


def _release_connections() -> None:
    """Close this thread's database connections, so that nothing waits holding one. Never one
    inside a transaction (a test's, or a caller's): closing it there would break it."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def decided_among(action_ids: list[int]) -> list[int]:
    """Which of `action_ids` are no longer pending. Not tenant-scoped, on purpose: it only wakes
    waiters, who were authorised for their action and re-read it through their own reader.
    Closes this thread's connection afterwards."""
    from escalations.models import Action, ActionStatus

    decided: list[int] = []
    try:
        for start in range(0, len(action_ids), _POLL_CHUNK):
            chunk = action_ids[start : start + _POLL_CHUNK]
            decided.extend(
                Action.objects.filter(pk__in=chunk).exclude(status=ActionStatus.PENDING).values_list("pk", flat=True)
            )
    finally:
        _release_connections()
    return decided


@dataclass(eq=False)
class Waiter:
    """One waiting request: woken from any thread through its event loop."""

    action_id: int
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        # A closed loop: the request already ended.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.event.set)

    async def wait(self, timeout: float) -> bool:
        """True when woken within `timeout` seconds (and ready to be woken again)."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        self.event.clear()
        return True


class WaitHub:
    """The waiters of this process and the one thread that wakes them (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, set[Waiter]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self.pid = os.getpid()

    # -- waiters (called on a waiter's event loop) ------------------------------------------

    def register(self, action_id: int) -> Waiter:
        waiter = Waiter(action_id=action_id, loop=asyncio.get_running_loop())
        with self._lock:
            self._waiters.setdefault(action_id, set()).add(waiter)
        self._ensure_thread()
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(waiter.action_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[waiter.action_id]

    def waiting_count(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())

    def watched_ids(self) -> list[int]:
        with self._lock:
            return list(self._waiters)

    # -- waking (any thread) ------------------------------------------------------------------

    def wake(self, action_id: int) -> None:
        with self._lock:
            waiters = list(self._waiters.get(action_id, ()))
        for waiter in waiters:
            waiter.wake()

    @property
    def listening(self) -> bool:
        """Subscribed to the Redis channel right now."""
        return self._listening.is_set()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="reviewapp-action-wait", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (tests; it is a daemon and otherwise ends with the process)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the thread -----------------------------------------------------------------------------

    def _poll(self) -> None:
        ids = self.watched_ids()
        if not ids:
            return
        try:
            decided = decided_among(ids)
        except Exception:
            logger.exception("reading the status of %d waited-on actions failed; trying again", len(ids))
            return
        for action_id in decided:
            self.wake(action_id)

    def _run(self) -> None:
        use_redis = bool(settings.REDIS_URL)
        pubsub = None
        backoff = _BACKOFF_FIRST
        reconnect_at = 0.0
        next_poll = time.monotonic() + settings.ACTION_WAIT_POLL_SECONDS
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if use_redis and pubsub is None and now >= reconnect_at:
                    try:
                        pubsub = _redis_client(health_check_interval=30, socket_connect_timeout=2).pubsub(
                            ignore_subscribe_messages=False
                        )
                        pubsub.subscribe(channel())
                    except Exception as exc:
                        logger.warning("action waits: cannot subscribe to Redis (%s); polling meanwhile", exc)
                        pubsub = None
                        reconnect_at = now + backoff
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                interval = settings.ACTION_WAIT_CHECK_SECONDS if self.listening else settings.ACTION_WAIT_POLL_SECONDS
                next_poll = min(next_poll, now + interval)
                timeout = max(0.0, min(next_poll - now, 1.0))
                if pubsub is not None:
                    try:
                        message = pubsub.get_message(timeout=timeout)
                    except Exception as exc:
                        logger.warning("action waits: Redis connection lost (%s); polling until it is back", exc)
                        self._listening.clear()
                        _close_quietly(pubsub)
                        pubsub = None
                        reconnect_at = time.monotonic() + backoff
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                        message = None
                    if message is not None:
                        self._on_message(message)
                        if message.get("type") == "subscribe":
                            backoff = _BACKOFF_FIRST
                else:
                    self._stop.wait(timeout)
                if time.monotonic() >= next_poll:
                    self._poll()
                    interval = (
                        settings.ACTION_WAIT_CHECK_SECONDS if self.listening else settings.ACTION_WAIT_POLL_SECONDS
                    )
                    next_poll = time.monotonic() + interval
        finally:
            self._listening.clear()
            if pubsub is not None:
                _close_quietly(pubsub)
            _release_connections()

    def _on_message(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            self._listening.set()
            # Decisions published while we were not subscribed were missed: look now.
            self._poll()
            return
        if kind != "message":
            return
        data = message.get("data")
        try:
            action_id = int(data)
        except (TypeError, ValueError):
            logger.warning("action waits: ignoring a malformed message %r", data)
            return
        self.wake(action_id)


def _close_quietly(pubsub) -> None:
    # A dead connection may fail to close; it is dropped either way.
    with contextlib.suppress(Exception):
        pubsub.close()


_hub: WaitHub | None = None
_hub_lock = threading.Lock()


def hub() -> WaitHub:
    """This process's hub. A forked child (gunicorn's workers are forked after the app loads)
    gets a new one: threads do not survive a fork, and the parent's waiters are not its own."""
    global _hub
    current = _hub
    if current is not None and current.pid == os.getpid():
        return current
    with _hub_lock:
        if _hub is None or _hub.pid != os.getpid():
            _hub = WaitHub()
        return _hub


def hub_reset() -> None:
    """Stop this process's hub and start afresh on next use (tests change REDIS_URL)."""
    global _hub, _publisher
    with _hub_lock:
        old, _hub = _hub, None
    with _publisher_lock:
        _publisher = None
    if old is not None and old.pid == os.getpid():
        old.stop()


_publisher = None
_publisher_lock = threading.Lock()


def _publish(action_id: int) -> None:
    global _publisher
    hub().wake(action_id)  # this process's waiters, at once and whatever Redis does
    if not settings.REDIS_URL:
        return
    try:
        with _publisher_lock:
            if _publisher is None:
                _publisher = _redis_client(socket_timeout=_PUBLISH_TIMEOUT, socket_connect_timeout=_PUBLISH_TIMEOUT)
            client = _publisher
        client.publish(channel(), str(action_id))
    except Exception as exc:
        # The decision is committed; waiters elsewhere see it at their next status read.
        logger.warning("action %s decided, but its waiters could not be told through Redis: %s", action_id, exc)


def action_decided_publish(*, action_id: int) -> None:
    """Wake whoever waits on `action_id`, once the current transaction commits (at once
    outside one). Never raises: a failure is logged and the waiters' status read catches up."""

    def publish() -> None:
        try:
            _publish(action_id)
        except Exception:
            logger.exception("could not wake the waiters of action %s", action_id)

    transaction.on_commit(publish)
