"""Webhook signing secrets and decision deliveries (outbox rows sent by Celery with retries)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from escalations.models import Action


def decision_delivery_record(*, action: Action) -> None:
    """Record the decision delivery to `action.callback_url` (if any) in this transaction and
    send it after commit. Placeholder until the webhook work lands: records nothing yet."""
