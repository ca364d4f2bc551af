"""Seeding the demo airline's approval loop: its ladders, two policy versions, and the actions
of `demo.action_scenarios` played through the escalations services, in time order, as if they
had happened over the last week.

Every write is a service call: `ladder_version_create`, `policy_version_create`,
`action_request` (the policy decides or escalates), `action_claim`, `action_decide`, and
`actions_timeout_sweep` for the tiers nobody answered. Each is given the moment it happened
(`now=`), so votes, claims, tier changes and the trail carry the times of the story, and the
velocity rule counts a customer's refunds of that day. Policy and ladder versions take no
time: they carry the time of the seeding.

The whole of it is one transaction, and runs once per project: if the project has a policy
already (seeded before, or an engineer's own), nothing is done. A re-run of `make run` is then
one query here.
"""

from __future__ import annotations

import datetime as dt
import heapq
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction

from demo.action_scenarios import (
    AGENT_KEY_NAME,
    LADDERS,
    POLICY_V1,
    POLICY_V2,
    POLICY_V2_MINUTES_AGO,
    ActionScenario,
    LinkableConversation,
    Step,
    action_scenarios,
    refund_facts,
)
from escalations import selectors as escalation_selectors
from escalations import services as escalation_services
from escalations.models import Action, ActionStatus
from reviewapp import selectors, services
from reviewapp.models import Conversation, Project
from reviewapp.principal import AGENT, Principal

# The conversation intents an action may link to (demo.scenarios' intent tags).
_LINKABLE_INTENTS = ("refund", "baggage-claim")


@dataclass
class EscalationsSeedResult:
    created: int = 0
    skipped: bool = False
    linked: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # What was played (with the conversations it linked to), for the tests to compare with.
    scenarios: list[ActionScenario] = field(default_factory=list)


def escalations_demo_seed(*, project: Project, seed: int, reference: dt.datetime) -> EscalationsSeedResult:
    """Ladders, policy v1 and v2, and the demo actions for `project`, unless it has a policy
    already. `reference` is the seeding's "now": the story ends there, and the actions still
    pending are due after it (their first tier lasts 15 minutes, so seed with the real time)."""
    started = time.monotonic()
    if escalation_selectors.policy_version_current(organization=project.organization, project=project) is not None:
        return EscalationsSeedResult(skipped=True)
    with transaction.atomic():
        result = _seed(project=project, seed=seed, reference=reference)
    result.seconds = time.monotonic() - started
    return result


def _seed(*, project: Project, seed: int, reference: dt.datetime) -> EscalationsSeedResult:
    for ladder in LADDERS:
        escalation_services.ladder_version_create(principal=None, project=project, data=ladder)
    escalation_services.policy_version_create(principal=None, project=project, data=POLICY_V1)
    key = services.api_key_create(project=project, name=AGENT_KEY_NAME).record
    agent = Principal(organization=project.organization, role=AGENT, api_key=key, project=project)
    people = _people(project)
    scenarios = action_scenarios(seed=seed, linkable=_linkable(project=project, reference=reference))

    # (when, order, what): the policy's second version, the requests and people's steps.
    timeline: list[tuple[dt.datetime, int, str, ActionScenario | None, Step | None]] = [
        (reference - dt.timedelta(minutes=POLICY_V2_MINUTES_AGO), 0, "policy", None, None)
    ]
    for scenario in scenarios:
        created = reference - dt.timedelta(minutes=scenario.minutes_ago)
        timeline.append((created, len(timeline), "request", scenario, None))
        for step in scenario.steps:
            timeline.append((created + dt.timedelta(minutes=step.after_minutes), len(timeline), "step", scenario, step))
    timeline.sort(key=lambda entry: (entry[0], entry[1]))

    clock = _TierClock()
    ids: dict[str, int] = {}
    for when, _order, kind, scenario, step in timeline:
        clock.sweep_until(when)
        if kind == "policy":
            escalation_services.policy_version_create(principal=None, project=project, data=POLICY_V2)
            continue
        assert scenario is not None
        if kind == "request":
            action, _created = escalation_services.action_request(
                principal=agent, project=project, data=scenario.request(), now=when
            )
            ids[scenario.external_id] = action.pk
        else:
            assert step is not None
            action = _step_apply(step, action_id=ids[scenario.external_id], people=people, now=when)
        clock.watch(action)
    clock.sweep_until(reference)

    statuses = Counter(Action.objects.filter(pk__in=ids.values()).values_list("status", flat=True))
    return EscalationsSeedResult(
        created=len(ids),
        linked=sum(1 for s in scenarios if s.conversation_external_id),
        by_status=dict(sorted(statuses.items())),
        scenarios=scenarios,
    )


