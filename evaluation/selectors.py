"""Calibration reads, tenant first. Pairs are loaded as compact arrays (values_list) and handed
to the pure maths in evaluation/stats.py; the judge-only pass rate over every judged
conversation is counted in SQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from typing import Any

import numpy as np
from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat, Lower

from evaluation import stats
from evaluation.models import CalibrationBar, CalibrationPair, CalibrationSnapshot, PairKind
from labeling import budget_controller, rubric
from labeling.models import LabelSchema
from reviewapp.models import ConversationSignal, JudgeScore, Organization, Project, SignalKind

# A response covers at most this many (judge, criterion, version) groups; narrow the filters
# for more. Each group costs one aggregate query and a bootstrap.
MAX_GROUPS = 50
# Weekly trend points use a smaller bootstrap: many points, each only a guide.
TREND_BOOTSTRAP = 200
# The agreement with humans the trust threshold asks of a judge's confident verdicts (its
# Wilson lower bound), the default.
TRUST_TARGET = 0.9


@dataclasses.dataclass(frozen=True)
class Filters:
    judge: str | None = None
    criterion: str | None = None
    judge_version: str | None = None
    agent_version: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def bar_get(*, organization: Organization, project: Project) -> CalibrationBar:
    """The project's bar, or an unsaved one holding the defaults."""
    bar = CalibrationBar.objects.filter(organization=organization, project=project).first()
    return bar or CalibrationBar(organization=organization, project=project)


def _pairs(*, organization: Organization, project: Project, kind: str, f: Filters) -> QuerySet[CalibrationPair]:
    qs = CalibrationPair.objects.filter(organization=organization, project=project, kind=kind)
    for field in ("judge", "criterion", "judge_version", "agent_version"):
        value = getattr(f, field)
        if value is not None:
            qs = qs.filter(**{field: value})
    if f.since is not None:
        qs = qs.filter(labeled_at__gte=f.since)
    if f.until is not None:
        qs = qs.filter(labeled_at__lt=f.until)
    return qs


def calibration_report(*, organization: Organization, project: Project, filters: Filters) -> dict[str, Any]:
    """Per (judge, criterion, judge version): agreement with humans, score agreement,
    confidence calibration, pass-rate estimates, a weekly trend, and the status against the
    project's bar."""
    bar = bar_get(organization=organization, project=project)
    rows = (
        _pairs(organization=organization, project=project, kind=PairKind.JUDGE, f=filters)
        .order_by("judge", "criterion", "judge_version", "labeled_at", "id")
        .values_list(
            "judge",
            "criterion",
            "judge_version",
            "judge_pass",
            "human_pass",
            "judge_score",
            "human_score",
            "judge_confidence",
            "inclusion_probability",
            "labeled_at",
        )
    )
    questions = _questions_by_criterion(organization=organization, project=project)
    groups: list[dict[str, Any]] = []
    truncated = False
    for key, group in itertools.groupby(rows.iterator(chunk_size=10_000), key=lambda r: r[:3]):
        if len(groups) == MAX_GROUPS:
            truncated = True
            break
        judge, criterion, version = key
        groups.append(
            _group_report(
                judge,
                criterion,
                version,
                list(group),
                bar=bar,
                project=project,
                question=questions.get(criterion),
                f=filters,
            )
        )
    return {
        "project": project.slug,
        "bar": bar_payload(bar),
        "judges": groups,
        "truncated": truncated,
    }


def _questions_by_criterion(*, organization: Organization, project: Project) -> dict[str, rubric.Question]:
    out: dict[str, rubric.Question] = {}
    for questions in LabelSchema.objects.filter(organization=organization, project=project).values_list(
        "latest_version__questions", flat=True
    ):
        for question in rubric.questions_from_json(questions or []):
            if question.judge_criterion and question.judge_criterion not in out:
                out[question.judge_criterion] = question
    return out


def pair_weights(inclusion: list[float | None]) -> np.ndarray | None:
    if all(p is None for p in inclusion):
        return None
    # An item added by hand (no sampling probability) stands for itself.
    return stats.horvitz_thompson_weights(np.array([1.0 if p is None else p for p in inclusion], dtype=float))


