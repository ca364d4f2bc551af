"""Golden dataset fixtures: final labels made through the labeling services, datasets and
versions made through evaluation's."""

from __future__ import annotations

from typing import Any

from evaluation import services_datasets
from evaluation.models import Dataset, DatasetVersion
from labeling.models import Queue, QueueItem
from tests.evaluation.factories import label
from tests.labeling.factories import add_items, make_queue


def final_items(
    queue: Queue, annotator: Any, answers: list[dict[str, Any]], **conversation_fields: Any
) -> list[QueueItem]:
    """One new conversation per answers dict, labelled by `annotator` (one label makes an item
    final in a queue of one annotation per item)."""
    items = add_items(queue, len(answers), **conversation_fields)
    for item, given in zip(items, answers, strict=True):
        label(item, annotator, given)
    return [QueueItem.objects.get(pk=item.pk) for item in items]


def dataset_with_items(
    project: Any, annotator: Any, n: int = 3, *, name: str = "Golden", queue: Queue | None = None
) -> Dataset:
    queue = queue or make_queue(project, name=f"{name} queue")
    items = final_items(queue, annotator, [{"quality": "good"}] * n)
    dataset = services_datasets.dataset_create(project=project, values={"name": name})
    services_datasets.dataset_items_add(
        dataset=dataset, entries=[services_datasets.ItemEntry(queue_item=i.pk) for i in items]
    )
    return dataset


def freeze(dataset: Dataset, note: str = "") -> DatasetVersion:
    return services_datasets.dataset_version_freeze(dataset=dataset, note=note)


def make_frozen_dataset(project: Any, conversation: Any, name: str = "Golden") -> Dataset:
    """A dataset holding one item, from a made-final item of a new queue, frozen as version 1
    (for tests that only need the rows, not the labeling path)."""
    from django.utils import timezone

    from labeling import services as labeling_services
    from labeling.models import ItemStatus

    queue = make_queue(project, name=f"{name} source")
    labeling_services.queue_items_add(queue=queue, conversation_ids=[conversation.pk], user=None)
    item = QueueItem.objects.get(queue=queue)
    QueueItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.COMPLETED,
        final_answers={"quality": "good"},
        final_source="review",
        completed_at=timezone.now(),
    )
    dataset = services_datasets.dataset_create(project=project, values={"name": name})
    services_datasets.dataset_items_add(dataset=dataset, entries=[services_datasets.ItemEntry(queue_item=item.pk)])
    freeze(dataset)
    return dataset
