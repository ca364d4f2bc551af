"""Thin, redelivery-safe evaluation tasks: ids in, one service call; every sync is idempotent."""

from __future__ import annotations

from celery import shared_task

from evaluation import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def pairs_sync_items(item_ids: list[int]) -> int:
    return services.pairs_sync_items(item_ids=item_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def pairs_sync_conversations(conversation_ids: list[int]) -> int:
    return services.pairs_sync_conversations(conversation_ids=conversation_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def pairs_sync_actions(action_ids: list[int]) -> int:
    return services.pairs_sync_actions(action_ids=action_ids)
