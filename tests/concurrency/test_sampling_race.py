"""Sampling under concurrency on PostgreSQL: parallel samplers against budgets, two workers on
one outbox batch, and a rules change racing a backfill step. Each test holds one side inside
its transaction and asserts the other really met it there."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from labeling import services, tasks
from labeling.models import Queue, QueueItem, SamplingBatch, SamplingCounter
from labeling.services import backfill
from labeling.services import sampling as sampling_services
from reviewapp import bulk
from tests.concurrency.racing import Hold, hold_call, join_all, start_thread, wait_until_blocked
from tests.factories import ConversationFactory, ProjectFactory
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Early in a UTC day: 24,000 a day paces exactly 1,000 + a little by then.
NOW_EARLY = dt.datetime(2025, 3, 10, 0, 1, tzinfo=dt.UTC)


def test_two_samplers_over_the_same_conversations_count_each_admitted_row_once(monkeypatch):
    project = ProjectFactory()
    # A budget far above the batch (24,000 a day paces 1,000 in the first hour): every
    # conversation is admitted, so the counter must end at exactly the rows stored.
    queue = make_queue(project, sampling=({"rate": 1.0},), max_per_day=24_000, backfill_days=0)
    ids = [ConversationFactory(project=project, external_id=f"c{i}").pk for i in range(200)]
    # The first sampler stops right after inserting its items, its transaction still open.
    hold, original = Hold(thread="first", before=False), bulk.insert_rows
    held_insert = hold.wrap(original)

    def insert_rows(model, rows, **kwargs):
        return (held_insert if model is QueueItem else original)(model, rows, **kwargs)

    monkeypatch.setattr(bulk, "insert_rows", insert_rows)
    results: dict = {}

    def sample() -> int:
        return services.conversations_sample(project_id=project.pk, conversation_ids=ids)

    first = start_thread("first", sample, results)
    try:
        hold.wait_inside()
        second = start_thread("second", sample, results)
        # The race: the second sampler is inside its own transaction, waiting on the first's lock.
        wait_until_blocked(count=1)
        assert "second" not in results
    finally:
        hold.release()
    join_all(first, second)

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
    # The first worker stops inside the queue's transaction, the batch row locked.
    hold = hold_call(monkeypatch, sampling_services, "_queue_sample", thread="first")
    results: dict = {}

    first = start_thread("first", lambda: services.sampling_batch_process(batch_id=batch.pk), results)
    try:
        hold.wait_inside()
        # The first worker holds the batch, mid-way: the second passes over it without waiting.
        started = time.monotonic()
        second = services.sampling_batch_process(batch_id=batch.pk)
        assert time.monotonic() - started < 5
        assert "first" not in results
    finally:
        hold.release()
    join_all(first)

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
    hold = hold_call(monkeypatch, backfill, "_queue_sample", thread="step")
    results: dict = {}

    step_thread = start_thread("step", lambda: services.queue_backfill_step(queue_id=queue.pk, chunk=2), results)
    try:
        hold.wait_inside()
        # The race: the rules change commits while the old rules' step is between its sampling
        # and its cursor write.
        services.queue_sampling_update(queue=queue, rules=[{"rate": 1.0}], max_per_day=None)
        assert step_thread.is_alive() and "step" not in results
    finally:
        hold.release()
    join_all(step_thread)

    queue.refresh_from_db()
    assert (queue.backfill_cursor, queue.backfill_done_at, queue.backfill_generation) == (None, None, 1)
    step = results["step"]
    assert (step.added, step.more) == (0, False)  # that chain ends

    # The new generation's chain then walks every conversation under the new rules.
    new = services.queue_backfill_step(queue_id=queue.pk, generation=1, chunk=10)
    assert (new.added, new.more) == (5, False)
    assert Queue.objects.get(pk=queue.pk).backfill_done_at is not None


def test_a_batch_unlocks_each_queues_budget_as_soon_as_that_queue_is_sampled(monkeypatch):
    """Queues of a batch commit one by one: while a worker is still inside the batch's second
    queue, another batch samples the first queue without waiting (its budget counters were
    unlocked when the first queue's items committed, not held until the whole batch ends)."""
    project = ProjectFactory()
    first_queue = make_queue(project, name="First", sampling=({"rate": 1.0},), max_per_day=24_000, backfill_days=0)
    second_queue = make_queue(project, name="Second", sampling=({"rate": 1.0},), max_per_day=24_000, backfill_days=0)
    ids = [ConversationFactory(project=project, external_id=f"a{i}").pk for i in range(20)]
    more = [ConversationFactory(project=project, external_id=f"b{i}").pk for i in range(20)]
    slow = SamplingBatch.objects.create(project=project, conversation_ids=ids)
    # Another ingest's batch, owed to the first queue only (the second queue's budget is busy).
    other = SamplingBatch.objects.create(project=project, conversation_ids=more, queue_ids=[first_queue.pk])
    # The slow worker stops after sampling the second queue, inside that queue's transaction.
    hold, real = Hold(thread="slow", before=False), sampling_services._queue_sample
    held = hold.wrap(real)

    def sample(*, queue, **kwargs):
        return (held if queue.pk == second_queue.pk else real)(queue=queue, **kwargs)

    monkeypatch.setattr(sampling_services, "_queue_sample", sample)
    results: dict = {}

    slow_thread = start_thread("slow", lambda: services.sampling_batch_process(batch_id=slow.pk), results)
    try:
        hold.wait_inside()
        other_thread = start_thread("other", lambda: services.sampling_batch_process(batch_id=other.pk), results)
        other_thread.join(15)
        # The race: the slow batch is still open in its second queue while the other finished.
        assert not other_thread.is_alive(), "the other batch waited for the slow batch's budget locks"
        assert results["other"] == 20
        assert "slow" not in results
        assert SamplingBatch.objects.get(pk=slow.pk).queue_ids == [second_queue.pk]
    finally:
        hold.release()
    join_all(slow_thread, other_thread)

    assert results["slow"] == 40
    assert QueueItem.objects.filter(queue=first_queue).count() == 40
    assert QueueItem.objects.filter(queue=second_queue).count() == 20
    assert SamplingBatch.objects.count() == 0
    counted = SamplingCounter.objects.order_by("queue_id").values_list("queue_id", "key", "candidates", "admitted")
    assert list(counted) == [(first_queue.pk, "queue", 40, 40), (second_queue.pk, "queue", 20, 20)]


def test_two_queues_meet_on_the_project_budget_and_never_overspend_it(monkeypatch):
    from labeling.models import ProjectBudgetCounter
    from reviewapp.principal import Principal

    project = ProjectFactory()
    first_queue = make_queue(project, name="first", sampling=({"rate": 1.0},), backfill_days=0)
    second_queue = make_queue(project, name="second", sampling=({"rate": 1.0},), backfill_days=0)
    # 24,000 a day paces 1,000 in the first hour of any day: more than one queue's batch, less
    # than both, so the second sampler must see what the first spent.
    services.project_budget_set(
        principal=Principal(organization=project.organization, role="admin"),
        project=project,
        daily_items=24_000,
        shares={},
    )
    allowance = sampling_services.sampling.pacing_allowance(
        24_000, sampling_services.sampling.budget_time(NOW_EARLY, project.timezone)
    )
    first_ids = [ConversationFactory(project=project, external_id=f"a{i}").pk for i in range(700)]
    second_ids = [ConversationFactory(project=project, external_id=f"b{i}").pk for i in range(700)]
    hold, original = Hold(thread="first", before=False), bulk.insert_rows
    held_insert = hold.wrap(original)

    def insert_rows(model, rows, **kwargs):
        return (held_insert if model is QueueItem else original)(model, rows, **kwargs)

    monkeypatch.setattr(bulk, "insert_rows", insert_rows)
    results: dict = {}

    def sample(queue, ids):
        # One queue each: both take their own queue's counters, then the project's (last).
        return lambda: sampling_services._queue_sample(
            queue=Queue.objects.select_related("project").get(pk=queue.pk),
            facts=sampling_services._facts_for(ids),
            source="rule",
            now=NOW_EARLY,
        )

    first = start_thread("first", sample(first_queue, first_ids), results)
    try:
        hold.wait_inside()
        second = start_thread("second", sample(second_queue, second_ids), results)
        # The race: the second sampler waits on the project counter the first holds.
        wait_until_blocked(count=1)
        assert "second" not in results
    finally:
        hold.release()
    join_all(first, second)

    assert results == {"first": 700, "second": allowance - 700}
    counter = ProjectBudgetCounter.objects.get(project=project)
    assert (counter.candidates, counter.admitted) == (1400, allowance)
    assert QueueItem.objects.filter(queue__project=project).count() == allowance
    assert list(
        SamplingCounter.objects.filter(key="project").order_by("queue_id").values_list("candidates", "admitted")
    ) == [(700, 700), (700, allowance - 700)]
