"""Helpers for the wait tests: pending actions, deciding one as the decision services do
(status compare-and-set, then `services.action_decided` in the same transaction), and bounds on
everything a test waits for.

Every wait here has a deadline and fails the test saying what never happened: a wake-up that
is lost, or a waiter that answered an error instead of waiting, must fail one test, not hang
the run (a `while not ...: sleep` loop with no deadline did, once one of twenty waiters had
answered 500 and the count it waited for could no longer be reached).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from escalations import services
from escalations.apis import waiting as waiting_api
from escalations.models import Action, ActionStatus, DecidedBy
from reviewapp.models import ApiKey, Project

# Longer than any wait a test asks for (wait=N is at most 60) plus its reads: only a test that
# is broken reaches it.
ANSWER_SECONDS = 75.0
# For a thread of the test to finish or a waiter to be asleep: seconds are plenty on a busy
# machine; the bound only turns a hang into a failure.
SETTLE_SECONDS = 20.0


def key_used(client: Any) -> Any:
    """Stamp the agent's key as used just now, as it is when an agent waits: it requested the
    action with that key a moment ago. A key never used is stamped by its first request
    (`credential_touch`, an UPDATE); concurrent first reads of a never-used key would all
    write it, and the in-memory SQLite test database fails a reader that meets another
    connection's write at once ("database table is locked": shared-cache locks ignore the busy
    timeout) where PostgreSQL and the WAL file the embedded server uses make it wait. That
    failure answered one of twenty concurrent waiters 500, so it never slept and the test
    waiting for twenty asleep hung. Within the minute the stamp stays fresh, reads write
    nothing."""
    ApiKey.objects.filter(pk=client.api_key.pk).update(last_used_at=timezone.now())
    return client


def pending_action(project: Project, *, external_id: str = "refund-1", **fields) -> Action:
    return Action.objects.create(
        organization=project.organization,
        project=project,
        external_id=external_id,
        action="refund",
        args={"amount": 400},
        confidence=0.4,
        status=ActionStatus.PENDING,
        tier=0,
        tier_entered_at=timezone.now(),
        due_at=timezone.now() + dt.timedelta(minutes=15),
        **fields,
    )


def decide(action_id: int, *, status: str = ActionStatus.APPROVED, publish: bool = True) -> None:
    """Decide a pending action by policy. `publish=False` writes the decision without telling
    anyone, as a process whose publish was lost would: only a status read can see it."""
    with transaction.atomic():
        updated = Action.objects.filter(pk=action_id, status=ActionStatus.PENDING).update(
            status=status,
            decided_by=DecidedBy.POLICY,
            decided_at=timezone.now(),
            reason="test decision",
            final_args={"amount": 400},
            tier=None,
            due_at=None,
        )
        assert updated == 1
        if publish:
            services.action_decided(action=Action.objects.get(pk=action_id))


def decide_all(action_ids: list[int]) -> None:
    """Decide several in one transaction. The SQLite test database is in memory with a shared
    cache, where a reader that meets a writer fails at once instead of waiting (a file in WAL
    mode, as served, does not): waiters woken by the first of several transactions would
    re-read while the next one writes."""
    with transaction.atomic():
        for action_id in action_ids:
            decide(action_id)


@dataclass
class AsgiResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.headers


def asgi_get(
    raw_key: str | None, path: str, *, host: str = "testserver", timeout: float = ANSWER_SECONDS
) -> AsgiResponse:
    """GET `path` through the production ASGI application (reviewapp/asgi.py) in-process, as
    an ASGI server would call it: Django's AsyncClient would use Django's own handler, and so
    not the path that serves waits with no thread held."""
    from reviewapp.asgi import application

    path, _, query = path.partition("?")
    headers = [(b"host", host.encode())]
    if raw_key is not None:
        headers.append((b"authorization", f"Bearer {raw_key}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def run() -> None:
        body_sent = False

        async def receive() -> dict:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client stays connected until cancelled
            raise AssertionError("unreachable")

        async def send(message: dict) -> None:
            sent.append(message)

        await application(scope, receive, send)

    try:
        asyncio.run(asyncio.wait_for(run(), timeout))
    except TimeoutError:
        pytest.fail(f"GET {path} through reviewapp.asgi: no answer within {timeout:.0f} s")
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return AsgiResponse(
        status_code=start["status"],
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]},
        body=body,
    )


# --- bounded waiting ------------------------------------------------------------------------


class Side(threading.Thread):
    """A side of a test run in a thread (a waiting agent, a decider), on its own database
    connection. `join_sides` bounds it and re-raises what it raised, so an assertion failing in
    it fails the test with its own message."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        # A daemon: one that never ends (the bug under test) cannot keep the run from exiting.
        super().__init__(name=name, daemon=True)
        self._call = target
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


def start_side(name: str, target: Callable[[], Any]) -> Side:
    side = Side(name, target)
    side.start()
    return side


def join_sides(*sides: Side, timeout: float = ANSWER_SECONDS) -> list[Any]:
    """Wait for `sides` (together at most `timeout` seconds); their results, in order. Fails
    naming the ones still running, or raises the first error one of them met."""
    deadline = time.monotonic() + timeout
    for side in sides:
        side.join(max(0.0, deadline - time.monotonic()))
    running = [side.name for side in sides if side.is_alive()]
    if running:
        pytest.fail(f"still running after {timeout:.0f} s: {', '.join(running)}")
    for side in sides:
        if side.error is not None:
            raise side.error
    return [side.result for side in sides]


def settle(predicate: Callable[[], Any], what: str, *, timeout: float = SETTLE_SECONDS) -> None:
    """Poll `predicate` until it holds; fail with `what` (and the wait counters) if it does not
    within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s ({wait_counters()})")
        time.sleep(0.01)


def asleep(count: int, *, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until `count` waits are asleep on their waiter (past their first read)."""
    settle(lambda: waiting_api.asleep.taken == count, f"{count} waits asleep", timeout=timeout)


async def asleep_async(count: int, tasks: list[asyncio.Task], *, timeout: float = SETTLE_SECONDS) -> None:
    """`asleep` for waits run as tasks of the calling event loop. Fails at once when a task
    ends first (it answered without waiting: an error, most likely), with what it answered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while waiting_api.asleep.taken < count:
        ended = [task for task in tasks if task.done()]
        if ended:
            answers = [task.exception() or task.result() for task in ended]
            pytest.fail(f"{len(ended)} of {len(tasks)} waits answered before all were asleep: {answers}")
        if loop.time() >= deadline:
            pytest.fail(f"{count} waits asleep: not within {timeout:.0f} s ({wait_counters()})")
        await asyncio.sleep(0.02)


def wait_counters() -> str:
    return (
        f"asleep={waiting_api.asleep.taken} async slots={waiting_api.async_slots.taken} "
        f"threaded slots={waiting_api.threaded_slots.taken}"
    )


def no_wait_in_progress(*, timeout: float = SETTLE_SECONDS) -> None:
    """The process-wide wait counters are back at zero. A test that counts waits asleep would
    otherwise count a wait an earlier test left running (its thread still inside a wait)."""
    settle(
        lambda: waiting_api.asleep.taken == waiting_api.async_slots.taken == waiting_api.threaded_slots.taken == 0,
        "waits left running by an earlier test to end",
        timeout=timeout,
    )


def run_bounded(coro: Awaitable[Any], what: str, *, timeout: float = ANSWER_SECONDS) -> Any:
    """`asyncio.run(coro)`, failing with `what` if it has not finished within `timeout`."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        pytest.fail(f"{what}: not done within {timeout:.0f} s ({wait_counters()})")
