"""The annotator's queue list."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from labeling import selectors, services
from labeling.views._access import can_manage, membership
from reviewapp import charts
from reviewapp.decorators import member_required

# The parts of a queue's progress bar, left to right: finished work first.
PROGRESS_PARTS = (
    ("done", "completed", charts.PALETTE[2]),
    ("in review", "needs_review", charts.PALETTE[1]),
    ("in progress", "in_progress", charts.PALETTE[0]),
    ("open", "pending", "#c5ccd6"),
)


def progress_meter(counts: dict[str, int]) -> str:
    return mark_safe(  # noqa: S308 - charts.py escapes every text it writes
        charts.meter(
            title="Progress",
            segments=[(name, counts.get(key, 0), colour) for name, key, colour in PROGRESS_PARTS],
        )
    )


@member_required("labeling.work")
@require_GET
def queue_list(request: HttpRequest) -> HttpResponse:
    m = membership(request)
    queues = selectors.queue_list_for_worker(organization=m.organization, user=request.user, role=m.role)
    counts = selectors.queue_counts_many(queues=queues)
    mine = selectors.user_queue_progress_many(queues=queues, user=request.user)
    manager = can_manage(request)
    budgets = selectors.queue_budgets_many(queues=queues) if manager else {}
    changes = selectors.queue_last_rate_changes(queues=queues) if manager else {}
    rows = [
        {
            "queue": q,
            "counts": counts[q.pk],
            "mine": mine[q.pk],
            "budget": budgets.get(q.pk),
            "rate": services.queue_rate_in_force(q) if manager else None,
            "rate_change": changes.get(q.pk),
            "meter": progress_meter(counts[q.pk]),
        }
        for q in queues
    ]
    legend = [(name, mark_safe(charts.swatch(colour))) for name, _, colour in PROGRESS_PARTS]  # noqa: S308
    context = {"rows": rows, "can_manage": manager, "legend": legend}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "labeling/_queue_table.html", context)
    return render(request, "labeling/queue_list.html", context)
