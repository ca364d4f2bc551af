"""Labeling's receivers for core hooks, registered at app start-up (LabelingConfig.ready)."""

from __future__ import annotations

from reviewapp import hooks
from reviewapp.models import Conversation, Organization, Project
from reviewapp.principal import CAPABILITIES


@hooks.on_conversations_created
@hooks.on_conversations_changed
def sample_conversations(*, project: Project, conversation_ids: list[int]) -> None:
    """New conversations, and stored ones that gained a judge score or feedback (a score or
    thumbs-down rule may match them now): sampling owes them a look. Recorded in the caller's
    transaction, enqueued after it commits."""
    from labeling import selectors, services

    # Most projects have no sampling queue: no outbox row, no task, no broker round trip.
    if not selectors.project_has_sampling_queues(project_id=project.pk):
        return
    services.sampling_work_record(project_id=project.pk, conversation_ids=conversation_ids)


def _labeled_rows():  # type: ignore[no-untyped-def]
    from labeling import selectors

    return selectors.conversation_labeled_rows()


def _queued_rows():  # type: ignore[no-untyped-def]
    from labeling import selectors

    return selectors.conversation_queued_rows()


hooks.on_conversation_condition("labeled", _labeled_rows)
hooks.on_conversation_condition("queued", _queued_rows)


@hooks.on_conversation_panels
def labeling_panel(*, organization: Organization, conversation: Conversation, role: str) -> list[hooks.Panel]:
    """The queues the conversation is in, who labeled it there and the final answers, for
    those who manage labeling (the links lead to their pages)."""
    from labeling import selectors

    if "labeling.manage" not in CAPABILITIES.get(role, frozenset()):
        return []
    rows = selectors.conversation_labeling(organization=organization, conversation_id=conversation.pk)
    return [
        hooks.Panel(
            title="Human labels", template="labeling/_conversation_panel.html", context={"rows": rows}, order=10
        )
    ]