def _group_report(
    judge: str,
    criterion: str,
    version: str,
    rows: list[tuple[Any, ...]],
    *,
    bar: CalibrationBar,
    project: Project,
    question: rubric.Question | None,
    f: Filters,
) -> dict[str, Any]:
    judged = [r for r in rows if r[3] is not None]
    jp = np.array([r[3] for r in judged], dtype=bool)
    hp = np.array([r[4] for r in judged], dtype=bool)
    weights = pair_weights([r[8] for r in judged])
    binary = stats.binary_agreement(jp, hp, weights) if judged else None

    scored = [r for r in rows if r[5] is not None and r[6] is not None]
    score = (
        stats.score_agreement(
            np.array([r[5] for r in scored], dtype=float),
            np.array([r[6] for r in scored], dtype=float),
            pair_weights([r[8] for r in scored]),
        )
        if scored
        else None
    )

    confident = [r for r in judged if r[7] is not None]
    calibration = trust = None
    if confident:
        conf = np.array([r[7] for r in confident], dtype=float)
        agree = np.array([r[3] == r[4] for r in confident], dtype=bool)
        calibration = stats.confidence_calibration(conf, agree, pair_weights([r[8] for r in confident]))
        # Unweighted on purpose: the threshold is read on the labelled pairs as they are; a
        # rule built from it sends humans the items below it, whatever their weight.
        trust = stats.trust_threshold(conf, agree, target=TRUST_TARGET)

    pass_rate = None
    if judged and question is not None:
        judge_all = _judge_pass_all(
            project=project, judge=judge, criterion=criterion, version=version, question=question, f=f
        )
        inclusion = np.array([1.0 if r[8] is None else r[8] for r in judged], dtype=float)
        pass_rate = stats.pass_rate_estimates(judge_all, jp, hp, inclusion)

    status = stats.bar_status(binary, kappa_bar=bar.kappa, tpr_bar=bar.tpr, tnr_bar=bar.tnr) if binary else "too_few"
    return _jsonable(
        {
            "judge": judge,
            "criterion": criterion,
            "judge_version": version,
            "n": len(rows),
            "binary": binary,
            "scores": score,
            "confidence": calibration,
            "trust": trust,
            "pass_rate": pass_rate,
            "trend": _weekly_trend(judged),
            "status": status,
        }
    )


def _judge_pass_all(
    *, project: Project, judge: str, criterion: str, version: str, question: rubric.Question, f: Filters
) -> np.ndarray:
    """The judge's verdicts on every judged conversation of the project for this criterion
    (labelled or not), counted in one SQL aggregate under the question's pass rule (the rule
    of rubric.judge_passes), then spread into a 0/1 array for the estimators."""
    scores = JudgeScore.objects.filter(
        conversation__project=project, judge=judge, criterion=criterion, judge_version=version
    )
    if f.agent_version is not None:
        scores = scores.filter(conversation__agent_version=f.agent_version)
    if f.since is not None:
        scores = scores.filter(conversation__occurred_at__gte=f.since)
    if f.until is not None:
        scores = scores.filter(conversation__occurred_at__lt=f.until)
    labels = [label.casefold() for label in question.judge_pass_labels]
    threshold = question.judge_pass_threshold
    by_label, by_score = Q(pk__in=[]), Q(pk__in=[])
    judged, passed = Q(pk__in=[]), Q(pk__in=[])
    if labels:
        by_label = ~Q(label="")
        judged |= by_label
        passed |= by_label & Q(lower_label__in=labels)
    if threshold is not None:
        by_score = (Q(label="") if labels else Q()) & Q(score__isnull=False)
        judged |= by_score
        passed |= by_score & Q(score__gte=threshold)
    counts = scores.annotate(lower_label=Lower("label")).aggregate(
        n=Count("id", filter=judged), k=Count("id", filter=passed)
    )
    n, k = counts["n"] or 0, counts["k"] or 0
    return np.concatenate([np.ones(k, dtype=bool), np.zeros(n - k, dtype=bool)])


