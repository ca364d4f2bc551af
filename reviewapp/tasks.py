"""Thin Celery tasks: take ids, re-read, call one service."""

from __future__ import annotations

from celery import shared_task

from reviewapp import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def personal_tokens_expire() -> int:
    return services.personal_tokens_expire()
