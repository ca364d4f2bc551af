"""An approver's inbox: the pending actions they may decide now, soonest due first.

Who may decide where is in each action's pinned ladder version (JSON tiers). One query counts
the organization's pending actions the person has not voted on at their current tier (each
person votes once per tier) per (ladder version, tier), each group with its version's tiers; deciding.py (the same
rule the decision service enforces) says which of those pairs admit the person. That query is
the whole of the count (the badge every page shows), and its pairs filter the listing: the
inbox is two queries whatever its size. (The ladder's tiers are joined to the groups in
hand-written SQL, escalations/sql.py: the ORM would read them once per action.)
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from escalations import deciding, sql
from escalations.models import Action, ActionStatus, Vote

if TYPE_CHECKING:
    from reviewapp.principal import Principal

INBOX_LIMIT = 200
INBOX_LIMIT_MAX = 500
# The action names a filter offers, most waiting first: enough for any real agent, few enough
# that an agent sending a new name per request cannot make the inbox page large.
ACTION_FACETS_MAX = 50


@dataclass(frozen=True)
class InboxFilters:
    """Narrowing an inbox: action name, tier (as stored on the action, from 0), one risk tag,
    agent version. Exact matches; None means any."""

    action: str | None = None
    tier: int | None = None
    risk_tag: str | None = None
    agent_version: str | None = None

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.action, self.tier, self.risk_tag, self.agent_version))


@dataclass(frozen=True)
class InboxSummary:
    """What one query says about a person's inbox: how many actions wait for them, how many at
    each tier index, and the (ladder version, tier) pairs that admit them (`where`, None when
    none does)."""

    total: int = 0
    by_tier: dict[int, int] = field(default_factory=dict)
    where: Q | None = None


def _pending(principal: Principal, filters: InboxFilters | None) -> QuerySet[Action]:
    """The organization's pending actions on a ladder that the person has not voted on at the
    action's current tier (a vote at an earlier tier does not bar a later one), narrowed by
    `filters`."""
    qs = Action.objects.filter(
        organization=principal.organization, status=ActionStatus.PENDING, ladder__isnull=False
    ).exclude(Exists(Vote.objects.filter(action=OuterRef("pk"), user=principal.user, tier=OuterRef("tier"))))
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


def inbox_summary(principal: Principal, filters: InboxFilters | None = None) -> InboxSummary:
    """Count the actions `principal` may decide now, per tier, and find the pairs that admit
    them. One query: the groups are (ladder version, tier) pairs, few whatever the number of
    actions, each joined to its version's tiers."""
    if principal.user is None or not principal.can("actions.decide"):
        return InboxSummary()
    grouped = _pending(principal, filters).order_by().values("ladder_id", "tier").annotate(n=Count("pk"))
    groups = sql.groups_with_ladder_tiers(grouped)
    username, role = principal.user.get_username(), principal.role
    admitted_of: dict[int, frozenset[int]] = {}
    # Ladder versions grouped by the tiers that admit the person and hold actions, so the
    # filter has one clause per distinct set of tiers rather than one per ladder version.
    by_tiers: dict[frozenset[int], list[int]] = defaultdict(list)
    tier_sets: dict[int, set[int]] = defaultdict(set)
    total, by_tier = 0, defaultdict(int)
    for ladder_id, tier, n, tiers in groups:
        if ladder_id not in admitted_of:
            admitted_of[ladder_id] = frozenset(_admitting(tiers, username=username, role=role))
        if tier in admitted_of[ladder_id]:
            total += n
            by_tier[tier] += n
            tier_sets[ladder_id].add(tier)
    for ladder_id, admitted in tier_sets.items():
        by_tiers[frozenset(admitted)].append(ladder_id)
    if not by_tiers:
        return InboxSummary()
    where = Q()
    for admitted, ladder_ids in by_tiers.items():
        where |= Q(ladder_id__in=sorted(ladder_ids), tier__in=sorted(admitted))
    return InboxSummary(total=total, by_tier=dict(sorted(by_tier.items())), where=where)


def _admitting(tiers: Any, *, username: str, role: str) -> list[int]:
    if isinstance(tiers, str | bytes):  # JSON columns read outside the ORM arrive as text
        tiers = json.loads(tiers)
    return [
        index
        for index, tier in enumerate(deciding.tiers_from_stored(tiers))
        if deciding.may_decide(tier, username=username, role=role, can_decide=True)
    ]


def _inbox_queryset(
    principal: Principal, filters: InboxFilters | None, summary: InboxSummary | None
) -> QuerySet[Action] | None:
    summary = summary if summary is not None else inbox_summary(principal)
    if summary.where is None:
        return None
    return _pending(principal, filters).filter(summary.where)


def inbox_for(
    principal: Principal,
    filters: InboxFilters | None = None,
    *,
    limit: int = INBOX_LIMIT,
    summary: InboxSummary | None = None,
) -> list[Action]:
    """The pending actions `principal` may decide now (not those they voted on at this tier),
    soonest due first, at most `limit` (bounded by INBOX_LIMIT_MAX). Two queries, or one when
    the caller has the person's `inbox_summary` already; the project, ladder and claimer come
    loaded."""
    qs = _inbox_queryset(principal, filters, summary)
    if qs is None:
        return []
    limit = max(1, min(limit, INBOX_LIMIT_MAX))
    return list(qs.select_related("project", "ladder", "claimed_by").order_by("due_at", "id")[:limit])


def inbox_count(principal: Principal, filters: InboxFilters | None = None) -> int:
    """How many actions inbox_for would list without its limit (the in-app badge). One query."""
    return inbox_summary(principal, filters).total


def inbox_action_counts(
    principal: Principal, *, summary: InboxSummary, limit: int = ACTION_FACETS_MAX
) -> list[tuple[str, int]]:
    """The action names in the person's inbox with how many of each wait, most first (the
    inbox's action filter). One query, given the person's summary."""
    qs = _inbox_queryset(principal, None, summary)
    if qs is None:
        return []
    rows = qs.order_by().values("action").annotate(n=Count("pk")).order_by("-n", "action")[:limit]
    return [(row["action"], row["n"]) for row in rows]


def inbox_neighbours(
    principal: Principal,
    *,
    action: Action,
    filters: InboxFilters | None = None,
    summary: InboxSummary | None = None,
) -> tuple[int | None, int | None]:
    """The ids of the actions before and after `action` in the person's inbox order (due time,
    then id), for moving through the inbox from an action's page. The action itself need not
    be in the inbox any more (decided, or voted on): its due time places it. Two queries given
    the summary."""
    qs = _inbox_queryset(principal, filters, summary)
    if qs is None:
        return None, None
    qs = qs.exclude(pk=action.pk)
    if action.due_at is None:  # decided by the policy: never on a ladder; the inbox starts over
        return None, qs.order_by("due_at", "id").values_list("pk", flat=True).first()
    due, pk = action.due_at, action.pk
    after = Q(due_at__gt=due) | Q(due_at=due, pk__gt=pk)
    before = Q(due_at__lt=due) | Q(due_at=due, pk__lt=pk)
    next_id = qs.filter(after).order_by("due_at", "id").values_list("pk", flat=True).first()
    previous_id = qs.filter(before).order_by("-due_at", "-id").values_list("pk", flat=True).first()
    return previous_id, next_id
