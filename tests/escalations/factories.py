"""Builders for escalations tests: requests as an agent sends them, ladders and policies made
through the services (so they are validated like the API's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from escalations import services
from escalations.models import Action, LadderVersion, PolicyVersion
from reviewapp.models import Project

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)

FINANCE_LADDER: dict[str, Any] = {
    "name": "finance",
    "tiers": [
        {"role": "approver", "timeout_seconds": 900},
        {"users": ["lead"], "timeout_seconds": 3600, "approvals_required": 1},
    ],
    "timeout_outcome": "reject",
}

# "A third $400 refund to one customer in a day goes to a human", after small refunds are fine.
REFUND_RULES: list[dict[str, Any]] = [
    {
        "name": "refund velocity",
        "if": {
            "action": "refund",
            "velocity": [
                {
                    "window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400},
                    "op": ">",
                    "value": 1000,
                }
            ],
        },
        "then": "escalate",
        "ladder": "finance",
        "reason": "Over $1,000 refunded to one customer in a day",
    },
    {
        "name": "big refund",
        "if": {"action": "refund", "args": [{"path": "amount", "op": ">", "value": 500}]},
        "then": "escalate",
        "ladder": "finance",
        "reason": "Refund over $500",
    },
    {
        "name": "confident refund",
        "if": {"action": "refund", "confidence_at_least": 0.9},
        "then": "approve",
        "reason": "Small refund, confident agent",
    },
    {
        "name": "no deleting accounts",
        "if": {"action": "delete_account"},
        "then": "reject",
        "reason": "Agents may not delete accounts",
    },
]


def request_body(external_id: str = "act-1", **overrides: Any) -> dict[str, Any]:
    """A valid action request, as in the issue."""
    body: dict[str, Any] = {
        "external_id": external_id,
        "action": "refund",
        "args": {"amount": 400, "currency": "USD", "booking": "ABC123"},
        "confidence": 0.95,
        "risk_tags": ["money"],
        "reasoning": "The flight was cancelled; the fare is refundable.",
        "end_user_id": "customer-812",
        "conversation_external_id": "conv-812",
        "agent_version": "v2",
        "callback_url": "https://agent.example.com/hooks/decisions",
    }
    body.update(overrides)
    return body


def ladder_create(project: Project, spec: dict[str, Any] | None = None, **overrides: Any) -> LadderVersion:
    return services.ladder_version_create(
        principal=None, project=project, data={**(spec or FINANCE_LADDER), **overrides}
    )


def policy_create(project: Project, rules: list[dict[str, Any]], default_ladder: str = "default") -> PolicyVersion:
    return services.policy_version_create(
        principal=None, project=project, data={"rules": rules, "default_ladder": default_ladder}
    )


def refund_policy(project: Project) -> PolicyVersion:
    ladder_create(project)
    return policy_create(project, REFUND_RULES)


def request(
    project: Project, body: dict[str, Any] | None = None, *, now: dt.datetime = NOW, **overrides: Any
) -> Action:
    action, _created = services.action_request(
        principal=None, project=project, data={**(body or request_body()), **overrides}, now=now
    )
    return action
