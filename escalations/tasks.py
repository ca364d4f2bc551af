"""Thin, redelivery-safe escalation tasks: they take ids (or nothing), re-read, and call one
service."""

from __future__ import annotations

from celery import shared_task

from escalations import services


# A sweep is idempotent: it only moves actions that are due now, each under its row lock, so a
# redelivered or doubled run moves nothing twice. The time limit stays under the beat interval
# times a few, so a stuck run cannot pile up behind itself for long.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=50, time_limit=60)
def actions_timeout_sweep() -> int:
    """Beat job: pending actions whose tier timed out climb a tier or expire."""
    return services.actions_timeout_sweep()
