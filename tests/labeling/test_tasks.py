"""labeling.tasks: in-process (eager) runs of each task, and one run on a real Celery worker."""

from __future__ import annotations

import datetime as dt
import functools
import time

import pytest
from django.utils import timezone

from labeling import services, tasks
from labeling.models import Assignment, AssignmentStatus, ItemEvent, Queue, QueueItem, SamplingBatch
from reviewapp import services as core_services
from reviewapp.ingest_schemas import ConversationIn
from tests.factories import conversation_payload
from tests.labeling.factories import add_items, make_queue


def _ingest(project, payloads) -> list[int]:
    results = core_services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(p) for p in payloads]
    )
    return [r.id for r in results]


def _batch(ids: list[int]) -> int:
    """The outbox row the ingest recorded for these conversations (its enqueue waits for a
    commit that a test transaction never makes)."""
    batch = SamplingBatch.objects.get()
    assert sorted(batch.conversation_ids) == sorted(ids)
    return batch.pk


def test_sampling_batch_process_adds_the_sampled_ones_once(project):
    queue = make_queue(project, sampling=({"rate": 1.0, "if": {"tags_any": ["refund"]}},), backfill_days=0)
    other = make_queue(project, name="Bookings", sampling=({"rate": 1.0, "if": {"tags_any": ["booking"]}},))
    ids = _ingest(
        project, [conversation_payload("r1"), conversation_payload("r2"), conversation_payload("b1", tags=["booking"])]
    )
    batch = _batch(ids)

    first = tasks.sampling_batch_process.delay(batch).get()
    again = tasks.sampling_batch_process.delay(batch).get()  # a redelivered task: the batch is gone

    assert (first, again) == (3, None)
    assert not SamplingBatch.objects.exists()
    assert sorted(QueueItem.objects.filter(queue=queue).values_list("conversation__external_id", flat=True)) == [
        "r1",
        "r2",
    ]
    assert list(QueueItem.objects.filter(queue=other).values_list("conversation__external_id", flat=True)) == ["b1"]


def test_sampling_batch_process_ignores_queues_without_rules_and_inactive_ones(project):
    manual = make_queue(project)
    paused = make_queue(project, name="Paused", sampling=({"rate": 1.0},), backfill_days=0)
    Queue.objects.filter(pk=paused.pk).update(is_active=False)
    ids = _ingest(project, [conversation_payload("c1")])
    assert not SamplingBatch.objects.exists()  # no active sampling queue: nothing was owed
    batch = services.sampling_work_record(project_id=project.pk, conversation_ids=ids)  # owed anyway

    assert tasks.sampling_batch_process.delay(batch.pk).get() == 0
    assert QueueItem.objects.filter(queue__in=[manual, paused]).count() == 0


def test_the_retired_per_ingest_sampling_task_is_gone():
    # The SamplingBatch outbox replaced it; a message for it still in the broker after a deploy
    # is refused by the worker as an unregistered task and dropped (its batch is swept anyway).
    from reviewapp.celery import app

    assert not hasattr(tasks, "conversations_sample")
    assert "labeling.tasks.conversations_sample" not in app.tasks
    assert "labeling.tasks.sampling_batch_process" in app.tasks


def test_queue_backfill_chains_itself_until_the_window_is_done(
    project, monkeypatch, django_capture_on_commit_callbacks
):
    _ingest(project, [conversation_payload(f"old{i}", occurred_at=None) for i in range(5)])
    steps = []
    step = services.queue_backfill_step

    def small_step(*, queue_id, generation):
        result = step(queue_id=queue_id, generation=generation, chunk=2)
        steps.append((result.added, result.more))
        return result

    monkeypatch.setattr(services, "queue_backfill_step", small_step)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        queue = make_queue(project, sampling=({"rate": 1.0},))

    # queue_create enqueued the first step on commit; each step enqueued the next.
    assert steps == [(2, True), (2, True), (1, False)]
    assert len(callbacks) == 1
    assert QueueItem.objects.filter(queue=queue, source="backfill").count() == 5
    queue.refresh_from_db()
    assert queue.backfill_done_at is not None


def test_queue_backfill_of_a_finished_or_missing_queue_does_nothing(project):
    queue = make_queue(project)  # no rules: born finished

    assert tasks.queue_backfill.delay(queue.pk).get() == 0
    assert tasks.queue_backfill.delay(999_999).get() == 0


def test_backfills_resume_restarts_a_lost_backfill_chain(project):
    _ingest(project, [conversation_payload(f"old{i}", occurred_at=None) for i in range(3)])
    lost = make_queue(project, sampling=({"rate": 1.0},))  # its on-commit task never ran
    make_queue(project, name="Manual")  # nothing to backfill
    stale = timezone.now() - dt.timedelta(seconds=services.BACKFILL_STALE_SECONDS + 1)
    Queue.objects.filter(pk=lost.pk).update(backfill_heartbeat_at=stale)

    assert tasks.backfills_resume.delay().get() == 1

    assert QueueItem.objects.filter(queue=lost, source="backfill").count() == 3
    lost.refresh_from_db()
    assert lost.backfill_done_at is not None
    assert tasks.backfills_resume.delay().get() == 0


