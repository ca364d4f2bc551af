"""`GET /api/v1/actions/{id}?wait=N` in-process: through Django's test client (WSGI: the wait
holds the request's thread, as under the embedded server) and through reviewapp.asgi (ASGI:
the wait holds no thread). On SQLite and PostgreSQL alike; test_action_wait_server.py runs the same view
under a real ASGI server, with Redis pub/sub and PostgreSQL connection counts."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
import types

import pytest
from rest_framework.test import APIClient

from escalations import waiting
from escalations.apis import waiting as waiting_api
from escalations.models import Action, ActionStatus
from reviewapp import services
from tests.escalations.waits import (
    asgi_get,
    asleep,
    asleep_async,
    decide,
    decide_all,
    join_sides,
    key_used,
    no_wait_in_progress,
    pending_action,
    run_bounded,
    start_side,
)
from tests.factories import ProjectFactory

live = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_hub(settings):
    """Each test gets its own hub (and so its own REDIS_URL and intervals), stopped after it.
    Status reads are slow unless a test wants them: a wake-up must come from the decision."""
    settings.ACTION_WAIT_POLL_SECONDS = 30
    settings.ACTION_WAIT_CHECK_SECONDS = 30
    settings.REDIS_URL = ""
    no_wait_in_progress()
    waiting.hub_reset()
    yield
    waiting.hub_reset()


@pytest.fixture
def agent_client(agent_client):
    """The agent's key, used a moment ago (to request the action), as when an agent waits."""
    return key_used(agent_client)


def decide_later(action_id: int, delay: float, **kwargs):
    """Decide `action_id` from another thread (its own connection) `delay` seconds after the
    wait is asleep: a decision made during the first read would be read there, not woken."""

    def run() -> None:
        asleep(1)
        time.sleep(delay)
        decide(action_id, **kwargs)

    return start_side("decider", run)


def timed(call):
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def async_get(raw_key: str, path: str):
    """Through reviewapp.asgi, the way a production ASGI server serves a wait."""
    return asgi_get(raw_key, path)


# --- returns early on a decision ---------------------------------------------------------------


@live
def test_wait_returns_as_soon_as_another_thread_decides(agent_client, project):
    action = pending_action(project)
    decider = decide_later(action.pk, 0.4)
    response, elapsed = timed(lambda: agent_client.get(f"/api/v1/actions/{action.pk}?wait=5"))
    join_sides(decider)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == action.pk
    assert body["status"] == "approved"
    assert body["decided_by"] == "policy"
    assert body["final_args"] == {"amount": 400}
    assert body["tier"] is None and body["due_at"] is None
    # It waited for the decision (0.4 s) and answered right after it, not at 5 s nor at the
    # 30 s status read: the decision's own wake-up did it.
    assert 0.35 < elapsed < 4.0
    assert waiting.hub().waiting_count() == 0


