"""Webhook signing secrets and deliveries (outbox rows sent by Celery with retries).

A delivery is recorded in the transaction of the change it reports (a decision, a tier
entered) and sent after commit, so a dead receiver never blocks or undoes a decision, and a
lost message is found again by the sweeper (`deliveries_due`, every 30 s). A send claims the
row with SKIP LOCKED and moves `next_attempt_at` past the send's time limit (a lease), then
posts outside any transaction, then records the attempt: no row lock or transaction is held
while a receiver takes its time, and a duplicate message finds nothing due and does nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets as secrets_module
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from escalations import serializers, signing
from escalations.models import (
    ActionEvent,
    DeliveryAttempt,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSecret,
)
from reviewapp import enqueue, outbound, validation
from reviewapp.errors import Conflict
from reviewapp.services import audit_event_record

if TYPE_CHECKING:
    from escalations.models import Action
    from reviewapp.models import Project
    from reviewapp.principal import Principal

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
SECRET_DISPLAY_PREFIX_LENGTH = 12
DEFAULT_GRACE_SECONDS = 86_400
# A week covers a receiver deployed weekly; longer would leave a leaked secret valid for long.
MAX_GRACE_SECONDS = 7 * 86_400

KIND_DECISION = "decision"
KIND_TIER_NOTIFICATION = "tier_notification"
EVENTS = {KIND_DECISION: "action.decided", KIND_TIER_NOTIFICATION: "action.tier_entered"}

# Delay before the next attempt after attempt n (1-based) failed: 10 s, 30 s, 90 s, 5 min,
# 15 min, 1 h, 4 h, each plus up to 25% jitter (so receivers coming back after an outage are
# not hit by every sender in the same second), then give up after attempt 8: about 5.4 hours
# (up to 6.7 with jitter) from the first attempt. The sweeper runs every 30 s, so a retry goes
# out within 30 s of its time.
RETRY_DELAYS_SECONDS = (10, 30, 90, 300, 900, 3_600, 14_400)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
RETRY_JITTER = 0.25
# A claimed delivery is not due again until the send could have finished: the 10 s limit plus
# a wide margin for recording it. A worker killed mid-send leaves the row to be re-sent then.
SEND_LEASE_SECONDS = 60
DUE_SWEEP_LIMIT = 500
# How long a queued send message is trusted to be on its way: the due sweeper does not enqueue
# the delivery again before then. Long enough for the webhooks queue to drain a backlog of
# slow sends (4 sweeps), short enough that a lost message delays a delivery by 2 minutes.
ENQUEUE_LEASE_SECONDS = 120


# --- secrets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedSecret:
    """A new secret with its raw value: the only time it is ever shown."""

    raw: str
    record: WebhookSecret


def _secret_insert(*, principal: Principal, project: Project, now: dt.datetime) -> tuple[str, WebhookSecret]:
    raw = SECRET_PREFIX + secrets_module.token_urlsafe(32)
    record = WebhookSecret.objects.create(
        organization_id=project.organization_id,
        project=project,
        secret=raw,
        prefix=raw[:SECRET_DISPLAY_PREFIX_LENGTH],
        created_by=principal.user if getattr(principal.user, "pk", None) else None,
        created_at=now,
    )
    return raw, record


def _current_secret_exists_error(project: Project) -> Conflict:
    return Conflict(
        "This project has a webhook secret already; rotate it instead.",
        errors={"project": [f"Project '{project.slug}' has a current webhook secret."]},
    )


def webhook_secret_create(*, principal: Principal, project: Project, now: dt.datetime | None = None) -> IssuedSecret:
    """The project's first signing secret (409 when it has a current one: rotate instead)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            raw, record = _secret_insert(principal=principal, project=project, now=now)
            audit_event_record(
                organization=project.organization,
                kind="webhook_secret.created",
                principal=principal,
                subject=record,
                data={"project": project.slug, "prefix": record.prefix},
            )
    except IntegrityError as exc:  # webhook_secret_one_current
        raise _current_secret_exists_error(project) from exc
    return IssuedSecret(raw=raw, record=record)


