"""An approver's inbox: the pending actions they may decide now, soonest due first.

Who may decide where is in each action's pinned ladder version (JSON tiers), so the inbox is
two queries whatever its size: the ladder versions pending actions of the organization are on,
read once to find the (ladder version, tier) pairs that admit this person (deciding.py, the
same rule the decision service enforces), then the actions at those pairs, minus those the
person already voted on (each person votes once per action).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet

from escalations import deciding, sql
from escalations.models import Action, ActionStatus, LadderVersion, Vote

if TYPE_CHECKING:
    from reviewapp.principal import Principal

INBOX_LIMIT = 200
INBOX_LIMIT_MAX = 500


@dataclass(frozen=True)
class InboxFilters:
    """Narrowing an inbox: action name, tier (as stored on the action, from 0), one risk tag,
    agent version. Exact matches; None means any."""

    action: str | None = None
    tier: int | None = None
    risk_tag: str | None = None
    agent_version: str | None = None


def _eligible_where(principal: Principal) -> Q | None:
    """A filter for the actions whose current tier admits the person, or None when none does."""
    if principal.user is None or not principal.can("actions.decide"):
        return None
    pending_ladders = Action.objects.filter(
        organization=principal.organization, status=ActionStatus.PENDING, ladder__isnull=False
    ).values("ladder_id")
    username, role = principal.user.get_username(), principal.role
    # Ladder versions grouped by the tiers they admit the person at, so the filter has one
    # clause per distinct set of tiers rather than one per ladder version.
    by_tiers: dict[tuple[int, ...], list[int]] = defaultdict(list)
    ladders = LadderVersion.objects.filter(organization=principal.organization, pk__in=pending_ladders)
    for ladder_id, tiers in ladders.values_list("id", "tiers"):
        admitted = tuple(
            index
            for index, tier in enumerate(deciding.tiers_from_stored(tiers))
            if deciding.may_decide(tier, username=username, role=role, can_decide=True)
        )
        if admitted:
            by_tiers[admitted].append(ladder_id)
    if not by_tiers:
        return None
    where = Q()
    for admitted, ladder_ids in by_tiers.items():
        where |= Q(ladder_id__in=ladder_ids, tier__in=admitted)
    return where


def _inbox_queryset(principal: Principal, filters: InboxFilters | None) -> QuerySet[Action] | None:
    where = _eligible_where(principal)
    if where is None:
        return None
    qs = Action.objects.filter(where, organization=principal.organization, status=ActionStatus.PENDING).exclude(
        Exists(Vote.objects.filter(action=OuterRef("pk"), user=principal.user))
    )
    filters = filters or InboxFilters()
    if filters.action is not None:
        qs = qs.filter(action=filters.action)
    if filters.tier is not None:
        qs = qs.filter(tier=filters.tier)
    if filters.agent_version is not None:
        qs = qs.filter(agent_version=filters.agent_version)
    if filters.risk_tag is not None:
        qs = qs.alias(has_tag=sql.risk_tag_present(filters.risk_tag)).filter(has_tag=True)
    return qs


def inbox_for(principal: Principal, filters: InboxFilters | None = None, *, limit: int = INBOX_LIMIT) -> list[Action]:
    """The pending actions `principal` may decide now (not those they already voted on),
    soonest due first, at most `limit` (bounded by INBOX_LIMIT_MAX). Two queries; the project,
    ladder and claimer come loaded."""
    qs = _inbox_queryset(principal, filters)
    if qs is None:
        return []
    limit = max(1, min(limit, INBOX_LIMIT_MAX))
    return list(qs.select_related("project", "ladder", "claimed_by").order_by("due_at", "id")[:limit])


def inbox_count(principal: Principal, filters: InboxFilters | None = None) -> int:
    """How many actions inbox_for would list without its limit (the in-app badge). Two queries."""
    qs = _inbox_queryset(principal, filters)
    return 0 if qs is None else qs.count()
