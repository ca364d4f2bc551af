"""Thin, redelivery-safe evaluation tasks: ids in, one service call; every sync is idempotent."""

from __future__ import annotations

from celery import shared_task

from evaluation import services, services_datasets


@shared_task(acks_late=True, reject_on_worker_lost=True)
def pairs_sync_items(item_ids: list[int]) -> int:
    return services.pairs_sync_items(item_ids=item_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def pairs_sync_conversations(conversation_ids: list[int]) -> int:
    return services.pairs_sync_conversations(conversation_ids=conversation_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def pairs_sync_actions(action_ids: list[int]) -> int:
    return services.pairs_sync_actions(action_ids=action_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def calibration_snapshots_take() -> int:
    """Daily: yesterday's calibration snapshots, status changes and owed below-bar alerts."""
    return services.calibration_snapshots_take()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=60, soft_time_limit=45)
def calibration_alert_send(status_id: int) -> bool:
    # At most once per change (the claim), so a redelivery is harmless; a failed send is
    # retried by the daily job's sweep (calibration_alerts_sweep), not here.
    result = services.calibration_alert_send(status_id=status_id)
    return bool(result and result.ok)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def dataset_rules_apply(item_ids: list[int]) -> int:
    # Idempotent: an item already in a dataset is left as it is, so a redelivery adds nothing.
    return services_datasets.dataset_rules_apply(item_ids=item_ids)
