"""The sampling outbox: batches of conversations recorded in the ingest's transaction, sampled
queue by queue by a task, retried with backoff when a queue (or the run) fails, and swept up
again when the task never ran."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labeling import lock_objects
from labeling import sampling as rules
from labeling.models import Queue, SamplingBatch
from labeling.services import sampling as _sampling
from reviewapp import enqueue

logger = logging.getLogger(__name__)


# The sweeper re-enqueues a batch not run this long after it was (last) enqueued: longer than a
# healthy worker takes, so it rarely duplicates a message still in the broker (harmless anyway:
# a queue already sampled is struck off the batch, and a held batch is passed over).
SAMPLING_RETRY_SECONDS = 120
SAMPLING_SWEEP_LIMIT = 1000
# A run that leaves a queue owed (its rules failed, or the run itself) is retried after 2, 4, 8,
# 16, 32 minutes, then hourly: a transient fault clears on an early retry, a persistent one
# costs a run an hour, not one every sweep. After the tenth failed run (about five hours) the
# queues still owed give those conversations up, and say so in their sampling health.
SAMPLING_BACKOFF_SECONDS = 120
SAMPLING_BACKOFF_MAX_SECONDS = 3600
SAMPLING_MAX_ATTEMPTS = 10


def sampling_retry_delay(attempts: int) -> dt.timedelta:
    """How long a batch waits after its `attempts`-th failed run."""
    exponent = min(max(attempts, 1) - 1, 20)  # 2**20 * 120 s is far past the cap already
    return dt.timedelta(seconds=min(SAMPLING_BACKOFF_MAX_SECONDS, SAMPLING_BACKOFF_SECONDS * 2**exponent))


def sampling_work_record(*, project_id: int, conversation_ids: list[int]) -> SamplingBatch | None:
    """Record, in the caller's transaction, that these conversations must be sampled, and
    enqueue that after commit. A broker error only delays it: the sweeper finds the row."""
    from labeling.tasks import sampling_batch_process

    if not conversation_ids:
        return None
    batch = SamplingBatch.objects.create(project_id=project_id, conversation_ids=list(conversation_ids))
    enqueue.delay_on_commit(sampling_batch_process, batch.pk)
    return batch


@dataclass(frozen=True)
class _Failed:
    error: str


_HELD = object()  # another worker holds the batch this instant (or it is gone): it carries on


def sampling_batch_process(*, batch_id: int, now: dt.datetime | None = None) -> int | None:
    """Sample the queues a recorded batch still owes, each in a transaction of its own, and
    delete the batch once it owes none. Returns the items added; None when there is nothing
    to do (the batch is gone) or another worker holds it right now.

    Per queue, one transaction locks the batch row (SKIP LOCKED), samples the queue and strikes
    it off `queue_ids`: the items and the strike commit together, so a queue samples a batch
    exactly once however often it is delivered, and its budget counters stay locked only while
    its own items are written (not until every queue is done, which made concurrent ingests
    queue on each other). A queue whose sampling fails is recorded on it and stays owed; when
    the run itself fails (its facts could not be read) every queue does. The batch then waits
    (sampling_retry_delay) for the sweeper to run it again, and after SAMPLING_MAX_ATTEMPTS
    failed runs the queues still owed record the conversations as given up."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            batch = lock_objects.sampling_batch_claim(batch_id=batch_id)
            if batch is None:
                return None
            # The queues owed: fixed by the first run as the project's sampling queues then; one
            # deactivated, emptied of rules or deleted since owes nothing any more.
            queues = _sampling.sampling_queues(project_id=batch.project_id, queue_ids=batch.queue_ids)
            if [q.pk for q in queues] != batch.queue_ids:
                batch.queue_ids = [q.pk for q in queues]
                batch.save(update_fields=["queue_ids"])
        facts = _sampling._with_signals(_sampling._facts_for(batch.conversation_ids), queues) if queues else []
        added, failures = 0, []
        for queue in queues:
            outcome = _owed_queue_sample(batch_id=batch_id, queue=queue, facts=facts, now=now)
            if outcome is _HELD:
                return added or None
            if isinstance(outcome, _Failed):
                failures.append(f"queue {queue.pk}: {outcome.error}")
            else:
                added += outcome
    except Exception as exc:
        _run_failed(batch_id=batch_id, now=now, error=exc)
        raise
    with transaction.atomic():
        batch = lock_objects.sampling_batch_claim(batch_id=batch_id)
        if batch is None:
            return added  # another worker holds it now and finishes it
        if batch.queue_ids:
            _retry_later(batch, now=now, error="; ".join(failures) or "queues left owed")
        else:
            batch.delete()
    return added


