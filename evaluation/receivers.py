"""Evaluation's receivers for core hooks, registered at start-up (EvaluationConfig.ready).
Each only schedules work after commit: no query on the caller's path."""

from __future__ import annotations

from evaluation import services, services_datasets
from reviewapp import hooks
from reviewapp.models import Project


@hooks.on_items_finalized
def items_finalized(*, item_ids: list[int]) -> None:
    services.pairs_items_enqueue(item_ids=item_ids)
    services_datasets.dataset_rules_enqueue(item_ids=item_ids)


@hooks.on_conversations_changed
def judge_scores_arrived(*, project: Project, conversation_ids: list[int]) -> None:
    # A late score (or feedback) on stored conversations; the task finds the final items among
    # them in one query and does nothing for the rest.
    services.pairs_conversations_enqueue(conversation_ids=conversation_ids)


@hooks.on_action_decided
def action_decided(*, action_id: int) -> None:
    services.pairs_action_enqueue(action_id=action_id)
