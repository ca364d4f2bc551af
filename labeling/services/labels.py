"""Labels: submitting and editing them, drafts, skips, and resolving an item once its labels
are in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from labeling import lock_objects, rubric
from labeling.models import Assignment, AssignmentStatus, ItemEvent, ItemStatus, Label, QueueItem, SkipPolicy
from labeling.services._common import _event, _event_row, _release_other_leases, _turn_roles
from labeling.services.rubrics import _schema_version
from reviewapp import hooks, rawsql, validation
from reviewapp.errors import Conflict, ValidationFailed

# A label's time on task is capped: an item left open over a weekend is not a day's work.
# The API and the browser both send what they measured; the cap is applied here, once.
MAX_TIME_SPENT_MS = 6 * 3600 * 1000
# What _resolve may change on an item; its callers save these while holding the item's lock.
RESOLVE_FIELDS = [
    "status",
    "final_answers",
    "final_source",
    "completed_at",
    "labels_needed",
    "extra_annotations",
    "leased_count",
]


@dataclass(frozen=True)
class LabelOutcome:
    label: Label
    created: bool
    item_status: str


def label_submit(
    *,
    item: QueueItem,
    user: AbstractBaseUser,
    answers: Any,
    client_token: str = "",
    schema_version_id: int | None = None,
    time_spent_ms: int | None = None,
) -> LabelOutcome:
    """Record `user`'s answers on `item` (or edit their earlier label until the item is final).

    Replaying the same `client_token` returns the stored label unchanged. A lost lease is fine
    while the item still needs labels; once it is complete the late label is refused (409).
    `time_spent_ms` must fit its column and counts as at most MAX_TIME_SPENT_MS.
    """
    # Everything from the client is checked before anything is locked or written.
    validation.check_json(answers, path="answers")
    validation.check_text(client_token, field="client_token")
    if schema_version_id is not None and not validation.is_id(schema_version_id):
        raise validation.InputError("Not a version of this queue's schema.", "schema_version")
    if time_spent_ms is not None:
        validation.check_int(time_spent_ms, field="time_spent_ms", bounds=validation.POSITIVE)
        time_spent_ms = min(time_spent_ms, MAX_TIME_SPENT_MS)
    with transaction.atomic():
        item = lock_objects.item_relock(item)
        queue = item.queue
        version = _schema_version(queue=queue, version_id=schema_version_id)
        assignment, existing = lock_objects.assignment_and_label_lock(item_id=item.pk, user_id=user.pk)
        if existing is not None and client_token and existing.client_token == client_token:
            return LabelOutcome(existing, False, item.status)
        questions = rubric.questions_from_json(version.questions)
        clean, errors = rubric.answers_validate(questions, answers, turn_roles=_turn_roles(questions, item))
        if errors:
            raise ValidationFailed("Some answers do not fit the rubric.", errors=errors)
        now = timezone.now()
        events: list[ItemEvent] = []

        if existing is not None:
            # Editing is allowed until a reviewer has ruled: a completed-by-agreement item is
            # re-resolved with the edited label (and may reopen as a dispute).
            if item.status == ItemStatus.DROPPED or item.final_source == "review":
                raise Conflict("This item was reviewed; its labels can no longer be edited.")
            existing.answers = clean
            existing.schema_version = version
            existing.client_token = client_token or existing.client_token
            existing.updated_at = now
            existing.save(update_fields=["answers", "schema_version", "client_token", "updated_at"])
            _event(item, user, "label_edited", {"label": existing.pk}, into=events)
            if item.labels_done >= item.labels_needed or item.status == ItemStatus.NEEDS_REVIEW:
                was_final = item.status == ItemStatus.COMPLETED
                if was_final:
                    item.status = ItemStatus.OPEN
                    item.final_answers, item.final_source, item.completed_at = None, "", None
                _resolve(item, now, events)
                item.save(update_fields=RESOLVE_FIELDS)
                if was_final or item.status == ItemStatus.COMPLETED:
                    # The final answer changed or was withdrawn: calibration pairs follow it.
                    hooks.items_finalized(item_ids=[item.pk])
            ItemEvent.objects.bulk_create(events)
            return LabelOutcome(existing, False, item.status)

        if item.status == ItemStatus.DROPPED:
            raise Conflict("This item was dropped from the queue.")
        if assignment is None or assignment.status == AssignmentStatus.SKIPPED:
            raise Conflict("You do not hold this item; claim it first.")
        if item.status != ItemStatus.OPEN:
            raise Conflict("Your lease ran out and the item is already complete; your label was not needed.")
        # The hottest write path of labeling: plain prepared statements (reviewapp/rawsql.py)
        # instead of Model.save(), which cost more Python than the four writes cost PostgreSQL.
        values = {
            "organization_id": item.organization_id,
            "queue_id": queue.pk,
            "item_id": item.pk,
            "user_id": user.pk,
            "schema_version_id": version.pk,
            "answers": clean,
            "client_token": client_token,
            "time_spent_ms": time_spent_ms if time_spent_ms is not None else _elapsed_ms(assignment.leased_at, now),
            "created_at": now,
            "updated_at": now,
        }
        [label_id] = rawsql.insert(Label, [values])
        label = Label(id=label_id, **values)
        label._state.adding = False
        label.user, label.schema_version = user, version
        if assignment.status == AssignmentStatus.ACTIVE:
            item.leased_count = max(0, item.leased_count - 1)
        rawsql.update(
            Assignment, assignment.pk, {"status": AssignmentStatus.SUBMITTED, "finished_at": now, "draft_answers": {}}
        )
        item.labels_done += 1
        _event(item, user, "labeled", {"label": label.pk}, into=events)
        if item.labels_done >= item.labels_needed and not item.is_gold:
            # The common case, one label needed: it is the only label, no need to read it back.
            _resolve(item, now, events, labels=[label] if item.labels_done == 1 else None)
        rawsql.update(QueueItem, item.pk, {name: getattr(item, name) for name in ["labels_done", *RESOLVE_FIELDS]})
        rawsql.insert(ItemEvent, [_event_row(e, now) for e in events])
        if item.status == ItemStatus.COMPLETED:
            hooks.items_finalized(item_ids=[item.pk])
        return LabelOutcome(label, True, item.status)


def _resolve(item: QueueItem, now: dt.datetime, events: list[ItemEvent], *, labels: list[Label] | None = None) -> None:
    """All labels are in: agree → completed with that answer; disagree → one more annotator if
    the queue allows, else review. Mutates `item` (the caller saves it, holding its lock) and
    adds the events to `events` (the caller writes them)."""
    if labels is None:
        labels = list(item.labels.select_related("schema_version").order_by("id"))
    if not labels:
        return
    questions = rubric.questions_from_json(labels[-1].schema_version.questions)
    answers = [lab.answers for lab in labels]
    if len(labels) == 1 or rubric.answers_agree(questions, answers):
        item.status = ItemStatus.COMPLETED
        item.final_answers = dict(answers[0])
        item.final_source = "single" if len(labels) == 1 else "agreement"
        item.completed_at = now
        _release_other_leases(item, now)
        _event(item, None, "completed", {"source": item.final_source}, into=events)
    elif item.extra_annotations < item.queue.max_extra_annotations and item.status == ItemStatus.OPEN:
        item.labels_needed += 1
        item.extra_annotations += 1
        _event(item, None, "extra_annotator", {"labels_needed": item.labels_needed}, into=events)
    else:
        item.status = ItemStatus.NEEDS_REVIEW
        _release_other_leases(item, now)
        _event(item, None, "needs_review", {"labels": len(labels)}, into=events)


def _elapsed_ms(start: dt.datetime, end: dt.datetime) -> int:
    return min(MAX_TIME_SPENT_MS, max(0, int((end - start).total_seconds() * 1000)))


def draft_save(*, item: QueueItem, user: AbstractBaseUser, answers: dict[str, Any]) -> Assignment:
    """Keep a half-filled form on the person's assignment, unvalidated, so it survives leaving
    the page. Only the holder of the item has a draft."""
    validation.check_json(answers, path="answers")
    # One compare-and-set: the lease must still be live when the draft is written, not only
    # when it was read (a label, skip, drop or the sweeper may end it in between).
    live = Assignment.objects.filter(
        item=item, user=user, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=timezone.now()
    )
    if live.update(draft_answers=answers) != 1:
        raise Conflict("Drafts are kept while you hold the item; claim it first.")
    assignment = Assignment.objects.get(item=item, user=user)
    assignment.draft_answers = answers
    return assignment


def item_skip(*, item: QueueItem, user: AbstractBaseUser, reason: str = "") -> Assignment:
    """A skip is an event and frees the slot; it is never a label. What happens next follows
    the queue's skip policy."""
    validation.check_text(reason, field="reason")
    with transaction.atomic():
        item = lock_objects.item_relock(item)
        assignment = Assignment.objects.select_for_update().filter(item=item, user=user).first()
        if assignment is None or assignment.status != AssignmentStatus.ACTIVE:
            raise Conflict("You do not hold this item.")
        now = timezone.now()
        assignment.status = AssignmentStatus.SKIPPED
        assignment.finished_at = now
        assignment.skip_reason = reason[:500]
        assignment.save(update_fields=["status", "finished_at", "skip_reason"])
        item.leased_count = max(0, item.leased_count - 1)
        fields = ["leased_count"]
        # A gold item is everyone's check and never completes: one person's skip must not
        # take it from the others, so it is only skipped for them.
        if item.queue.skip_policy == SkipPolicy.DROP and item.labels_done == 0 and not item.is_gold:
            item.status = ItemStatus.DROPPED
            fields.append("status")
            # Nobody else may keep working on a dropped item: end their leases now, so their
            # label is refused as "dropped" instead of counted against a slot that is gone.
            _release_other_leases(item, now)
        item.save(update_fields=fields)
        _event(item, user, "skipped", {"reason": reason[:500], "policy": item.queue.skip_policy})
    return assignment
