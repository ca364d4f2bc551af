"""Reads, tenant first. Missing and forbidden look the same: another tenant's id is a 404."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import BooleanField, Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from reviewapp import hooks, rawsql, sql, textsearch
from reviewapp.errors import NotFound, ValidationFailed
from reviewapp.models import (
    ApiKey,
    AuditEvent,
    Conversation,
    ConversationSignal,
    ConversationTag,
    Feedback,
    JudgeScore,
    Membership,
    Organization,
    PersonalToken,
    Project,
    Role,
    SignalKind,
)
from reviewapp.principal import AGENT, Principal
from reviewapp.tokens import PERSONAL_TOKEN_PREFIX, PROJECT_KEY_PREFIX, token_hash

User = get_user_model()


def principal_from_token(*, raw: str) -> Principal | None:
    """Resolve a bearer token in one query (it runs on every API request). Revoked or expired
    credentials, inactive users and lost memberships all resolve to None, so revocation takes
    effect on the next request: nothing here is cached."""
    digest = token_hash(raw)
    if raw.startswith(PROJECT_KEY_PREFIX):
        row = rawsql.fetchone(sql.PROJECT_KEY, [digest])
        return principal_from_key_row(row) if row is not None else None
    if raw.startswith(PERSONAL_TOKEN_PREFIX):
        row = rawsql.fetchone(sql.PERSONAL_TOKEN, [digest])
        if row is None:
            return None
        token, user, organization = rawsql.instances(row[1:], PersonalToken, User, Organization)
        if token.expires_at is not None and token.expires_at <= timezone.now():
            return None
        token.user, token.organization = user, organization
        return Principal(organization=organization, role=row[0], user=user, token=token)
    return None


# The project key lookup, for another app's statement that reads what its hottest request
# needs with the key (escalations/sql.py): one definition of a usable key.
project_key_statement = sql.project_key_statement

# How many columns of a row of sql.project_key_statement are the key's, organization's and
# project's (the rest are what its caller added).
PROJECT_KEY_WIDTH = rawsql.width(ApiKey) + rawsql.width(Organization) + rawsql.width(Project)


def principal_from_key_row(row: Sequence[Any]) -> Principal:
    """The agent principal of a row of sql.project_key_statement (its first PROJECT_KEY_WIDTH
    columns)."""
    key, organization, project = rawsql.instances(row[:PROJECT_KEY_WIDTH], ApiKey, Organization, Project)
    key.organization, key.project = organization, project
    if project.organization_id == organization.pk:  # always, unless edited by hand
        project.organization = organization
    return Principal(organization=organization, role=AGENT, api_key=key, project=project)


def membership_list_for_user(*, user: object) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__slug")


def membership_get(*, user: object, organization: Organization) -> Membership | None:
    return Membership.objects.filter(user=user, organization=organization).first()


def membership_is_last_admin(*, membership: Membership) -> bool:
    """Whether this membership is its organization's only admin (a read: the services refuse
    the change under a lock; forms use this to say so before saving)."""
    admins = Membership.objects.filter(organization_id=membership.organization_id, role=Role.ADMIN)
    return list(admins.values_list("pk", flat=True)[:2]) == [membership.pk]


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user").order_by("user__username")


def membership_get_by_id(*, organization: Organization, membership_id: int) -> Membership:
    membership = membership_list(organization=organization).filter(pk=membership_id).first()
    if membership is None:
        raise NotFound("Membership not found.")
    return membership


def user_find(*, identifier: str) -> AbstractBaseUser | None:
    """The person an admin means by a username, or by an email address (case-insensitive) that
    exactly one account has. Across organizations: adding someone who already has an account
    is what an admin does; what the account holds elsewhere is not shown."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=identifier).first()
    if user is not None or "@" not in identifier:
        return user
    matches = list(user_model.objects.filter(email__iexact=identifier)[:2])
    return matches[0] if len(matches) == 1 else None


def project_list(*, organization: Organization) -> QuerySet[Project]:
    return Project.objects.filter(organization=organization).order_by("slug")


def project_get(*, organization: Organization, project_id: int) -> Project:
    """One of the organization's projects; another organization's (or none) is a 404."""
    project = Project.objects.filter(organization=organization, pk=project_id).select_related("organization").first()
    if project is None:
        raise NotFound("Project not found.")
    return project


def project_get_by_slug(*, organization: Organization, slug: str) -> Project | None:
    return Project.objects.filter(organization=organization, slug=slug).first()


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(organization=organization).select_related("project", "created_by")


