"""People deciding pending actions, claims, and the tier timeout sweep.

Every write here is one short transaction that first locks the action's row
(lock_objects.action_lock), so deciders, claimers and the sweep take turns on it: of two
approvers deciding at once the second waits, then finds the action decided (409). The state
change itself is still a compare-and-set on `status = pending` (and the tier, for the sweep),
and every change writes its ActionEvent rows in the same transaction.

Four-eyes: a tier needing `approvals_required` approvals decides when that many distinct people
approved the same args (`args_digest`) at the current tier. Approving without `args` approves
the args on the table: those of the latest approval at this tier, else the args as requested;
approving with different args is an edit, and an edit starts its own count (the earlier
approvers approved other args, and each person votes once per tier, so a third person must
agree to the edit). Votes at an earlier tier do not count at the next one, and a person who
voted at an earlier tier may vote again at a later tier that admits them. A reject decides at
once.

An approver approves what they saw: `expected_digest` is the `args_digest` of the args on the
table when they loaded the action. When it is given and the table has changed since (an edit by
a colleague in between), the approval is refused (409) rather than counted towards args the
approver never saw. The browser always sends it; over the API it is optional (older clients),
and enforced when present.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from escalations import action_input, deciding, lock_objects, policies
from escalations.models import Action, ActionEvent, ActionStatus, DecidedBy, LadderVersion, Vote
from escalations.services import notify
from reviewapp import validation
from reviewapp.errors import ApplicationError, Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from reviewapp.principal import Principal

# The time every service here uses when the caller gives none; tests replace it to drive
# tier timeouts without sleeping.
clock: Callable[[], dt.datetime] = timezone.now

DECISIONS = ("approve", "reject")
# The fields of a decision's body (POST /api/v1/actions/{id}/decision).
DECISION_FIELDS = ("args", "comment", "decision", "expected_digest")
_FIELD_NAME = re.compile(r"[A-Za-z0-9_]{1,50}")
COMMENT_MAX = 10_000
# Edited args are bounded like the args an agent may send: JSON depth and size.
ARGS_MAX_BYTES = 64 * 1024
ARGS_MAX_DEPTH = 32
# How many due actions one sweep transaction locks: small enough that a decision waiting on
# one of them waits a few milliseconds, large enough that a backlog clears in few round trips.
SWEEP_CHUNK = 50


# --- reading the ladder ------------------------------------------------------------------------


def ladder_tiers(ladder: LadderVersion | None) -> tuple[policies.Tier, ...]:
    """The tiers of a ladder version as stored (validated when the version was saved)."""
    return () if ladder is None else deciding.tiers_from_stored(ladder.tiers)


def current_tier(action: Action) -> policies.Tier | None:
    """The tier a pending action is at, or None when its ladder has no such tier (its timeout
    outcome is then next)."""
    tiers = ladder_tiers(action.ladder)
    if action.tier is None or not 0 <= action.tier < len(tiers):
        return None
    return tiers[action.tier]


def person_may_decide(*, principal: Principal, tier: policies.Tier | None) -> bool:
    """Eligibility at a tier (see escalations/deciding.py): a person, holding `actions.decide`,
    whom the tier names or whose role it admits."""
    if principal.user is None or tier is None:
        return False
    return deciding.may_decide(
        tier,
        username=principal.user.get_username(),
        role=principal.role,
        can_decide=principal.can("actions.decide"),
    )


# --- input ---------------------------------------------------------------------------------------


def _decider(principal: Principal) -> AbstractBaseUser:
    if principal.user is None or not principal.can("actions.decide"):
        raise ApplicationError("Your role may not decide actions.", status=403)
    return principal.user


def _clean_comment(comment: Any) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise ValidationFailed("Invalid comment.", errors={"comment": ["Must be text."]})
    comment = comment.strip()
    validation.check_text(comment, field="comment")
    if len(comment) > COMMENT_MAX:
        raise ValidationFailed("Comment too long.", errors={"comment": [f"At most {COMMENT_MAX} characters."]})
    return comment


def _clean_args(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise ValidationFailed("Invalid args.", errors={"args": ["Must be a JSON object."]})
    validation.check_json(args, path="args", max_depth=ARGS_MAX_DEPTH)
    # Numbers as jsonb stores them (1e16 -> 10000000000000000, -0.0 -> 0.0), so the digest of
    # the approved args is the digest of what every database gives back.
    args = action_input.json_numbers_normalise(args)
    size = len(json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode())
    if size > ARGS_MAX_BYTES:
        raise ValidationFailed("Args too large.", errors={"args": [f"At most {ARGS_MAX_BYTES} bytes of JSON."]})
    return args


def _when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "an unknown time"


def already_decided_message(action: Action) -> str:
    """'Already approved by policy rule 'small refunds' at ...', '... by alice at ...': who
    decided and how, for the 409 a late decider or claimer gets."""
    status = action.get_status_display().lower()
    at = _when(action.decided_at)
    if action.decided_by == DecidedBy.POLICY:
        rule = f"policy rule '{action.matched_rule}'" if action.matched_rule else "the policy"
        return f"Already {status} by {rule} at {at}."
    if action.decided_by == DecidedBy.TIMEOUT:
        return f"Already {status}: nobody decided before its last tier timed out (at {at})."
    if action.decided_by_user is not None:
        return f"Already {status} by {action.decided_by_user.get_username()} at {at}."
    return f"Already {status} at {at}."


def _decision_input(
    *, decision: Any, args: Any, comment: Any, unknown_fields: tuple[str, ...] = ()
) -> tuple[dict[str, Any] | None, str]:
    """The decision's input checked (400 naming the field): the args to approve, if edited,
    and the comment."""
    if unknown_fields:
        # A misspelt `expected_digest` or `args` must not pass silently: the approval would
        # skip the check the approver asked for, or approve args they meant to edit. The key
        # is named when it looks like a field name, not echoed whatever it holds.
        first = unknown_fields[0]
        field = first if _FIELD_NAME.fullmatch(first) else "body"
        raise ValidationFailed(
            "Unknown field.",
            errors={field: [f"Unknown field; the fields are: {', '.join(DECISION_FIELDS)}."]},
        )
    if decision not in DECISIONS:
        raise ValidationFailed("Unknown decision.", errors={"decision": ['Must be "approve" or "reject".']})
    comment = _clean_comment(comment)
    if decision == "approve":
        return (None if args is None else _clean_args(args)), comment
    if args is not None:
        raise ValidationFailed("Only an approval may edit the args.", errors={"args": ["Not allowed on reject."]})
    if not comment:
        raise ValidationFailed("A reject needs a comment.", errors={"comment": ["Say why; the agent gets it back."]})
    return None, comment


def _clean_expected_digest(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValidationFailed(
            "Invalid expected_digest.",
            errors={"expected_digest": ["Must be the args_digest (64 lowercase hex digits) of the args you saw."]},
        )
    return value


def _action_lock(*, principal: Principal, action_id: int) -> Action:
    if not validation.is_id(action_id):
        raise NotFound("No such action.")
    action = lock_objects.action_lock(organization=principal.organization, action_id=action_id)
    if action is None:
        raise NotFound("No such action.")
    return action


def _check_pending(action: Action) -> None:
    if action.status != ActionStatus.PENDING:
        raise Conflict(already_decided_message(action), errors={"status": [action.status]})


def _pending_action_lock(*, principal: Principal, action_id: int) -> Action:
    action = _action_lock(principal=principal, action_id=action_id)
    _check_pending(action)
    return action


def _event(action: Action, kind: str, now: dt.datetime, user: Any = None, **data: Any) -> ActionEvent:
    return ActionEvent(
        organization_id=action.organization_id, action=action, kind=kind, actor_user=user, data=data, created_at=now
    )


def _compare_and_set(action: Action, *, expect: dict[str, Any], **fields: Any) -> None:
    """Write `fields` if the row is still pending (and as `expect` says); the caller holds the
    row lock, so a miss means the invariant broke: refuse rather than decide twice."""
    changed = Action.objects.filter(pk=action.pk, status=ActionStatus.PENDING, **expect).update(**fields)
    if changed != 1:
        raise Conflict("This action changed while it was being decided; reload it.")
    for name, value in fields.items():
        setattr(action, name, value)


# --- deciding --------------------------------------------------------------------------------------


def action_decide(
    *,
    principal: Principal,
    action_id: int,
    decision: str,
    args: Any = None,
    comment: Any = "",
    expected_digest: Any = None,
    unknown_fields: tuple[str, ...] = (),
    now: dt.datetime | None = None,
) -> Action:
    """A person approves (optionally with edited `args`) or rejects a pending action at its
    current tier. One transaction, holding the action's row lock.

    400: a decision other than approve/reject, a reject without a comment, `args` on a reject
    or not a bounded JSON object, an `expected_digest` that is not 64 hex digits, any
    `unknown_fields` (an API body's keys besides DECISION_FIELDS). 404: not an
    action of the person's organization. 409: already decided (naming who decided and how),
    this person already voted on it at this tier, or (an approval) the args on the table are
    not those `expected_digest` names. 403: the person may not decide at the action's current
    tier. Returns the action, decided or (an approval
    short of `approvals_required`) still pending."""
    user = _decider(principal)
    now = now or clock()

    refusal: ApplicationError | None = None
    with transaction.atomic():
        # Found first, then checked: another organization's id is a 404 whatever the body.
        action = _action_lock(principal=principal, action_id=action_id)
        args, comment = _decision_input(decision=decision, args=args, comment=comment, unknown_fields=unknown_fields)
        _check_pending(action)
        if action.due_at is not None and action.due_at <= now:
            # Past its tier's deadline and the sweep has not run yet: the tier is over, so
            # apply its timeout first (climb, or expire past the last tier), as the sweep
            # would, then judge this decision at the tier the action is really at.
            _tier_timed_out(action, now=now)
            try:
                with transaction.atomic():  # a refusal undoes only the decision's writes
                    _decide_at_tier(
                        action,
                        principal=principal,
                        user=user,
                        decision=decision,
                        args=args,
                        comment=comment,
                        expected_digest=expected_digest,
                        now=now,
                    )
            except ApplicationError as exc:
                refusal = exc  # the timeout stands: commit it, then refuse
        else:
            _decide_at_tier(
                action,
                principal=principal,
                user=user,
                decision=decision,
                args=args,
                comment=comment,
                expected_digest=expected_digest,
                now=now,
            )
    if refusal is not None:
        raise refusal
    return action


def _decide_at_tier(
    action: Action,
    *,
    principal: Principal,
    user: AbstractBaseUser,
    decision: str,
    args: dict[str, Any] | None,
    comment: str,
    expected_digest: Any,
    now: dt.datetime,
) -> None:
    """The decision on a locked action, once its input is checked: pending, eligible at its
    current tier, one vote per person per tier; then the vote and what it decides."""
    _check_pending(action)
    tier = current_tier(action)
    if tier is None or not person_may_decide(principal=principal, tier=tier):
        raise ApplicationError("You may not decide this action at its current tier.", status=403)
    expected_digest = _clean_expected_digest(expected_digest) if decision == "approve" else None
    earlier = Vote.objects.filter(action=action, user=user, tier=action.tier).values_list("decision", flat=True).first()
    if earlier is not None:
        raise Conflict(f"You already {earlier}d this action.", errors={"decision": ["One vote per person per tier."]})
    if decision == "reject":
        _reject(action, user=user, comment=comment, now=now)
    else:
        _approve(action, user=user, tier=tier, args=args, comment=comment, expected_digest=expected_digest, now=now)


def _vote_insert(vote: Vote) -> None:
    # The row lock already serialises votes on one action; the unique constraint (action,
    # person, tier) is the backstop that makes a second vote by one person at one tier
    # impossible whatever the path.
    try:
        with transaction.atomic():
            vote.save()
    except IntegrityError as exc:
        raise Conflict(
            "You already voted on this action.", errors={"decision": ["One vote per person per tier."]}
        ) from exc


def _reject(action: Action, *, user: AbstractBaseUser, comment: str, now: dt.datetime) -> None:
    tier_index = action.tier
    _vote_insert(
        Vote(
            organization_id=action.organization_id,
            action=action,
            user=user,
            tier=tier_index,
            decision="reject",
            comment=comment,
            created_at=now,
        )
    )
    username = user.get_username()
    _compare_and_set(
        action,
        expect={"tier": tier_index},
        status=ActionStatus.REJECTED,
        decided_by=DecidedBy.PERSON,
        decided_by_user=user,
        decided_at=now,
        reason=f"Rejected by {username}",
        comment=comment,
    )
    ActionEvent.objects.bulk_create(
        [
            _event(action, "voted", now, user, decision="reject", tier=tier_index, comment=comment),
            _event(action, "decided", now, user, status=ActionStatus.REJECTED, decided_by=username, tier=tier_index),
        ]
    )
    notify.action_decided(action=action)


def _args_on_the_table(action: Action, tier_index: int) -> tuple[dict[str, Any], str]:
    """What an approval without args approves: the args of the latest approval at this tier
    (an edit awaiting its second pair of eyes), else the args as requested."""
    latest = (
        Vote.objects.filter(action=action, tier=tier_index, decision="approve")
        .order_by("-id")
        .values_list("args", "args_digest")
        .first()
    )
    if latest is not None:
        return latest[0], latest[1]
    return action.args, policies.args_digest(action.action, action.args)


def _approve(
    action: Action,
    *,
    user: AbstractBaseUser,
    tier: policies.Tier,
    args: dict[str, Any] | None,
    comment: str,
    expected_digest: str | None,
    now: dt.datetime,
) -> None:
    tier_index = action.tier
    table_args, table_digest = _args_on_the_table(action, tier_index)
    if expected_digest is not None and expected_digest != table_digest:
        # Someone edited the args after this approver loaded them: counting this approval
        # would approve args they never saw (four-eyes on paper only).
        raise Conflict(
            "The args changed since you loaded them; review them again.",
            errors={"expected_digest": ["The args on the table are now different."]},
        )
    if args is None:
        approved, digest = table_args, table_digest
    else:
        approved, digest = args, policies.args_digest(action.action, args)
    edited = digest != table_digest
    _vote_insert(
        Vote(
            organization_id=action.organization_id,
            action=action,
            user=user,
            tier=tier_index,
            decision="approve",
            args=approved,
            args_digest=digest,
            edited=edited,
            comment=comment,
            created_at=now,
        )
    )
    approvers = list(
        Vote.objects.filter(action=action, tier=tier_index, decision="approve", args_digest=digest)
        .order_by("id")
        .values_list("user__username", flat=True)
    )
    events = [
        _event(
            action,
            "voted",
            now,
            user,
            decision="approve",
            tier=tier_index,
            edited=edited,
            changes=deciding.args_diff(table_args, approved) if edited else [],
            args_digest=digest,
            approvals=len(approvers),
            approvals_required=tier.approvals_required,
            comment=comment,
        )
    ]
    if len(approvers) >= tier.approvals_required:
        _compare_and_set(
            action,
            expect={"tier": tier_index},
            status=ActionStatus.APPROVED,
            decided_by=DecidedBy.PERSON,
            decided_by_user=user,
            decided_at=now,
            reason="Approved by " + ", ".join(approvers),
            comment=comment,
            final_args=approved,
            args_digest=digest,
        )
        # Against the args as the agent asked: what the humans changed, in the end.
        changes = deciding.args_diff(action.args, approved)
        events.append(
            _event(
                action,
                "decided",
                now,
                user,
                status=ActionStatus.APPROVED,
                decided_by=user.get_username(),
                approvers=approvers,
                tier=tier_index,
                edited=bool(changes),
                changes=changes,
                args_digest=digest,
            )
        )
    ActionEvent.objects.bulk_create(events)
    if action.status == ActionStatus.APPROVED:
        notify.action_decided(action=action)


# --- claims -------------------------------------------------------------------------------------------


def claim_is_stale(action: Action, *, now: dt.datetime) -> bool:
    """A claim nobody acted on within its tier's timeout, or one made at an earlier tier (the
    sweep releases those when it climbs; this covers the moments before it runs)."""
    if action.claimed_by_id is None or action.claimed_at is None:
        return True
    if action.tier_entered_at is not None and action.claimed_at < action.tier_entered_at:
        return True
    tier = current_tier(action)
    return tier is None or action.claimed_at + dt.timedelta(seconds=tier.timeout_seconds) <= now


def action_claim(*, principal: Principal, action_id: int, now: dt.datetime | None = None) -> Action:
    """An approver eligible at the action's current tier acknowledges it, so colleagues see it
    is taken. Claiming one's own claim again changes nothing. 409 when someone else holds a
    claim that is not stale (naming them), or when the action is decided; 403 when the person
    may not decide at this tier."""
    user = _decider(principal)
    now = now or clock()
    with transaction.atomic():
        action = _pending_action_lock(principal=principal, action_id=action_id)
        if not person_may_decide(principal=principal, tier=current_tier(action)):
            raise ApplicationError("You may not decide this action at its current tier.", status=403)
        if action.claimed_by_id == user.pk:
            return action
        previous = action.claimed_by
        if previous is not None and not claim_is_stale(action, now=now):
            raise Conflict(
                f"Already claimed by {previous.get_username()} at {_when(action.claimed_at)}.",
                errors={"claimed_by": [previous.get_username()]},
            )
        _compare_and_set(action, expect={"tier": action.tier}, claimed_by=user, claimed_at=now)
        data: dict[str, Any] = {"tier": action.tier}
        if previous is not None:
            data["took_over_from"] = previous.get_username()
        ActionEvent.objects.bulk_create([_event(action, "claimed", now, user, **data)])
    return action


def action_release(*, principal: Principal, action_id: int, now: dt.datetime | None = None) -> Action:
    """The claim's holder gives it back. Nothing to release is not an error (the claim may
    have been released by a timeout meanwhile); someone else's claim is 409."""
    user = _decider(principal)
    now = now or clock()
    with transaction.atomic():
        action = _pending_action_lock(principal=principal, action_id=action_id)
        if action.claimed_by_id is None:
            return action
        if action.claimed_by_id != user.pk:
            holder = action.claimed_by.get_username() if action.claimed_by else "someone else"
            raise Conflict(f"Claimed by {holder}; only they can release it.", errors={"claimed_by": [holder]})
        _compare_and_set(action, expect={"tier": action.tier}, claimed_by=None, claimed_at=None)
        ActionEvent.objects.bulk_create(
            [_event(action, "claim_released", now, user, tier=action.tier, reason="released")]
        )
    return action


