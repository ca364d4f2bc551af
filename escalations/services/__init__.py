"""Writes for escalations, one module per capability (`policy`, `actions`, `decisions`,
`webhooks`, `notifications`, `notify`); every public function is re-exported here, so other
code imports `from escalations import services` and calls `services.action_request(...)`."""

from escalations.services.decisions import action_claim, action_decide, action_release, actions_timeout_sweep
from escalations.services.notify import action_decided, action_tier_entered

__all__ = [
    "action_claim",
    "action_decide",
    "action_decided",
    "action_release",
    "action_tier_entered",
    "actions_timeout_sweep",
]
