"""Linking actions to their conversations, whichever arrives first."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from escalations.models import Action
from reviewapp.models import Conversation


def actions_link_conversations(*, project_id: int, conversation_ids: list[int]) -> int:
    """Conversations just stored in the project: link the actions that named them by
    `conversation_external_id` before they arrived: one UPDATE for the batch, inside the
    ingest's transaction. A project with no action waiting for its conversation (most) pays
    one probe of the partial index action_conversation_unlinked instead. Returns how many
    actions were linked."""
    if not conversation_ids:
        return 0
    waiting = Action.objects.filter(project_id=project_id, conversation__isnull=True).exclude(
        conversation_external_id=""
    )
    if not waiting.exists():  # most batches: one probe of the partial index, nothing to update
        return 0
    arrived = Conversation.objects.filter(project_id=project_id, pk__in=conversation_ids)
    return waiting.filter(conversation_external_id__in=arrived.values("external_id")).update(
        conversation_id=Subquery(arrived.filter(external_id=OuterRef("conversation_external_id")).values("pk")[:1])
    )
