"""Calibration fixtures: a queue whose rubric meets a judge, labelled through the services."""

from __future__ import annotations

from typing import Any

from labeling import services as labeling_services
from labeling.models import QueueItem
from reviewapp import services as core_services
from reviewapp.ingest_schemas import JudgeScoreForConversationIn
from tests.labeling.factories import add_items, make_queue, make_schema

QUESTIONS: list[dict[str, Any]] = [
    {
        "key": "quality",
        "type": "single_choice",
        "label": "Was the answer right?",
        "options": ["good", "bad"],
        "passing_options": ["good"],
        "judge_criterion": "correctness",
        "judge_pass_labels": ["correct", "pass"],
        "judge_pass_threshold": 0.5,
    },
    {
        "key": "helpful",
        "type": "rating",
        "label": "How helpful?",
        "min": 1,
        "max": 5,
        "passing_min": 4,
        "required": False,
        "judge_criterion": "helpfulness",
        "judge_pass_threshold": 3.5,
    },
]


def calibration_queue(project, **spec: Any):
    return make_queue(project, make_schema(project, QUESTIONS), **spec)


def label(item: QueueItem, user, answers: dict[str, Any]) -> None:
    """`user` claims `item`'s queue until they hold `item`, then labels it."""
    assignment = labeling_services.item_claim(queue=item.queue, user=user)
    assert assignment is not None and assignment.item_id == item.pk, "claim order is id order in these tests"
    labeling_services.label_submit(item=assignment.item, user=user, answers=answers)


def score(project, conversation, **fields: Any) -> None:
    core_services.judge_scores_add(
        project=project,
        scores=[JudgeScoreForConversationIn(external_id=conversation.external_id, **fields)],
    )


__all__ = ["add_items", "calibration_queue", "label", "score"]