# --- tier timeouts ------------------------------------------------------------------------------


def actions_timeout_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Move every due pending action on: up one tier of its ladder, or, past the last tier,
    to the ladder's timeout outcome (expired, decided by timeout: fail closed, never approve).
    Returns how many actions it moved.

    Due actions are taken SKIP LOCKED in chunks, each chunk its own transaction: sweepers
    running at once take different actions, a decision in progress is passed over (and taken
    by the next sweep if it is still due), and a sweeper killed mid-chunk rolls back, leaving
    its actions due for the next one."""
    validation.check_int(limit, field="limit", bounds=(1, 100_000))
    now = now or clock()
    moved = 0
    while moved < limit:
        with transaction.atomic():
            actions = lock_objects.due_actions_lock(now=now, limit=min(SWEEP_CHUNK, limit - moved))
            for action in actions:
                _tier_timed_out(action, now=now)
        moved += len(actions)
        if len(actions) < SWEEP_CHUNK:
            break
    return moved


def _tier_timed_out(action: Action, *, now: dt.datetime) -> None:
    """One due action (locked by the caller) climbs a tier or gets its timeout outcome."""
    old_tier = action.tier
    tiers = ladder_tiers(action.ladder)
    next_tier = (old_tier or 0) + 1
    events = [_event(action, "timed_out", now, tier=old_tier)]
    if action.claimed_by_id is not None:
        holder = action.claimed_by.get_username() if action.claimed_by else None
        events.append(_event(action, "claim_released", now, tier=old_tier, holder=holder, reason="tier timed out"))
    if next_tier < len(tiers):
        due_at = now + dt.timedelta(seconds=tiers[next_tier].timeout_seconds)
        _compare_and_set(
            action,
            expect={"tier": old_tier},
            tier=next_tier,
            tier_entered_at=now,
            due_at=due_at,
            claimed_by=None,
            claimed_at=None,
        )
        events.append(_event(action, "tier_entered", now, tier=next_tier, due_at=due_at.isoformat()))
        ActionEvent.objects.bulk_create(events)
        notify.action_tier_entered(action=action)
        return
    # Past the last tier. Only "reject" is a valid timeout outcome (nobody approved: fail
    # closed); whatever a ladder says, an unanswered action is never approved.
    reason = "Nobody decided in time: the last tier timed out (timeout outcome: reject)."
    _compare_and_set(
        action,
        expect={"tier": old_tier},
        status=ActionStatus.EXPIRED,
        decided_by=DecidedBy.TIMEOUT,
        decided_by_user=None,
        decided_at=now,
        reason=reason,
        claimed_by=None,
        claimed_at=None,
    )
    events.append(
        _event(action, "decided", now, status=ActionStatus.EXPIRED, decided_by=DecidedBy.TIMEOUT, tier=old_tier)
    )
    ActionEvent.objects.bulk_create(events)
    notify.action_decided(action=action)
