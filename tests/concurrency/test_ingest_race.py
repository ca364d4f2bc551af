"""Concurrent duplicate submissions on PostgreSQL: exactly one row per external_id."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from reviewapp import bulk, services
from reviewapp.models import Conversation, JudgeScore
from tests.concurrency.racing import hold_call, join_all, wait_until_blocked
from tests.factories import ProjectFactory, conversation_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def _post_in_threads(monkeypatch, raw_key: str, body: dict | Callable[[int], dict]) -> list:
    """POST from THREADS threads released together; `body` may depend on the thread's slot.

    The first request to insert its conversations stops there, its transaction open, until
    every other request is seen waiting on a lock (the unique index on the rows it inserted):
    the duplicates really raced that insert, not a committed row."""
    hold = hold_call(monkeypatch, bulk, "insert_rows")
    barrier = threading.Barrier(THREADS)
    responses: list = [None] * THREADS

    def worker(slot: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            payload = body(slot) if callable(body) else body
            connection.ensure_connection()  # connect before the barrier: race the requests, not the logins
            barrier.wait(timeout=10)
            responses[slot] = client.post("/api/v1/conversations", payload, format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    try:
        hold.wait_inside()
        wait_until_blocked(count=THREADS - 1)
        assert responses == [None] * THREADS
    finally:
        hold.release()
    join_all(*threads)
    return responses


def test_concurrent_duplicate_batches_leave_exactly_one_row_per_external_id(monkeypatch):
    project = ProjectFactory()
    raw = services.api_key_create(project=project, name="race").raw
    body = {"conversations": [conversation_payload(f"race-{i}") for i in range(20)]}

    responses = _post_in_threads(monkeypatch, raw, body)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert Conversation.objects.filter(project=project).count() == 20
    # Every thread answers with the same ids, and each external_id was created exactly once.
    ids = {tuple(item["id"] for item in r.json()["results"]) for r in responses}
    assert len(ids) == 1
    created = [item for r in responses for item in r.json()["results"] if item["status"] == "created"]
    assert sorted(item["external_id"] for item in created) == sorted(f"race-{i}" for i in range(20))
    # The judge score each copy carried is stored once, not once per thread.
    assert JudgeScore.objects.filter(conversation__project=project).count() == 20


def test_concurrent_single_conversation_submissions_create_one_row(monkeypatch):
    project = ProjectFactory()
    raw = services.api_key_create(project=project, name="race").raw

    responses = _post_in_threads(monkeypatch, raw, conversation_payload("only-one"))

    assert [r.status_code for r in responses] == [201] * THREADS
    statuses = sorted(r.json()["results"][0]["status"] for r in responses)
    assert statuses == ["created"] + ["duplicate"] * (THREADS - 1)
    assert Conversation.objects.filter(project=project, external_id="only-one").count() == 1


def test_concurrent_batches_in_opposite_orders_do_not_deadlock(monkeypatch):
    project = ProjectFactory()
    raw = services.api_key_create(project=project, name="race").raw
    forward = [conversation_payload(f"order-{i}", feedback={"rating": "down", "comment": f"c{i}"}) for i in range(50)]

    responses = _post_in_threads(
        monkeypatch, raw, lambda slot: {"conversations": forward if slot % 2 == 0 else list(reversed(forward))}
    )

    assert [r.status_code for r in responses] == [201] * THREADS
    assert Conversation.objects.filter(project=project).count() == 50
