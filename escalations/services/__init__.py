"""Writes for escalations, one module per capability (`policy`, `actions`, `decisions`,
`webhooks`, `notifications`, `notify`); every public function is re-exported here, so other
code imports `from escalations import services` and calls `services.action_request(...)`."""

from escalations.services.actions import EVALUATION_FAILED, NO_POLICY, action_request
from escalations.services.conversations import actions_link_conversations
from escalations.services.decisions import action_claim, action_decide, action_release, actions_timeout_sweep
from escalations.services.notifications import tier_emails_send, tier_entered_notify
from escalations.services.notify import action_decided, action_tier_entered
from escalations.services.policy import (
    DEFAULT_LADDER,
    ladder_default_ensure,
    ladder_version_create,
    ladder_version_for,
    policy_of,
    policy_version_create,
)
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
    "DEFAULT_LADDER",
    "EVALUATION_FAILED",
    "NO_POLICY",
    "IssuedSecret",
    "SendOutcome",
    "action_claim",
    "action_decide",
    "action_decided",
    "action_release",
    "action_request",
    "action_tier_entered",
    "actions_link_conversations",
    "actions_timeout_sweep",
    "decision_delivery_record",
    "deliveries_due",
    "delivery_send",
    "ladder_default_ensure",
    "ladder_version_create",
    "ladder_version_for",
    "policy_of",
    "policy_version_create",
    "signing_secrets",
    "tier_emails_send",
    "tier_entered_notify",
    "tier_notification_delivery_record",
    "webhook_secret_create",
    "webhook_secret_issue",
    "webhook_secret_rotate",
]
