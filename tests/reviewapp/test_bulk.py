"""reviewapp.bulk: the ingest path's inserts store exactly what bulk_create would, on every backend."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from reviewapp import bulk, services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import Conversation, ConversationTag, JudgeScore
from tests.factories import ProjectFactory, conversation_payload

pytestmark = pytest.mark.django_db

# COPY's text format escapes tabs, newlines and backslashes; JSON escapes quotes and controls.
AWKWARD = 'tab\there, newline\nthere, back\\slash, "quotes", \\N, emoji 🛫, accents ÀÉÎ, \x01 control'


def _conversation_row(project, external_id: str, **overrides: object) -> dict:
    return {
        "organization_id": project.organization_id,
        "project_id": project.pk,
        "external_id": external_id,
        "messages": [{"role": "user", "content": AWKWARD}],
        "occurred_at": dt.datetime(
            2026, 11, 20, 10, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
        ),
        "received_at": dt.datetime(2026, 11, 20, 4, 30, tzinfo=dt.UTC),
        "agent_version": AWKWARD[:100],
        "end_user_id": "",
        "tags": ["refund", "ünïcode"],
        "metadata": {"big": 2**70, "float": 0.1, "nested": {"list": [1, None, True, "x"]}, "text": AWKWARD},
        "feedback_rating": None,
        **overrides,
    }


def test_rows_are_stored_exactly_and_ids_come_back_in_row_order():
    project = ProjectFactory()
    rows = [_conversation_row(project, f"c-{i}") for i in range(3)]

    with transaction.atomic():
        ids = bulk.insert_rows(Conversation, rows, return_ids=True)

    stored = {c.pk: c for c in Conversation.objects.order_by("pk")}
    assert list(stored) == ids
    for row, pk in zip(rows, ids, strict=True):
        conversation = stored[pk]
        assert conversation.external_id == row["external_id"]
        assert conversation.messages == row["messages"]
        assert conversation.metadata == row["metadata"]
        assert conversation.tags == row["tags"]
        assert conversation.agent_version == row["agent_version"]
        assert conversation.occurred_at == row["occurred_at"]
        assert conversation.received_at == row["received_at"]
        # Fields left out take the model's defaults, as with bulk_create.
        assert conversation.user_rephrased is False
        assert conversation.ingested_by_key_id is None


def test_a_clash_on_a_unique_constraint_raises_integrity_error_and_stores_nothing():
    project = ProjectFactory()
    with transaction.atomic():
        bulk.insert_rows(Conversation, [_conversation_row(project, "taken")], return_ids=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.insert_rows(
            Conversation,
            [_conversation_row(project, "new"), _conversation_row(project, "taken")],
            return_ids=True,
        )

    assert list(Conversation.objects.values_list("external_id", flat=True)) == ["taken"]


def test_ignore_conflicts_skips_stored_rows_and_keeps_the_first_of_repeats():
    project = ProjectFactory()
    with transaction.atomic():
        (conversation_id,) = bulk.insert_rows(Conversation, [_conversation_row(project, "c")], return_ids=True)
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)

    def score(value: float) -> dict:
        return {"conversation_id": conversation_id, "judge": "j", "criterion": "c", "score": value, "created_at": now}

    with transaction.atomic():
        bulk.insert_rows(JudgeScore, [score(0.1)], ignore_conflicts=True)
        bulk.insert_rows(
            JudgeScore,
            [
                score(0.2),
                {**score(0.3), "judge_version": "2", "reasoning": AWKWARD},
                {**score(0.4), "judge_version": "2"},
            ],
            ignore_conflicts=True,
        )

    assert list(JudgeScore.objects.order_by("judge_version").values_list("judge_version", "score", "reasoning")) == [
        ("", 0.1, ""),
        ("2", 0.3, AWKWARD),
    ]


def test_returning_answers_the_column_of_the_rows_really_inserted_and_stores_them_exactly():
    project = ProjectFactory()
    with transaction.atomic():
        first, second = bulk.insert_rows(
            Conversation, [_conversation_row(project, "a"), _conversation_row(project, "b")], return_ids=True
        )
    now = dt.datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=dt.UTC)
    stored = {"conversation_id": first, "judge": "j", "criterion": "c", "score": 0.1, "created_at": now}
    with transaction.atomic():
        bulk.insert_rows(JudgeScore, [stored], ignore_conflicts=True)

    with transaction.atomic():
        returned = bulk.insert_rows(
            JudgeScore,
            [{**stored, "score": 0.5}, {**stored, "conversation_id": second, "reasoning": AWKWARD}],
            ignore_conflicts=True,
            returning="conversation_id",
        )

    assert returned == [second]
    assert list(
        JudgeScore.objects.order_by("conversation_id").values_list("conversation_id", "score", "reasoning")
    ) == [
        (first, 0.1, ""),
        (second, 0.1, AWKWARD),
    ]
    assert JudgeScore.objects.get(conversation_id=second).created_at == now
    with pytest.raises(ValueError, match="returning is for ignore_conflicts"):
        bulk.insert_rows(JudgeScore, [stored], returning="conversation_id")


def test_rows_without_ids_and_an_empty_list_are_fine():
    project = ProjectFactory()
    with transaction.atomic():
        (conversation_id,) = bulk.insert_rows(Conversation, [_conversation_row(project, "c")], return_ids=True)
        assert bulk.insert_rows(ConversationTag, [], return_ids=True) == []
        bulk.insert_rows(ConversationTag, [{"conversation_id": conversation_id, "project_id": project.pk, "tag": "a"}])

    assert list(ConversationTag.objects.values_list("conversation_id", "tag")) == [(conversation_id, "a")]


def test_ids_of_rows_skipped_on_conflict_cannot_be_asked_for():
    with pytest.raises(ValueError, match="cannot be returned"):
        bulk.insert_rows(JudgeScore, [{}], return_ids=True, ignore_conflicts=True)


def test_a_judge_score_repeated_inside_one_new_conversation_is_stored_once_and_the_first_wins():
    project = ProjectFactory()
    repeated = {"judge": "gpt-judge", "judge_version": "1", "criterion": "correctness"}
    item = ConversationIn.model_validate(
        conversation_payload("twice-scored", judge_scores=[{**repeated, "score": 0.9}, {**repeated, "score": 0.1}])
    )

    services.conversations_ingest(project=project, conversations=[item])

    assert list(JudgeScore.objects.values_list("criterion", "score")) == [("correctness", 0.9)]
