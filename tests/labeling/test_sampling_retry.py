"""The sampling outbox when sampling fails: a failed queue stays owed and is retried with backoff
by the sweeper, the queues that succeeded are not sampled or counted again, and after the last
retry the queue says what it gave up. The clock is pinned (`now`) throughout."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from labeling import services
from labeling.models import Queue, QueueItem, SamplingBatch, SamplingCounter
from labeling.services import sampling as sampling_services
from reviewapp import services as core_services
from reviewapp.ingest_schemas import ConversationIn
from tests.factories import ConversationFactory, conversation_payload
from tests.labeling.factories import make_queue

pytestmark = pytest.mark.django_db

N = 5
# The delays after each failed run: doubling from two minutes, then hourly.
DELAYS = [120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def queues(project):
    spec = {"sampling": ({"rate": 1.0},), "max_per_day": 24_000, "backfill_days": 0}
    return make_queue(project, name="Fine", **spec), make_queue(project, name="Flaky", **spec)


def _batch(project, django_capture_on_commit_callbacks) -> SamplingBatch:
    """Ingest N conversations; the outbox row is recorded, its task not run."""
    body = [ConversationIn.model_validate(conversation_payload(f"c{i}")) for i in range(N)]
    with django_capture_on_commit_callbacks(execute=False):
        core_services.conversations_ingest(project=project, conversations=body)
    [batch] = SamplingBatch.objects.all()
    return batch


def _failing(monkeypatch, queue: Queue, *, times: int | None = None) -> list[int]:
    """Make `queue`'s sampling raise (the first `times` calls, or always); the others sample.
    Returns the list of queue ids sampled, call by call."""
    real, calls = sampling_services._queue_sample, []

    def sample(*, queue: Queue, **kwargs):
        calls.append(queue.pk)
        failed_so_far = calls.count(failing.pk) - 1
        if queue.pk == failing.pk and (times is None or failed_so_far < times):
            raise ZeroDivisionError("rule bug")
        return real(queue=queue, **kwargs)

    failing = queue
    monkeypatch.setattr(sampling_services, "_queue_sample", sample)
    return calls


def _items(queue: Queue) -> int:
    return QueueItem.objects.filter(queue=queue).count()


def _counters(queue: Queue) -> list[tuple[str, int, int]]:
    return list(SamplingCounter.objects.filter(queue=queue).values_list("key", "candidates", "admitted"))


def test_the_retry_delay_doubles_from_two_minutes_up_to_an_hour():
    assert [services.sampling_retry_delay(n).total_seconds() for n in range(1, 11)] == [*DELAYS, 3600]
    assert services.sampling_retry_delay(500) == dt.timedelta(hours=1)


def test_a_queue_that_fails_once_samples_the_batch_exactly_once_on_its_retry(
    project, queues, now, monkeypatch, django_capture_on_commit_callbacks
):
    fine, flaky = queues
    batch = _batch(project, django_capture_on_commit_callbacks)
    calls = _failing(monkeypatch, flaky, times=1)

    assert services.sampling_batch_process(batch_id=batch.pk, now=now) == N

    # The fine queue is sampled and struck off; the flaky one stays owed, with a backoff.
    batch.refresh_from_db()
    assert (batch.queue_ids, batch.attempts) == ([flaky.pk], 1)
    assert batch.next_attempt_at == now + dt.timedelta(seconds=120)
    assert batch.last_error == f"queue {flaky.pk}: ZeroDivisionError: rule bug"
    assert (_items(fine), _items(flaky)) == (N, 0)
    flaky.refresh_from_db()
    assert (flaky.sampling_failures, flaky.sampling_error) == (1, "ZeroDivisionError: rule bug")

    # The sweeper waits out the backoff, then the retry samples only the queue still owed.
    assert services.sampling_batches_due(now=now + dt.timedelta(seconds=119)) == []
    assert services.sampling_batches_due(now=now + dt.timedelta(seconds=120)) == [batch.pk]
    assert services.sampling_batch_process(batch_id=batch.pk, now=now + dt.timedelta(seconds=121)) == N

    assert calls == [fine.pk, flaky.pk, flaky.pk]
    assert (_items(fine), _items(flaky)) == (N, N)
    assert _counters(fine) == _counters(flaky) == [("queue", N, N)]  # each budget counted once
    assert not SamplingBatch.objects.exists()
    # Delivered again (a duplicate message): nothing left to do.
    assert services.sampling_batch_process(batch_id=batch.pk, now=now) is None
    assert (_items(fine), _items(flaky)) == (N, N)


def test_a_queue_that_keeps_failing_is_retried_ever_later_then_gives_the_batch_up_visibly(
    project, queues, now, monkeypatch, member, api_client_for, django_capture_on_commit_callbacks
):
    fine, flaky = queues
    batch = _batch(project, django_capture_on_commit_callbacks)
    calls = _failing(monkeypatch, flaky)
    services.sampling_batch_process(batch_id=batch.pk, now=now)
    clock = now

    for attempt, delay in enumerate(DELAYS, start=1):
        batch.refresh_from_db()
        assert (batch.attempts, batch.next_attempt_at) == (attempt, clock + dt.timedelta(seconds=delay))
        # Never before its time, however long ago it was enqueued.
        assert services.sampling_batches_due(now=batch.next_attempt_at - dt.timedelta(seconds=1)) == []
        clock = batch.next_attempt_at
        assert services.sampling_batches_due(now=clock) == [batch.pk]
        assert services.sampling_batch_process(batch_id=batch.pk, now=clock) == 0

    # The tenth failed run gave up: the batch is gone and the queue says what it lost.
    assert not SamplingBatch.objects.exists()
    assert calls == [fine.pk] + [flaky.pk] * 10
    assert (_items(fine), _items(flaky)) == (N, 0)
    assert _counters(fine) == [("queue", N, N)]
    flaky.refresh_from_db()
    assert (flaky.sampling_failures, flaky.sampling_given_up) == (10, N)
    assert flaky.sampling_given_up_at is not None
    fine.refresh_from_db()
    assert (fine.sampling_failures, fine.sampling_given_up) == (0, 0)
    health = api_client_for("engineer").get(f"/api/v1/queues/{flaky.pk}").json()["sampling_health"]
    assert (health["failures"], health["given_up"]) == (10, N)
    assert health["given_up_at"] is not None
    page = Client()
    page.force_login(member("engineer"))
    assert f"Gave up sampling {N} conversations after repeated failures" in page.get("/labeling/").content.decode()


def test_a_run_that_fails_as_a_whole_keeps_every_queue_owed_and_backs_off(
    project, queues, now, monkeypatch, django_capture_on_commit_callbacks
):
    fine, flaky = queues
    batch = _batch(project, django_capture_on_commit_callbacks)
    real, failures = sampling_services._facts_for, []

    def facts_for(conversation_ids):
        if len(failures) < 2:
            failures.append(1)
            raise ConnectionError("replica went away")
        return real(conversation_ids)

    monkeypatch.setattr(sampling_services, "_facts_for", facts_for)

    with pytest.raises(ConnectionError):
        services.sampling_batch_process(batch_id=batch.pk, now=now)
    batch.refresh_from_db()
    assert (batch.queue_ids, batch.attempts, batch.last_error) == (
        [fine.pk, flaky.pk],
        1,
        "ConnectionError: replica went away",
    )
    second_run = now + dt.timedelta(seconds=120)
    assert services.sampling_batches_due(now=second_run) == [batch.pk]
    with pytest.raises(ConnectionError):
        services.sampling_batch_process(batch_id=batch.pk, now=second_run)

    # Not every sweep (two minutes) but after four minutes this time.
    batch.refresh_from_db()
    assert batch.attempts == 2
    assert services.sampling_batches_due(now=second_run + dt.timedelta(seconds=239)) == []
    third_run = second_run + dt.timedelta(seconds=240)
    assert services.sampling_batches_due(now=third_run) == [batch.pk]
    assert services.sampling_batch_process(batch_id=batch.pk, now=third_run) == 2 * N

    assert (_items(fine), _items(flaky)) == (N, N)
    assert not SamplingBatch.objects.exists()


def test_a_run_that_always_fails_gives_up_for_every_queue_owed(
    project, queues, now, monkeypatch, django_capture_on_commit_callbacks
):
    batch = _batch(project, django_capture_on_commit_callbacks)

    def facts_for(conversation_ids):
        raise ConnectionError("replica went away")

    monkeypatch.setattr(sampling_services, "_facts_for", facts_for)
    clock = now
    for _ in range(services.SAMPLING_MAX_ATTEMPTS):
        with pytest.raises(ConnectionError):
            services.sampling_batch_process(batch_id=batch.pk, now=clock)
        clock += dt.timedelta(hours=1)

    assert not SamplingBatch.objects.exists()
    assert sorted(Queue.objects.values_list("name", "sampling_given_up")) == [("Fine", N), ("Flaky", N)]


def test_a_queue_switched_off_before_its_retry_owes_nothing(
    project, queues, now, monkeypatch, django_capture_on_commit_callbacks
):
    flaky = queues[1]
    batch = _batch(project, django_capture_on_commit_callbacks)
    _failing(monkeypatch, flaky)
    services.sampling_batch_process(batch_id=batch.pk, now=now)
    services.queue_settings_update(queue=flaky, changes={"is_active": False})

    assert services.sampling_batch_process(batch_id=batch.pk, now=now + dt.timedelta(minutes=2)) == 0

    assert not SamplingBatch.objects.exists()
    flaky.refresh_from_db()
    assert (flaky.sampling_failures, flaky.sampling_given_up) == (1, 0)


def test_a_batch_not_yet_run_owes_the_sampling_queues_of_its_first_run(project, queues, now):
    """A row written before `queue_ids` existed, or not run yet, owes every sampling queue the
    project has when it first runs (one created in between included, as before)."""
    fine, flaky = queues
    ids = [ConversationFactory(project=project).pk for _ in range(N)]
    later = make_queue(project, name="Later", sampling=({"rate": 1.0},), backfill_days=0)
    make_queue(project, name="Manual")  # no rules: owed nothing
    batch = SamplingBatch.objects.create(project=project, conversation_ids=ids)
    assert batch.queue_ids is None

    assert services.sampling_batch_process(batch_id=batch.pk, now=now) == 3 * N

    assert not SamplingBatch.objects.exists()
    assert [_items(q) for q in (fine, flaky, later)] == [N, N, N]
