"""Reads of golden-dataset runs, tenant first. A project key sees its own project's datasets
only; another organization's (or project's) ids are not found (404)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from evaluation import gates
from evaluation.models import Dataset, DatasetRun, DatasetRunResult, DatasetVersion, DatasetVersionItem
from reviewapp.errors import NotFound
from reviewapp.models import Organization, Project


def dataset_get(*, organization: Organization, dataset_id: int, project: Project | None = None) -> Dataset:
    qs = Dataset.objects.select_related("project").filter(organization=organization, pk=dataset_id)
    if project is not None:
        qs = qs.filter(project=project)
    dataset = qs.first()
    if dataset is None:
        raise NotFound("Dataset not found.")
    return dataset


def dataset_version_get(*, organization: Organization, dataset: Dataset, number: int) -> DatasetVersion:
    version = DatasetVersion.objects.filter(organization=organization, dataset=dataset, number=number).first()
    if version is None:
        raise NotFound("Dataset version not found.")
    return version


def version_items(*, version: DatasetVersion) -> dict[str, tuple[int, gates.VersionItem]]:
    """Key -> (row id, the gate's view of the item), in the version's order."""
    rows = DatasetVersionItem.objects.filter(version=version).order_by("id")
    return {
        key: (pk, gates.VersionItem(key=key, critical=critical, tags=_tags(tags), split=split))
        for pk, key, critical, tags, split in rows.values_list("id", "key", "critical", "tags", "split")
    }


def _tags(value: Any) -> tuple[str, ...]:
    return tuple(t for t in value if isinstance(t, str)) if isinstance(value, list) else ()


def dataset_run_list(
    *,
    organization: Organization,
    dataset: Dataset,
    version: DatasetVersion | None = None,
    agent_version: str | None = None,
) -> QuerySet[DatasetRun]:
    """The dataset's runs (newest first when paginated by -id)."""
    qs = DatasetRun.objects.select_related("version").filter(organization=organization, dataset=dataset)
    if version is not None:
        qs = qs.filter(version=version)
    if agent_version:
        qs = qs.filter(agent_version=agent_version)
    return qs


def dataset_run_get(*, organization: Organization, dataset: Dataset, run_id: int) -> DatasetRun:
    run = (
        DatasetRun.objects.select_related("version", "dataset")
        .filter(organization=organization, dataset=dataset, pk=run_id)
        .first()
    )
    if run is None:
        raise NotFound("Run not found.")
    return run


def dataset_run_results(*, run: DatasetRun) -> QuerySet[DatasetRunResult]:
    return DatasetRunResult.objects.select_related("item").filter(run=run)


def run_payload(run: DatasetRun) -> dict[str, Any]:
    """A run as the API and the pages show it: the stored figures and the verdict."""
    metrics = run.metrics or {}
    return {
        "id": run.pk,
        "dataset": run.dataset_id,
        "version": run.version.number,
        "version_hash": run.version_hash,
        "agent_version": run.agent_version,
        "created_at": run.created_at.isoformat(),
        "gate": run.gate,
        "reasons": list(run.reasons or []),
        "warnings": list(metrics.get("warnings", [])),
        "item_count": run.item_count,
        "passed_count": run.passed_count,
        "critical_count": run.critical_count,
        "critical_passed_count": run.critical_passed_count,
        "pass_rate": metrics.get("pass_rate"),
        "critical_pass_rate": metrics.get("critical_pass_rate"),
        "wilson_lower": metrics.get("wilson_lower"),
        "wilson_upper": metrics.get("wilson_upper"),
        "critical_lower": metrics.get("critical_lower"),
        "needed_items": metrics.get("needed_items"),
        "critical_needed_items": metrics.get("critical_needed_items"),
        "segments": metrics.get("segments", []),
        "missing": metrics.get("missing", []),
        "not_worse": metrics.get("not_worse"),
        "comparison": metrics.get("comparison"),
        "gate_settings": run.gate_settings,
    }


# --- comparing two runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemChange:
    item_id: str
    critical: bool
    # None: the item is not in that run's version; False also covers "no result" (missing).
    a_passed: bool | None
    b_passed: bool | None
    a_score: float | None
    b_score: float | None


REGRESSION = "regression"
FIX = "fix"
STILL_FAILING = "still_failing"
STILL_PASSING = "still_passing"
ONLY_A = "only_in_a"
ONLY_B = "only_in_b"
# Regressions first, then fixes, then failures that did not change.
ORDER = (REGRESSION, FIX, STILL_FAILING, ONLY_A, ONLY_B)


def _outcomes(run: DatasetRun) -> dict[str, tuple[bool, bool, float | None]]:
    """Key -> (critical, passed, score) for every item of the run's version (no result: failed)."""
    results = {
        key: (passed, score)
        for key, passed, score in DatasetRunResult.objects.filter(run=run).values_list("item__key", "passed", "score")
    }
    out = {}
    for key, critical in DatasetVersionItem.objects.filter(version_id=run.version_id).values_list("key", "critical"):
        passed, score = results.get(key, (False, None))
        out[key] = (critical, passed, score)
    return out


def _kind(a: bool | None, b: bool | None) -> str:
    if a is None:
        return ONLY_B
    if b is None:
        return ONLY_A
    if a and not b:
        return REGRESSION
    if b and not a:
        return FIX
    return STILL_PASSING if a else STILL_FAILING


# Changed items listed in one answer at most; the counts are always complete.
MAX_COMPARE_ITEMS = 10_000


def dataset_run_compare(*, run_a: DatasetRun, run_b: DatasetRun, limit: int = MAX_COMPARE_ITEMS) -> dict[str, Any]:
    """Item by item, `a` the earlier (baseline) run and `b` the later: regressions (passed in
    a, failed in b) first, then fixes, then unchanged failures, then items in only one of the
    two versions; unchanged passes are only counted. Within a group, critical items first,
    then by item id."""
    a = _outcomes(run_a)
    b = _outcomes(run_b)
    groups: dict[str, list[ItemChange]] = {kind: [] for kind in (*ORDER, STILL_PASSING)}
    for key in a.keys() | b.keys():
        ca, pa, sa = a.get(key, (False, None, None))
        cb, pb, sb = b.get(key, (False, None, None))
        groups[_kind(pa, pb)].append(ItemChange(key, bool(ca or cb), pa, pb, sa, sb))
    for changes in groups.values():
        changes.sort(key=lambda c: (not c.critical, c.item_id))
    listed = [{"change": kind, **vars(c)} for kind in ORDER for c in groups[kind]]
    return {
        "a": run_a.pk,
        "b": run_b.pk,
        "same_version": run_a.version_id == run_b.version_id,
        "counts": {kind: len(changes) for kind, changes in groups.items()},
        "items": listed[:limit],
        "truncated": len(listed) > limit,
    }
