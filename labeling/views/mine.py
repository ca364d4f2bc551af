"""My work: progress per queue and my recent labels."""

from __future__ import annotations

import statistics

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from labeling import selectors
from labeling.forms import label_editable
from labeling.views._access import can_manage, membership
from reviewapp.decorators import member_required

RECENT_LABELS = 50


@member_required("labeling.work")
@require_GET
def my_work(request: HttpRequest) -> HttpResponse:
    m = membership(request)
    queues = selectors.queue_list_for_worker(organization=m.organization, user=request.user, role=m.role)
    queue_ids = [q.pk for q in queues]
    progress = selectors.user_queue_progress_many(queues=queues, user=request.user)
    times = selectors.user_time_spent_samples(organization=m.organization, user=request.user, queue_ids=queue_ids)
    rows = [
        {
            "queue": q,
            "progress": progress[q.pk],
            "median_seconds": statistics.median(times[q.pk]) / 1000 if times.get(q.pk) else None,
        }
        for q in queues
    ]
    labels = selectors.label_list_for_user(organization=m.organization, user=request.user, queue_ids=queue_ids)
    page = Paginator(labels, RECENT_LABELS).get_page(request.GET.get("page"))
    recent = [
        {
            "label": label,
            "editable": label_editable(label.item),
            "seconds": label.time_spent_ms / 1000 if label.time_spent_ms is not None else None,
        }
        for label in page
    ]
    context = {"rows": rows, "recent": recent, "page": page, "can_manage": can_manage(request)}
    return render(request, "labeling/mine.html", context)
