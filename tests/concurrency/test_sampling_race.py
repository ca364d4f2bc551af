"""Sampling under concurrency on PostgreSQL: parallel samplers against budgets, two workers on
one outbox batch, and a rules change racing a backfill step. Each test holds one side inside
its transaction and asserts the other really met it there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection

from labeling import services, tasks
from labeling.models import Queue, QueueItem, SamplingBatch, SamplingCounter
from reviewapp import bulk
from tests.factories import ConversationFactory, ProjectFactory
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


def _sessions_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _thread(name: str, target: Callable[[], object], results: dict) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = target()
        except BaseException as exc:  # reported by the assertions on `results`
            results[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def _pause_in(name: str, inside: threading.Event, release: threading.Event, original: Callable) -> Callable:
    """Wrap `original`: in thread `name`, after it ran, signal `inside` and wait for `release`."""

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if threading.current_thread().name == name and not inside.is_set():
            inside.set()
            assert release.wait(30), "never released"
        return result

    return wrapper


def test_two_samplers_over_the_same_conversations_count_each_admitted_row_once(monkeypatch):
    project = ProjectFactory()
    # A budget far above the batch (24,000 a day paces 1,000 in the first hour): every
    # conversation is admitted, so the counter must end at exactly the rows stored.
    queue = make_queue(project, sampling=({"rate": 1.0},), max_per_day=24_000, backfill_days=0)
    ids = [ConversationFactory(project=project, external_id=f"c{i}").pk for i in range(200)]
    inside, release = threading.Event(), threading.Event()
    # The first sampler stops right after inserting its items, its transaction still open.
    original = bulk.insert_rows

    def insert_rows(model, rows, **kwargs):
        if model is QueueItem:
            return _pause_in("first", inside, release, original)(model, rows, **kwargs)
        return original(model, rows, **kwargs)

    monkeypatch.setattr(bulk, "insert_rows", insert_rows)
    results: dict = {}

    def sample() -> int:
        return services.conversations_sample(project_id=project.pk, conversation_ids=ids)

    first = _thread("first", sample, results)
    assert inside.wait(20), results
    second = _thread("second", sample, results)
    # The race: the second sampler is inside its own transaction, waiting on the first's lock.
    assert _wait_for(lambda: _sessions_waiting_on_a_lock() >= 1), "the second sampler never met the first"
    assert "second" not in results
    release.set()
    first.join(30)
    second.join(30)

    assert results == {"first": 200, "second": 0}
    assert QueueItem.objects.filter(queue=queue).count() == 200
    assert list(SamplingCounter.objects.filter(queue=queue).values_list("key", "candidates", "admitted")) == [
        ("queue", 200, 200)
    ]


def test_two_workers_on_one_sampling_batch_process_it_once(monkeypatch):
    project = ProjectFactory()
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)
    ids = [ConversationFactory(project=project, external_id=f"c{i}").pk for i in range(20)]
    batch = SamplingBatch.objects.create(project=project, conversation_ids=ids)
    inside, release = threading.Event(), threading.Event()
    monkeypatch.setattr(
        services, "conversations_sample", _pause_in("first", inside, release, services.conversations_sample)
    )
    results: dict = {}

    first = _thread("first", lambda: services.sampling_batch_process(batch_id=batch.pk), results)
    assert inside.wait(20), results
    # The first worker holds the batch, mid-way: the second passes over it without waiting.
    started = time.monotonic()
    second = services.sampling_batch_process(batch_id=batch.pk)
    assert time.monotonic() - started < 5
    assert "first" not in results
    release.set()
    first.join(30)

    assert (results["first"], second) == (20, None)
    assert QueueItem.objects.filter(queue=queue).count() == 20
    assert not SamplingBatch.objects.exists()


def test_a_rules_change_during_a_backfill_step_is_not_overwritten_by_that_step(monkeypatch):
    project = ProjectFactory()
    for i in range(5):
        ConversationFactory(project=project, external_id=f"old{i}")
    # Chains are driven by hand below, not by on-commit tasks.
    monkeypatch.setattr(tasks.queue_backfill, "apply_async", lambda *args, **kwargs: None)
    queue = make_queue(project, sampling=({"rate": 1.0, "if": {"tags_any": ["nothing-has-this"]}},))
    inside, release = threading.Event(), threading.Event()
    monkeypatch.setattr(services, "_queue_sample", _pause_in("step", inside, release, services._queue_sample))
    results: dict = {}

    step_thread = _thread("step", lambda: services.queue_backfill_step(queue_id=queue.pk, chunk=2), results)
    assert inside.wait(20), results
    # The race: the rules change commits while the old rules' step is between its sampling
    # and its cursor write.
    services.queue_sampling_update(queue=queue, rules=[{"rate": 1.0}], max_per_day=None)
    assert step_thread.is_alive() and "step" not in results
    release.set()
    step_thread.join(30)

    queue.refresh_from_db()
    assert (queue.backfill_cursor, queue.backfill_done_at, queue.backfill_generation) == (None, None, 1)
    step = results["step"]
    assert (step.added, step.more) == (0, False)  # that chain ends

    # The new generation's chain then walks every conversation under the new rules.
    new = services.queue_backfill_step(queue_id=queue.pk, generation=1, chunk=10)
    assert (new.added, new.more) == (5, False)
    assert Queue.objects.get(pk=queue.pk).backfill_done_at is not None
