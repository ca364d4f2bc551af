"""Escalations as the API shows them: an action (`action_payload`, built directly: the agent's
hot path), its trail, policy and ladder versions. The DRF serializers here document the same
shapes in the OpenAPI schema; a test keeps each payload and its serializer identical."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rest_framework import serializers

from escalations.models import Action, ActionEvent, ActionStatus, DecidedBy, LadderVersion, PolicyVersion

_DATETIME = serializers.DateTimeField()


def _iso(value: Any) -> str | None:
    return _DATETIME.to_representation(value) if value is not None else None


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def decided_by_label(action: Action) -> str | None:
    """`policy`, `timeout`, the deciding person's username, or null while undecided (`person`
    if that person's account was deleted since)."""
    if not action.decided_by:
        return None
    if action.decided_by == DecidedBy.PERSON:
        return _username(action.decided_by_user) or DecidedBy.PERSON.value
    return action.decided_by


def action_payload(action: Action) -> dict[str, Any]:
    """An action as every endpoint answers it. Reads `project`, `ladder`, `decided_by_user` and
    `claimed_by`: fetch the action with selectors.action_get (one query) or action_list."""
    ladder = action.ladder if action.ladder_id is not None else None
    return {
        "id": action.pk,
        "external_id": action.external_id,
        "project": action.project.slug,
        "action": action.action,
        "args": action.args,
        "confidence": action.confidence,
        "risk_tags": list(action.risk_tags or ()),
        "reasoning": action.reasoning,
        "end_user_id": action.end_user_id,
        "conversation_external_id": action.conversation_external_id,
        "conversation_id": action.conversation_id,
        "agent_version": action.agent_version,
        "callback_url": action.callback_url,
        "status": action.status,
        "decided_by": decided_by_label(action),
        "decided_at": _iso(action.decided_at),
        "reason": action.reason,
        "matched_rule": action.matched_rule if action.matched_rule_index is not None else None,
        "matched_rule_index": action.matched_rule_index,
        "policy_version": action.policy_version,
        "explanation": action.policy_explanation or [],
        "final_args": action.final_args,
        "args_digest": action.args_digest or None,
        "comment": action.comment,
        "ladder": ladder.name if ladder is not None else None,
        "ladder_version": ladder.version if ladder is not None else None,
        "tier": action.tier if action.status == ActionStatus.PENDING else None,
        "due_at": _iso(action.due_at) if action.status == ActionStatus.PENDING else None,
        "claimed_by": _username(action.claimed_by) if action.claimed_by_id is not None else None,
        "claimed_at": _iso(action.claimed_at),
        "created_at": _iso(action.created_at),
    }


class ActionOutputSerializer(serializers.Serializer):
    """An action and what became of it."""

    id = serializers.IntegerField()
    external_id = serializers.CharField(help_text="The agent's idempotency key.")
    project = serializers.CharField(help_text="The project's slug.")
    action = serializers.CharField()
    args = serializers.DictField(help_text="The args as requested; never changed.")
    confidence = serializers.FloatField(allow_null=True)
    risk_tags = serializers.ListField(child=serializers.CharField())
    reasoning = serializers.CharField(allow_blank=True)
    end_user_id = serializers.CharField(allow_blank=True)
    conversation_external_id = serializers.CharField(allow_blank=True)
    conversation_id = serializers.IntegerField(
        allow_null=True, help_text="The linked conversation, once it is stored (before or after the action)."
    )
    agent_version = serializers.CharField(allow_blank=True)
    callback_url = serializers.CharField(allow_blank=True)
    # A plain string: a second choice set named "status" would rename the ingest one's enum.
    status = serializers.CharField(help_text="`approved`, `rejected`, `pending` or `expired`.")
    decided_by = serializers.CharField(
        allow_null=True, help_text="`policy`, `timeout`, or the deciding person's username; null while pending."
    )
    decided_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True, help_text="Why: the deciding rule's reason, or the approver's.")
    matched_rule = serializers.CharField(allow_null=True, help_text="The deciding rule's name; null: none matched.")
    matched_rule_index = serializers.IntegerField(allow_null=True, help_text="Its position in the policy (0-based).")
    policy_version = serializers.IntegerField(allow_null=True, help_text="Null: the project had no policy yet.")
    explanation = serializers.ListField(
        child=serializers.DictField(),
        help_text="The deciding rule's conditions with the values they saw, e.g. "
        '`{"condition": "args.amount > 200", "observed": 450}`.',
    )
    final_args = serializers.DictField(
        allow_null=True, help_text="The args to run once approved (an approver may have edited them)."
    )
    args_digest = serializers.CharField(
        allow_null=True,
        help_text='SHA-256 (hex) of the canonical JSON of `{"action": action, "args": final_args}`: '
        "run exactly what this digest names.",
    )
    comment = serializers.CharField(
        allow_blank=True,
        help_text="The approver's words (feed them back to the model on a reject).",
    )
    ladder = serializers.CharField(allow_null=True, help_text="The escalation ladder's name.")
    ladder_version = serializers.IntegerField(allow_null=True, help_text="The ladder version the action is pinned to.")
    tier = serializers.IntegerField(
        allow_null=True, help_text="While pending: the index (0-based) of its tier in the ladder's `tiers`."
    )
    due_at = serializers.DateTimeField(allow_null=True, help_text="While pending: when the tier times out.")
    claimed_by = serializers.CharField(allow_null=True, help_text="The approver who acknowledged it, if any.")
    claimed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