def api_key_get(*, organization: Organization, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(organization=organization, pk=key_id).select_related("project").first()
    if key is None:
        raise NotFound("API key not found.")
    return key


def personal_token_list_for_user(*, user: object) -> QuerySet[PersonalToken]:
    """A person's own tokens, in every organization they were issued for."""
    return (
        PersonalToken.objects.filter(user=user)
        .select_related("user__credentials", "organization")
        .order_by("-created_at", "-id")
    )


def personal_token_list(*, organization: Organization, user: object | None = None) -> QuerySet[PersonalToken]:
    qs = PersonalToken.objects.filter(organization=organization)
    if user is not None:
        qs = qs.filter(user=user)
    return qs.select_related("user__credentials", "organization").order_by("-created_at", "-id")


def personal_token_get(*, organization: Organization, token_id: int, user: object | None = None) -> PersonalToken:
    """One of the organization's tokens (only `user`'s, when given); anything else is a 404."""
    token = personal_token_list(organization=organization, user=user).filter(pk=token_id).first()
    if token is None:
        raise NotFound("Token not found.")
    return token


def personal_token_get_for_user(*, user: object, token_id: int) -> PersonalToken:
    token = personal_token_list_for_user(user=user).filter(pk=token_id).first()
    if token is None:
        raise NotFound("Token not found.")
    return token


@dataclass(frozen=True)
class ConversationFilters:
    project: Project | None = None
    agent_version: str | None = None
    tag: str | None = None
    occurred_after: dt.datetime | None = None
    occurred_before: dt.datetime | None = None
    feedback_rating: str | None = None
    user_rephrased: bool | None = None
    external_id: str | None = None
    judge: str | None = None
    criterion: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    signal: str | None = None
    signal_source: str | None = None
    # Full text (reviewapp.textsearch): words and "quoted phrases", all of which must appear.
    q: str | None = None
    asked_for_human: bool | None = None
    labeled: bool | None = None
    queued: bool | None = None


def _conversation_text_search(qs: QuerySet[Conversation], q: str) -> QuerySet[Conversation]:
    clauses = textsearch.parse(q)
    if not clauses:
        # Nothing to look for (only punctuation): no conversation says it.
        return qs.none()
    condition = sql.conversation_search_condition(connection.vendor, len(clauses))
    if condition is None:
        raise ValidationFailed("Search needs PostgreSQL or SQLite.", errors={"q": ["Not available on this database."]})
    # The SQL is reviewapp.sql's own text; the user's words are bound parameters.
    if connection.vendor == "sqlite":
        return qs.filter(pk__in=RawSQL(condition, [textsearch.fts5_match(clauses)]))  # noqa: S611
    return qs.filter(RawSQL(condition, clauses, output_field=BooleanField()))  # noqa: S611


def _conversation_condition(qs: QuerySet[Conversation], name: str, wanted: bool) -> QuerySet[Conversation]:
    """Keep conversations for which another app's `name` condition holds (or does not):
    labeled, in a queue. With no app providing it, nothing holds."""
    conditions = [Exists(related) for related in hooks.conversation_conditions(name)]
    if not conditions:
        return qs if not wanted else qs.none()
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined | condition
    return qs.filter(combined if wanted else ~combined)


def conversation_list(
    *, organization: Organization, filters: ConversationFilters | None = None
) -> QuerySet[Conversation]:
    f = filters or ConversationFilters()
    qs = Conversation.objects.filter(organization=organization)
    if f.project is not None:
        qs = qs.filter(project=f.project)
    if f.agent_version:
        qs = qs.filter(agent_version=f.agent_version)
    if f.external_id:
        qs = qs.filter(external_id=f.external_id)
    if f.tag:
        qs = qs.filter(Exists(ConversationTag.objects.filter(conversation=OuterRef("pk"), tag=f.tag)))
    if f.occurred_after:
        qs = qs.filter(occurred_at__gte=f.occurred_after)
    if f.occurred_before:
        qs = qs.filter(occurred_at__lt=f.occurred_before)
    if f.feedback_rating:
        qs = qs.filter(feedback_rating=f.feedback_rating)
    if f.user_rephrased is not None:
        qs = qs.filter(user_rephrased=f.user_rephrased)
    if f.signal or f.signal_source:
        # Through the (conversation, kind, source) unique index, one probe per conversation.
        signals = ConversationSignal.objects.filter(conversation=OuterRef("pk"))
        if f.signal:
            signals = signals.filter(kind=f.signal)
        if f.signal_source:
            signals = signals.filter(source=f.signal_source)
        qs = qs.filter(Exists(signals))
    if f.asked_for_human is not None:
        # Sent by the agent (feedback's escalated_by_user is stored as an agent signal) or
        # derived from the transcript.
        asked = Exists(ConversationSignal.objects.filter(conversation=OuterRef("pk"), kind=SignalKind.ASKED_FOR_HUMAN))
        qs = qs.filter(asked if f.asked_for_human else ~asked)
    if f.labeled is not None:
        qs = _conversation_condition(qs, "labeled", f.labeled)
    if f.queued is not None:
        qs = _conversation_condition(qs, "queued", f.queued)
    if f.q:
        qs = _conversation_text_search(qs, f.q)
    if f.judge or f.criterion or f.score_min is not None or f.score_max is not None:
        scores = JudgeScore.objects.filter(conversation=OuterRef("pk"))
        if f.judge:
            scores = scores.filter(judge=f.judge)
        if f.criterion:
            scores = scores.filter(criterion=f.criterion)
        if f.score_min is not None:
            scores = scores.filter(score__gte=f.score_min)
        if f.score_max is not None:
            scores = scores.filter(score__lte=f.score_max)
        qs = qs.filter(Exists(scores))
    return qs.select_related("project").prefetch_related(
        Prefetch("judge_scores", queryset=JudgeScore.objects.order_by("id"))
    )


def conversation_get(
    *, organization: Organization, conversation_id: int, project: Project | None = None
) -> Conversation:
    qs = Conversation.objects.filter(organization=organization, pk=conversation_id)
    if project is not None:
        qs = qs.filter(project=project)
    conversation = (
        qs.select_related("project")
        .prefetch_related(
            Prefetch("judge_scores", queryset=JudgeScore.objects.order_by("id")),
            Prefetch("feedback", queryset=Feedback.objects.order_by("id")),
            Prefetch("signals", queryset=ConversationSignal.objects.order_by("turn", "kind", "source")),
        )
        .first()
    )
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


# Conversations per signals query: the calibration page asks for a page of flagged
# conversations at a time; SQLite's bound-parameter limit is far above it.
_SIGNAL_IDS_CHUNK = 500


def signals_for_conversations(*, project: Project, conversation_ids: list[int]) -> dict[int, list[ConversationSignal]]:
    """The signals (agent-sent and derived) of these conversations of `project`, by
    conversation id, each list in turn order; ids of another project find nothing. One query
    per 500 ids."""
    found: dict[int, list[ConversationSignal]] = {}
    ids = sorted(set(conversation_ids))
    for start in range(0, len(ids), _SIGNAL_IDS_CHUNK):
        rows = ConversationSignal.objects.filter(
            project=project, conversation_id__in=ids[start : start + _SIGNAL_IDS_CHUNK]
        ).order_by("conversation_id", "turn", "kind", "source")
        for signal in rows:
            found.setdefault(signal.conversation_id, []).append(signal)
    return found


def organization_stats(*, organization: Organization) -> dict[str, int]:
    # One pass over the organization's conversations for all three figures (the home page
    # asks on every load).
    row = Conversation.objects.filter(organization=organization).aggregate(
        conversations=Count("pk"),
        thumbs_down=Count("pk", filter=Q(feedback_rating="down")),
        rephrased=Count("pk", filter=Q(user_rephrased=True)),
    )
    return {
        **{name: int(value or 0) for name, value in row.items()},
        "projects": Project.objects.filter(organization=organization).count(),
    }


def audit_event_list(*, organization: Organization, limit: int = 50) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization).select_related("actor_user", "actor_api_key")[:limit]


def conversation_feedback_and_scores(
    *, conversation: Conversation, judge_scores: bool = True
) -> tuple[list[Feedback], list[JudgeScore]]:
    """A conversation's feedback and (when asked for) judge scores, oldest first, through
    hand-written queries: every claim sends them with the item."""
    feedback = [rawsql.instance(Feedback, r) for r in rawsql.fetchall(sql.CONVERSATION_FEEDBACK, [conversation.pk])]
    scores: list[JudgeScore] = []
    if judge_scores:
        scores = [
            rawsql.instance(JudgeScore, r) for r in rawsql.fetchall(sql.CONVERSATION_JUDGE_SCORES, [conversation.pk])
        ]
    return feedback, scores
