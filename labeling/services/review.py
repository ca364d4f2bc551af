"""Review: a reviewer's final answer on an item, and comments for reviewers."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from labeling import lock_objects, rubric
from labeling.models import Assignment, ItemComment, ItemStatus, QueueItem
from labeling.services._common import _event, _release_other_leases, _turn_roles
from labeling.services.rubrics import _schema_version
from reviewapp import hooks, validation
from reviewapp.errors import Conflict, ValidationFailed


def item_review(*, item: QueueItem, user: AbstractBaseUser, answers: Any) -> QueueItem:
    """A reviewer records the final answer (for disputed items, or to overrule agreement)."""
    validation.check_json(answers, path="answers")
    with transaction.atomic():
        item = lock_objects.item_relock(item)
        if item.status == ItemStatus.DROPPED:
            raise Conflict("This item was dropped from the queue.")
        version = _schema_version(queue=item.queue, version_id=None)
        questions = rubric.questions_from_json(version.questions)
        clean, errors = rubric.answers_validate(questions, answers, turn_roles=_turn_roles(questions, item))
        if errors:
            raise ValidationFailed("Some answers do not fit the rubric.", errors=errors)
        now = timezone.now()
        previous = item.status
        item.status = ItemStatus.COMPLETED
        item.final_answers = clean
        item.final_source = "review"
        item.reviewed_by = user
        item.reviewed_at = now
        item.completed_at = now
        _release_other_leases(item, now)
        item.save(
            update_fields=[
                "status",
                "final_answers",
                "final_source",
                "reviewed_by",
                "reviewed_at",
                "completed_at",
                "leased_count",
            ]
        )
        _event(item, user, "reviewed", {"previous_status": previous, "answers": clean})
        hooks.items_finalized(item_ids=[item.pk])
    return item


def item_comment_add(*, item: QueueItem, user: AbstractBaseUser, body: str, is_reviewer: bool = False) -> ItemComment:
    """A note for reviewers, from someone who was handed the item (or a reviewer)."""
    if not is_reviewer and not Assignment.objects.filter(item=item, user=user).exists():
        raise Conflict("Comment on items you were handed.")
    body = (body or "").strip()
    validation.check_text(body, field="body")
    if not body:
        raise ValidationFailed("Write something.", errors={"body": ["This field may not be blank."]})
    if len(body) > 10_000:
        raise ValidationFailed("Too long.", errors={"body": ["At most 10000 characters."]})
    return ItemComment.objects.create(item=item, user=user, body=body)
