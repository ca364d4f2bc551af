"""Reads of pairwise comparisons, tenant first, and their results: the queue's final answers
(after agreement or review) with the side shuffle undone, through the pure maths of
evaluation/pairwise.py. Also the summary the release gate reads ("not worse than prod")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evaluation import gates, pairwise, stats
from evaluation.models import Dataset, DatasetRun, DatasetVersion, GateVerdict, PairwiseComparison
from labeling import pairwise as labeling_pairwise
from labeling import rubric
from labeling import selectors as labeling_selectors
from reviewapp.errors import NotFound
from reviewapp.models import Organization, Project

PROD_TAG = "prod"


def comparison_get(*, organization: Organization, queue_id: int, project: Project | None = None) -> PairwiseComparison:
    """The comparison a pairwise queue asks; another organization's (or project's) queue, or a
    queue that is not a pairwise comparison, is not found."""
    qs = PairwiseComparison.objects.select_related("queue__schema__latest_version", "dataset", "version").filter(
        organization=organization, queue_id=queue_id
    )
    if project is not None:
        qs = qs.filter(project=project)
    comparison = qs.first()
    if comparison is None:
        raise NotFound("Pairwise comparison not found.")
    return comparison


def comparison_list(*, organization: Organization, dataset: Dataset | None = None) -> list[PairwiseComparison]:
    qs = PairwiseComparison.objects.select_related("queue", "dataset").filter(organization=organization)
    if dataset is not None:
        qs = qs.filter(dataset=dataset)
    return list(qs.order_by("-id")[:100])


@dataclass(frozen=True)
class PairwiseResult:
    comparison: PairwiseComparison
    items: int
    # Items with no final answer at all yet (still being labeled, in review, dropped).
    without_final: int
    questions: list[pairwise.QuestionResult]
    confidence: float = pairwise.CONFIDENCE
    gate_interval: str = pairwise.GATE_INTERVAL

    @property
    def primary(self) -> pairwise.QuestionResult | None:
        """The question the gate reads: the rubric's first (the default "overall")."""
        return self.questions[0] if self.questions else None


def comparison_result(*, comparison: PairwiseComparison) -> PairwiseResult:
    queue = comparison.queue
    version = queue.schema.latest_version
    questions = rubric.questions_from_json(version.questions if version else [])
    rows = labeling_selectors.pairwise_rows(queue=queue)
    items = [
        pairwise.ItemOutcomes(
            tags=row.tags,
            outcomes={
                q.key: labeling_pairwise.outcome((row.final_answers or {}).get(q.key), row.candidate_side)
                for q in questions
            },
        )
        for row in rows
    ]
    return PairwiseResult(
        comparison=comparison,
        items=len(rows),
        without_final=sum(1 for row in rows if row.final_answers is None),
        questions=[pairwise.question_result(q.key, q.label, items) for q in questions],
    )


def _figures_payload(f: pairwise.Figures) -> dict[str, Any]:
    return {
        "n": f.n,
        "decisive": f.decisive,
        "counts": stats.jsonable(f.counts),
        "win_rate": f.win_rate,
        "decisive_win_rate": f.decisive_win_rate,
        "wilson": stats.jsonable(f.wilson),
        "bootstrap": stats.jsonable(f.bootstrap),
        "sign_test_p": f.sign_test_p,
    }


def result_payload(result: PairwiseResult) -> dict[str, Any]:
    c = result.comparison
    return {
        "queue": c.queue_id,
        "name": c.queue.name,
        "dataset": c.dataset_id,
        "version": c.version.number if c.version is not None else None,
        "baseline_run": c.baseline_run_id,
        "candidate_run": c.candidate_run_id,
        "baseline_agent_version": c.baseline_agent_version,
        "candidate_agent_version": c.candidate_agent_version,
        "seed": c.seed,
        "created_at": c.created_at.isoformat(),
        "items": result.items,
        "skipped": c.skipped,
        "without_final": result.without_final,
        "confidence": result.confidence,
        "gate_interval": result.gate_interval,
        "questions": [
            {
                "key": q.key,
                "label": q.label,
                "unanswered": q.unanswered,
                **_figures_payload(q.figures),
                "segments": [{"tag": s.tag, **_figures_payload(s.figures)} for s in q.segments],
            }
            for q in result.questions
        ],
    }


def prod_agent_version(*, dataset: Dataset, candidate: str) -> str | None:
    """The agent version of the version tagged `prod`: of the runs on that dataset version by
    another agent version than the candidate, the newest that passed its gate, else the newest.
    None when no version is tagged prod or nothing else ran on it."""
    versions = DatasetVersion.objects.filter(organization_id=dataset.organization_id, dataset=dataset).order_by(
        "-number"
    )
    # Tags are a short JSON list per version (JSON containment is not portable to SQLite).
    prod = next((v for v in versions.only("id", "tags") if PROD_TAG in (v.tags or [])), None)
    if prod is None:
        return None
    runs = DatasetRun.objects.filter(dataset=dataset, version=prod).exclude(agent_version=candidate)
    run = runs.filter(gate=GateVerdict.PASS).order_by("-id").first() or runs.order_by("-id").first()
    return run.agent_version if run is not None else None


def gate_comparison(*, dataset: Dataset, agent_version: str) -> gates.PairwiseSummary | None:
    """The newest pairwise comparison of `agent_version` (candidate) against the prod agent
    version on this dataset, summarised for the gate; None when there is none."""
    baseline = prod_agent_version(dataset=dataset, candidate=agent_version)
    if baseline is None:
        return None
    comparison = (
        PairwiseComparison.objects.select_related("queue__schema__latest_version", "version")
        .filter(
            organization_id=dataset.organization_id,
            dataset=dataset,
            candidate_agent_version=agent_version,
            baseline_agent_version=baseline,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if comparison is None:
        return None
    primary = comparison_result(comparison=comparison).primary
    if primary is None:
        return None
    f = primary.figures
    interval = pairwise.gate_interval(f)
    return gates.PairwiseSummary(
        candidate_win_rate=f.win_rate if f.win_rate is not None else 0.5,
        low=interval.low,
        high=interval.high,
        n_pairs=f.n,
        baseline_agent_version=baseline,
    )
