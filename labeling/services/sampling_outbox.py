"""The sampling outbox: batches of conversations recorded in the ingest's transaction,
sampled by a task, and swept up again when the task never ran."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from labeling import lock_objects
from labeling.models import SamplingBatch
from labeling.services.sampling import conversations_sample
from reviewapp import enqueue

logger = logging.getLogger(__name__)


# The sweeper re-enqueues a batch not sampled this long after it was (last) enqueued: longer
# than a healthy worker takes, so it rarely duplicates a message still in the broker (harmless
# anyway: the second run finds the batch gone or locked).
SAMPLING_RETRY_SECONDS = 120
SAMPLING_SWEEP_LIMIT = 1000
SAMPLING_ATTEMPTS_WARN = 5


def sampling_work_record(*, project_id: int, conversation_ids: list[int]) -> SamplingBatch | None:
    """Record, in the caller's transaction, that these conversations must be sampled, and
    enqueue that after commit. A broker error only delays it: the sweeper finds the row."""
    from labeling.tasks import sampling_batch_process

    if not conversation_ids:
        return None
    batch = SamplingBatch.objects.create(project_id=project_id, conversation_ids=list(conversation_ids))
    enqueue.delay_on_commit(sampling_batch_process, batch.pk)
    return batch


def sampling_batch_process(*, batch_id: int, now: dt.datetime | None = None) -> int | None:
    """Sample one recorded batch and delete it, in one transaction; None when there is nothing
    to do (already done, or another worker holds it right now)."""
    with transaction.atomic():
        batch = lock_objects.sampling_batch_claim(batch_id=batch_id)
        if batch is None:
            return None
        added = conversations_sample(project_id=batch.project_id, conversation_ids=batch.conversation_ids, now=now)
        SamplingBatch.objects.filter(pk=batch.pk).delete()
    return added


def sampling_batches_due(*, now: dt.datetime | None = None, limit: int = SAMPLING_SWEEP_LIMIT) -> list[int]:
    """Batches enqueued more than SAMPLING_RETRY_SECONDS ago and still here (a broker outage,
    a lost message, a failed run), marked re-enqueued now (compare-and-set, so two sweepers
    never both take one). The caller enqueues them."""
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=SAMPLING_RETRY_SECONDS)
    due = list(
        SamplingBatch.objects.filter(enqueued_at__lt=stale_before)
        .order_by("enqueued_at", "pk")
        .values_list("pk", "enqueued_at", "attempts")[:limit]
    )
    taken = []
    for pk, enqueued_at, attempts in due:
        if SamplingBatch.objects.filter(pk=pk, enqueued_at=enqueued_at).update(
            enqueued_at=now, attempts=F("attempts") + 1
        ):
            taken.append(pk)
            if attempts + 1 == SAMPLING_ATTEMPTS_WARN:
                # An outage clears in a few sweeps; this many means the batch itself fails.
                logger.warning("sampling batch %s still unsampled after %s attempts", pk, attempts + 1)
    return taken
