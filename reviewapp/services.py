"""Writes for the core: tenants, people, credentials, conversation ingestion, audit events.

Every function here is keyword-only and owns its transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from reviewapp import bulk, derived_signals, lock_objects
from reviewapp.errors import Conflict, NotFound, ValidationFailed
from reviewapp.ingest_schemas import (
    ConversationIn,
    FeedbackIn,
    JudgeScoreForConversationIn,
    JudgeScoreIn,
)
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
    SignalSource,
    UserCredentials,
    zone_validate,
)
from reviewapp.principal import Principal
from reviewapp.tokens import (
    PERSONAL_TOKEN_PREFIX,
    PROJECT_KEY_PREFIX,
    token_display_prefix,
    token_generate,
    token_hash,
)

logger = logging.getLogger(__name__)
User = get_user_model()

# SQLite's default limit on bound parameters is 32,766; 500 ids per IN keeps every backend safe.
_IN_CHUNK = 500
# Two requests racing on the same new external_id: the loser's insert hits the unique index and
# is retried; the second pass sees the winner's row as a duplicate. More than a few retries
# would mean something other than a race is wrong.
_INGEST_ATTEMPTS = 3


def audit_event_record(
    *,
    organization: Organization,
    kind: str,
    principal: Principal | None = None,
    user: AbstractBaseUser | None = None,
    subject: Any = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    actor_user = user or (principal.user if principal else None)
    return AuditEvent.objects.create(
        organization=organization,
        kind=kind,
        actor_user=actor_user if getattr(actor_user, "pk", None) else None,
        actor_api_key=principal.api_key if principal else None,
        subject_type=subject._meta.label_lower if subject is not None else "",
        subject_id=str(subject.pk) if subject is not None else "",
        data=data or {},
    )


# --- tenants and people -------------------------------------------------------------------


def organization_create(*, slug: str, name: str = "") -> Organization:
    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    return organization


def project_create(
    *, organization: Organization, slug: str, name: str = "", description: str = "", time_zone: str = "UTC"
) -> Project:
    """Create the project if missing. `time_zone` (an IANA name) is the day its daily sampling
    budgets count in."""
    _time_zone_check(time_zone)
    project, _ = Project.objects.get_or_create(
        organization=organization,
        slug=slug,
        defaults={"name": name or slug, "description": description, "timezone": time_zone},
    )
    return project


def project_create_new(*, organization: Organization, slug: str, name: str = "", time_zone: str = "UTC") -> Project:
    """Create the project, or raise ValidationFailed naming `slug` if the organization has one
    by that slug: also when another request created it a moment ago and has not committed yet
    (its insert holds the unique index; this one waits for it, then fails here instead of
    taking over the other's project as project_create would)."""
    _time_zone_check(time_zone)
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction stays usable
            return Project.objects.create(organization=organization, slug=slug, name=name or slug, timezone=time_zone)
    except IntegrityError as exc:
        raise ValidationFailed("Project exists.", errors={"slug": [f"A project '{slug}' exists already."]}) from exc


def project_timezone_set(*, project: Project, time_zone: str, actor: AbstractBaseUser | None = None) -> Project:
    """Move the project's budget day to another time zone; today's counters keep what they
    admitted under their own day."""
    _time_zone_check(time_zone)
    with transaction.atomic():
        # The stored zone, not the caller's instance: a form may have set the new one on it already.
        previous = Project.objects.select_for_update().filter(pk=project.pk).values_list("timezone", flat=True).first()
        changed = Project.objects.filter(pk=project.pk).exclude(timezone=time_zone).update(timezone=time_zone)
        if changed:
            audit_event_record(
                organization=project.organization,
                kind="project.timezone_set",
                user=actor,
                subject=project,
                data={"from": previous, "to": time_zone},
            )
    project.timezone = time_zone
    return project


def project_frustration_terms_set(*, project: Project, terms: Any, actor: AbstractBaseUser | None = None) -> Project:
    """Replace the project's own frustration terms (added to derived_signals' defaults for the
    conversations ingested from now on). At most MAX_TERMS terms of MAX_TERM_CHARS characters,
    each with a letter or digit in it; stored normalised (lower case, single spaces, no
    repeats). A 400 names `frustration_terms` or `frustration_terms[i]`."""
    field = "frustration_terms"
    if not isinstance(terms, list):
        raise ValidationFailed("Send a list of terms.", errors={field: ["Expected a list of strings."]})
    if len(terms) > derived_signals.MAX_TERMS:
        raise ValidationFailed(
            "Too many terms.", errors={field: [f"At most {derived_signals.MAX_TERMS}; got {len(terms)}."]}
        )
    errors: dict[str, list[str]] = {}
    for index, term in enumerate(terms):
        if not isinstance(term, str):
            errors[f"{field}[{index}]"] = ["Expected a string."]
        elif len(term) > derived_signals.MAX_TERM_CHARS:
            errors[f"{field}[{index}]"] = [f"At most {derived_signals.MAX_TERM_CHARS} characters."]
        elif "\x00" in term or not any(c.isalnum() for c in term):
            errors[f"{field}[{index}]"] = ["A term needs a letter or digit (and no NUL)."]
    if errors:
        raise ValidationFailed("Invalid frustration terms.", errors=errors)
    normalised = derived_signals.terms_normalise(terms)
    with transaction.atomic():
        previous = (
            Project.objects.select_for_update()
            .filter(pk=project.pk)
            .values_list("frustration_terms", flat=True)
            .first()
        )
        if previous != normalised:
            Project.objects.filter(pk=project.pk).update(frustration_terms=normalised)
            audit_event_record(
                organization=project.organization,
                kind="project.frustration_terms_set",
                user=actor,
                subject=project,
                data={"from": previous, "to": normalised},
            )
    project.frustration_terms = normalised
    return project


def _time_zone_check(time_zone: str) -> None:
    try:
        zone_validate(time_zone)
    except DjangoValidationError as exc:
        raise ValidationFailed("Unknown time zone.", errors={"timezone": list(exc.messages)}) from exc


def membership_add(
    *,
    organization: Organization,
    username: str,
    role: str,
    password: str | None = None,
    email: str = "",
    actor: AbstractBaseUser | None = None,
) -> Membership:
    """Create the user if missing, then give them `role` in `organization` (changing it if they
    were already a member). A given password is set; an existing password is otherwise kept."""
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", errors={"role": [f"Choose one of: {', '.join(Role.values)}."]})
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if not created and role != Role.ADMIN:
            existing = Membership.objects.filter(user=user, organization=organization).first()
            if existing is not None:
                _last_admin_refuse(membership=existing, field="role", leaving="demote")
        if password:
            user_password_set(user=user, password=password)
        elif created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        membership, created_membership = Membership.objects.get_or_create(
            user=user, organization=organization, defaults={"role": role}
        )
        changed = created_membership or membership.role != role
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        # Only a real change is audited: re-running a provisioning script adds nothing.
        if changed:
            audit_event_record(
                organization=organization,
                kind="membership.set",
                user=actor,
                subject=membership,
                data={"username": username, "role": role},
            )
    return membership


def membership_role_set(*, membership: Membership, role: str, actor: AbstractBaseUser | None = None) -> Membership:
    """Change a member's role. The role is read from the membership on every request, so the
    change applies at once to sessions and personal tokens alike."""
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", errors={"role": [f"Choose one of: {', '.join(Role.values)}."]})
    with transaction.atomic():
        if role != Role.ADMIN:
            _last_admin_refuse(membership=membership, field="role", leaving="demote")
        previous = Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
        if previous is None:
            raise NotFound("No such membership.")
        # Compare-and-set: a concurrent change to the same role records one event.
        changed = Membership.objects.filter(pk=membership.pk).exclude(role=role).update(role=role)
        membership.role = role
        if changed:
            audit_event_record(
                organization=membership.organization,
                kind="membership.set",
                user=actor,
                subject=membership,
                data={"username": membership.user.get_username(), "role": role, "previous_role": previous},
            )
    return membership


def membership_remove(*, membership: Membership, actor: AbstractBaseUser | None = None) -> None:
    """Take a person out of an organization and revoke their tokens for it. (Tokens older than a
    membership never work anyway, see selectors.principal_from_token; revoking says so in lists.)"""
    with transaction.atomic():
        _last_admin_refuse(membership=membership, field="membership", leaving="remove")
        now = timezone.now()
        revoked = PersonalToken.objects.filter(
            user_id=membership.user_id, organization_id=membership.organization_id, revoked_at__isnull=True
        ).update(revoked_at=now)
        deleted, _ = Membership.objects.filter(pk=membership.pk).delete()
        if deleted:
            audit_event_record(
                organization=membership.organization,
                kind="membership.removed",
                user=actor,
                subject=membership,
                data={
                    "username": membership.user.get_username(),
                    "user_id": membership.user_id,
                    "role": membership.role,
                    "tokens_revoked": revoked,
                },
            )


def _last_admin_refuse(*, membership: Membership, field: str, leaving: str) -> None:
    """Refuse to take the admin role from the organization's last admin: nobody would be left
    to manage its people, keys and tokens but a superuser. Call inside the change's
    transaction: the organization's admin rows stay locked until it ends."""
    admins = lock_objects.organization_admins_lock(organization_id=membership.organization_id)
    if admins == [membership.pk]:
        raise ValidationFailed(
            "An organization must keep at least one admin.",
            errors={
                field: [
                    f"Cannot {leaving} {membership.user.get_username()}: they are the organization's last admin."
                    " Make someone else admin first."
                ]
            },
        )


def user_password_set(*, user: AbstractBaseUser, password: str) -> None:
    """Set a password and revoke the user's personal tokens. Any other way of setting a password
    ends the tokens as well (the save bumps the credentials epoch); this one also marks them."""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        PersonalToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def user_credentials_epoch_bump(*, user: AbstractBaseUser) -> int:
    """The user's password really changed: move their credentials epoch on, which ends every
    personal token issued before (a token works only under the epoch it was issued in).
    Returns the new epoch.

    Called by Django's `password_changed` (through `reviewapp.passwords.CredentialsEpochHook`):
    that is every `set_password` followed by `save`, which is what the password forms, the
    admin, `changepassword` and scripts do, and never the hash upgrade Django makes at sign-in
    (it clears the raw password before saving, precisely so that it is not reported)."""
    with transaction.atomic():
        # An increment, never a read-modify-write: two changes at once move it twice.
        changed = UserCredentials.objects.filter(user_id=user.pk).update(
            epoch=F("epoch") + 1, changed_at=timezone.now()
        )
        if not changed:
            _, created = UserCredentials.objects.get_or_create(user_id=user.pk, defaults={"epoch": 1})
            if not created:  # another change created the row first
                UserCredentials.objects.filter(user_id=user.pk).update(epoch=F("epoch") + 1, changed_at=timezone.now())
        return UserCredentials.objects.get(user_id=user.pk).epoch


def _credentials_epoch_current(user: AbstractBaseUser) -> int:
    # Read from the database, never from a cached relation: a token must not be issued under
    # an epoch that a password change has already left behind.
    return UserCredentials.objects.filter(user_id=user.pk).values_list("epoch", flat=True).first() or 0


# --- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential:
    """A freshly created key or token with its raw value: the only time it is ever visible."""

    raw: str
    record: ApiKey | PersonalToken


def api_key_create(*, project: Project, name: str, created_by: AbstractBaseUser | None = None) -> IssuedCredential:
    raw = token_generate(PROJECT_KEY_PREFIX)
    with transaction.atomic():
        key = ApiKey.objects.create(
            organization_id=project.organization_id,
            project=project,
            name=name,
            prefix=token_display_prefix(raw),
            token_hash=token_hash(raw),
            created_by=created_by if getattr(created_by, "pk", None) else None,
        )
        audit_event_record(
            organization=project.organization,
            kind="api_key.created",
            user=created_by,
            subject=key,
            data={"project": project.slug, "name": name, "prefix": key.prefix},
        )
    return IssuedCredential(raw=raw, record=key)


def api_key_revoke(*, key: ApiKey, actor: AbstractBaseUser | None = None) -> ApiKey:
    with transaction.atomic():
        # Compare-and-set: revoking twice is harmless and records one event.
        changed = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db(fields=["revoked_at"])
        if changed:
            audit_event_record(
                organization=key.organization,
                kind="api_key.revoked",
                user=actor,
                subject=key,
                data={"prefix": key.prefix},
            )
    return key


def personal_token_create(*, user: AbstractBaseUser, organization: Organization, name: str = "") -> IssuedCredential:
    raw = token_generate(PERSONAL_TOKEN_PREFIX)
    ttl_days = getattr(settings, "PERSONAL_TOKEN_TTL_DAYS", 90)
    token = PersonalToken.objects.create(
        user=user,
        organization=organization,
        name=name,
        prefix=token_display_prefix(raw),
        token_hash=token_hash(raw),
        expires_at=timezone.now() + dt.timedelta(days=ttl_days) if ttl_days else None,
        credentials_epoch=_credentials_epoch_current(user),
    )
    return IssuedCredential(raw=raw, record=token)


def personal_token_revoke(*, token: PersonalToken, actor: AbstractBaseUser | None = None) -> PersonalToken:
    """Revoke one token (its owner's, or an organization admin's doing). Compare-and-set:
    revoking twice is harmless and records one event."""
    with transaction.atomic():
        changed = PersonalToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db(fields=["revoked_at"])
        if changed:
            audit_event_record(
                organization=token.organization,
                kind="personal_token.revoked",
                user=actor,
                subject=token,
                data={"prefix": token.prefix, "owner_id": token.user_id},
            )
    return token


def credential_touch(*, principal: Principal) -> None:
    """Record use at most once per API_KEY_TOUCH_SECONDS per credential: the conditional UPDATE
    writes nothing when the stamp is fresh, so busy agents do not serialise on their key row."""
    now = timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.API_KEY_TOUCH_SECONDS)
    record = principal.api_key or principal.token
    if record is None:
        return
    if record.last_used_at is not None and record.last_used_at > stale_before:
        return
    type(record).objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale_before), pk=record.pk).update(
        last_used_at=now
    )
    record.last_used_at = now