def test_backfills_resume_leaves_a_live_chain_alone_and_restarts_a_stale_one_once(project, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.queue_backfill, "apply_async", lambda args, **kwargs: sent.append(tuple(args)))
    queue = make_queue(project, sampling=({"rate": 1.0},))  # its chain has just started

    # Every five minutes for half an hour while the chain is alive: nothing new is started.
    assert [tasks.backfills_resume.delay().get() for _ in range(6)] == [0] * 6
    stale = timezone.now() - dt.timedelta(seconds=services.BACKFILL_STALE_SECONDS + 1)
    Queue.objects.filter(pk=queue.pk).update(backfill_heartbeat_at=stale)
    assert [tasks.backfills_resume.delay().get() for _ in range(3)] == [1, 0, 0]

    assert sent == [(queue.pk, 0)]


def test_a_backfill_step_of_a_superseded_chain_does_nothing(project):
    _ingest(project, [conversation_payload(f"old{i}", occurred_at=None) for i in range(3)])
    queue = make_queue(project, sampling=({"rate": 1.0, "if": {"tags_any": ["none"]}},))
    services.queue_sampling_update(queue=queue, rules=[{"rate": 1.0}], max_per_day=None)

    assert tasks.queue_backfill.delay(queue.pk, 0).get() == 0  # the first rules' chain
    assert QueueItem.objects.filter(queue=queue).count() == 0
    assert tasks.queue_backfill.delay(queue.pk, 1).get() == 3


def test_leases_expire_returns_expired_leases_to_the_pool(project, member):
    queue = make_queue(project)
    stale, live = add_items(queue, 2)
    first, second = member("annotator"), member("annotator")
    services.item_claim(queue=queue, user=first)
    services.item_claim(queue=queue, user=second)
    Assignment.objects.filter(item=stale).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert tasks.leases_expire.delay().get() == 1

    assert dict(Assignment.objects.values_list("item_id", "status")) == {
        stale.pk: AssignmentStatus.EXPIRED,
        live.pk: AssignmentStatus.ACTIVE,
    }
    assert dict(QueueItem.objects.values_list("pk", "leased_count")) == {stale.pk: 0, live.pk: 1}
    assert list(ItemEvent.objects.filter(kind="lease_expired").values_list("item_id", flat=True)) == [stale.pk]
    assert tasks.leases_expire.delay().get() == 0


def _wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.2):
    """Poll until predicate() is truthy or the timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@pytest.mark.celery_worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ingested_conversations_are_sampled_by_a_real_worker(real_celery, project):
    queue = make_queue(project, sampling=({"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "down"},))
    # The queue's (empty) backfill runs on the worker too; wait for it so the items below can
    # only have come from sampling on ingest.
    backfilled = functools.partial(Queue.objects.filter(pk=queue.pk, backfill_done_at__isnull=False).exists)
    assert _wait_for(backfilled), "the worker never finished the queue's backfill"

    _ingest(
        project,
        [conversation_payload(f"down{i}", feedback={"rating": "down"}) for i in range(3)]
        + [conversation_payload("up", feedback={"rating": "up"})],
    )

    sampled = _wait_for(lambda: QueueItem.objects.filter(queue=queue).count() == 3)
    assert sampled, f"the worker sampled {QueueItem.objects.filter(queue=queue).count()} of 3 in 30 s"
    assert sorted(
        QueueItem.objects.filter(queue=queue).values_list("conversation__external_id", "source", "sampling_rule")
    ) == [
        ("down0", "rule", "down"),
        ("down1", "rule", "down"),
        ("down2", "rule", "down"),
    ]


def _expired_leases(queue, people, items_n: int):
    """Every person takes an item and prefetches a second; then every lease is past expiry."""
    add_items(queue, items_n)
    for person in people:
        first = services.item_claim(queue=queue, user=person)
        services.item_claim(queue=queue, user=person, exclude_item_id=first.item_id)
    Assignment.objects.filter(queue=queue).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))


def test_the_lease_sweeper_costs_the_same_statements_for_one_expired_lease_or_many(
    project, member, django_assert_num_queries
):
    people = [member("annotator") for _ in range(3)]
    small, large = make_queue(project, name="small"), make_queue(project, name="large", annotations_per_item=2)
    _expired_leases(small, people[:1], 1)
    _expired_leases(large, people, 4)
    assert Assignment.objects.filter(queue=large, status=AssignmentStatus.ACTIVE).count() == 6
    assert sorted(QueueItem.objects.filter(queue=large).values_list("leased_count", flat=True)) == [1, 1, 2, 2]

    # Lock items, lock leases, end them, count the items' leases again, their organizations,
    # the events; in the caller's transaction (the test's), a savepoint and its release.
    with django_assert_num_queries(9):
        assert services.leases_expire(queue_id=small.pk, limit=5000) == 1
    with django_assert_num_queries(9):
        assert services.leases_expire(queue_id=large.pk, limit=5000) == 6

    assert set(QueueItem.objects.values_list("leased_count", flat=True)) == {0}
    assert ItemEvent.objects.filter(kind="lease_expired").count() == 7
    assert set(Assignment.objects.values_list("status", flat=True)) == {AssignmentStatus.EXPIRED}
