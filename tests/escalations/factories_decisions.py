"""Pending actions on a ladder, made with the ORM, for the decision and timeout tests (the
action request service is another helper's; these stand where an escalated action would)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from escalations import policies
from escalations.models import Action, ActionStatus, LadderVersion

_numbers = itertools.count(1)


def tier(
    *, role: str | None = None, users: tuple[str, ...] = (), timeout_seconds: int = 900, approvals_required: int = 1
) -> dict[str, Any]:
    return {
        "role": role,
        "users": list(users),
        "timeout_seconds": timeout_seconds,
        "approvals_required": approvals_required,
    }


def make_ladder(project, *tiers: dict[str, Any], name: str = "default", version: int | None = None) -> LadderVersion:
    """A version of ladder `name` (the next one unless `version` is given); one approver tier
    by default."""
    if version is None:
        version = LadderVersion.objects.filter(project=project, name=name).count() + 1
    # Stored as the ladder service stores it: validated, in the policy module's normal form.
    given = [{k: v for k, v in t.items() if v not in (None, [])} for t in tiers or [tier(role="approver")]]
    ladder = policies.ladder_validate({"name": name, "tiers": given})
    return LadderVersion.objects.create(
        organization=project.organization,
        project=project,
        name=name,
        version=version,
        tiers=policies.ladder_to_json(ladder)["tiers"],
        timeout_outcome=ladder.timeout_outcome,
    )


def make_pending_action(
    project,
    ladder: LadderVersion,
    *,
    action: str = "refund",
    args: dict[str, Any] | None = None,
    tier_index: int = 0,
    now: dt.datetime | None = None,
    **fields: Any,
) -> Action:
    """An action escalated to `ladder`, entering tier `tier_index` at `now` (due after that
    tier's timeout)."""
    now = now or timezone.now()
    timeout = ladder.tiers[tier_index]["timeout_seconds"]
    return Action.objects.create(
        organization=project.organization,
        project=project,
        external_id=fields.pop("external_id", f"act-{next(_numbers)}"),
        action=action,
        args={"amount": 450, "currency": "EUR"} if args is None else args,
        status=ActionStatus.PENDING,
        policy_outcome="escalate",
        ladder=ladder,
        tier=tier_index,
        tier_entered_at=now,
        due_at=now + dt.timedelta(seconds=timeout),
        created_at=now,
        **fields,
    )
