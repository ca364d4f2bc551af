"""Statistics pages (annotators, agreement), read from the queue's stored snapshot."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling import forms, selectors, services
from labeling.models import Queue
from labeling.views._access import managed_queue
from reviewapp.decorators import member_required


def _snapshot_context(queue: Queue, snapshot: Any) -> dict[str, Any]:
    return {
        "snapshot": snapshot,
        "refreshing": snapshot.state != "idle",
        "as_of_token": snapshot.computed_at.isoformat() if snapshot.computed_at else "",
    }


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
    the queue's statistics snapshot."""
    queue = managed_queue(request, queue_id)
    snapshot = services.agreement_snapshot_current(queue=queue)
    report = forms.agreement_report(
        snapshot.payload or {}, selectors.queue_questions(queue=queue), request.GET.get("question")
    )
    context = {"queue": queue, **report, "page": "agreement", **_snapshot_context(queue, snapshot)}
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
