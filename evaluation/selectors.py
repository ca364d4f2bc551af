"""Calibration reads, tenant first. Pairs are counted by pattern in SQL, spread back into compact
arrays and handed to the pure maths in evaluation/stats.py; the judge-only pass rate over every
judged conversation is counted in SQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from typing import Any

import numpy as np
from django.db import connections
from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat, Lower, TruncWeek

from evaluation import sql as sql_texts
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
    project's bar.

    The pairs are not read one by one (a million Python tuples take seconds): the database
    counts them by pattern, every distinct (week, judge_pass, human_pass, judge_score,
    human_score, judge_confidence, inclusion_probability), and the patterns are spread back into
    arrays with np.repeat for evaluation/stats.py. Every figure there is a function of the
    items' values, not of their order (its bootstrap itself groups items into patterns), so the
    answers are the pair-by-pair ones up to the order of floating-point sums. The exception is
    PPI++'s cross-fitting, which draws folds by item position: a group with fewer judged pairs
    than `ROWS_BELOW` is read pair by pair in labelling order, as before."""
    bar = bar_get(organization=organization, project=project)
    pairs = _pairs(organization=organization, project=project, kind=PairKind.JUDGE, f=filters)
    patterns = (
        pairs.annotate(week=TruncWeek("labeled_at", tzinfo=dt.UTC))
        .values_list("judge", "criterion", "judge_version", "week", *_PATTERN_FIELDS)
        .annotate(count=Count("id"))
        .order_by()
    )
    questions = _questions_by_criterion(organization=organization, project=project)
    groups: list[dict[str, Any]] = []
    truncated = False
    for key, group in itertools.groupby(_sorted_after_grouping(patterns, columns=4), key=lambda r: r[:3]):
        if len(groups) == MAX_GROUPS:
            truncated = True
            break
        judge, criterion, version = key
        compact = _Compact.from_rows([r[3:] for r in group])
        if compact.judged_count < ROWS_BELOW:
            rows = list(
                pairs.filter(judge=judge, criterion=criterion, judge_version=version)
                .order_by("labeled_at", "id")
                .values_list(*_ROW_FIELDS)
            )
            report = _group_report(
                judge, criterion, version, rows, bar=bar, project=project, question=questions.get(criterion), f=filters
            )
        else:
            report = _compact_report(
                judge,
                criterion,
                version,
                compact,
                bar=bar,
                project=project,
                question=questions.get(criterion),
                f=filters,
            )
        groups.append(report)
    return {
        "project": project.slug,
        "bar": bar_payload(bar),
        "judges": groups,
        "truncated": truncated,
    }


def _sorted_after_grouping(qs: QuerySet[Any], *, columns: int) -> list[Any]:
    """The rows of a GROUP BY query ordered by their first `columns` columns, the sort done on
    the groups, not on the rows. With ORDER BY in the aggregate itself PostgreSQL sorts every
    row before grouping (it cannot tell that a million pairs make two thousand patterns, and
    sees through a plain subquery): 2.3 s against 0.8 s for hashing them at a million pairs.
    So the query runs as a MATERIALIZED common table expression (planned on its own:
    PostgreSQL 12+, SQLite 3.35+) and the outer query sorts its result, in the database's
    collation like any order_by; Django's converters still turn each column into its value."""
    compiler = qs.query.get_compiler(using=qs.db)
    sql, params = compiler.as_sql()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql_texts.grouped_then_sorted(sql, columns=columns), params)
        rows = cursor.fetchall()
    return list(compiler.results_iter(results=[rows]))


# What a pair pattern holds, after its week; the row path reads the same per pair.
_PATTERN_FIELDS = (
    "judge_pass",
    "human_pass",
    "judge_score",
    "human_score",
    "judge_confidence",
    "inclusion_probability",
)
_ROW_FIELDS = ("judge", "criterion", "judge_version", *_PATTERN_FIELDS, "labeled_at")
# Groups with fewer judged pairs are read pair by pair (see calibration_report): PPI++ cross-fits
# under stats.CROSS_FIT_BELOW labels, and its folds follow the pairs' order.
ROWS_BELOW = stats.CROSS_FIT_BELOW


