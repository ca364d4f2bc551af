"""The reviewer's pages: items awaiting review, and one item's labels side by side."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from labeling import rubric, selectors, services
from labeling.forms import answers_from_post, id_or_none, question_views, review_table, time_spent_texts
from labeling.views._access import managed_item, managed_queue
from reviewapp.decorators import member_required
from reviewapp.errors import Conflict, ValidationFailed
from reviewapp.transcript import transcript_turns


@member_required("labeling.manage")
@require_GET
def review_list(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = managed_queue(request, queue_id)
    items = list(selectors.review_items(queue=queue))
    reviewed = id_or_none(request.GET.get("reviewed"))
    return render(
        request,
        "labeling/review_list.html",
        {"queue": queue, "items": items, "counts": selectors.queue_counts(queue=queue), "reviewed": reviewed},
    )


@member_required("labeling.manage")
@require_http_methods(["GET", "POST"])
def review_item(request: HttpRequest, item_id: int) -> HttpResponse:
    """Every label side by side, the comments, and a form for the final answer."""
    item = managed_item(request, item_id)
    queue = item.queue
    version = queue.schema.latest_version
    questions = rubric.questions_from_json(version.questions if version else [])
    turns = transcript_turns(item.conversation.messages)
    answers: dict[str, Any] | None = item.final_answers
    errors: dict[str, list[str]] = {}
    message = ""
    status = 200
    if request.method == "POST":
        answers = answers_from_post(questions, request.POST)
        try:
            services.item_review(item=item, user=request.user, answers=answers)
        except ValidationFailed as exc:
            errors, message, status = exc.errors, exc.message, 422
        except Conflict as exc:
            message, status = exc.message, 409
        else:
            return redirect(f"{reverse('labeling:review-list', args=[queue.pk])}?reviewed={item.pk}")
    labels = list(selectors.item_labels(item=item))
    context = {
        "item": item,
        "queue": queue,
        "turns": turns,
        "turn_prefix": "",
        "labels": labels,
        "table": review_table(questions, labels, item, turns),
        "times": time_spent_texts(labels),
        "comments": list(item.comments.select_related("user")),
        "judge_scores": list(item.conversation.judge_scores.all()),
        "questions": question_views(questions, turns, answers, errors),
        "message": message,
    }
    return render(request, "labeling/review_item.html", context, status=status)