# --- ingestion --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    external_id: str
    id: int
    status: str  # "created" | "duplicate"


def _chunks(values: list[Any], size: int = _IN_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _feedback_fingerprint(feedback: FeedbackIn) -> str:
    return hashlib.sha256(orjson.dumps(feedback.model_dump(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _judge_score_row(conversation_id: int, score: JudgeScoreIn, now: dt.datetime) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "judge": score.judge,
        "judge_version": score.judge_version,
        "criterion": score.criterion,
        "score": score.score,
        "label": score.label,
        "confidence": score.confidence,
        "reasoning": score.reasoning,
        "created_at": now,
    }


# Feedback flags an agent sends, and the signal kind each one is: a kind the agent sent is
# recorded with source "agent" and not derived again from the transcript.
_AGENT_SIGNALS = (
    (SignalKind.REPHRASED.value, "user_rephrased"),
    (SignalKind.ASKED_FOR_HUMAN.value, "escalated_by_user"),
)


def _signal_row(
    project: Project, conversation_id: int, kind: str, now: dt.datetime, finding: derived_signals.Finding | None = None
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "project_id": project.pk,
        "kind": kind,
        "source": SignalSource.DERIVED.value if finding else SignalSource.AGENT.value,
        "turn": finding.turn if finding else None,
        "evidence": finding.evidence if finding else "",
        "created_at": now,
    }


def _derived_signal_rows(
    project: Project, new_items: list[ConversationIn], created_ids: list[int], now: dt.datetime
) -> list[dict[str, Any]]:
    """Signals derived from the transcripts of new conversations (derived_signals.py: pure, its
    work per conversation capped), skipping the kinds the agent sent itself. Only new
    conversations: a duplicate's stored messages do not change."""
    terms = tuple(project.frustration_terms or ())
    rows: list[dict[str, Any]] = []
    for item, conversation_id in zip(new_items, created_ids, strict=True):
        sent = {kind for kind, flag in _AGENT_SIGNALS if item.feedback is not None and getattr(item.feedback, flag)}
        for finding in derived_signals.derive(item.messages_json(), frustration_terms=terms, skip=sent):
            rows.append(_signal_row(project, conversation_id, finding.kind, now, finding))
    return rows


def conversations_ingest(
    *, project: Project, conversations: list[ConversationIn], principal: Principal | None = None
) -> list[IngestResult]:
    """Store a batch all-or-nothing and answer one result per input, in input order.

    An external_id already stored (or repeated inside the batch) is a duplicate: no second row,
    but judge scores and feedback it carries are added. Queries are per batch, never per row:
    one duplicate check per 500 ids, one bulk insert per table.
    """
    for attempt in range(_INGEST_ATTEMPTS):
        try:
            with transaction.atomic():
                results, created_ids, changed_ids = _conversations_ingest_once(
                    project=project, conversations=conversations, principal=principal
                )
                if created_ids:
                    _on_conversations_created(project=project, conversation_ids=created_ids)
                if changed_ids:
                    _on_conversations_changed(project=project, conversation_ids=changed_ids)
                return results
        except IntegrityError:
            if attempt == _INGEST_ATTEMPTS - 1:
                raise
            logger.info("ingest race on project %s; retrying as duplicates", project.pk)
    raise AssertionError("unreachable")


def _on_conversations_created(*, project: Project, conversation_ids: list[int]) -> None:
    """Hand new conversations to whoever consumes them (sampling), after commit."""
    from reviewapp import hooks

    hooks.conversations_created(project=project, conversation_ids=conversation_ids)


def _on_conversations_changed(*, project: Project, conversation_ids: list[int]) -> None:
    """Stored conversations gained judge scores or feedback: sampling looks at them again."""
    from reviewapp import hooks

    hooks.conversations_changed(project=project, conversation_ids=conversation_ids)


def _conversations_ingest_once(
    *, project: Project, conversations: list[ConversationIn], principal: Principal | None
) -> tuple[list[IngestResult], list[int], list[int]]:
    """Returns the results, the ids created, and the ids of conversations stored before that
    gained a judge score or feedback (re-sent identical ones add nothing and are not listed)."""
    now = timezone.now()
    first_index: dict[str, int] = {}
    for index, item in enumerate(conversations):
        first_index.setdefault(item.external_id, index)

    existing: dict[str, int] = {}
    for chunk in _chunks(list(first_index)):
        existing.update(
            Conversation.objects.filter(project=project, external_id__in=chunk).values_list("external_id", "id")
        )

    api_key_id = principal.api_key.pk if principal and principal.api_key is not None else None
    user_id = principal.user.pk if principal and principal.user is not None else None
    # Sorted by external_id: two requests racing on overlapping new ids then meet the unique
    # index in the same order (one waits, then retries as duplicates) instead of deadlocking.
    new_items = sorted(
        (conversations[index] for external_id, index in first_index.items() if external_id not in existing),
        key=lambda item: item.external_id,
    )
    new_rows: list[dict[str, Any]] = []
    for item in new_items:
        feedback = item.feedback
        new_rows.append(
            {
                "organization_id": project.organization_id,
                "project_id": project.pk,
                "external_id": item.external_id,
                "messages": item.messages_json(),
                "occurred_at": item.occurred_at or now,
                "received_at": now,
                "agent_version": item.agent_version,
                "end_user_id": item.end_user_id,
                "tags": item.tags,
                "metadata": item.metadata,
                "feedback_rating": feedback.rating if feedback else None,
                "user_rephrased": bool(feedback and feedback.user_rephrased),
                "escalated_by_user": bool(feedback and feedback.escalated_by_user),
                "ingested_by_key_id": api_key_id,
                "ingested_by_user_id": user_id,
            }
        )
    created_ids = bulk.insert_rows(Conversation, new_rows, return_ids=True)
    ids = dict(existing)
    ids.update(zip((item.external_id for item in new_items), created_ids, strict=True))

    tag_rows = [
        {"conversation_id": conversation_id, "project_id": project.pk, "tag": tag}
        for item, conversation_id in zip(new_items, created_ids, strict=True)
        for tag in item.tags
    ]
    bulk.insert_rows(ConversationTag, tag_rows)
    bulk.insert_rows(ConversationSignal, _derived_signal_rows(project, new_items, created_ids, now))

    score_rows: list[dict[str, Any]] = []
    feedback_rows: list[dict[str, Any]] = []
    # Feedback on a conversation that already exists (or repeats in this batch) must also move
    # the denormalised summary columns.
    summary_updates: dict[int, dict[str, Any]] = {}
    agent_signals: dict[tuple[int, str], dict[str, Any]] = {}
    results: list[IngestResult] = []
    for index, item in enumerate(conversations):
        conversation_id = ids[item.external_id]
        is_new = first_index[item.external_id] == index and item.external_id not in existing
        results.append(IngestResult(item.external_id, conversation_id, "created" if is_new else "duplicate"))
        score_rows.extend(_judge_score_row(conversation_id, s, now) for s in item.judge_scores)
        if item.feedback is not None:
            feedback_rows.append(
                {
                    "conversation_id": conversation_id,
                    "rating": item.feedback.rating,
                    "comment": item.feedback.comment,
                    "user_rephrased": item.feedback.user_rephrased,
                    "escalated_by_user": item.feedback.escalated_by_user,
                    "fingerprint": _feedback_fingerprint(item.feedback),
                    "created_at": now,
                }
            )
            for kind, sent in _AGENT_SIGNALS:
                if getattr(item.feedback, sent):
                    agent_signals.setdefault((conversation_id, kind), _signal_row(project, conversation_id, kind, now))
            if not is_new:
                update = summary_updates.setdefault(conversation_id, {})
                if item.feedback.rating:
                    update["feedback_rating"] = item.feedback.rating
                if item.feedback.user_rephrased:
                    update["user_rephrased"] = True
                if item.feedback.escalated_by_user:
                    update["escalated_by_user"] = True

    # Scores of conversations created just now cannot clash with a stored row, only with a repeat
    # in this batch: drop repeats here (the first wins, as ON CONFLICT DO NOTHING would keep it)
    # and COPY them, at half the database's cost of an INSERT ... ON CONFLICT.
    fresh_ids = set(created_ids)
    fresh_scores: dict[tuple[int, str, str, str], dict[str, Any]] = {}
    for row in score_rows:
        if row["conversation_id"] in fresh_ids:
            key = (row["conversation_id"], row["judge"], row["judge_version"], row["criterion"])
            fresh_scores.setdefault(key, row)
    bulk.insert_rows(JudgeScore, list(fresh_scores.values()))
    # ignore_conflicts: a re-sent identical score or feedback is already stored, not an error.
    # Rows that may meet a concurrent request's go in key order: two requests then take the
    # unique-index locks in the same order and wait for each other instead of deadlocking.
    # RETURNING tells which stored conversations really gained a signal: sampling re-evaluates
    # those (a judge or thumbs-down rule may match now), and only those.
    changed = set(
        bulk.insert_rows(
            JudgeScore,
            sorted(
                (row for row in score_rows if row["conversation_id"] not in fresh_ids),
                key=lambda r: (r["conversation_id"], r["judge"], r["judge_version"], r["criterion"]),
            ),
            ignore_conflicts=True,
            returning="conversation_id",
        )
    )
    changed.update(
        bulk.insert_rows(
            Feedback,
            sorted(feedback_rows, key=lambda r: (r["conversation_id"], r["fingerprint"])),
            ignore_conflicts=True,
            returning="conversation_id",
        )
    )
    changed -= fresh_ids
    # What the agent said itself, kept as signals next to the derived ones. Rows of stored
    # conversations may already be there (or be written by a concurrent request): key order and
    # ON CONFLICT DO NOTHING, as for feedback.
    bulk.insert_rows(
        ConversationSignal,
        [agent_signals[key] for key in sorted(agent_signals)],
        ignore_conflicts=True,
        returning="conversation_id",
    )
    # Lock the rows whose summary changes in id order first, for the same reason: the grouped
    # UPDATEs below would otherwise lock them in whatever order the database scans them.
    for chunk in _chunks(sorted(cid for cid, update in summary_updates.items() if update)):
        list(Conversation.objects.filter(pk__in=chunk).order_by("pk").select_for_update().values_list("pk", flat=True))
    # One UPDATE per distinct change (rating x two flags: at most 11), never one per row.
    by_change: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for conversation_id, update in summary_updates.items():
        if update:
            by_change.setdefault(tuple(sorted(update.items())), []).append(conversation_id)
    for change, conversation_ids in by_change.items():
        for chunk in _chunks(conversation_ids):
            Conversation.objects.filter(pk__in=chunk).update(**dict(change))

    audit_event_record(
        organization=project.organization,
        kind="conversations.ingested",
        principal=principal,
        subject=project,
        data={"created": len(created_ids), "duplicate": len(results) - len(created_ids)},
    )
    return results, created_ids, sorted(changed)


@dataclass(frozen=True)
class JudgeScoreResult:
    external_id: str
    conversation_id: int
    judge: str
    criterion: str
    status: str  # "created" | "duplicate"


def judge_scores_add(
    *, project: Project, scores: list[JudgeScoreForConversationIn], principal: Principal | None = None
) -> list[JudgeScoreResult]:
    """Attach judge scores to conversations already stored, by external_id. Unknown ids fail the
    whole request (400 naming each index) so a client never half-applies a batch."""
    external_ids = list(dict.fromkeys(s.external_id for s in scores))
    ids: dict[str, int] = {}
    for chunk in _chunks(external_ids):
        ids.update(Conversation.objects.filter(project=project, external_id__in=chunk).values_list("external_id", "id"))
    missing = {
        f"judge_scores[{index}].external_id": [f"No conversation with this external_id in project '{project.slug}'."]
        for index, s in enumerate(scores)
        if s.external_id not in ids
    }
    if missing:
        raise ValidationFailed("Some judge scores name unknown conversations.", errors=missing)

    now = timezone.now()
    with transaction.atomic():
        seen: set[tuple[int, str, str, str]] = set()
        for chunk in _chunks(list(ids.values())):
            seen.update(
                JudgeScore.objects.filter(conversation_id__in=chunk).values_list(
                    "conversation_id", "judge", "judge_version", "criterion"
                )
            )
        rows: list[dict[str, Any]] = []
        results: list[JudgeScoreResult] = []
        for s in scores:
            conversation_id = ids[s.external_id]
            key = (conversation_id, s.judge, s.judge_version, s.criterion)
            status = "duplicate" if key in seen else "created"
            seen.add(key)
            if status == "created":
                rows.append(_judge_score_row(conversation_id, s, now))
            results.append(JudgeScoreResult(s.external_id, conversation_id, s.judge, s.criterion, status))
        scored = bulk.insert_rows(JudgeScore, rows, ignore_conflicts=True, returning="conversation_id")
        audit_event_record(
            organization=project.organization,
            kind="judge_scores.added",
            principal=principal,
            subject=project,
            data={"created": len(rows), "duplicate": len(results) - len(rows)},
        )
        if scored:
            # Judges usually run after ingestion: a score rule can only match now.
            _on_conversations_changed(project=project, conversation_ids=sorted(set(scored)))
    return results


def project_resolve(*, principal: Principal, slug: str | None, field: str = "project") -> Project:
    """The project a write goes to: a project key implies its own; a person names one."""
    from reviewapp.selectors import project_get_by_slug

    if principal.project is not None:
        if slug and slug != principal.project.slug:
            raise ValidationFailed(
                "This API key belongs to another project.",
                errors={field: [f"This key writes to project '{principal.project.slug}' only."]},
            )
        return principal.project
    if not slug:
        raise ValidationFailed("Name the project.", errors={field: ["This field is required with a personal token."]})
    project = project_get_by_slug(organization=principal.organization, slug=slug)
    if project is None:
        raise ValidationFailed("Unknown project.", errors={field: [f"No project '{slug}' in this organization."]})
    return project


__all__ = [
    "Conflict",
    "IngestResult",
    "IssuedCredential",
    "JudgeScoreResult",
    "NotFound",
    "api_key_create",
    "api_key_revoke",
    "conversations_ingest",
    "credential_touch",
    "judge_scores_add",
    "membership_add",
    "membership_remove",
    "membership_role_set",
    "organization_create",
    "personal_token_create",
    "personal_token_revoke",
    "project_create",
    "project_frustration_terms_set",
    "project_resolve",
    "project_timezone_set",
    "user_credentials_epoch_bump",
    "user_password_set",
]


def personal_tokens_expire() -> int:
    """Mark tokens past their expiry as revoked; returns how many."""
    now = timezone.now()
    return PersonalToken.objects.filter(revoked_at__isnull=True, expires_at__lte=now).update(revoked_at=now)