def _owed_queue_sample(
    *, batch_id: int, queue: Queue, facts: list[rules.ConversationFacts], now: dt.datetime
) -> int | _Failed | object:
    """Sample one owed queue and strike it off the batch, in one transaction."""
    with transaction.atomic():
        batch = lock_objects.sampling_batch_claim(batch_id=batch_id)
        if batch is None:
            return _HELD
        if queue.pk not in (batch.queue_ids or ()):
            return 0  # another worker sampled it meanwhile
        try:
            with transaction.atomic():  # a failure rolls back this queue's work only
                added = _sampling._queue_sample(queue=queue, facts=facts, source="rule", now=now)
        except Exception as exc:
            # One queue's broken rules (stored before they were bounded, or a bug) must not
            # stop the others: recorded on the queue, which stays owed and is retried.
            _sampling.queue_sampling_failed(queue_id=queue.pk, error=exc)
            return _Failed(_sampling.error_text(exc))
        batch.queue_ids = [pk for pk in batch.queue_ids if pk != queue.pk]
        batch.save(update_fields=["queue_ids"])
    return added


def _run_failed(*, batch_id: int, now: dt.datetime, error: BaseException) -> None:
    """The run failed outside any one queue's sampling (the facts could not be read, the
    database went away): every queue still owed waits for the retry."""
    logger.error("sampling batch %s failed; it is retried later", batch_id, exc_info=error)
    try:
        with transaction.atomic():
            batch = lock_objects.sampling_batch_claim(batch_id=batch_id)
            if batch is not None:
                _retry_later(batch, now=now, error=_sampling.error_text(error))
    except Exception:
        # The database is likely down too: the batch keeps its state and the sweeper tries again.
        logger.exception("could not record the failed run of sampling batch %s", batch_id)


def _retry_later(batch: SamplingBatch, *, now: dt.datetime, error: str) -> None:
    """A run left queues owed: wait before the next, or give up after the last. The caller
    holds the batch's lock."""
    attempts = batch.attempts + 1
    if attempts >= SAMPLING_MAX_ATTEMPTS:
        owed = batch.queue_ids
        if owed is None:  # failed before its first run fixed them
            owed = [q.pk for q in _sampling.sampling_queues(project_id=batch.project_id)]
        _sampling.queue_sampling_given_up(queue_ids=owed, conversations=len(batch.conversation_ids), error=error)
        batch.delete()
        return
    batch.attempts = attempts
    batch.last_error = error[:2000]
    batch.next_attempt_at = now + sampling_retry_delay(attempts)
    batch.save(update_fields=["attempts", "last_error", "next_attempt_at"])


def sampling_batches_due(*, now: dt.datetime | None = None, limit: int = SAMPLING_SWEEP_LIMIT) -> list[int]:
    """Batches to run again, marked re-enqueued now (a compare-and-set, so two sweepers never
    both take one); the caller enqueues them. Due are a batch whose run failed once its backoff
    has passed (`next_attempt_at`), and one not failed but still here SAMPLING_RETRY_SECONDS
    after it was enqueued (a broker outage, a lost message, a worker that died mid-run)."""
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=SAMPLING_RETRY_SECONDS)
    due = list(
        SamplingBatch.objects.filter(
            Q(next_attempt_at__isnull=True, enqueued_at__lt=stale_before) | Q(next_attempt_at__lte=now)
        )
        .order_by("enqueued_at", "pk")
        .values_list("pk", "enqueued_at", "next_attempt_at")[:limit]
    )
    taken = []
    for pk, enqueued_at, next_attempt_at in due:
        # Clearing next_attempt_at: should this message be lost too, the batch is due again
        # SAMPLING_RETRY_SECONDS from now, like any other.
        if SamplingBatch.objects.filter(pk=pk, enqueued_at=enqueued_at, next_attempt_at=next_attempt_at).update(
            enqueued_at=now, next_attempt_at=None
        ):
            taken.append(pk)
    return taken
