"""A golden dataset for the demo: the agreed items of the QA queue promoted with their lineage,
frozen as version 1 and tagged `prod`, and two release-gate runs on it (the agent version in
production passing, a candidate with regressions failing), so the datasets and runs pages have
content on first run."""

from __future__ import annotations

import random
from dataclasses import dataclass

from evaluation import services_datasets, services_runs
from evaluation.models import Dataset
from labeling.models import ItemStatus, Queue, QueueItem
from reviewapp.models import Project

DEMO_DATASET = "Support golden set"
PROD_AGENT = "support-agent-2026.11"
CANDIDATE_AGENT = "support-agent-2026.12-rc1"


@dataclass
class DatasetSeedResult:
    items: int = 0
    runs: int = 0
    skipped: bool = False


def evaluation_demo_seed(*, project: Project, queue: Queue, seed: int = 7) -> DatasetSeedResult:
    """Safe to run again: a project that has the demo dataset already is left alone."""
    if Dataset.objects.filter(project=project, name=DEMO_DATASET).exists():
        return DatasetSeedResult(skipped=True)
    final = list(
        QueueItem.objects.filter(queue=queue, status=ItemStatus.COMPLETED, final_answers__isnull=False)
        .order_by("id")
        .values_list("id", "final_answers")
    )
    if not final:
        return DatasetSeedResult(skipped=True)
    dataset = services_datasets.dataset_create(
        project=project,
        values={
            "name": DEMO_DATASET,
            "description": "Conversations the QA annotators agreed on; the release gate of the support agent.",
        },
    )
    rng = random.Random(seed)
    entries = [
        services_datasets.ItemEntry(
            queue_item=item_id,
            # Wrong answers the team must never ship again are critical.
            critical=(answers or {}).get("correct") == "incorrect",
            tags=[rng.choice(["refunds", "bookings", "baggage"])],
        )
        for item_id, answers in final
    ]
    added = services_datasets.dataset_items_add(dataset=dataset, entries=entries)
    version = services_datasets.dataset_version_freeze(dataset=dataset, note="First golden set from the QA queue")
    services_datasets.dataset_version_tag(version=version, tags=["prod"])
    keys = list(version.items.order_by("key").values_list("key", "critical"))
    # The production agent passes everything critical and nearly all the rest; the candidate
    # regresses on a few items, one of them critical: its gate fails, and compare shows why.
    prod = [services_runs.RunResultIn(item_id=k, passed=critical or rng.random() > 0.02) for k, critical in keys]
    regressed = {k for k, _ in rng.sample(keys, k=max(1, len(keys) // 12))}
    regressed.add(next((k for k, critical in keys if critical), keys[0][0]))
    candidate = [
        services_runs.RunResultIn(item_id=r.item_id, passed=r.passed and r.item_id not in regressed) for r in prod
    ]
    services_runs.dataset_run_create(dataset=dataset, version=version, agent_version=PROD_AGENT, results=prod)
    services_runs.dataset_run_create(dataset=dataset, version=version, agent_version=CANDIDATE_AGENT, results=candidate)
    return DatasetSeedResult(items=len(added.added), runs=2)