@live
def test_async_wait_returns_as_soon_as_another_thread_decides(agent_client, project):
    action = pending_action(project)
    decider = decide_later(action.pk, 0.4, status=ActionStatus.REJECTED)
    response, elapsed = timed(lambda: async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=5"))
    join_sides(decider)
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert 0.35 < elapsed < 4.0
    assert waiting.hub().waiting_count() == 0


@live
def test_a_decision_nobody_announced_is_seen_by_the_status_read(agent_client, project, settings):
    """Another process decided without Redis (or its publish was lost): nothing wakes the
    waiter but the hub's status read, every ACTION_WAIT_POLL_SECONDS."""
    settings.ACTION_WAIT_POLL_SECONDS = 0.3
    action = pending_action(project)
    decider = decide_later(action.pk, 0.2, publish=False)
    response, elapsed = timed(lambda: async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=5"))
    join_sides(decider)
    assert response.json()["status"] == "approved"
    assert elapsed < 4.0


@live
def test_every_waiter_on_the_action_is_woken(agent_client, project):
    action = pending_action(project)

    def wait() -> tuple[str, float]:
        response, elapsed = timed(lambda: async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=5"))
        return response.json()["status"], elapsed

    waiters = [start_side(f"waiter {n}", wait) for n in range(3)]
    asleep(3)  # past their first read: waiting, not reading
    decide(action.pk)
    results = join_sides(*waiters)
    assert [status for status, _ in results] == ["approved"] * 3
    assert all(elapsed < 3 for _, elapsed in results)


@live
def test_an_approvers_decision_through_the_api_wakes_the_waiter(agent_client, api_client_for, project):
    """The real decision path: an approver's POST .../decision (services.action_decide, which
    calls notify.action_decided in its transaction) wakes an agent waiting under ASGI."""
    from tests.escalations.factories_decisions import make_ladder, make_pending_action

    action = make_pending_action(project, make_ladder(project))
    approver = api_client_for("approver")

    def approve():
        asleep(1)
        decided_at = time.monotonic()
        answer = approver.post(f"/api/v1/actions/{action.pk}/decision", {"decision": "approve"}, format="json")
        return decided_at, answer

    approving = start_side("approver", approve)
    response = async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=10")
    answered_at = time.monotonic()
    [(decided_at, decision)] = join_sides(approving)
    assert decision.status_code == 200, decision.json()
    body = response.json()
    assert body["status"] == "approved"
    assert body["decided_by"] == approver.user.username
    assert answered_at - decided_at < 2.0


# --- no decision ---------------------------------------------------------------------------------


@live
@pytest.mark.parametrize("mode", ["threaded", "async"])
def test_wait_answers_the_pending_state_after_n_seconds(agent_client, project, mode):
    action = pending_action(project)
    path = f"/api/v1/actions/{action.pk}?wait=1"
    if mode == "async":
        response, elapsed = timed(lambda: async_get(agent_client.raw_key, path))
    else:
        response, elapsed = timed(lambda: agent_client.get(path))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "pending"
    assert body["tier"] == 0
    assert body["due_at"] is not None
    assert 1.0 <= elapsed < 4.0
    assert waiting.hub().waiting_count() == 0


@live
def test_a_wake_up_for_a_still_pending_action_keeps_waiting(agent_client, project):
    """A wake-up is a hint: the waiter re-reads, finds it pending, and waits out its time."""
    action = pending_action(project)

    def spurious() -> None:
        asleep(1)
        waiting.hub().wake(action.pk)

    waking = start_side("spurious wake-up", spurious)
    response, elapsed = timed(lambda: async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=1"))
    join_sides(waking)
    assert response.json()["status"] == "pending"
    assert 1.0 <= elapsed < 4.0


@live
def test_an_action_decided_already_is_answered_at_once(agent_client, project):
    action = pending_action(project)
    decide(action.pk)
    response, elapsed = timed(lambda: async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=30"))
    assert response.json()["status"] == "approved"
    assert elapsed < 10.0


@pytest.mark.django_db
def test_wait_zero_answers_at_once(agent_client, project):
    action = pending_action(project)
    response, elapsed = timed(lambda: agent_client.get(f"/api/v1/actions/{action.pk}?wait=0"))
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert elapsed < 5.0
    assert waiting.hub().waiting_count() == 0


# --- input -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["61", "-1", "abc", "", "1.5", "²", "99999999999999999999999"])
def test_wait_out_of_range_is_400_naming_wait(agent_client, project, value):
    action = pending_action(project)
    response, elapsed = timed(lambda: agent_client.get(f"/api/v1/actions/{action.pk}", {"wait": value}))
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["wait"]
    assert body["errors"]["wait"] == [body["message"]]
    assert body["message"] in ("Must be from 0 to 60.", "Send a whole number.")
    assert elapsed < 5.0
    assert waiting.hub().waiting_count() == 0


@live
def test_async_wait_out_of_range_is_400_naming_wait(agent_client, project):
    action = pending_action(project)
    response = async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=61")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["wait"]


# --- who may wait ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_organizations_action_is_404_at_once(agent_client, other_project):
    theirs = pending_action(other_project)
    response, elapsed = timed(lambda: agent_client.get(f"/api/v1/actions/{theirs.pk}?wait=5"))
    assert response.status_code == 404
    assert response.json() == {"message": "Action not found.", "errors": {}}
    assert elapsed < 3.0


@pytest.mark.django_db
def test_another_projects_key_does_not_see_the_action(agent_client, org, project):
    sibling = ProjectFactory(organization=org, slug="billing")
    theirs = pending_action(sibling)
    response = agent_client.get(f"/api/v1/actions/{theirs.pk}?wait=5")
    assert response.status_code == 404


@pytest.mark.django_db
def test_unknown_and_out_of_range_ids_are_404(agent_client):
    assert agent_client.get("/api/v1/actions/999999?wait=5").status_code == 404
    response = agent_client.get("/api/v1/actions/99999999999999999999?wait=5")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_waiting_needs_credentials(project):
    action = pending_action(project)
    anonymous = APIClient()
    response = anonymous.get(f"/api/v1/actions/{action.pk}?wait=5")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == {"message": "Authentication credentials were not provided.", "errors": {}}
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer rk_not-a-key")
    response = anonymous.get(f"/api/v1/actions/{action.pk}?wait=5")
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid, expired or revoked token."


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "status"), [("annotator", 403), ("approver", 200), ("engineer", 200), ("admin", 200)])
def test_roles_that_may_read_actions_may_wait(api_client_for, project, role, status):
    action = pending_action(project)
    response = api_client_for(role).get(f"/api/v1/actions/{action.pk}?wait=0")
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"message": "Your role may not do this.", "errors": {}}
    else:
        assert response.json()["id"] == action.pk


@pytest.mark.django_db
def test_a_person_of_another_organization_gets_404(api_client_for, other_org, project):
    action = pending_action(project)
    response = api_client_for("admin", organization=other_org).get(f"/api/v1/actions/{action.pk}?wait=5")
    assert response.status_code == 404


# --- what else the answer carries ------------------------------------------------------------


@pytest.mark.django_db
def test_the_answer_has_the_apis_headers(agent_client, project):
    action = pending_action(project)
    response = agent_client.get(f"/api/v1/actions/{action.pk}?wait=0")
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert response["Content-Security-Policy"].startswith("default-src 'self'")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Length"] == str(len(response.content))


@pytest.mark.django_db
def test_a_disallowed_host_is_refused(agent_client, project):
    action = pending_action(project)
    response = agent_client.get(f"/api/v1/actions/{action.pk}?wait=5", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["message"] == "Bad request."


@pytest.mark.django_db
def test_requests_without_wait_pass_through(agent_client, project, monkeypatch):
    """Only a GET carrying `wait` is a wait; the rest reach the URLconf untouched."""
    served = []
    monkeypatch.setattr(waiting_api, "action_wait", lambda *a, **k: served.append(a))
    action = pending_action(project)
    agent_client.get(f"/api/v1/actions/{action.pk}")
    agent_client.post(f"/api/v1/actions/{action.pk}?wait=5", {}, format="json")
    agent_client.get("/api/v1/me?wait=5")
    agent_client.get(f"/api/v1/actions/{action.pk}/decision?wait=5")
    assert served == []


def test_which_requests_are_waits():
    assert waiting_api.wait_action_id("GET", "/api/v1/actions/12", b"wait=5") == 12
    assert waiting_api.wait_action_id("GET", "/api/v1/actions/12", b"x=1&wait=") == 12
    assert waiting_api.wait_action_id("GET", "/api/v1/actions/12", "wait=abc") == 12  # then a 400
    for method, path, query in [
        ("GET", "/api/v1/actions/12", b"waiting=5"),
        ("GET", "/api/v1/actions/12", b""),
        ("POST", "/api/v1/actions/12", b"wait=5"),
        ("HEAD", "/api/v1/actions/12", b"wait=5"),
        ("GET", "/api/v1/actions/12/decision", b"wait=5"),
        ("GET", "/api/v1/actions/abc", b"wait=5"),
        ("GET", "/api/v1/actions/0", b"wait=5"),
        ("GET", "/api/v1/actions", b"wait=5"),
        ("GET", "/api/v1/conversations/12", b"wait=5"),
    ]:
        assert waiting_api.wait_action_id(method, path, query) is None, (method, path, query)


@live
def test_asgi_waits_hold_no_thread(agent_client, project):
    """Twenty waits in one event loop, as an ASGI worker runs them: the process gains the
    hub's thread and the read pool's few threads, not one per waiter."""
    from reviewapp.asgi import application

    actions = [pending_action(project, external_id=f"refund-{n}") for n in range(20)]
    before = threading.active_count()
    during: list[int] = []

    async def one(action_id: int) -> tuple[int, bytes]:
        sent: list[dict] = []
        started = False

        async def receive() -> dict:
            nonlocal started
            if not started:
                started = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()
            raise AssertionError

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": f"/api/v1/actions/{action_id}",
            "query_string": b"wait=10",
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {agent_client.raw_key}".encode())],
            "root_path": "",
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1),
        }
        await application(scope, receive, send)
        status = next(m for m in sent if m["type"] == "http.response.start")["status"]
        return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    def decide_them() -> None:
        from django.db import connection

        decide_all([a.pk for a in actions])
        connection.close()

    async def scenario() -> list[tuple[int, bytes]]:
        tasks = [asyncio.create_task(one(a.pk)) for a in actions]
        await asleep_async(20, tasks)
        await asyncio.sleep(0.2)
        during.append(threading.active_count())
        await asyncio.to_thread(decide_them)
        return await asyncio.gather(*tasks)

    answers = run_bounded(scenario(), "twenty waits woken by their decisions")
    assert [status for status, _ in answers] == [200] * 20, answers
    assert [json.loads(body)["status"] for _, body in answers] == ["approved"] * 20
    # hub thread + at most ACTION_WAIT_DB_THREADS readers + asgiref's shared thread + to_thread's
    assert during[0] - before <= 1 + 4 + 2
    assert waiting.hub().waiting_count() == 0


# --- bounded -----------------------------------------------------------------------------------


@live
def test_threaded_waits_are_bounded_per_process(agent_client, project, settings):
    """Under WSGI each wait holds a thread: past ACTION_WAIT_THREADED_MAX the pending state is
    answered at once with Retry-After, and the thread is not taken."""
    settings.ACTION_WAIT_THREADED_MAX = 2
    actions = [pending_action(project, external_id=f"refund-{n}") for n in range(3)]

    def wait(action: Action):
        return lambda: agent_client.get(f"/api/v1/actions/{action.pk}?wait=10")

    holders = [start_side(f"holder {n}", wait(a)) for n, a in enumerate(actions[:2])]
    asleep(2)
    response, elapsed = timed(lambda: agent_client.get(f"/api/v1/actions/{actions[2].pk}?wait=10"))
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response["Retry-After"] == "1"
    assert elapsed < 5.0
    decide_all([a.pk for a in actions[:2]])
    results = join_sides(*holders)
    assert [r.json()["status"] for r in results] == ["approved", "approved"]
    assert "Retry-After" not in results[0]
    assert waiting_api.threaded_slots.taken == 0


@pytest.mark.django_db
def test_no_threaded_waits_at_all_answers_at_once_and_starts_nothing(agent_client, project, settings):
    """ACTION_WAIT_THREADED_MAX=0, as on sync production workers: a wait that reaches them is
    answered at once, and no subscriber thread starts in that process."""
    settings.ACTION_WAIT_THREADED_MAX = 0
    action = pending_action(project)
    response, elapsed = timed(lambda: agent_client.get(f"/api/v1/actions/{action.pk}?wait=30"))
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response["Retry-After"] == "1"
    assert elapsed < 10.0
    assert waiting.hub()._thread is None
    assert waiting_api.threaded_slots.taken == 0


@live
def test_async_waits_are_bounded_per_process(agent_client, project, settings):
    settings.ACTION_WAIT_ASYNC_MAX = 1
    first, second = pending_action(project, external_id="a"), pending_action(project, external_id="b")
    holder = start_side("holder", lambda: async_get(agent_client.raw_key, f"/api/v1/actions/{first.pk}?wait=10"))
    asleep(1)
    response = async_get(agent_client.raw_key, f"/api/v1/actions/{second.pk}?wait=10")
    assert response.json()["status"] == "pending"
    assert response["Retry-After"] == "1"
    decide(first.pk)
    [held] = join_sides(holder)
    assert held.json()["status"] == "approved"


# --- publishing ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_waiters_are_woken_after_commit_not_before(project, django_capture_on_commit_callbacks):
    action = pending_action(project)
    woken = []
    monkey_hub = waiting.hub()
    original = monkey_hub.wake
    monkey_hub.wake = lambda action_id: woken.append(action_id)  # type: ignore[method-assign]
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            decide(action.pk)
            assert woken == []  # still inside the deciding transaction
        # The wake-up is one of the decision's after-commit callbacks (others, such as the
        # calibration store's pair sync, may follow the same decision).
        assert [cb for cb in callbacks if cb.__qualname__.startswith("action_decided_publish")]
        assert woken == [action.pk]
    finally:
        monkey_hub.wake = original  # type: ignore[method-assign]


@pytest.mark.django_db
def test_a_publish_that_fails_is_logged_and_does_not_fail_the_decision(
    project, settings, caplog, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    action = pending_action(project)
    with (
        caplog.at_level(logging.WARNING, logger="escalations.waiting"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        decide(action.pk)
    assert Action.objects.get(pk=action.pk).status == ActionStatus.APPROVED
    assert any("could not be told through Redis" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_a_waiter_whose_request_ended_is_forgotten(project):
    """Cancelled (client gone) or finished: the hub keeps nothing per past waiter."""
    hub = waiting.hub()

    async def cancelled_wait() -> None:
        waiter = hub.register(7)
        try:
            await asyncio.wait_for(waiter.wait(10), 0.05)
        finally:
            hub.unregister(waiter)

    with pytest.raises(TimeoutError):
        asyncio.run(cancelled_wait())
    assert hub.waiting_count() == 0 and hub.watched_ids() == []
    hub.wake(7)  # nobody left to wake: nothing happens


@live
def test_a_finished_wait_leaves_nothing_to_the_cycle_collector(agent_client, project):
    """What a wait builds (its DRF view, request and responses, Django's request, the caller's
    models) is freed by reference counting as the wait ends. A wait lives long enough for any
    cycle in it to reach the collector's oldest generation, which gunicorn.conf.py's thresholds
    make it visit about once in a million allocations: left as cycles, each answered wait held
    about 7 KB until then, and a server's memory grew with every wait (issue 9)."""
    from django.http import HttpRequest
    from rest_framework.request import Request
    from rest_framework.response import Response

    pending = pending_action(project, external_id="refund-pending")
    decided = pending_action(project, external_id="refund-decided")
    decide(decided.pk)
    gc.collect()
    gc.disable()
    try:
        # One that times out (first read, wait, last read) and one answered by its first read.
        answers = [async_get(agent_client.raw_key, f"/api/v1/actions/{a.pk}?wait=1") for a in (pending, decided)]
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = sorted(
            type(o).__name__
            for o in gc.garbage
            if isinstance(o, (waiting_api.ActionWaitApi, Request, Response, HttpRequest))
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        gc.collect()
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["status"] for a in answers] == ["pending", "approved"]
    assert left == []


@live
def test_the_cycle_collector_runs_in_full_every_few_hundred_waits(agent_client, project, monkeypatch):
    """The cycles a wait cannot break (gunicorn's, of each closed connection) are collected
    every COLLECT_EVERY answered waits, not once in a million allocations."""
    calls: list[int] = []
    monkeypatch.setattr(waiting_api, "COLLECT_EVERY", 2)
    monkeypatch.setattr(waiting_api, "gc", types.SimpleNamespace(collect=lambda: calls.append(1)))
    action = pending_action(project)
    decide(action.pk)
    answers = [async_get(agent_client.raw_key, f"/api/v1/actions/{action.pk}?wait=5") for _ in range(4)]
    assert [a.json()["status"] for a in answers] == ["approved"] * 4
    assert len(calls) == 2


@live
def test_a_revoked_key_is_refused_before_any_wait(project):
    issued = services.api_key_create(project=project, name="agent")
    services.api_key_revoke(key=issued.record)
    action = pending_action(project)
    response, elapsed = timed(lambda: async_get(issued.raw, f"/api/v1/actions/{action.pk}?wait=5"))
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid, expired or revoked token."
    assert elapsed < 3.0


# --- documented ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_schema_documents_wait_and_retry_after(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/actions/{action_id}"]["get"]
    [wait] = [p for p in operation["parameters"] if p["name"] == "wait"]
    assert wait["in"] == "query"
    assert not wait.get("required", False)
    assert wait["schema"] == {"type": "integer", "minimum": 0, "maximum": waiting_api.WAIT_MAX_SECONDS}
    for said in ("(1 to 60)", "0 or absent: at once", "reviewapp.asgi", "ACTION_WAIT_THREADED_MAX", "Retry-After: 1"):
        assert said in wait["description"], said
    assert list(operation["responses"]["200"]["headers"]) == ["Retry-After"]
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
