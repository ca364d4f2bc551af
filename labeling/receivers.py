"""Labeling's receivers for core hooks, registered at app start-up (LabelingConfig.ready)."""

from __future__ import annotations

from django.db import transaction

from reviewapp import hooks
from reviewapp.models import Project


@hooks.on_conversations_created
def sample_new_conversations(*, project: Project, conversation_ids: list[int]) -> None:
    from labeling import selectors
    from labeling.tasks import conversations_sample

    # Most projects have no sampling queue: skip the task (and the broker round trip) entirely.
    if not selectors.project_has_sampling_queues(project_id=project.pk):
        return
    transaction.on_commit(lambda: conversations_sample.delay(project.pk, conversation_ids))
