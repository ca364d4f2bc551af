"""Reads for an action's page, tenant first: the action with everything its page shows joined
in one query, its votes, the newest part of its trail, and the same end user's earlier
actions. Each is one query, bounded whatever the action's history."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from escalations.models import Action, ActionEvent, Vote
from reviewapp import validation
from reviewapp.errors import NotFound
from reviewapp.models import Organization

# The trail an action's page shows: its newest events. A decision's trail is a dozen events;
# webhook retries add a few each, so this only cuts a pathological history.
TRAIL_MAX = 200
# Earlier actions of the same end user shown beside a decision: the recent pattern, not a report.
EARLIER_MAX = 20
# Votes are one per person (a unique constraint); a tier needs at most five approvals.
VOTES_MAX = 100


def action_for_page(*, organization: Organization, action_id: int) -> Action:
    """One action of `organization` with its project, ladder version, decider, claimer and
    linked conversation (the transcript) loaded; NotFound otherwise, for another
    organization's id too."""
    if not validation.is_id(action_id):
        raise NotFound("No such action.")
    action = (
        Action.objects.filter(organization=organization, pk=action_id)
        .select_related("project", "ladder", "decided_by_user", "claimed_by", "conversation")
        .first()
    )
    if action is None:
        raise NotFound("No such action.")
    return action


def action_votes(*, action: Action) -> list[Vote]:
    """The action's votes, oldest first, with who cast them."""
    return list(
        Vote.objects.filter(organization_id=action.organization_id, action=action)
        .select_related("user")
        .order_by("id")[:VOTES_MAX]
    )


@dataclass(frozen=True)
class Trail:
    events: list[ActionEvent]
    # Older events not shown (the page says so rather than pretending the trail starts here).
    truncated: bool


def action_trail(*, action: Action, limit: int = TRAIL_MAX) -> Trail:
    """The newest `limit` events of the action's trail, oldest first, with their actors."""
    newest = list(
        ActionEvent.objects.filter(organization_id=action.organization_id, action=action)
        .select_related("actor_user", "actor_api_key")
        .order_by("-id")[: limit + 1]
    )
    return Trail(events=newest[:limit][::-1], truncated=len(newest) > limit)


def actions_earlier_for_end_user(*, action: Action, limit: int = EARLIER_MAX) -> list[Action]:
    """The same end user's actions in the same project created before this one, newest first,
    with who decided them: over the index (project, end_user_id, created_at). None for an
    action without an end user (anonymous actions are not one customer's history)."""
    if not action.end_user_id:
        return []
    before = Q(created_at__lt=action.created_at) | Q(created_at=action.created_at, pk__lt=action.pk)
    return list(
        Action.objects.filter(
            organization_id=action.organization_id, project_id=action.project_id, end_user_id=action.end_user_id
        )
        .filter(before)
        .select_related("decided_by_user")
        .order_by("-created_at", "-id")[:limit]
    )