def webhook_secret_rotate(
    *,
    principal: Principal,
    project: Project,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    now: dt.datetime | None = None,
) -> IssuedSecret:
    """A new current secret; the old one keeps signing for `grace_seconds` (0: revoked now),
    so receivers can switch whenever they like within the grace. 409 without a current one."""
    validation.check_int(grace_seconds, field="grace_seconds", bounds=(0, MAX_GRACE_SECONDS))
    now = now or timezone.now()
    # Two rotations at once: the second waits on the current row's lock, finds it no longer
    # current when it gets it, and looks again (a fresh statement sees the first one's secret).
    for _ in range(3):
        with transaction.atomic():
            current = list(
                WebhookSecret.objects.select_for_update()
                .filter(project=project, expires_at__isnull=True, revoked_at__isnull=True)
                .order_by("pk")
            )
            if not current:
                continue
            ends = now + dt.timedelta(seconds=grace_seconds)
            changes: dict[str, Any] = {"expires_at": ends}
            if grace_seconds == 0:
                changes["revoked_at"] = now
            WebhookSecret.objects.filter(pk__in=[s.pk for s in current]).update(**changes)
            if grace_seconds == 0:
                # "Revoke now" also ends older secrets still in an earlier rotation's grace:
                # someone who rotates without grace believes a secret leaked.
                WebhookSecret.objects.filter(project=project, revoked_at__isnull=True, expires_at__gt=now).exclude(
                    pk__in=[s.pk for s in current]
                ).update(expires_at=now, revoked_at=now)
            raw, record = _secret_insert(principal=principal, project=project, now=now)
            audit_event_record(
                organization=project.organization,
                kind="webhook_secret.rotated",
                principal=principal,
                subject=record,
                data={
                    "project": project.slug,
                    "prefix": record.prefix,
                    "previous": [s.prefix for s in current],
                    "grace_seconds": grace_seconds,
                },
            )
            return IssuedSecret(raw=raw, record=record)
    raise Conflict(
        "This project has no webhook secret to rotate; create one.",
        errors={"project": [f"Project '{project.slug}' has no current webhook secret."]},
    )


def webhook_secret_issue(
    *, principal: Principal, project: Project, grace_seconds: int = DEFAULT_GRACE_SECONDS
) -> tuple[IssuedSecret, bool]:
    """Rotate the project's secret if it has one, else create its first: (secret, rotated).
    What `POST /api/v1/webhook-secrets` and the settings page's button do."""
    validation.check_int(grace_seconds, field="grace_seconds", bounds=(0, MAX_GRACE_SECONDS))
    if WebhookSecret.objects.filter(project=project, expires_at__isnull=True, revoked_at__isnull=True).exists():
        return webhook_secret_rotate(principal=principal, project=project, grace_seconds=grace_seconds), True
    try:
        return webhook_secret_create(principal=principal, project=project), False
    except Conflict:
        # Someone created the first one a moment ago: rotating theirs is what was asked for.
        return webhook_secret_rotate(principal=principal, project=project, grace_seconds=grace_seconds), True


