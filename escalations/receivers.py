"""Escalations' receivers for core hooks, registered at app start-up (EscalationsConfig.ready)."""

from __future__ import annotations

from typing import Any

from reviewapp import hooks
from reviewapp.models import Project


@hooks.on_conversations_created
def link_actions_to_conversations(*, project: Project, conversation_ids: list[int]) -> None:
    """An action may name its conversation before the conversation is ingested: link it now,
    in the ingest's transaction."""
    from escalations import services

    services.actions_link_conversations(project_id=project.pk, conversation_ids=conversation_ids)


@hooks.on_action_facts
def action_decision_facts(action_ids: list[int]) -> list[dict[str, Any]]:
    from escalations import selectors

    return selectors.actions_decision_facts(action_ids)