@dataclasses.dataclass(frozen=True)
class _Compact:
    """One group's pair patterns, one entry each; `count` pairs share each. None is NaN in the
    float columns and `judged` / `human_known` say where the booleans were None."""

    week: np.ndarray  # ordinal of the week's Monday (UTC)
    judged: np.ndarray
    judge_pass: np.ndarray
    human_pass: np.ndarray
    judge_score: np.ndarray
    human_score: np.ndarray
    confidence: np.ndarray
    inclusion: np.ndarray
    count: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[tuple[Any, ...]]) -> _Compact:
        def floats(i: int) -> np.ndarray:
            return np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=float)

        return cls(
            week=np.array([r[0].astimezone(dt.UTC).date().toordinal() for r in rows], dtype=np.int64),
            judged=np.array([r[1] is not None for r in rows], dtype=bool),
            # None is False, as np.array([None], dtype=bool) made it on the row path.
            judge_pass=np.array([bool(r[1]) for r in rows], dtype=bool),
            human_pass=np.array([bool(r[2]) for r in rows], dtype=bool),
            judge_score=floats(3),
            human_score=floats(4),
            confidence=floats(5),
            inclusion=floats(6),
            count=np.array([r[7] for r in rows], dtype=np.int64),
        )

    @property
    def judged_count(self) -> int:
        return int(self.count[self.judged].sum())

    def spread(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The per-pair array of `values` over the patterns in `mask`."""
        return np.repeat(values[mask], self.count[mask])

    def weights(self, mask: np.ndarray) -> np.ndarray | None:
        """pair_weights over the patterns in `mask`, per pair."""
        p = self.inclusion[mask]
        if np.isnan(p).all():
            return None
        return np.repeat(stats.horvitz_thompson_weights(np.where(np.isnan(p), 1.0, p)), self.count[mask])


def _compact_report(
    judge: str,
    criterion: str,
    version: str,
    c: _Compact,
    *,
    bar: CalibrationBar,
    project: Project,
    question: rubric.Question | None,
    f: Filters,
) -> dict[str, Any]:
    """_group_report on pair patterns: the same figures, the same choices."""
    judged = c.judged
    any_judged = bool(judged.any())
    jp = c.spread(c.judge_pass, judged)
    hp = c.spread(c.human_pass, judged)
    binary = stats.binary_agreement(jp, hp, c.weights(judged)) if any_judged else None

    scored = ~np.isnan(c.judge_score) & ~np.isnan(c.human_score)
    score = (
        stats.score_agreement(c.spread(c.judge_score, scored), c.spread(c.human_score, scored), c.weights(scored))
        if scored.any()
        else None
    )

    confident = judged & ~np.isnan(c.confidence)
    calibration = trust = None
    if confident.any():
        conf = c.spread(c.confidence, confident)
        agree = c.spread(c.judge_pass == c.human_pass, confident)
        calibration = stats.confidence_calibration(conf, agree, c.weights(confident))
        # Unweighted on purpose, as on the row path.
        trust = stats.trust_threshold(conf, agree, target=TRUST_TARGET)

    pass_rate = None
    if any_judged and question is not None:
        judge_all = _judge_pass_all(
            project=project, judge=judge, criterion=criterion, version=version, question=question, f=f
        )
        inclusion = c.spread(np.where(np.isnan(c.inclusion), 1.0, c.inclusion), judged)
        pass_rate = stats.pass_rate_estimates(judge_all, jp, hp, inclusion)

    status = stats.bar_status(binary, kappa_bar=bar.kappa, tpr_bar=bar.tpr, tnr_bar=bar.tnr) if binary else "too_few"
    trend = []
    for week in np.unique(c.week[judged]):
        in_week = judged & (c.week == week)
        result = stats.binary_agreement(
            c.spread(c.judge_pass, in_week),
            c.spread(c.human_pass, in_week),
            c.weights(in_week),
            bootstrap=TREND_BOOTSTRAP,
        )
        trend.append(
            {
                "week": dt.date.fromordinal(int(week)).isoformat(),
                "n": int(c.count[in_week].sum()),
                "accuracy": result["accuracy"],
                "cohen_kappa": result["cohen_kappa"],
            }
        )
    return _jsonable(
        {
            "judge": judge,
            "criterion": criterion,
            "judge_version": version,
            "n": int(c.count.sum()),
            "binary": binary,
            "scores": score,
            "confidence": calibration,
            "trust": trust,
            "pass_rate": pass_rate,
            "trend": trend,
            "status": status,
        }
    )


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
    "ROWS_BELOW",
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
