"""Reads for escalations, tenant first: an id of another organization (or, for an agent key,
another project) is simply not found."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery, Sum

from escalations import policies, sql
from escalations.models import Action, ActionEvent, ActionStatus, LadderVersion, PolicyVersion
from reviewapp import rawsql
from reviewapp import selectors as core_selectors
from reviewapp.errors import NotFound
from reviewapp.models import Conversation, Membership, Organization, Project
from reviewapp.principal import Principal
from reviewapp.tokens import PROJECT_KEY_PREFIX, token_hash

# --- actions ---------------------------------------------------------------------------------

# What the action payload reads besides the action's own columns: one JOIN each, one query.
_ACTION_RELATED = ("project", "ladder", "decided_by_user", "claimed_by")


def action_get(*, organization: Organization, action_id: int, project: Project | None = None) -> Action:
    """One action of `organization` (and of `project`, for an agent key), with what its payload
    shows; NotFound (404) otherwise."""
    qs = Action.objects.filter(organization=organization, pk=action_id)
    if project is not None:
        qs = qs.filter(project=project)
    action = qs.select_related(*_ACTION_RELATED).first()
    if action is None:
        raise NotFound("Action not found.")
    return action


@dataclass(frozen=True)
class ActionFilters:
    project: Project | None = None
    status: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    agent_version: str | None = None
    end_user_id: str | None = None


def action_list(*, organization: Organization, filters: ActionFilters | None = None) -> QuerySet[Action]:
    """Newest first (the cursor paginates on -id: the indexes (organization, -id) and
    (project, -id), or (project, status, -id) with a status)."""
    f = filters or ActionFilters()
    qs = Action.objects.filter(organization=organization)
    if f.project is not None:
        qs = qs.filter(project=f.project)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.action:
        qs = qs.filter(action=f.action)
    if f.since is not None:
        qs = qs.filter(created_at__gte=f.since)
    if f.agent_version:
        qs = qs.filter(agent_version=f.agent_version)
    if f.end_user_id:
        qs = qs.filter(end_user_id=f.end_user_id)
    return qs.select_related(*_ACTION_RELATED)


def action_by_external_id(*, project: Project, external_id: str) -> Action | None:
    return Action.objects.filter(project=project, external_id=external_id).select_related(*_ACTION_RELATED).first()


def action_event_list(*, organization: Organization, action: Action) -> QuerySet[ActionEvent]:
    return ActionEvent.objects.filter(organization=organization, action=action).select_related(
        "actor_user", "actor_api_key"
    )


def conversation_id_for(*, project: Project, external_id: str) -> int | None:
    """The project's conversation with this external_id, if it arrived already."""
    if not external_id:
        return None
    return Conversation.objects.filter(project=project, external_id=external_id).values_list("pk", flat=True).first()


# --- velocity --------------------------------------------------------------------------------

# Earlier actions a velocity window counts: the ones that went, or may still go, ahead.
VELOCITY_STATUSES = (ActionStatus.APPROVED, ActionStatus.PENDING)


