"""Thin, redelivery-safe tasks for webhooks and notifications: they take ids, re-read, and call
one service. (Kept apart from tasks.py, which the decisions work owns; Celery's autodiscovery
finds only `tasks`, so EscalationsConfig.ready imports this module.)"""

from __future__ import annotations

from celery import shared_task

from escalations.services import notifications, webhooks
from reviewapp import enqueue


# A send is bounded to 10 s (reviewapp/outbound.py); the limits only stop a runaway. Sends go
# to their own queue (settings.WEBHOOK_CELERY_QUEUE, routed by reviewapp.celery.route_task):
# a dead receiver's retries then never delay the tier timeout sweep on the default queue.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def delivery_send(delivery_id: str) -> str | None:
    """One attempt of a webhook delivery if it is due; a duplicate message does nothing."""
    outcome = webhooks.delivery_send(delivery_id=delivery_id)
    return outcome.status if outcome else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def deliveries_due_sweep() -> int:
    """Beat sweeper: enqueue deliveries whose retry time came or whose first message was lost."""
    delivery_ids = webhooks.deliveries_due_take()
    for index, delivery_id in enumerate(delivery_ids):
        if not enqueue.delay_quietly(delivery_send, delivery_id):
            # The broker is down: the rest (this one included) wait for the next sweep.
            webhooks.deliveries_enqueue_release(delivery_ids[index:])
            return index
    return len(delivery_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=120, time_limit=150)
def tier_emails_send(action_id: int, tier: int) -> int:
    """E-mail the people who may decide at `tier`, if the action is still waiting there."""
    return notifications.tier_emails_send(action_id=action_id, tier=tier)
