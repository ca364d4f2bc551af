"""Factories and helpers for labeling tests."""

from __future__ import annotations

from typing import Any

from labeling import rubric, services
from labeling.models import LabelSchema, Queue, QueueItem
from reviewapp.models import Project
from tests.factories import ConversationFactory

QUESTIONS: list[dict[str, Any]] = [
    {
        "key": "quality",
        "type": "single_choice",
        "label": "Was the answer right?",
        "options": ["good", "bad"],
        "required": True,
        "judge_criterion": "correctness",
    },
    {"key": "helpfulness", "type": "rating", "label": "How helpful?", "min": 1, "max": 5, "required": False},
    {"key": "notes", "type": "text", "label": "Notes", "required": False},
]


def make_schema(
    project: Project, questions: list[dict[str, Any]] | None = None, name: str = "Support quality"
) -> LabelSchema:
    return services.label_schema_create(
        project=project,
        rubric_in=rubric.Rubric.model_validate(
            {"name": name, "instructions": "Judge the **final** answer.", "questions": questions or QUESTIONS}
        ),
        user=None,
    )


def make_queue(project: Project, schema: LabelSchema | None = None, **spec: Any) -> Queue:
    schema = schema or make_schema(project)
    spec.setdefault("name", "Support QA")
    return services.queue_create(project=project, spec=services.QueueSpec(schema=schema, **spec), user=None)


def add_items(queue: Queue, n: int, **conversation_fields: Any) -> list[QueueItem]:
    """n fresh conversations of the queue's project, added to it by hand; items in id order."""
    conversations = [ConversationFactory(project=queue.project, **conversation_fields) for _ in range(n)]
    services.queue_items_add(queue=queue, conversation_ids=[c.pk for c in conversations], user=None)
    return list(QueueItem.objects.filter(queue=queue).order_by("id"))