def action_event_payload(event: ActionEvent) -> dict[str, Any]:
    """One entry of an action's trail. Reads `actor_user` and `actor_api_key`."""
    if event.actor_user_id is not None:
        actor = _username(event.actor_user)
    elif event.actor_api_key_id is not None:
        actor = f"key:{event.actor_api_key.prefix}" if event.actor_api_key is not None else None
    else:
        actor = None
    return {
        "id": event.pk,
        "kind": event.kind,
        "actor": actor,
        "data": event.data,
        "created_at": _iso(event.created_at),
    }


class ActionEventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(
        help_text="`created`, `policy_decided`, `escalated`, `tier_entered`, then what approvers, "
        "the timeout job and webhook deliveries add."
    )
    actor = serializers.CharField(allow_null=True, help_text="A username, `key:<prefix>` for an agent key, or null.")
    data = serializers.DictField()
    created_at = serializers.DateTimeField()


def policy_version_payload(version: PolicyVersion | None, *, project_slug: str) -> dict[str, Any]:
    """A policy version; with none, what is in force: no rules, everything to "default"."""
    if version is None:
        return {
            "project": project_slug,
            "version": None,
            "rules": [],
            "default_ladder": "default",
            "note": "",
            "created_by": None,
            "created_at": None,
        }
    return {
        "project": project_slug,
        "version": version.version,
        "rules": version.rules,
        "default_ladder": version.default_ladder,
        "note": version.note,
        "created_by": _username(version.created_by) if version.created_by_id is not None else None,
        "created_at": _iso(version.created_at),
    }


class PolicyVersionOutputSerializer(serializers.Serializer):
    project = serializers.CharField()
    version = serializers.IntegerField(allow_null=True, help_text="Null: no policy yet; everything escalates.")
    rules = serializers.ListField(child=serializers.DictField(), help_text="Validated and normalised.")
    default_ladder = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)


def redacted_webhook_url(url: str) -> str:
    """`https://hooks.slack.com`: the scheme and host of a notification webhook URL. A Slack or
    Teams incoming-webhook URL is a credential (whoever has it may post to the channel), so only
    those who manage ladders see it whole."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}" if parts.scheme and host else ""


def ladder_version_payload(version: LadderVersion, *, project_slug: str, reveal_webhook: bool) -> dict[str, Any]:
    """A ladder version; `notify_webhook_url` whole only with `reveal_webhook` (the caller holds
    `escalations.manage`), else its scheme and host."""
    url = version.notify_webhook_url
    return {
        "project": project_slug,
        "name": version.name,
        "version": version.version,
        "tiers": version.tiers,
        "timeout_outcome": version.timeout_outcome,
        "notify_webhook_url": url if reveal_webhook else redacted_webhook_url(url),
        "created_by": _username(version.created_by) if version.created_by_id is not None else None,
        "created_at": _iso(version.created_at),
    }


class LadderVersionOutputSerializer(serializers.Serializer):
    project = serializers.CharField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    tiers = serializers.ListField(child=serializers.DictField())
    timeout_outcome = serializers.CharField()
    notify_webhook_url = serializers.CharField(
        allow_blank=True,
        help_text="Whole for those who may manage ladders (`escalations.manage`); for others only its scheme "
        "and host (an incoming-webhook URL is a credential).",
    )
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
