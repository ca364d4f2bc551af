"""The result page of a pairwise comparison (engineers and admins: `evaluation.read`): the
candidate's win rate over the baseline per question, its two intervals as an SVG bar chart
(reviewapp/charts.py; no script, no inline style), the count of each answer, the sign test and a
per-segment table. Figures come from the same selectors as the API."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from evaluation import pairwise, selectors_pairwise
from reviewapp import charts
from reviewapp.decorators import member_required
from reviewapp.errors import NotFound


def _pct(value: float | None) -> str:
    return "—" if value is None else charts.percent(value)


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _row(label: str, f: pairwise.Figures) -> dict[str, Any]:
    return {
        "label": label,
        "n": f.n,
        "decisive": f.decisive,
        "counts": f.counts,
        "win_rate": _pct(f.win_rate),
        "wilson": f"{_pct(f.wilson.low)} to {_pct(f.wilson.high)}" if f.decisive else "—",
        "bootstrap": f"{_pct(f.bootstrap.low)} to {_pct(f.bootstrap.high)}" if f.bootstrap else "—",
        "sign_test_p": _p(f.sign_test_p),
        "worse": f.decisive > 0 and pairwise.gate_interval(f).high < 0.5,
        "better": f.decisive > 0 and pairwise.gate_interval(f).low > 0.5,
    }


def _chart_row(label: str, f: pairwise.Figures) -> tuple[str, float | None, list[tuple[str, float, float]]]:
    intervals = []
    if f.decisive:
        intervals.append(("Wilson, decisive pairs (the gate's)", f.wilson.low, f.wilson.high))
    if f.bootstrap is not None:
        intervals.append(("Bootstrap over items", f.bootstrap.low, f.bootstrap.high))
    return label, f.win_rate, intervals


@require_GET
@member_required("evaluation.read")
def pairwise_result(request: HttpRequest, queue_id: int) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    try:
        comparison = selectors_pairwise.comparison_get(organization=organization, queue_id=queue_id)
    except NotFound as exc:
        raise Http404("No such comparison.") from exc
    result = selectors_pairwise.comparison_result(comparison=comparison)
    questions = []
    for q in result.questions:
        rows = [("All items", q.figures)] + [(s.tag, s.figures) for s in q.segments]
        chart = charts.interval_bars(
            title=f"{q.label}: candidate win rate, 95% intervals",
            rows=[_chart_row(label, f) for label, f in rows],
            reference=("Even (as good as the baseline)", 0.5),
            summary=f"win rate {_pct(q.figures.win_rate)} over {q.figures.n} items",
        )
        questions.append(
            {
                "key": q.key,
                "label": q.label,
                "unanswered": q.unanswered,
                "overall": _row("All items", q.figures),
                "segments": [_row(s.tag, s.figures) for s in q.segments],
                # Built by charts.interval_bars, which escapes every text it draws.
                "chart": mark_safe(chart),  # noqa: S308
            }
        )
    return render(
        request,
        "evaluation/pairwise_result.html",
        {"comparison": comparison, "result": result, "questions": questions, "skipped": comparison.skipped},
    )
