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


def realistic_pairs(project, n: int = 300, *, judge: str = "gpt", criterion: str = "correctness", weeks: int = 6):
    """`n` labelled conversations over `weeks` weeks: humans pass 80%, the judge agrees 88% of the
    time and is less sure when wrong; every conversation carries the judge's score (so the
    judge-only pass rate counts them), every fifth is flagged frustrated (mostly failures), and
    the pairs are written as the sync writes them. Deterministic (seeded)."""
    import datetime as dt

    import numpy as np

    from evaluation.models import CalibrationPair, PairKind
    from reviewapp.models import ConversationSignal

    rng = np.random.default_rng(7)
    queue = calibration_queue(project)
    items = add_items(queue, n)
    human = rng.random(n) < 0.8
    right = rng.random(n) < 0.88
    judge_pass = np.where(right, human, ~human)
    confidence = np.round(np.where(right, rng.uniform(0.6, 1.0, n), rng.uniform(0.5, 0.9, n)), 2)
    core_services.judge_scores_add(
        project=project,
        scores=[
            JudgeScoreForConversationIn(
                external_id=item.conversation.external_id,
                judge=judge,
                judge_version="v1",
                criterion=criterion,
                label="pass" if judge_pass[i] else "fail",
                confidence=float(confidence[i]),
            )
            for i, item in enumerate(items)
        ],
    )
    start = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
    CalibrationPair.objects.bulk_create(
        CalibrationPair(
            organization=project.organization,
            project=project,
            kind=PairKind.JUDGE,
            conversation=item.conversation,
            queue_item=item,
            judge=judge,
            judge_version="v1",
            criterion=criterion,
            question_key="quality",
            judge_label="pass" if judge_pass[i] else "fail",
            judge_confidence=float(confidence[i]),
            judge_pass=bool(judge_pass[i]),
            human_pass=bool(human[i]),
            inclusion_probability=1.0,
            labeled_at=start + dt.timedelta(days=7 * weeks * i / n),
        )
        for i, item in enumerate(items)
    )
    ConversationSignal.objects.bulk_create(
        ConversationSignal(
            conversation=item.conversation, project=project, kind="frustration", source="derived", turn=1
        )
        for i, item in enumerate(items)
        if i % 5 == 0 and (not human[i] or i % 10 == 0)
    )
    return queue, items


__all__ = ["add_items", "calibration_queue", "label", "realistic_pairs", "score"]
