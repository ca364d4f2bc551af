"""An agent asks before it acts: store the request, let the project's current policy decide it
or put it on a ladder, all in one transaction with its trail.

Fail closed everywhere: a policy that cannot be loaded or evaluated escalates to the default
ladder ("Policy could not be evaluated"), never approves; a ladder that cannot be found falls
back to the default ladder, which is created on first need."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from escalations import action_input, lock_objects, policies, selectors, sql
from escalations.action_input import ActionInput
from escalations.models import Action, ActionEvent, ActionStatus, DecidedBy, LadderVersion, Outcome
from escalations.services import notify
from escalations.services import policy as policy_services
from reviewapp import rawsql
from reviewapp.errors import Conflict
from reviewapp.models import Project
from reviewapp.principal import Principal

logger = logging.getLogger(__name__)

EVALUATION_FAILED = "Policy could not be evaluated"
NO_POLICY = "No policy version yet; escalated to the default ladder"
# The loser of two identical requests racing on a new external_id retries once and finds the
# winner's row; more attempts would mean something other than that race.
_REQUEST_ATTEMPTS = 3


@dataclass(frozen=True)
class _Decision:
    verdict: policies.Verdict
    policy_version: int | None


def _stored_input(action: Action) -> ActionInput:
    return ActionInput(
        external_id=action.external_id,
        action=action.action,
        args=action.args,
        confidence=action.confidence,
        risk_tags=tuple(action.risk_tags or ()),
        reasoning=action.reasoning,
        end_user_id=action.end_user_id,
        conversation_external_id=action.conversation_external_id,
        agent_version=action.agent_version,
        callback_url=action.callback_url,
    )


def _repeat(existing: Action, sent: ActionInput) -> Action:
    """The same external_id again: the same action if it is the same request, else 409."""
    field = action_input.first_difference(_stored_input(existing), sent)
    if field is not None:
        raise Conflict(
            f"external_id '{sent.external_id}' was already used for a different request.",
            errors={field: [f"Differs from the request first sent with this external_id (action {existing.pk})."]},
        )
    return existing


def _facts(sent: ActionInput) -> policies.ActionFacts:
    return policies.ActionFacts(
        action=sent.action,
        args=sent.args,
        confidence=sent.confidence,
        risk_tags=sent.risk_tags,
        agent_version=sent.agent_version,
        end_user_id=sent.end_user_id,
    )


class _EvaluationBroken(Exception):
    """The evaluation failed in the database: the transaction is unusable, start over."""


def _evaluate(
    *,
    project: Project,
    context: selectors.RequestContext,
    facts: policies.ActionFacts,
    now: dt.datetime,
    broken: bool = False,
) -> _Decision:
    """The verdict of the policy in force (read with the request's context) on `facts`. Any
    failure (a stored policy that no longer loads, a velocity query that errs, a bug) is
    logged and escalates to the default ladder: at once, or, for a database error (which
    leaves the transaction unusable), by raising _EvaluationBroken for the caller to roll back
    and start over with `broken` (then the verdict is the escalation, without evaluating)."""
    version = context.policy_version
    default_ladder = (
        context.default_ladder or policy_services.DEFAULT_LADDER
        if version is not None
        else policy_services.DEFAULT_LADDER
    )
    try:
        if version is None or context.rules_json is None:
            policy = policy_services.policy_of(None)
        else:
            policy = policy_services.policy_parsed(context.rules_json, context.default_ladder or "")
        windows = policies.velocity_windows(policy)

        def velocity(window: policies.VelocityWindow, seen: policies.ActionFacts) -> float:
            return selectors.velocity_total(project_id=project.pk, window=window, facts=seen, now=now)

        if broken:
            raise _EvaluationBroken("the first attempt's evaluation failed in the database")
        # The velocity lock and queries are the one part that talks to the database. Not in a
        # savepoint (two more round trips on every request): a database error there aborts the
        # request's transaction, so it is raised as _EvaluationBroken, the request starts over
        # and escalates without evaluating (`broken`). (Sending the lock and the totals in one
        # round trip, in libpq's pipeline mode, cost more CPU and time than it saved: measured.)
        if windows:
            lock_objects.velocity_keys_lock(project_id=project.pk, by_values=_window_keys(windows, facts))
        verdict = policies.policy_evaluate(policy, facts, velocity)
        if verdict.outcome not in (Outcome.APPROVE, Outcome.REJECT, Outcome.ESCALATE):
            raise ValueError(f"unknown outcome {verdict.outcome!r}")
    except DatabaseError as exc:
        logger.exception("policy of project %s could not be evaluated; escalating", project.pk)
        raise _EvaluationBroken(str(exc)) from exc
    except Exception as exc:
        if not isinstance(exc, _EvaluationBroken):
            logger.exception("policy of project %s could not be evaluated; escalating", project.pk)
        verdict = policies.Verdict(
            outcome=Outcome.ESCALATE,
            ladder=default_ladder,
            rule_index=None,
            rule_name="",
            reason=EVALUATION_FAILED,
            explanation=(),
        )
    if version is None and verdict.rule_index is None and verdict.reason != EVALUATION_FAILED:
        verdict = policies.Verdict(
            outcome=Outcome.ESCALATE,
            ladder=policy_services.DEFAULT_LADDER,
            rule_index=None,
            rule_name="",
            reason=NO_POLICY,
            explanation=(),
        )
    return _Decision(verdict=verdict, policy_version=version)


def _window_keys(windows: tuple[policies.VelocityWindow, ...], facts: policies.ActionFacts) -> dict[str, str]:
    values = {"end_user_id": facts.end_user_id, "agent_version": facts.agent_version, "project": ""}
    return {w.by: values.get(w.by, "") for w in windows}


def _ladder(*, project: Project, name: str | None) -> LadderVersion:
    """The latest version of the named ladder; the default one if it is gone (it was checked
    when the policy was saved, so only a database edit gets here)."""
    ladder = policy_services.ladder_version_for(project=project, name=name or policy_services.DEFAULT_LADDER)
    if ladder is None:
        logger.error("ladder %r of project %s not found; using the default ladder", name, project.pk)
        ladder = policy_services.ladder_default_ensure(project=project)
    return ladder


def _first_tier_timeout(ladder: LadderVersion) -> int:
    tiers = ladder.tiers or []
    seconds = tiers[0].get("timeout_seconds") if tiers and isinstance(tiers[0], dict) else None
    if type(seconds) is not int or seconds <= 0:
        # A stored ladder is validated; still, never leave an action without a due time.
        logger.error("ladder version %s has no usable first tier timeout", ladder.pk)
        return 3600
    return seconds


def action_request(
    *,
    principal: Principal | None,
    project: Project,
    data: Any,
    now: dt.datetime | None = None,
    known_context: tuple[str, selectors.RequestContext] | None = None,
) -> tuple[Action, bool]:
    """Store an agent's action request and decide it by policy or escalate it; returns the
    action and whether it was created (False: the same request was sent before).

    Raises InputError (400 naming the field) for bad input and Conflict (409 naming the first
    field that differs) when the external_id was used for a different request. In one
    transaction: the row, the policy's verdict (approve/reject decided now by "policy", with
    `final_args` and `args_digest` on approval; escalate puts it on tier 0 of the ladder's
    latest version), its trail (created,
    policy_decided or escalated, tier_entered), and what follows (notify).

    `known_context`: (external_id, its request context for `project`) as the caller read it
    just before (selectors.action_request_principal, with the key); used by the first attempt
    when the parsed external_id is that one, instead of reading it again."""
    sent = action_input.action_input_parse(data, allow_private_callbacks=settings.WEBHOOK_ALLOW_PRIVATE_HOSTS)
    now = now or timezone.now()
    broken = False
    for attempt in range(_REQUEST_ATTEMPTS):
        try:
            with transaction.atomic():
                # One statement says whether the external_id is taken and which policy is in
                # force; the insert skips a row whose external_id was taken since (a racing
                # twin), so the whole action is read only for a repeat.
                if attempt == 0 and known_context is not None and known_context[0] == sent.external_id:
                    context = known_context[1]
                else:
                    context = selectors.action_request_context(project_id=project.pk, external_id=sent.external_id)
                if not context.external_id_taken:
                    action = _action_create(
                        principal=principal, project=project, context=context, sent=sent, now=now, broken=broken
                    )
                    if action is not None:
                        return action, True
                existing = selectors.action_by_external_id(project=project, external_id=sent.external_id)
                if existing is not None:
                    return _repeat(existing, sent), False
                # The conflicting row is gone again (its project is being deleted): try again.
        except _EvaluationBroken:
            # Rolled back (the velocity lock with it); the next pass escalates without evaluating.
            broken = True
            continue
        except IntegrityError:
            # Not the external_id (ON CONFLICT skips that one): kept as before for any other
            # unique index a concurrent request could hit.
            if attempt == _REQUEST_ATTEMPTS - 1:
                raise
            logger.info("action request race on %s/%s; trying again", project.pk, sent.external_id)
    raise Conflict(f"external_id '{sent.external_id}' is being written by another request; send it again.")


def _action_create(
    *,
    principal: Principal | None,
    project: Project,
    context: selectors.RequestContext,
    sent: ActionInput,
    now: dt.datetime,
    broken: bool = False,
) -> Action | None:
    """Must run inside the caller's transaction. None: the project has an action with this
    external_id already (committed, or committed while this insert waited for it)."""
    decision = _evaluate(project=project, context=context, facts=_facts(sent), now=now, broken=broken)
    verdict = decision.verdict
    action = Action(
        organization_id=project.organization_id,
        project=project,
        external_id=sent.external_id,
        action=sent.action,
        args=sent.args,
        confidence=sent.confidence,
        risk_tags=list(sent.risk_tags),
        reasoning=sent.reasoning,
        end_user_id=sent.end_user_id,
        conversation_external_id=sent.conversation_external_id,
        conversation_id=selectors.conversation_id_for(project=project, external_id=sent.conversation_external_id),
        agent_version=sent.agent_version,
        callback_url=sent.callback_url,
        reason=verdict.reason[:1000],
        policy_version=decision.policy_version,
        matched_rule_index=verdict.rule_index,
        matched_rule=(verdict.rule_name or "")[:200] if verdict.rule_index is not None else "",
        policy_outcome=verdict.outcome,
        policy_explanation=list(verdict.explanation),
        created_by_key=principal.api_key if principal is not None else None,
        created_by_user=principal.user if principal is not None else None,
        created_at=now,
    )
    if verdict.outcome == Outcome.ESCALATE:
        ladder = _ladder(project=project, name=verdict.ladder)
        action.status = ActionStatus.PENDING
        action.ladder = ladder
        action.tier = 0
        action.tier_entered_at = now
        action.due_at = now + dt.timedelta(seconds=_first_tier_timeout(ladder))
    else:
        action.status = ActionStatus.APPROVED if verdict.outcome == Outcome.APPROVE else ActionStatus.REJECTED
        action.decided_by = DecidedBy.POLICY
        action.decided_at = now
        # The args to run, and their digest, exist on approval only (as for a person's
        # decision): a rejected action carries nothing an agent could run.
        if verdict.outcome == Outcome.APPROVE:
            action.final_args = sent.args
            action.args_digest = policies.args_digest(sent.action, sent.args)
    # The row, or nothing when the external_id is taken. Every column is written (the
    # instance holds each field's default), as save() would.
    values = {name: getattr(action, name) for name in sql.ACTION_ATTNAMES}
    events = _event_rows(action=action, principal=principal, decision=decision, now=now)
    if connection.vendor == "postgresql":
        # The action and its trail in one prepared statement: one round trip less.
        params = rawsql.values(Action, values, sql.ACTION_ATTNAMES)
        for event in events:
            params += rawsql.values(ActionEvent, event, sql.EVENT_ATTNAMES)
        row = rawsql.fetchone(sql.ACTION_WITH_EVENTS[len(events)], params)
        if row is None:
            return None
        action.pk = row[0]
    else:
        inserted = rawsql.insert(Action, [values], unless_conflict=("project", "external_id"))
        if not inserted:
            return None
        action.pk = inserted[0]
        # One multi-row statement; the trail's ids follow the list's order (the events list
        # orders by id).
        rawsql.insert(ActionEvent, [{**event, "action_id": action.pk} for event in events])
    action._state.adding = False
    action._state.db = connection.alias
    _follow_up(action=action)
    return action


def _follow_up(*, action: Action) -> None:
    """What follows a new action (stored with its trail), in its transaction."""
    if action.status == ActionStatus.PENDING:
        notify.action_tier_entered(action=action)
    else:
        notify.action_decided_on_arrival(action=action)


def _event_rows(
    *, action: Action, principal: Principal | None, decision: _Decision, now: dt.datetime
) -> list[dict[str, Any]]:
    """The new action's trail (sql.EVENT_ATTNAMES of each event; the action's id is added
    when it is inserted): created, then policy_decided, or escalated and tier_entered."""
    verdict = decision.verdict
    rule = {
        "policy_version": decision.policy_version,
        "rule": verdict.rule_name if verdict.rule_index is not None else None,
        "rule_index": verdict.rule_index,
        "reason": verdict.reason,
    }
    user = principal.user if principal is not None else None
    key = principal.api_key if principal is not None else None

    def event(kind: str, data: dict[str, Any], *, actor: bool = False) -> dict[str, Any]:
        return {
            "organization_id": action.organization_id,
            "kind": kind,
            "actor_user_id": user.pk if actor and user is not None else None,
            "actor_api_key_id": key.pk if actor and key is not None else None,
            "data": data,
            "created_at": now,
        }

    events = [event("created", {"external_id": action.external_id, "action": action.action}, actor=True)]
    if action.status == ActionStatus.PENDING:
        assert action.ladder is not None and action.due_at is not None
        events.append(
            event("escalated", {**rule, "ladder": action.ladder.name, "ladder_version": action.ladder.version})
        )
        events.append(event("tier_entered", {"tier": 0, "due_at": action.due_at.isoformat()}))
    else:
        events.append(event("policy_decided", {**rule, "outcome": verdict.outcome, "status": action.status}))
    return events


__all__ = ["EVALUATION_FAILED", "NO_POLICY", "action_request"]