def signing_secrets(*, project_id: int, now: dt.datetime | None = None) -> list[str]:
    """The secrets that sign a delivery now, newest first: the current one and any still in
    their grace period."""
    now = now or timezone.now()
    return list(
        WebhookSecret.objects.filter(project_id=project_id, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-id")
        .values_list("secret", flat=True)
    )


# --- recording deliveries ----------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _action_payload(action: Action) -> dict[str, Any]:
    """The decision webhook carries the action exactly as the API answers it, so the two can
    never disagree."""
    return serializers.action_payload(action)


def _delivery_insert(
    *, action: Action, kind: str, delivery_id: str, url: str, body: dict[str, Any], now: dt.datetime
) -> WebhookDelivery:
    from escalations import tasks_webhooks

    delivery = WebhookDelivery.objects.create(
        organization_id=action.organization_id,
        action=action,
        kind=kind,
        delivery_id=delivery_id,
        url=url,
        body=body,
        # Due at once: the on-commit message normally sends it; if that message is lost, the
        # sweeper finds it due.
        next_attempt_at=now,
        enqueued_until=now + dt.timedelta(seconds=ENQUEUE_LEASE_SECONDS),
        created_at=now,
    )
    delivery_id = delivery.delivery_id

    def send() -> None:
        if not enqueue.delay_quietly(tasks_webhooks.delivery_send, delivery_id):
            deliveries_enqueue_release([delivery_id])  # not queued: the next sweep may take it

    transaction.on_commit(send)
    return delivery


def decision_delivery_record(*, action: Action, now: dt.datetime | None = None) -> WebhookDelivery | None:
    """Record the decision delivery to `action.callback_url` (if any) in this transaction and
    send it after commit. The body is the decision as it stands now, whatever happens later."""
    if not action.callback_url:
        return None
    now = now or timezone.now()
    delivery_id = uuid.uuid4().hex
    body = {
        "type": EVENTS[KIND_DECISION],
        "delivery_id": delivery_id,
        "created_at": _iso(now),
        "action": _action_payload(action),
    }
    return _delivery_insert(
        action=action, kind=KIND_DECISION, delivery_id=delivery_id, url=action.callback_url, body=body, now=now
    )


def tier_notification_delivery_record(
    *, action: Action, url: str, text: str, now: dt.datetime | None = None
) -> WebhookDelivery:
    """Record a chat notification (`{"text": ...}`, which Slack and Teams incoming webhooks
    accept as is) to a ladder's webhook, sent after commit like a decision."""
    now = now or timezone.now()
    # The body is exactly what the chat service expects: it refuses unknown keys. The delivery
    # id travels in the X-Reviewapp-Delivery header.
    return _delivery_insert(
        action=action, kind=KIND_TIER_NOTIFICATION, delivery_id=uuid.uuid4().hex, url=url, body={"text": text}, now=now
    )


# --- sending -------------------------------------------------------------------------------------


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> dt.timedelta:
    """How long after failed attempt `attempt` (1-based) the next one is due."""
    base = RETRY_DELAYS_SECONDS[min(attempt, len(RETRY_DELAYS_SECONDS)) - 1]
    jitter = (rng or random).uniform(0, RETRY_JITTER)
    return dt.timedelta(seconds=base * (1 + jitter))


def _delivery_claim(*, delivery_id: str, now: dt.datetime) -> WebhookDelivery | None:
    """Take a due delivery for one attempt: attempts + 1, and not due again until the lease
    ends. None when it is not due, not pending, or another worker holds its row."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("action")
            .filter(delivery_id=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = now + dt.timedelta(seconds=SEND_LEASE_SECONDS)
        delivery.enqueued_until = None  # its message arrived; the next retry is the sweeper's
        delivery.save(update_fields=["attempts", "next_attempt_at", "enqueued_until"])
    return delivery


def redacted_url(delivery: WebhookDelivery) -> str:
    """The URL as shown to readers: a chat webhook's URL is its password (anyone holding it
    can post to the channel), so only its scheme and host are shown."""
    if delivery.kind != KIND_TIER_NOTIFICATION:
        return delivery.url
    parts = urlsplit(delivery.url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


@dataclass(frozen=True)
class SendOutcome:
    delivery_id: str
    attempt: int
    status: str  # the delivery's status after this attempt
    status_code: int | None
    error: str
    next_attempt_at: dt.datetime | None


def delivery_send(*, delivery_id: str, now: dt.datetime | None = None) -> SendOutcome | None:
    """One attempt of a due delivery: claim, sign, POST (bounded: reviewapp/outbound.py),
    record. None when there was nothing to do (already sent, not due, or being sent)."""
    now = now or timezone.now()
    delivery = _delivery_claim(delivery_id=delivery_id, now=now)
    if delivery is None:
        return None
    try:
        result = _delivery_post(delivery=delivery, now=now)
    except Exception:
        # The claim has counted this attempt: whatever failed while building or sending it is
        # recorded as a failed attempt, so the delivery still backs off and ends FAILED after
        # the last one instead of being claimed again every lease, unseen, for ever.
        logger.exception("webhook delivery %s: the attempt failed before a response", delivery.delivery_id)
        result = outbound.PostResult(None, "not sent: an internal error (logged on the server)", "", 0)
    return _attempt_record(delivery=delivery, result=result, started_at=now)


def body_bytes(body: dict[str, Any]) -> bytes:
    """The bytes sent (and signed) for a stored body. orjson refuses integers beyond 64 bits,
    which an action's args may hold (action_input.py keeps them exact): those bodies go through
    the stdlib encoder, with the same compact form, so the receiver gets the exact numbers."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _delivery_post(*, delivery: WebhookDelivery, now: dt.datetime) -> outbound.PostResult:
    body = body_bytes(delivery.body)
    # Chat notifications are never signed: Slack and Teams check nothing, and a chat webhook's
    # URL (and so what it receives) is shared with whoever runs the channel, who should not
    # collect signatures made with the project's decision-signing secret.
    keys = (
        []
        if delivery.kind == KIND_TIER_NOTIFICATION
        else signing_secrets(project_id=delivery.action.project_id, now=now)
    )
    if delivery.kind == KIND_DECISION and not keys:
        # Never unsigned: a receiver that checks would refuse it, and one that does not should
        # not be taught to accept unsigned decisions. Retried, so creating a secret in time
        # still delivers it.
        return outbound.PostResult(None, "not sent: the project has no webhook secret (create one)", "", 0)
    headers = signing.headers(
        secrets=keys,
        body=body,
        delivery_id=delivery.delivery_id,
        event=EVENTS.get(delivery.kind, delivery.kind),
        timestamp=int(time.time()),  # the receiver checks it against its real clock
    )
    return outbound.post(
        delivery.url,
        body=body,
        headers=headers,
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE_HOSTS,
        total_timeout=outbound.TOTAL_TIMEOUT_SECONDS,
    )


