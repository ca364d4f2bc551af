"""Ladders and actions made with the ORM, for the webhook and notification tests (the action
services are written elsewhere; these stand in for what they store). Tiers are in the stored
form of `policies.ladder_to_json`: `{"role": ...}` or `{"users": [...]}`, with the timeout and
approvals required."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from escalations.models import Action, ActionStatus, DecidedBy, LadderVersion
from reviewapp.models import Project

_numbers = itertools.count(1)


def make_ladder(
    project: Project,
    *,
    name: str = "default",
    tiers: list[dict[str, Any]] | None = None,
    notify_webhook_url: str = "",
    version: int = 1,
) -> LadderVersion:
    return LadderVersion.objects.create(
        organization_id=project.organization_id,
        project=project,
        name=name,
        version=version,
        tiers=tiers if tiers is not None else [{"role": "approver", "timeout_seconds": 900, "approvals_required": 1}],
        notify_webhook_url=notify_webhook_url,
    )


def make_pending_action(
    project: Project,
    *,
    ladder: LadderVersion | None = None,
    tier: int = 0,
    action: str = "refund",
    callback_url: str = "",
    now: dt.datetime | None = None,
    **fields: Any,
) -> Action:
    now = now or timezone.now()
    ladder = ladder or make_ladder(project)
    timeout = ladder.tiers[tier]["timeout_seconds"]
    return Action.objects.create(
        organization_id=project.organization_id,
        project=project,
        external_id=f"ext-{next(_numbers)}",
        action=action,
        args={"amount": 450, "currency": "EUR"},
        confidence=0.62,
        callback_url=callback_url,
        status=ActionStatus.PENDING,
        ladder=ladder,
        tier=tier,
        tier_entered_at=now,
        due_at=now + dt.timedelta(seconds=timeout),
        **fields,
    )


def make_decided_action(
    project: Project,
    *,
    status: str = ActionStatus.APPROVED,
    callback_url: str = "https://agent.example.com/hooks/decisions",
    decided_by: str = DecidedBy.POLICY,
    **fields: Any,
) -> Action:
    now = timezone.now()
    defaults: dict[str, Any] = {
        "organization_id": project.organization_id,
        "project": project,
        "external_id": f"ext-{next(_numbers)}",
        "action": "refund",
        "args": {"amount": 40, "currency": "EUR"},
        "final_args": {"amount": 40, "currency": "EUR"},
        "args_digest": "d" * 64,
        "confidence": 0.97,
        "callback_url": callback_url,
        "status": status,
        "decided_by": decided_by,
        "decided_at": now,
        "reason": "Small refunds are approved",
        "policy_version": 3,
        "matched_rule": "small refunds",
        "matched_rule_index": 0,
    }
    defaults.update(fields)
    return Action.objects.create(**defaults)
