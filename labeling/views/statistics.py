"""Statistics pages (annotators, agreement), read from the queue's stored snapshot."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from labeling import forms, selectors, services
from labeling.models import Queue
from labeling.views._access import managed_queue
from reviewapp import charts
from reviewapp.decorators import member_required

THROUGHPUT_DAYS = 30
AGREEMENT_WEEKS = 12


def _snapshot_context(queue: Queue, snapshot: Any) -> dict[str, Any]:
    return {
        "snapshot": snapshot,
        "refreshing": snapshot.state != "idle",
        "as_of_token": snapshot.computed_at.isoformat() if snapshot.computed_at else "",
    }


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def throughput_chart(queue: Queue, today: dt.date) -> str:
    """Labels per day over the last THROUGHPUT_DAYS days, today included."""
    days = [today - dt.timedelta(days=THROUGHPUT_DAYS - 1 - i) for i in range(THROUGHPUT_DAYS)]
    per_day = selectors.queue_labels_per_day(queue=queue, since=_start_of(days[0]))
    values = [per_day.get(day, 0) for day in days]
    total = sum(values)
    title = f"Labels per day, last {THROUGHPUT_DAYS} days"
    return mark_safe(  # noqa: S308 - charts.py escapes every text it writes
        charts.stacked_bar_chart(
            title=title,
            x_labels=[day.strftime("%m-%d") for day in days] if total else [],
            series=[("labels", values)] if total else [],
            summary=f"{total} labels, at most {max(values)} a day",
        )
    )


def _whole_percent(value: float) -> str:
    # A week's share of a few dozen items: a decimal would be false precision.
    return f"{value * 100:.0f}%"


def agreement_trend_chart(queue: Queue, today: dt.date) -> str:
    """The share of items with two or more labels that their labels agreed on, per week of
    completion (items a reviewer ruled on count as disagreements), over AGREEMENT_WEEKS weeks."""
    monday = today - dt.timedelta(days=today.weekday())
    weeks = [monday - dt.timedelta(weeks=AGREEMENT_WEEKS - 1 - i) for i in range(AGREEMENT_WEEKS)]
    per_week = selectors.queue_agreement_per_week(queue=queue, since=_start_of(weeks[0]))
    shares = [agreed / decided if decided else None for agreed, decided in (per_week.get(w, (0, 0)) for w in weeks)]
    decided = sum(d for _, d in per_week.values())
    title = "Items agreed on, per week"
    return mark_safe(  # noqa: S308 - charts.py escapes every text it writes
        charts.line_chart(
            title=title,
            x_labels=[w.strftime("%m-%d") for w in weeks] if decided else [],
            series=[("agreed", shares)] if decided else [],
            y_format=_whole_percent,
            y_max=1.0,
            summary=f"{sum(a for a, _ in per_week.values())} of {decided} items with two or more labels agreed",
        )
    )


@member_required("labeling.manage")
@require_GET
def annotators(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = managed_queue(request, queue_id)
    snapshot = services.agreement_snapshot_current(queue=queue)
    rows = forms.annotator_rows((snapshot.payload or {}).get("annotators") or [])
    context = {"queue": queue, "rows": rows, "page": "annotators", **_snapshot_context(queue, snapshot)}
    return render(request, "labeling/annotators.html", context)


@member_required("labeling.manage")
@require_GET
def agreement(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Agreement per question with bootstrap intervals (order-free coefficients only), annotator
    pairs with Cohen's kappa, and which answers met on items with exactly two labels, all from
    the queue's statistics snapshot; and two charts read live (two grouped counts): labels per
    day and the weekly share of items agreed on."""
    queue = managed_queue(request, queue_id)
    snapshot = services.agreement_snapshot_current(queue=queue)
    report = forms.agreement_report(
        snapshot.payload or {}, selectors.queue_questions(queue=queue), request.GET.get("question")
    )
    today = timezone.localdate()
    context = {
        "queue": queue,
        **report,
        "overlapping": max((q["n_items"] for q in report["questions"]), default=0),
        "throughput_chart": throughput_chart(queue, today),
        "agreement_chart": agreement_trend_chart(queue, today),
        "page": "agreement",
        **_snapshot_context(queue, snapshot),
    }
    return render(request, "labeling/agreement.html", context)


@member_required("labeling.manage")
@require_POST
def statistics_refresh(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The refresh button: queue a background refresh; htmx swaps in the status line, which then
    polls until the new snapshot is in."""
    queue = managed_queue(request, queue_id)
    snapshot = services.agreement_snapshot_request(queue=queue)
    if request.htmx:  # type: ignore[attr-defined]
        if snapshot.state == "idle":  # done already (tasks run in-process without a broker)
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        context = {"queue": queue, **_snapshot_context(queue, snapshot)}
        return render(request, "labeling/_snapshot_status.html", context)
    page = "labeling:annotators" if request.POST.get("page") == "annotators" else "labeling:agreement"
    return redirect(reverse(page, args=[queue.pk]))


@member_required("labeling.manage")
@require_GET
def statistics_status(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Polled by the status line while a refresh runs: reloads the page once the snapshot the
    page shows (`as_of`) has been replaced."""
    queue = managed_queue(request, queue_id)
    snapshot = selectors.agreement_snapshot_get(queue=queue)
    if snapshot is None:
        raise Http404("No statistics yet.")
    as_of = snapshot.computed_at.isoformat() if snapshot.computed_at else ""
    if snapshot.state == "idle" or as_of != request.GET.get("as_of", ""):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "labeling/_snapshot_status.html", {"queue": queue, **_snapshot_context(queue, snapshot)})
