"""Gold checks: items with known answers, served unmarked to measure annotators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from labeling import rubric
from labeling.models import Queue, QueueItem
from labeling.services._common import _has_turns, _roles_of
from labeling.services.queues import ItemAddResult
from labeling.services.rubrics import _schema_version
from reviewapp.errors import ValidationFailed
from reviewapp.models import Conversation

# Gold items are labeled once by everyone who meets them; they never complete.
GOLD_LABELS_NEEDED = 32_000


@dataclass(frozen=True)
class GoldItemIn:
    conversation_id: int
    answers: dict[str, Any]


def gold_items_add(*, queue: Queue, items: list[GoldItemIn], user: AbstractBaseUser | None) -> list[ItemAddResult]:
    """Add gold checks: conversations with known answers, mixed into the queue unmarked at its
    gold rate to measure each annotator's accuracy. Answers are validated against the rubric."""
    version = _schema_version(queue=queue, version_id=None)
    questions = rubric.questions_from_json(version.questions)
    errors: dict[str, list[str]] = {}
    cleaned: list[dict[str, Any]] = []
    # Turn answers are checked against each conversation's messages: read them all at once.
    turns = _has_turns(questions)
    messages_of: dict[int, Any] = {}
    if turns:
        messages_of = dict(
            Conversation.objects.filter(
                organization_id=queue.organization_id, pk__in=[g.conversation_id for g in items]
            ).values_list("pk", "messages")
        )
    for index, gold in enumerate(items):
        roles = _roles_of(messages_of.get(gold.conversation_id)) if turns else None
        clean, problems = rubric.answers_validate(questions, gold.answers, turn_roles=roles)
        cleaned.append(clean)
        for path, messages in problems.items():
            errors[f"items[{index}].{path}"] = messages
    if errors:
        raise ValidationFailed("Some gold answers do not fit the rubric.", errors=errors)
    with transaction.atomic():
        existing = dict(
            QueueItem.objects.filter(queue=queue, conversation_id__in=[g.conversation_id for g in items]).values_list(
                "conversation_id", "pk"
            )
        )
        rows = [
            QueueItem(
                organization_id=queue.organization_id,
                queue=queue,
                conversation_id=g.conversation_id,
                priority=queue.priority,
                labels_needed=GOLD_LABELS_NEEDED,
                source="gold",
                sampling_strategy="gold",
                is_gold=True,
                gold_answers=clean,
            )
            for g, clean in zip(items, cleaned, strict=True)
            if g.conversation_id not in existing
        ]
        QueueItem.objects.bulk_create(rows, ignore_conflicts=True)
        ids = dict(
            QueueItem.objects.filter(queue=queue, conversation_id__in=[g.conversation_id for g in items]).values_list(
                "conversation_id", "pk"
            )
        )
    return [
        ItemAddResult(
            g.conversation_id, ids[g.conversation_id], "duplicate" if g.conversation_id in existing else "created"
        )
        for g in items
    ]
