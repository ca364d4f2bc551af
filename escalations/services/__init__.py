"""Writes for escalations, one module per capability (`policy`, `actions`, `decisions`,
`webhooks`, `notifications`, `notify`); every public function is re-exported here, so other
code imports `from escalations import services` and calls `services.action_request(...)`."""

from escalations.services.actions import EVALUATION_FAILED, NO_POLICY, action_request
from escalations.services.conversations import actions_link_conversations
from escalations.services.decisions import action_claim, action_decide, action_release, actions_timeout_sweep
from escalations.services.notify import action_decided, action_tier_entered
from escalations.services.policy import (
    DEFAULT_LADDER,
    ladder_default_ensure,
    ladder_version_create,
    ladder_version_for,
    policy_of,
    policy_version_create,
)

__all__ = [
    "DEFAULT_LADDER",
    "EVALUATION_FAILED",
    "NO_POLICY",
    "action_claim",
    "action_decide",
    "action_decided",
    "action_release",
    "action_request",
    "action_tier_entered",
    "actions_link_conversations",
    "actions_timeout_sweep",
    "ladder_default_ensure",
    "ladder_version_create",
    "ladder_version_for",
    "policy_of",
    "policy_version_create",
]
