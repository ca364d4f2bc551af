"""Frozen dataset versions made directly (rows, not the dataset services) and runs on them."""

from __future__ import annotations

import hashlib
from typing import Any

from evaluation import services_runs
from evaluation.models import Dataset, DatasetRun, DatasetVersion, DatasetVersionItem


def make_version(project, *, items: list[dict[str, Any]] | None = None, name: str = "golden", **gate: Any):
    """A dataset of `project` with version 1 holding `items` (dicts of key, critical, tags,
    split); three plain items by default. `gate` sets the dataset's gate fields."""
    dataset = Dataset.objects.create(organization=project.organization, project=project, name=name, **gate)
    if items is None:
        items = [{"key": "a"}, {"key": "b"}, {"key": "c"}]
    version = DatasetVersion.objects.create(
        organization=project.organization,
        dataset=dataset,
        number=1,
        content_hash=hashlib.sha256(repr(sorted(i["key"] for i in items)).encode()).hexdigest(),
        item_count=len(items),
        critical_count=sum(1 for i in items if i.get("critical")),
    )
    DatasetVersionItem.objects.bulk_create(
        DatasetVersionItem(
            version=version,
            key=i["key"],
            critical=i.get("critical", False),
            tags=i.get("tags", []),
            split=i.get("split", "test"),
            input_messages=[{"role": "user", "content": f"question {i['key']}"}],
        )
        for i in items
    )
    return dataset, version


def make_run(dataset, version, passed: dict[str, bool], *, agent_version: str = "v1") -> DatasetRun:
    results = [services_runs.RunResultIn(item_id=k, passed=v) for k, v in passed.items()]
    run, _ = services_runs.dataset_run_create(
        dataset=dataset, version=version, agent_version=agent_version, results=results
    )
    return run
