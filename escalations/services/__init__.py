"""Writes for escalations, one module per capability (`policy`, `actions`, `webhooks`,
`notifications`, `notify`); every public function is re-exported here, so other code imports
`from escalations import services` and calls `services.action_request(...)`."""

from escalations.services.notifications import tier_emails_send, tier_entered_notify
from escalations.services.notify import action_decided, action_tier_entered
from escalations.services.webhooks import (
    IssuedSecret,
    SendOutcome,
    decision_delivery_record,
    deliveries_due,
    delivery_send,
    signing_secrets,
    tier_notification_delivery_record,
    webhook_secret_create,
    webhook_secret_issue,
    webhook_secret_rotate,
)

__all__ = [
    "IssuedSecret",
    "SendOutcome",
    "action_decided",
    "action_tier_entered",
    "decision_delivery_record",
    "deliveries_due",
    "delivery_send",
    "signing_secrets",
    "tier_emails_send",
    "tier_entered_notify",
    "tier_notification_delivery_record",
    "webhook_secret_create",
    "webhook_secret_issue",
    "webhook_secret_rotate",
]