def _attempt_record(
    *, delivery: WebhookDelivery, result: outbound.PostResult, started_at: dt.datetime
) -> SendOutcome | None:
    number = delivery.attempts
    finished = started_at + dt.timedelta(milliseconds=result.duration_ms)
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk).first()
        if row is None:  # the action (and its deliveries) was deleted while we sent
            return None
        DeliveryAttempt.objects.create(
            delivery=row,
            number=number,
            started_at=started_at,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            error=result.error[:500],
            response_excerpt=result.excerpt[:500],
        )
        fields = ["last_status_code", "last_error"]
        row.last_status_code = result.status_code
        row.last_error = result.error[:500]
        if row.status == DeliveryStatus.PENDING:
            if result.ok:
                row.status = DeliveryStatus.DELIVERED
                row.delivered_at = finished
                row.next_attempt_at = None
                fields += ["status", "delivered_at", "next_attempt_at"]
            elif row.attempts == number:  # a later claim (after our lease ran out) schedules itself
                if number >= MAX_ATTEMPTS:
                    row.status = DeliveryStatus.FAILED
                    row.next_attempt_at = None
                    fields += ["status", "next_attempt_at"]
                else:
                    row.next_attempt_at = finished + retry_delay(number)
                    fields.append("next_attempt_at")
        row.save(update_fields=fields)
        ActionEvent.objects.create(
            organization_id=row.organization_id,
            action_id=row.action_id,
            kind="webhook_attempt",
            created_at=finished,
            data={
                "delivery_id": row.delivery_id,
                "delivery_kind": row.kind,
                "attempt": number,
                "status_code": result.status_code,
                "error": result.error[:500],
                "duration_ms": result.duration_ms,
                "delivery_status": row.status,
                "next_attempt_at": _iso(row.next_attempt_at),
            },
        )
    return SendOutcome(
        delivery_id=row.delivery_id,
        attempt=number,
        status=row.status,
        status_code=result.status_code,
        error=result.error,
        next_attempt_at=row.next_attempt_at,
    )


def _due(now: dt.datetime):
    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(enqueued_until__isnull=True) | Q(enqueued_until__lte=now)
    )


def deliveries_due(*, now: dt.datetime | None = None, limit: int = DUE_SWEEP_LIMIT) -> list[str]:
    """Delivery ids due for an attempt (a retry's time came, or the first message was lost)
    and not already queued, oldest first. Uses the partial index on pending deliveries."""
    now = now or timezone.now()
    return list(_due(now).order_by("next_attempt_at").values_list("delivery_id", flat=True)[:limit])


def deliveries_due_take(*, now: dt.datetime | None = None, limit: int = DUE_SWEEP_LIMIT) -> list[str]:
    """What the sweeper enqueues: the due deliveries, each stamped as queued for
    ENQUEUE_LEASE_SECONDS so the next sweeps skip it while its message waits in the queue
    (SKIP LOCKED: two sweepers, or a claim in progress, never take the same row)."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            _due(now)
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at")
            .values_list("pk", "delivery_id")[:limit]
        )
        WebhookDelivery.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            enqueued_until=now + dt.timedelta(seconds=ENQUEUE_LEASE_SECONDS)
        )
    return [delivery_id for _, delivery_id in rows]


def deliveries_enqueue_release(delivery_ids: list[str]) -> None:
    """Those deliveries' messages could not be queued (the broker is down): the next sweep
    takes them again instead of waiting for the lease."""
    WebhookDelivery.objects.filter(delivery_id__in=delivery_ids, status=DeliveryStatus.PENDING).update(
        enqueued_until=None
    )
