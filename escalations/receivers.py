"""Escalations' receivers for core hooks, registered at app start-up (EscalationsConfig.ready)."""

from __future__ import annotations

from typing import Any

from reviewapp import hooks
from reviewapp.models import Conversation, Organization, Project
from reviewapp.principal import CAPABILITIES


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


@hooks.on_conversation_panels
def actions_panel(*, organization: Organization, conversation: Conversation, role: str) -> list[hooks.Panel]:
    """The actions the agent asked for in this conversation, for those who may see actions."""
    from escalations import selectors

    if "actions.read" not in CAPABILITIES.get(role, frozenset()):
        return []
    actions = selectors.conversation_actions(organization=organization, conversation_id=conversation.pk)
    return [
        hooks.Panel(
            title="Actions",
            template="escalations/_conversation_panel.html",
            context={"actions": actions, "shown": selectors.CONVERSATION_ACTIONS_SHOWN},
            order=20,
        )
    ]
