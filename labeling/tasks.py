"""Thin, redelivery-safe labeling tasks: they take ids, re-read, and call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from labeling import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def conversations_sample(project_id: int, conversation_ids: list[int]) -> int:
    # Idempotent: items are unique per (queue, conversation), so a redelivered task adds nothing.
    return services.conversations_sample(project_id=project_id, conversation_ids=conversation_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def queue_backfill(queue_id: int) -> int:
    """One bounded step of a queue's backfill; re-enqueues itself until done."""
    added, more = services.queue_backfill_step(queue_id=queue_id)
    if more:
        transaction.on_commit(lambda: queue_backfill.delay(queue_id))
    return added


@shared_task(acks_late=True, reject_on_worker_lost=True)
def backfills_resume() -> int:
    """Beat sweeper: restart backfills whose task chain was lost (worker crash, deploy)."""
    queue_ids = services.queues_with_pending_backfill()
    for queue_id in queue_ids:
        queue_backfill.delay(queue_id)
    return len(queue_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def leases_expire() -> int:
    return services.leases_expire(queue_id=None, limit=5000)


# Computing a snapshot of a million labels takes seconds and a few hundred MB at most; the
# soft limit leaves room for a slow machine and stops a runaway before the hard limit.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300)
def agreement_snapshot_refresh(queue_id: int) -> bool:
    """Compute a queue's statistics snapshot if a refresh is queued (else a duplicate: no-op)."""
    return services.agreement_snapshot_compute(queue_id=queue_id, queued_only=True) is not None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def agreement_snapshots_sweep() -> int:
    return services.agreement_snapshots_sweep()
