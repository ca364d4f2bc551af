"""Labeling's receivers for core hooks, registered at app start-up (LabelingConfig.ready)."""

from __future__ import annotations

from reviewapp import hooks
from reviewapp.models import Project


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