def _people(project: Project) -> dict[str, Principal]:
    """The deciders of the demo organization as principals, by username."""
    return {
        membership.user.get_username(): Principal(
            organization=project.organization, role=membership.role, user=membership.user
        )
        for membership in selectors.membership_list(organization=project.organization)
    }


def _step_apply(step: Step, *, action_id: int, people: dict[str, Principal], now: dt.datetime) -> Action:
    principal = people[step.user]
    if step.kind == "claim":
        return escalation_services.action_claim(principal=principal, action_id=action_id, now=now)
    return escalation_services.action_decide(
        principal=principal, action_id=action_id, decision=step.kind, args=step.args, comment=step.comment, now=now
    )


def _linkable(*, project: Project, reference: dt.datetime) -> list[LinkableConversation]:
    """The project's refund and baggage conversations, for the actions that fit one: one query
    each (a refund's transcript says what was refunded and why; a delayed bag's is not read)."""
    found = []
    for intent in _LINKABLE_INTENTS:
        fields = ["external_id", "occurred_at", "end_user_id", "agent_version", "metadata"]
        rows = (
            Conversation.objects.filter(project=project, tag_rows__tag=intent, occurred_at__lte=reference)
            .order_by("external_id")
            .values_list(*fields, *(["messages"] if intent == "refund" else []))
        )
        for external_id, occurred_at, end_user_id, agent_version, metadata, *messages in rows:
            metadata = metadata if isinstance(metadata, dict) else {}
            facts: dict[str, object] = {"booking_ref": str(metadata.get("booking_ref") or "")}
            if intent == "refund":
                refund = refund_facts(messages[0])
                if refund is None:
                    continue
                facts = refund
            found.append(
                LinkableConversation(
                    external_id=external_id,
                    intent=intent,
                    minutes_ago=(reference - occurred_at).total_seconds() / 60,
                    end_user_id=end_user_id,
                    agent_version=agent_version,
                    **facts,  # type: ignore[arg-type]
                )
            )
    return found


class _TierClock:
    """The beat's timeout job, played at the right moments: before anything that happens at
    `when`, every tier that fell due by then times out, each at its own due time (so the next
    tier's due time is counted from the moment the last one ran out, as the real job does)."""

    def __init__(self) -> None:
        self._due: list[tuple[dt.datetime, int]] = []
        self._seen: set[tuple[dt.datetime, int]] = set()

    def watch(self, action: Action) -> None:
        if action.status == ActionStatus.PENDING and action.due_at is not None:
            entry = (action.due_at, action.pk)
            if entry not in self._seen:
                self._seen.add(entry)
                heapq.heappush(self._due, entry)

    def sweep_until(self, when: dt.datetime) -> None:
        while self._due and self._due[0][0] <= when:
            due, action_id = heapq.heappop(self._due)
            action = Action.objects.only("status", "due_at").get(pk=action_id)
            if action.status == ActionStatus.PENDING and action.due_at is not None and action.due_at <= due:
                escalation_services.actions_timeout_sweep(now=due)
                action.refresh_from_db(fields=["status", "due_at"])
            self.watch(action)
