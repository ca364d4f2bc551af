"""What follows a decision or a tier change, whoever caused it (the policy, a person, the
timeout job). The action services call these inside the transaction that made the change, so
what must happen later is recorded in that transaction (deliveries are outbox rows) and what
may only happen after commit (waking waiters, sending) is scheduled with on_commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from escalations import waiting
from escalations.services import notifications, webhooks
from reviewapp import hooks

if TYPE_CHECKING:
    from escalations.models import Action


def action_decided(*, action: Action) -> None:
    """`action` was just decided (approved, rejected or expired) and saved, in this
    transaction: record its decision webhook, and wake whoever waits on it after commit."""
    webhooks.decision_delivery_record(action=action)
    waiting.action_decided_publish(action_id=action.pk)
    # Later apps (evaluation's calibration of the agent's confidence) learn of it here.
    hooks.action_decided(action_id=action.pk)


def action_decided_on_arrival(*, action: Action) -> None:
    """`action` was just created and decided by the policy, in this transaction: only its
    decision webhook is owed. Nobody can be waiting on it (its id is known once the creating
    request answers, after commit) and a policy's decision is not the escalated-and-decided
    event that hooks.action_decided announces (calibration makes no pair of it). Skipping
    both saves a Redis publish and a Celery enqueue on the hottest path (POST /api/v1/actions)."""
    webhooks.decision_delivery_record(action=action)


def action_tier_entered(*, action: Action) -> None:
    """`action` entered `action.tier` of its ladder (first escalation or a timeout climb), in
    this transaction: tell that tier's approvers (inbox, e-mail, the ladder's webhook)."""
    notifications.tier_entered_notify(action=action)