def velocity_total(
    *, project_id: int, window: policies.VelocityWindow, facts: policies.ActionFacts, now: dt.datetime
) -> float:
    """The count of earlier actions in `window`, or the sum of their args at `window.path`:
    actions of the project created in the last `window.seconds` up to `now`, approved or
    pending, with the same end user / agent version (per `window.by`), whose name matches
    `window.action` (a glob; None: the same name as this one). This action is not stored yet,
    so it is not among them; the policy adds its own share.

    One indexed query: (project, end_user_id, created_at), (project, agent_version,
    created_at) or (project, created_at). A sum is computed by the database on PostgreSQL
    (jsonb path, numbers only); on SQLite the matching rows' args are read and summed here
    with the policy's own path lookup, because SQLite's JSON paths cannot tell a list index
    from an object key that is a number."""
    if connection.vendor == "postgresql" and (window.of == "count" or sql.jsonb_path_exact(window.path or "")):
        return _velocity_total_pg(project_id=project_id, window=window, facts=facts, now=now)
    qs = Action.objects.filter(
        project_id=project_id,
        created_at__gte=now - dt.timedelta(seconds=window.seconds),
        created_at__lte=now,
        status__in=VELOCITY_STATUSES,
    )
    if window.by == "end_user_id":
        qs = qs.filter(end_user_id=facts.end_user_id)
    elif window.by == "agent_version":
        qs = qs.filter(agent_version=facts.agent_version)
    if window.action is None:
        qs = qs.filter(action=facts.action)
    else:
        pattern = sql.glob_regex(window.action)
        qs = qs.filter(action__regex=pattern) if pattern is not None else qs.filter(action=window.action)
    if window.of == "count":
        return float(qs.count())
    path = window.path or ""
    if connection.vendor == "postgresql" and sql.jsonb_path_exact(path):
        total = qs.aggregate(total=Sum(sql.arg_number_pg(path)))["total"]
        return policies.number_as_float(total or 0)
    # Integers exactly (args may hold ones beyond 64 bits), floats apart: float() of a huge
    # integer raises, and the window's total must never be the reason a request fails.
    integers, floats = 0, 0.0
    for args in qs.values_list("args", flat=True).iterator(chunk_size=2000):
        found, value = policies.arg_lookup(args, path) if isinstance(args, dict) else (False, None)
        if not found or isinstance(value, bool):
            continue
        if isinstance(value, int):
            integers += value
        elif isinstance(value, float):
            floats += value
    return policies.number_as_float(integers) + floats


def _velocity_total_pg(
    *, project_id: int, window: policies.VelocityWindow, facts: policies.ActionFacts, now: dt.datetime
) -> float:
    """velocity_total on PostgreSQL: one prepared statement (sql.VELOCITY), as the ORM query
    below would ask it; it runs on every action request a velocity rule looks at."""
    by = window.by if window.by in ("end_user_id", "agent_version") else "project"
    pattern = sql.glob_regex(window.action) if window.action is not None else None
    params: dict[str, object] = {
        "project": project_id,
        "since": now - dt.timedelta(seconds=window.seconds),
        "now": now,
        "action": pattern if pattern is not None else (window.action if window.action is not None else facts.action),
    }
    if by != "project":
        params["by"] = facts.end_user_id if by == "end_user_id" else facts.agent_version
    if window.of != "count":
        params["path"] = (window.path or "").split(".")
    key = f"{by}/{'regex' if pattern is not None else 'eq'}/{'count' if window.of == 'count' else 'sum'}"
    row = rawsql.fetchone(sql.VELOCITY[key], params)
    total = row[0] if row is not None else None
    return float(total or 0) if window.of == "count" else policies.number_as_float(total or 0)


# --- policy and ladders ----------------------------------------------------------------------


def policy_version_current(*, organization: Organization, project: Project) -> PolicyVersion | None:
    """The project's highest policy version, or None (then everything escalates)."""
    return (
        PolicyVersion.objects.filter(organization=organization, project=project)
        .select_related("created_by")
        .order_by("-version")
        .first()
    )


@dataclass(frozen=True)
class RequestContext:
    """What an action request reads before deciding (sql.REQUEST_CONTEXT): whether its
    external_id is taken, and the policy in force as stored (version None: no policy yet)."""

    external_id_taken: bool
    policy_version: int | None
    rules_json: str | None
    default_ladder: str | None


def action_request_context(*, project_id: int, external_id: str) -> RequestContext:
    row = rawsql.fetchone(sql.REQUEST_CONTEXT, [project_id, external_id, project_id])
    assert row is not None  # the statement always answers one row
    return _request_context(row)


def _request_context(row: Sequence[Any]) -> RequestContext:
    taken, version, rules, default_ladder = row
    if rules is not None and not isinstance(rules, str):  # a backend that decodes JSON itself
        rules = json.dumps(rules)
    return RequestContext(bool(taken), version, rules, default_ladder)


