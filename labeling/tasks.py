"""Thin, redelivery-safe labeling tasks: they take ids, re-read, and call one service."""

from __future__ import annotations

from celery import shared_task

from labeling import services
from reviewapp import enqueue


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sampling_batch_process(batch_id: int) -> int | None:
    """Sample the queues a recorded batch of conversations still owes, one transaction each
    (the outbox row is deleted once none is owed; a failed queue stays owed for a retry)."""
    return services.sampling_batch_process(batch_id=batch_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sampling_batches_sweep() -> int:
    """Beat sweeper: re-enqueue sampling batches whose message never ran (the broker was down,
    the message was lost, the worker died) and those whose failed run's backoff has passed."""
    batch_ids = services.sampling_batches_due()
    for batch_id in batch_ids:
        if not enqueue.delay_quietly(sampling_batch_process, batch_id):
            break  # the broker is down: the rest wait for the next sweep
    return len(batch_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def queue_backfill(queue_id: int, generation: int | None = None) -> int:
    """One bounded step of a queue's backfill; enqueues the next until done. A step of a chain
    that newer rules or another chain superseded ends the chain (see queue_backfill_step)."""
    step = services.queue_backfill_step(queue_id=queue_id, generation=generation)
    if step.more:
        enqueue.delay_quietly(queue_backfill, queue_id, step.generation)
    return step.added


@shared_task(acks_late=True, reject_on_worker_lost=True)
def backfills_resume() -> int:
    """Beat sweeper: restart backfills whose chain stopped (worker crash, deploy, broker
    outage); a chain that stepped recently is alive and left alone."""
    restarts = services.backfills_resume()
    for queue_id, generation in restarts:
        enqueue.delay_quietly(queue_backfill, queue_id, generation)
    return len(restarts)


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


@shared_task(acks_late=True, reject_on_worker_lost=True)
def budget_controllers_run() -> int:
    """Daily: run the budget controller of every queue that opted in. Each queue decides in a
    transaction of its own under its row lock, so a redelivered run decides again on the same
    readings and changes nothing more (a step down needs a full window since the last change)."""
    queue_ids = services.budget_controller_queue_ids()
    for queue_id in queue_ids:
        services.queue_budget_control(queue_id=queue_id)
    return len(queue_ids)
