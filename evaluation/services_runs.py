"""Runs of an agent version on a frozen dataset version: the results are stored, the gate
(evaluation/gates.py) judges them, and the run keeps the version hash and the gate settings it
was judged with, so it still reads the same after the dataset's thresholds change."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evaluation import gates, selectors_pairwise, selectors_runs, stats
from evaluation.models import Dataset, DatasetRun, DatasetRunResult, DatasetVersion
from reviewapp import bulk, validation
from reviewapp.errors import ValidationFailed

# A CI job sends one request per run. The request body limit (DATA_UPLOAD_MAX_MEMORY_SIZE)
# bounds it too: 100,000 bare results are about 5 MB.
MAX_RUN_RESULTS = 100_000
MAX_ITEM_ID = 64  # DatasetItem.key
MAX_AGENT_VERSION = 100  # DatasetRun.agent_version
# Unknown item ids named in a 400.
_NAMED = 20


@dataclass(frozen=True)
class RunResultIn:
    item_id: str
    passed: bool
    score: float | None = None
    output: Any = None


def _field_error(message: str, path: str) -> ValidationFailed:
    return validation.InputError(message, path)


def run_results_parse(raw: Any) -> list[RunResultIn]:
    """Results as sent (`[{"item_id", "passed", "score"?, "output"?}, ...]`), checked one by
    one; a 400 names the first bad field (`results[3].passed`). Hand-written rather than a DRF
    serializer: a serializer costs about 50 µs per result, five seconds for a full run."""
    if not isinstance(raw, list):
        raise _field_error("Send a list of results.", "results")
    if len(raw) > MAX_RUN_RESULTS:
        raise _field_error(f"At most {MAX_RUN_RESULTS} results per run; got {len(raw)}.", "results")
    out = []
    seen: dict[str, int] = {}
    for i, row in enumerate(raw):
        where = f"results[{i}]"
        if not isinstance(row, dict):
            raise _field_error("Each result must be an object.", where)
        extra = set(row) - {"item_id", "passed", "score", "output"}
        if extra:
            raise _field_error(f"Unknown field(s): {', '.join(sorted(extra)[:5])}.", where)
        item_id = row.get("item_id")
        if not isinstance(item_id, str) or not item_id or len(item_id) > MAX_ITEM_ID:
            raise _field_error(f"An item id: text of 1 to {MAX_ITEM_ID} characters.", f"{where}.item_id")
        validation.check_text(item_id, field=f"{where}.item_id")
        if item_id in seen:
            raise _field_error(
                f"Item '{item_id}' already has a result at results[{seen[item_id]}].", f"{where}.item_id"
            )
        seen[item_id] = i
        passed = row.get("passed")
        if not isinstance(passed, bool):
            raise _field_error("Send true or false.", f"{where}.passed")
        score = row.get("score")
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise _field_error("Send a number or null.", f"{where}.score")
            score = float(score)
            if not math.isfinite(score):
                raise _field_error("Numbers must be finite (no NaN or infinity).", f"{where}.score")
        output = row.get("output")
        validation.check_json(output, path=f"{where}.output")
        out.append(RunResultIn(item_id=item_id, passed=passed, score=score, output=output))
    return out


def _agent_version(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_AGENT_VERSION:
        raise _field_error(f"Name the agent version: text of 1 to {MAX_AGENT_VERSION} characters.", "agent_version")
    validation.check_text(value, field="agent_version")
    return value


def gate_settings_of(dataset: Dataset) -> gates.GateSettings:
    return gates.GateSettings(
        pass_rate=dataset.gate_pass_rate,
        critical_pass_rate=dataset.gate_critical_pass_rate,
        mode=dataset.gate_mode,
        confidence=dataset.gate_confidence,
        require_not_worse=dataset.gate_require_not_worse,
    )


def _metrics(result: gates.GateResult) -> dict[str, Any]:
    data = stats.jsonable(result)
    for stored_elsewhere in ("gate", "reasons", "settings", "item_count", "passed_count"):
        data.pop(stored_elsewhere)
    data.pop("critical_count")
    data.pop("critical_passed_count")
    return data


def dataset_run_create(
    *,
    dataset: Dataset,
    version: DatasetVersion,
    agent_version: Any,
    results: list[RunResultIn],
    actor: AbstractBaseUser | None = None,
    comparison: gates.PairwiseSummary | None = None,
) -> tuple[DatasetRun, gates.GateResult]:
    """Store an agent version's results on a frozen version and judge them.

    Every item of the version without a result counts as failed (listed in `missing`); a result
    for an id the version does not hold is a 400 naming the ids. `comparison` is the human
    pairwise comparison of this agent version against the prod one (see gates.PairwiseSummary);
    a dataset that requires it fails the gate without it."""
    agent_version = _agent_version(agent_version)
    if comparison is None and dataset.gate_require_not_worse:
        # The newest human comparison of this agent version against the prod one, if people
        # have made one; without it a dataset that requires it fails the gate, with that reason.
        comparison = selectors_pairwise.gate_comparison(dataset=dataset, agent_version=agent_version)
    if version.dataset_id != dataset.pk:
        raise ValidationFailed("That version belongs to another dataset.", errors={"version": ["Not this dataset's."]})
    items = selectors_runs.version_items(version=version)
    try:
        outcome = gates.outcomes((item for _, item in items.values()), {r.item_id: r.passed for r in results})
    except gates.UnknownItems as exc:
        named = ", ".join(exc.keys[:_NAMED]) + (f" and {len(exc.keys) - _NAMED} more" if len(exc.keys) > _NAMED else "")
        raise ValidationFailed(
            f"{len(exc.keys)} result(s) name items that are not in version {version.number}.",
            errors={"results": [f"Unknown item ids: {named}."]},
        ) from exc
    settings = gate_settings_of(dataset)
    result = gates.evaluate(outcome, settings, comparison)
    with transaction.atomic():
        run = DatasetRun.objects.create(
            organization_id=dataset.organization_id,
            dataset=dataset,
            version=version,
            version_hash=version.content_hash,
            agent_version=agent_version,
            item_count=result.item_count,
            passed_count=result.passed_count,
            critical_count=result.critical_count,
            critical_passed_count=result.critical_passed_count,
            metrics=_metrics(result),
            gate=result.gate,
            reasons=result.reasons,
            gate_settings=dataclasses.asdict(settings),
            created_by=actor,
        )
        # reviewapp.bulk rather than bulk_create: a full run is 100,000 rows, and bulk_create's
        # per-object, per-field preparation costs several times the inserts themselves.
        bulk.insert_rows(
            DatasetRunResult,
            [
                {
                    "run_id": run.pk,
                    "item_id": items[r.item_id][0],
                    "passed": r.passed,
                    "score": r.score,
                    "output": r.output,
                }
                for r in results
            ],
        )
    return run, result
