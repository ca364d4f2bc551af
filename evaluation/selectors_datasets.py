"""Golden dataset reads, organization first; a project key sees its own project's datasets only.
Another organization's (or project's) dataset, item or version looks missing (404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from evaluation import dataset_items
from evaluation.models import Dataset, DatasetItem, DatasetVersion, DatasetVersionItem
from reviewapp import validation
from reviewapp.errors import NotFound
from reviewapp.models import Organization, Project


def dataset_list(*, organization: Organization, project: Project | None = None) -> QuerySet[Dataset]:
    qs = Dataset.objects.filter(organization=organization).select_related("project")
    if project is not None:
        qs = qs.filter(project=project)
    return qs.order_by("project__slug", "name", "id")


def dataset_get(*, organization: Organization, dataset_id: int, project: Project | None = None) -> Dataset:
    """`project`: the caller's key's project, when the caller is an agent."""
    dataset = dataset_list(organization=organization, project=project).filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound("Dataset not found.")
    return dataset


def dataset_item_list(*, dataset: Dataset) -> QuerySet[DatasetItem]:
    return DatasetItem.objects.filter(dataset=dataset).order_by("id")


def dataset_item_get(*, dataset: Dataset, item_id: int) -> DatasetItem:
    item = DatasetItem.objects.filter(dataset=dataset, pk=item_id).first()
    if item is None:
        raise NotFound("Item not found.")
    return item


def dataset_version_list(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.filter(dataset=dataset).order_by("-number")


def dataset_version_get(*, dataset: Dataset, number: int) -> DatasetVersion:
    if not 1 <= number <= validation.POSITIVE[1]:  # beyond the column: simply missing
        raise NotFound("Version not found.")
    version = DatasetVersion.objects.filter(dataset=dataset, number=number).first()
    if version is None:
        raise NotFound("Version not found.")
    return version


def dataset_version_items(*, version: DatasetVersion) -> QuerySet[DatasetVersionItem]:
    return DatasetVersionItem.objects.filter(version=version).order_by("key")


def dataset_version_compare(*, a: DatasetVersion, b: DatasetVersion) -> dict[str, Any]:
    """Added, removed and changed items (by key, with the fields that changed) from a to b."""
    # Keys and hashes first: only the items whose hash differs are read whole.
    hashes_a = dict(DatasetVersionItem.objects.filter(version=a).values_list("key", "content_hash"))
    hashes_b = dict(DatasetVersionItem.objects.filter(version=b).values_list("key", "content_hash"))
    differ = [k for k in hashes_a.keys() & hashes_b.keys() if hashes_a[k] != hashes_b[k]]
    fields = ("key", "content_hash", *dataset_items.CONTENT_FIELDS)

    def whole(version: DatasetVersion) -> dict[str, dict[str, Any]]:
        rows = DatasetVersionItem.objects.filter(version=version, key__in=differ).values(*fields) if differ else []
        return {row["key"]: row for row in rows}

    full_a, full_b = whole(a), whole(b)
    side_a = {k: full_a.get(k, {"content_hash": h}) for k, h in hashes_a.items()}
    side_b = {k: full_b.get(k, {"content_hash": h}) for k, h in hashes_b.items()}
    return {"a": a.number, "b": b.number, **dataset_items.compare(side_a, side_b)}
