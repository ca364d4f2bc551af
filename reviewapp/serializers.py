"""Serializers and payloads the core shares with the other apps: the error shape every API
answers with, and a conversation as the API shows it (the claim sends one with every item).

Other apps import these from here, never from `reviewapp.apis` (docs/architecture.md, "Import
rules")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from reviewapp.models import Conversation, Feedback, JudgeScore, SignalKind, SignalSource

ERROR_RESPONSE = inline_serializer(
    "Error",
    fields={
        "message": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)


class JudgeScoreOutputSerializer(serializers.Serializer):
    judge = serializers.CharField()
    judge_version = serializers.CharField()
    criterion = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    label = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    reasoning = serializers.CharField()
    created_at = serializers.DateTimeField()


class FeedbackOutputSerializer(serializers.Serializer):
    rating = serializers.CharField(allow_null=True)
    comment = serializers.CharField()
    user_rephrased = serializers.BooleanField()
    escalated_by_user = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ConversationSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    external_id = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    agent_version = serializers.CharField()
    end_user_id = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    metadata = serializers.DictField()
    feedback_rating = serializers.CharField(allow_null=True)
    user_rephrased = serializers.BooleanField()
    escalated_by_user = serializers.BooleanField()
    judge_scores = JudgeScoreOutputSerializer(many=True)


class ConversationDetailSerializer(ConversationSummarySerializer):
    messages = serializers.ListField(child=serializers.DictField())
    feedback = FeedbackOutputSerializer(many=True)


class ConversationSignalOutputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SignalKind.choices)
    source = serializers.ChoiceField(
        choices=SignalSource.choices, help_text="`agent`: sent in feedback; `derived`: found in the transcript."
    )
    turn = serializers.IntegerField(allow_null=True, help_text="Index into `messages` (derived signals).")
    evidence = serializers.CharField(help_text="A short snippet of the turn (derived signals).")


class ConversationWithSignalsSerializer(ConversationDetailSerializer):
    """The conversation detail API's answer: the detail plus its signals. (The claim sends the
    plain detail, without the extra query.)"""

    signals = ConversationSignalOutputSerializer(many=True, source="signals.all")


_DATETIME = serializers.DateTimeField()


def _iso(value: Any) -> str | None:
    return _DATETIME.to_representation(value) if value is not None else None


def conversation_detail_payload(
    conversation: Conversation, *, feedback: list[Feedback], judge_scores: list[JudgeScore]
) -> dict[str, Any]:
    """ConversationDetailSerializer's output, built directly: the claim sends one with every
    item, and the nested serializers cost more than the rest of the claim. A test keeps the two
    identical."""
    return {
        "id": conversation.pk,
        "project": conversation.project.slug,
        "external_id": conversation.external_id,
        "occurred_at": _iso(conversation.occurred_at),
        "received_at": _iso(conversation.received_at),
        "agent_version": conversation.agent_version,
        "end_user_id": conversation.end_user_id,
        "tags": [str(t) for t in conversation.tags],
        "metadata": {str(k): v for k, v in conversation.metadata.items()},
        "feedback_rating": conversation.feedback_rating,
        "user_rephrased": conversation.user_rephrased,
        "escalated_by_user": conversation.escalated_by_user,
        "judge_scores": [
            {
                "judge": s.judge,
                "judge_version": s.judge_version,
                "criterion": s.criterion,
                "score": None if s.score is None else float(s.score),
                "label": s.label,
                "confidence": None if s.confidence is None else float(s.confidence),
                "reasoning": s.reasoning,
                "created_at": _iso(s.created_at),
            }
            for s in judge_scores
        ],
        "messages": [{str(k): v for k, v in m.items()} for m in conversation.messages],
        "feedback": [
            {
                "rating": f.rating,
                "comment": f.comment,
                "user_rephrased": f.user_rephrased,
                "escalated_by_user": f.escalated_by_user,
                "created_at": _iso(f.created_at),
            }
            for f in feedback
        ],
    }
