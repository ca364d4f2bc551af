"""Writes for escalations, one module per capability (`policy`, `actions`, `webhooks`,
`notifications`, `notify`); every public function is re-exported here, so other code imports
`from escalations import services` and calls `services.action_request(...)`."""

from escalations.services.notify import action_decided, action_tier_entered

__all__ = ["action_decided", "action_tier_entered"]