def action_request_principal(*, raw_key: str, external_id: str) -> tuple[Principal, RequestContext] | None:
    """core_selectors.principal_from_token for a project key, with action_request_context of
    its project for `external_id`, in one statement (sql.KEY_AND_REQUEST_CONTEXT): the lean
    path of POST /api/v1/actions. None: not a project key, or not a usable one (the caller
    authenticates the usual way, which refuses it). Nothing is cached: a revoked key is refused
    on its next request, as everywhere."""
    if not raw_key.startswith(PROJECT_KEY_PREFIX):
        return None
    row = rawsql.fetchone(sql.KEY_AND_REQUEST_CONTEXT, [external_id, token_hash(raw_key)])
    if row is None:
        return None
    width = core_selectors.PROJECT_KEY_WIDTH
    return core_selectors.principal_from_key_row(row[:width]), _request_context(row[width:])


def policy_version_list(*, organization: Organization, project: Project) -> QuerySet[PolicyVersion]:
    return PolicyVersion.objects.filter(organization=organization, project=project).order_by("-version")


def ladder_version_latest(*, organization: Organization, project: Project, name: str) -> LadderVersion | None:
    return (
        LadderVersion.objects.filter(organization=organization, project=project, name=name)
        .select_related("created_by")
        .order_by("-version")
        .first()
    )


def ladder_list_latest(*, organization: Organization, project: Project) -> QuerySet[LadderVersion]:
    """The latest version of each of the project's ladders, by name."""
    newest = (
        LadderVersion.objects.filter(project=OuterRef("project"), name=OuterRef("name"))
        .order_by("-version")
        .values("version")[:1]
    )
    return (
        LadderVersion.objects.filter(organization=organization, project=project, version=Subquery(newest))
        .select_related("created_by")
        .order_by("name")
    )


def ladder_version_list(*, organization: Organization, project: Project, name: str) -> list[LadderVersion]:
    """Every version of one ladder, newest first (empty: no such ladder)."""
    return list(
        LadderVersion.objects.filter(organization=organization, project=project, name=name)
        .select_related("created_by", "project")
        .order_by("-version")
    )


def ladder_version_history(
    *, organization: Organization, project: Project, name: str, limit: int
) -> list[LadderVersion]:
    """The newest `limit` versions of one ladder, newest first, with who made them (the ladder
    page; empty: no such ladder in this project)."""
    return list(
        LadderVersion.objects.filter(organization=organization, project=project, name=name)
        .select_related("created_by")
        .order_by("-version")[:limit]
    )


def member_roles(*, organization: Organization, usernames: set[str]) -> dict[str, str]:
    """The role in the organization of each of these usernames that is a member (the ladder page
    warns about a named tier nobody in it can decide)."""
    if not usernames:
        return {}
    return dict(
        Membership.objects.filter(organization=organization, user__username__in=usernames).values_list(
            "user__username", "role"
        )
    )


def ladder_version_list_any_project(*, organization: Organization, name: str) -> list[LadderVersion]:
    """Every version of the ladders of this name in the organization's projects, newest first."""
    return list(
        LadderVersion.objects.filter(organization=organization, name=name)
        .select_related("created_by", "project")
        .order_by("project_id", "-version")
    )


def ladder_names_existing(*, project: Project, names: set[str]) -> set[str]:
    if not names:
        return set()
    return set(LadderVersion.objects.filter(project=project, name__in=names).values_list("name", flat=True))


def actions_decision_facts(action_ids: list[int]) -> list[dict[str, Any]]:
    """The decided actions among `action_ids` as plain rows (one query), for apps that may not
    import this one: registered as reviewapp.hooks' action facts provider."""
    fields = [
        "id",
        "organization_id",
        "project_id",
        "conversation_id",
        "action",
        "confidence",
        "status",
        "decided_by",
        "decided_at",
        "agent_version",
    ]
    rows = Action.objects.filter(pk__in=action_ids).exclude(decided_at=None).values_list(*fields)
    return [dict(zip(fields, row, strict=True)) for row in rows]


# Actions one conversation page lists: an agent asks a handful per conversation; a runaway one
# must not make the page slow.
CONVERSATION_ACTIONS_SHOWN = 50


def conversation_actions(*, organization: Organization, conversation_id: int) -> list[Action]:
    """The actions an agent asked for in a conversation of `organization`, newest first (the
    conversation page's panel, escalations.receivers)."""
    return list(
        Action.objects.filter(organization=organization, conversation_id=conversation_id)
        .select_related("decided_by_user")
        .order_by("-id")[:CONVERSATION_ACTIONS_SHOWN]
    )
