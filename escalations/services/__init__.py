"""Writes for escalations, one module per capability (`policy`, `actions`, `decisions`,
`webhooks`, `notifications`, `notify`); every public function is re-exported here, so other
code imports `from escalations import services` and calls `services.action_request(...)`."""

from escalations.services.decisions import action_claim, action_decide, action_release, actions_timeout_sweep
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
    "action_claim",
    "action_decide",
    "action_decided",
    "action_release",
    "action_tier_entered",
    "actions_timeout_sweep",
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
