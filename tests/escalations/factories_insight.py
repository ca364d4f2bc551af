"""Past actions with known histories (requested at a set time, decided by the policy, by people,
or by the timeout), made with the ORM: the dry run, the envelopes and the dashboard read what
happened, and no service makes an action that already happened days ago."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from escalations import policies
from escalations.models import Action, ActionEvent, ActionStatus, DecidedBy, LadderVersion, Vote

_numbers = itertools.count(1)


def ladder_for(project, name: str = "default") -> LadderVersion:
    existing = LadderVersion.objects.filter(project=project, name=name).order_by("-version").first()
    if existing is not None:
        return existing
    ladder = policies.ladder_validate({"name": name, "tiers": [{"role": "approver", "timeout_seconds": 3600}]})
    return LadderVersion.objects.create(
        organization=project.organization,
        project=project,
        name=name,
        version=1,
        tiers=policies.ladder_to_json(ladder)["tiers"],
        timeout_outcome="reject",
    )


def past_action(
    project,
    *,
    at: dt.datetime,
    action: str = "refund",
    args: dict[str, Any] | None = None,
    confidence: float | None = 0.9,
    outcome: str = "escalate",
    human: str | None = None,
    decided_after: float = 60.0,
    by=None,
    rule: str = "",
    agent_version: str = "v1",
    end_user_id: str = "cust-1",
    tier_entered_after: float = 0.0,
) -> Action:
    """An action requested `at`. `outcome` is what the policy did: approve / reject decide it
    then; escalate puts it on the default ladder, and `human` says what came of it: "approve",
    "edited", "reject" (decided `decided_after` seconds later by `by`, with its vote and its
    `decided` event), "expired", or None (still pending)."""
    args = {"amount": 100} if args is None else args
    number = next(_numbers)
    fields: dict[str, Any] = {
        "organization": project.organization,
        "project": project,
        "external_id": f"past-{number}",
        "action": action,
        "args": args,
        "confidence": confidence,
        "agent_version": agent_version,
        "end_user_id": end_user_id,
        "created_at": at,
        "policy_outcome": outcome,
        "matched_rule": rule,
        "policy_version": 1,
    }
    decided_at = at + dt.timedelta(seconds=decided_after)
    if outcome in ("approve", "reject"):
        fields.update(
            status=ActionStatus.APPROVED if outcome == "approve" else ActionStatus.REJECTED,
            decided_by=DecidedBy.POLICY,
            decided_at=at,
            final_args=args,
            args_digest=policies.args_digest(action, args),
        )
        return Action.objects.create(**fields)
    ladder = ladder_for(project)
    if human is None:
        fields.update(status=ActionStatus.PENDING, ladder=ladder, tier=0, tier_entered_at=at, due_at=decided_at)
    elif human == "expired":
        fields.update(status=ActionStatus.EXPIRED, decided_by=DecidedBy.TIMEOUT, decided_at=decided_at, ladder=ladder)
    else:
        final = {**args, "amount": args.get("amount", 0) - 1} if human == "edited" else args
        fields.update(
            status=ActionStatus.REJECTED if human == "reject" else ActionStatus.APPROVED,
            decided_by=DecidedBy.PERSON,
            decided_by_user=by,
            decided_at=decided_at,
            ladder=ladder,
            final_args=None if human == "reject" else final,
            args_digest="" if human == "reject" else policies.args_digest(action, final),
        )
    row = Action.objects.create(**fields)
    entered = at + dt.timedelta(seconds=tier_entered_after)
    events = [
        ActionEvent(
            organization=project.organization, action=row, kind="tier_entered", data={"tier": 0}, created_at=entered
        )
    ]
    if human in ("approve", "edited", "reject"):
        decision = "reject" if human == "reject" else "approve"
        if by is not None:
            Vote.objects.create(
                organization=project.organization,
                action=row,
                user=by,
                tier=0,
                decision=decision,
                args=row.final_args,
                args_digest=row.args_digest,
                edited=human == "edited",
                created_at=decided_at,
            )
        data: dict[str, Any] = {"status": row.status, "tier": 0}
        if decision == "approve":
            data["edited"] = human == "edited"
        events.append(
            ActionEvent(
                organization=project.organization,
                action=row,
                kind="decided",
                actor_user=by,
                data=data,
                created_at=decided_at,
            )
        )
    ActionEvent.objects.bulk_create(events)
    return row
