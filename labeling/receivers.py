"""Labeling's receivers for core hooks, registered at app start-up (LabelingConfig.ready)."""

from __future__ import annotations

import logging

from django.db import transaction

from reviewapp import hooks
from reviewapp.models import Project

logger = logging.getLogger(__name__)


@hooks.on_conversations_created
def sample_new_conversations(*, project: Project, conversation_ids: list[int]) -> None:
    from labeling import selectors
    from labeling.tasks import conversations_sample

    # Most projects have no sampling queue: skip the task (and the broker round trip) entirely.
    if not selectors.project_has_sampling_queues(project_id=project.pk):
        return
    project_id = project.pk

    def enqueue() -> None:
        # The conversations are committed: whatever happens to their sampling (a broker down,
        # or, with in-process tasks, an error inside the task) must not turn the ingest into
        # an error. Per-queue failures are recorded on the queue by the task itself.
        try:
            conversations_sample.delay(project_id, conversation_ids)
        except Exception:
            logger.exception("sampling of %d conversations of project %s failed", len(conversation_ids), project_id)

    transaction.on_commit(enqueue)
