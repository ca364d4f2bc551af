"""A dataset version with runs made directly as rows (not through the dataset or run services,
which other branches own), for the pairwise comparison tests."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from evaluation.models import Dataset, DatasetRun, DatasetRunResult, DatasetVersion, DatasetVersionItem
from tests.factories import ConversationFactory

_names = itertools.count(1)


def make_pairwise_version(
    project, *, keys: list[str] | None = None, tags: dict[str, list[str]] | None = None, name: str = "", **gate
) -> tuple[Dataset, DatasetVersion, dict[str, DatasetVersionItem]]:
    """A dataset of `project` whose version 1 holds one item per key, each on a conversation of
    its own, tagged from `tags`."""
    keys = keys if keys is not None else ["a", "b", "c"]
    tags = tags or {}
    name = name or f"golden {next(_names)}"
    dataset = Dataset.objects.create(organization=project.organization, project=project, name=name, **gate)
    version = DatasetVersion.objects.create(
        organization=project.organization,
        dataset=dataset,
        number=1,
        content_hash=hashlib.sha256(repr(sorted(keys)).encode()).hexdigest(),
        item_count=len(keys),
    )
    items = {}
    for key in keys:
        conversation = ConversationFactory(project=project)
        items[key] = DatasetVersionItem.objects.create(
            version=version,
            key=key,
            conversation=conversation,
            tags=tags.get(key, []),
            input_messages=[{"role": "user", "content": f"question {key}"}],
        )
    return dataset, version, items


def make_pairwise_run(
    dataset: Dataset,
    version: DatasetVersion,
    outputs: dict[str, Any],
    *,
    agent_version: str,
    gate: str = "pass",
) -> DatasetRun:
    """A run of `agent_version` whose result for each key has `output` (all passed)."""
    run = DatasetRun.objects.create(
        organization_id=dataset.organization_id,
        dataset=dataset,
        version=version,
        version_hash=version.content_hash,
        agent_version=agent_version,
        item_count=len(outputs),
        passed_count=len(outputs),
        gate=gate,
    )
    by_key = dict(version.items.values_list("key", "id"))
    DatasetRunResult.objects.bulk_create(
        DatasetRunResult(run=run, item_id=by_key[key], passed=True, output=output) for key, output in outputs.items()
    )
    return run
