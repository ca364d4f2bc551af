"""Backfill: a queue's rules run over older conversations, in bounded steps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from labeling.models import Queue
from labeling.services.sampling import _facts_for, _queue_sample, _with_signals, queue_sampling_failed
from reviewapp import enqueue
from reviewapp.models import Conversation

BACKFILL_CHUNK = 2000


# The resume sweeper restarts a backfill chain whose last step is older than this. A step is
# bounded by the task time limit (300 s), so a live chain always beats this heartbeat.
BACKFILL_STALE_SECONDS = 600


@dataclass(frozen=True)
class BackfillStep:
    added: int
    more: bool
    generation: int


def queue_backfill_step(
    *, queue_id: int, generation: int | None = None, chunk: int = BACKFILL_CHUNK, now: dt.datetime | None = None
) -> BackfillStep:
    """Sample the next chunk of older conversations for a queue (newest first, within its
    backfill window). The step's progress is written only if the queue's generation (bumped by
    a rules change) and cursor are still the ones it started from; otherwise another chain or
    newer rules own the backfill and this chain ends (`more` False)."""
    queue = (
        Queue.objects.select_related("project")
        .filter(pk=queue_id, is_active=True, backfill_done_at__isnull=True)
        .first()
    )
    if queue is None or (generation is not None and queue.backfill_generation != generation):
        return BackfillStep(0, False, generation or 0)
    now = now or timezone.now()
    since = now - dt.timedelta(days=queue.backfill_days)
    qs = Conversation.objects.filter(project_id=queue.project_id, occurred_at__gte=since)
    if queue.backfill_cursor is not None:
        qs = qs.filter(pk__lt=queue.backfill_cursor)
    ids = list(qs.order_by("-pk").values_list("pk", flat=True)[:chunk])
    try:
        added = (
            _queue_sample(queue=queue, facts=_with_signals(_facts_for(ids), [queue]), source="backfill", now=now)
            if ids
            else 0
        )
    except Exception as exc:
        # Recorded on the queue; the chain ends, and the resume sweeper restarts it once its
        # heartbeat is stale (the rules may be fixed by then).
        queue_sampling_failed(queue_id=queue.pk, error=exc)
        return BackfillStep(0, False, queue.backfill_generation)
    more = len(ids) == chunk
    written = Queue.objects.filter(
        pk=queue.pk, backfill_generation=queue.backfill_generation, backfill_cursor=queue.backfill_cursor
    ).update(
        backfill_cursor=ids[-1] if ids else queue.backfill_cursor,
        backfill_done_at=None if more else timezone.now(),
        backfill_heartbeat_at=timezone.now(),
    )
    return BackfillStep(added, more and written == 1, queue.backfill_generation)


def backfills_resume(*, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """(queue id, generation) of the backfills to restart: unfinished, and no step for
    BACKFILL_STALE_SECONDS (a crash, a deploy, a broker outage). Each is claimed by moving its
    heartbeat (compare-and-set), so only one sweeper restarts it and a live chain is left alone."""
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=BACKFILL_STALE_SECONDS)
    stale = list(
        Queue.objects.filter(is_active=True, backfill_done_at__isnull=True)
        .filter(Q(backfill_heartbeat_at__isnull=True) | Q(backfill_heartbeat_at__lt=stale_before))
        .values_list("pk", "backfill_generation", "backfill_heartbeat_at")
    )
    taken = []
    for pk, generation, heartbeat in stale:
        if Queue.objects.filter(pk=pk, backfill_generation=generation, backfill_heartbeat_at=heartbeat).update(
            backfill_heartbeat_at=now
        ):
            taken.append((pk, generation))
    return taken


def _enqueue_backfill(queue_id: int, generation: int) -> None:
    from labeling.tasks import queue_backfill

    # The queue's backfill columns are the record of this work: if the broker is down the
    # resume sweeper starts the chain once its heartbeat is stale.
    enqueue.delay_on_commit(queue_backfill, queue_id, generation)