def _weekly_trend(judged: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    points = []
    for week, group in itertools.groupby(judged, key=lambda r: _monday(r[9])):
        rows = list(group)
        result = stats.binary_agreement(
            np.array([r[3] for r in rows], dtype=bool),
            np.array([r[4] for r in rows], dtype=bool),
            pair_weights([r[8] for r in rows]),
            bootstrap=TREND_BOOTSTRAP,
        )
        points.append(
            {
                "week": week.isoformat(),
                "n": len(rows),
                "accuracy": result["accuracy"],
                "cohen_kappa": result["cohen_kappa"],
            }
        )
    return points


def _monday(moment: dt.datetime) -> dt.date:
    day = moment.astimezone(dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


def signal_failure_rates(*, organization: Organization, project: Project, filters: Filters) -> dict[str, Any]:
    """How often a conversation flagged with each signal kind (any source) is a real failure:
    of the labelled conversations (a judge pair's final human answer) flagged with the kind, the
    share whose human answer fails, with a Wilson interval; `all` is the same over every
    labelled conversation, the baseline to compare with. A conversation is counted once per
    criterion it was labelled on (its answers to two questions are two verdicts).

    One aggregate query: per kind, COUNT(DISTINCT (conversation, criterion)) with an EXISTS on
    the signal's unique index, over the pairs the filters select."""
    pairs = _pairs(organization=organization, project=project, kind=PairKind.JUDGE, f=filters)
    # (conversation, criterion) as one distinct value: pairs of several judges on the same item
    # and criterion share one human answer.
    unit = Concat(Cast("conversation_id", CharField()), Value(":"), "criterion", output_field=CharField())
    aggregates: dict[str, Count] = {
        "all_n": Count(unit, distinct=True),
        "all_fail": Count(unit, distinct=True, filter=Q(human_pass=False)),
    }
    for kind in SignalKind.values:
        flagged = Exists(ConversationSignal.objects.filter(conversation_id=OuterRef("conversation_id"), kind=kind))
        aggregates[f"{kind}_n"] = Count(unit, distinct=True, filter=Q(flagged))
        aggregates[f"{kind}_fail"] = Count(unit, distinct=True, filter=Q(flagged) & Q(human_pass=False))
    counts = pairs.aggregate(**aggregates)

    def row(prefix: str) -> dict[str, Any]:
        n, fails = counts[f"{prefix}_n"] or 0, counts[f"{prefix}_fail"] or 0
        rate = stats.Estimate(fails / n if n else None, stats.wilson(fails, n) if n else None, n)
        return {"n": n, "fails": fails, "fail_rate": _jsonable(rate)}

    return {"all": row("all"), "kinds": {kind: row(kind) for kind in SignalKind.values}}


def agent_calibration(*, organization: Organization, project: Project, action: str | None) -> dict[str, Any]:
    """Per action name: how often people approve what the agent asked, and how well its stated
    confidence predicts that (calibration, and the confidence above which it can be trusted)."""
    qs = _pairs(organization=organization, project=project, kind=PairKind.AGENT_ACTION, f=Filters(criterion=action))
    rows = qs.order_by("criterion", "id").values_list("criterion", "judge_confidence", "human_pass")
    out = []
    for name, group in itertools.groupby(rows.iterator(chunk_size=10_000), key=lambda r: r[0]):
        if len(out) == MAX_GROUPS:
            break
        items = list(group)
        approved = sum(1 for r in items if r[2])
        confident = [r for r in items if r[1] is not None]
        conf = np.array([r[1] for r in confident], dtype=float)
        ok = np.array([r[2] for r in confident], dtype=bool)
        out.append(
            _jsonable(
                {
                    "action": name,
                    "n": len(items),
                    "approval_rate": stats.Estimate(
                        approved / len(items), stats.wilson(approved, len(items)), len(items)
                    ),
                    "confidence": stats.confidence_calibration(conf, ok) if confident else None,
                    "trust": stats.trust_threshold(conf, ok) if confident else None,
                }
            )
        )
    return {"project": project.slug, "actions": out}


def bar_payload(bar: CalibrationBar) -> dict[str, Any]:
    return {
        "kappa": bar.kappa,
        "tpr": bar.tpr,
        "tnr": bar.tnr,
        "webhook_url": bar.webhook_url,
        "updated_at": bar.updated_at.isoformat() if bar.pk else None,
    }


def _jsonable(value: Any) -> Any:
    """Dataclasses, numpy scalars and arrays to JSON; NaN and infinities to null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


# --- daily snapshots: the budget controller's history --------------------------------------


def snapshot_reading_at(day: dt.date) -> dt.datetime:
    """When a day's snapshot holds: the end of that day (UTC), once its pairs are all in."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), dt.UTC)


def calibration_readings(
    *, project_id: int, judge: str, criterion: str, since: dt.datetime, until: dt.datetime
) -> list[budget_controller.CalibrationPoint] | None:
    """The calibration provider registered for labeling's budget controller: one reading a day
    from the daily snapshots, oldest first, with status, the tightest figure's lower bound and
    its bar, and the judge version. On a day two versions were labelled (a roll-out), the one
    labelled last speaks for the day: it is the version now in use. None without a criterion:
    a judge's agreement is only defined against one rubric question."""
    if not criterion:
        return None
    rows = (
        CalibrationSnapshot.objects.filter(
            project_id=project_id,
            judge=judge,
            criterion=criterion,
            day__gte=since.astimezone(dt.UTC).date() - dt.timedelta(days=1),
            day__lte=until.astimezone(dt.UTC).date(),
        )
        .order_by("day", "last_labeled_at", "id")
        .values_list("day", "status", "lower", "lower_bar", "judge_version")
    )
    by_day: dict[dt.date, tuple[Any, ...]] = {}
    for row in rows:
        by_day[row[0]] = row  # ordered by last_labeled_at: the last one of a day wins
    points = []
    for day, status, lower, bar, version in by_day.values():
        at = snapshot_reading_at(day)
        if since <= at <= until:
            points.append(budget_controller.CalibrationPoint(at, status, lower, bar, version))
    return points


def snapshot_list(
    *, organization: Organization, project: Project, judge: str | None, criterion: str | None, limit: int = 400
) -> list[dict[str, Any]]:
    """The project's daily snapshots, newest first (at most `limit`)."""
    qs = CalibrationSnapshot.objects.filter(organization=organization, project=project)
    if judge is not None:
        qs = qs.filter(judge=judge)
    if criterion is not None:
        qs = qs.filter(criterion=criterion)
    return [
        {
            "day": s.day.isoformat(),
            "judge": s.judge,
            "criterion": s.criterion,
            "judge_version": s.judge_version,
            "n": s.n,
            "status": s.status,
            "cleared": s.cleared,
            "figures": s.figures,
            "bar": s.bar,
        }
        for s in qs.order_by("-day", "judge", "criterion", "judge_version")[:limit]
    ]


__all__ = [
    "MAX_GROUPS",
    "TRUST_TARGET",
    "Filters",
    "agent_calibration",
    "bar_get",
    "bar_payload",
    "calibration_readings",
    "calibration_report",
    "pair_weights",
    "signal_failure_rates",
    "snapshot_list",
    "snapshot_reading_at",
]
