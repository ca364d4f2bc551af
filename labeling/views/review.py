"""The reviewer's pages: items awaiting review, and one item's labels side by side."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from labeling import rubric, selectors, services
from labeling.forms import (
    answers_from_post,
    id_or_none,
    question_views,
    review_prefill,
    review_table,
    time_spent_texts,
)
from labeling.views._access import managed_item, managed_queue
from reviewapp.decorators import member_required
from reviewapp.errors import Conflict, ValidationFailed
from reviewapp.transcript import transcript_turns


@member_required("labeling.manage")
@require_GET
def review_list(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Items waiting for review, each with the questions its labels disagree on; when there are
    none, why (no overlap yet, or everything overlapping was agreed on or ruled on)."""
    queue = managed_queue(request, queue_id)
    items = list(selectors.review_items(queue=queue))
    rows = []
    overlap = None
    if items:
        questions = selectors.queue_questions(queue=queue)
        answers = selectors.item_answers_many(item_ids=[item.pk for item in items])
        rows = [{"item": item, "disagree": rubric.disagreeing_questions(questions, answers[item.pk])} for item in items]
    else:
        overlap = selectors.review_overlap_counts(queue=queue)
    context = {
        "queue": queue,
        "items": items,
        "rows": rows,
        "overlap": overlap,
        "counts": selectors.queue_counts(queue=queue),
        "reviewed": id_or_none(request.GET.get("reviewed")),
    }
    return render(request, "labeling/review_list.html", context)


@member_required("labeling.manage")
@require_http_methods(["GET", "POST"])
def review_item(request: HttpRequest, item_id: int) -> HttpResponse:
    """Every label side by side, the comments, and a form for the final answer, pre-filled with
    the answers the labels agree on (or a majority gave). Recording goes on to the next item
    waiting for review."""
    item = managed_item(request, item_id)
    queue = item.queue
    version = queue.schema.latest_version
    questions = rubric.questions_from_json(version.questions if version else [])
    turns = transcript_turns(item.conversation.messages)
    labels = list(selectors.item_labels(item=item))
    answers: dict[str, Any] | None = item.final_answers
    notes: dict[str, str] = {}
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
            following = selectors.review_item_next(queue=queue, after=item)
            target = (
                reverse("labeling:review-item", args=[following.pk])
                if following
                else reverse("labeling:review-list", args=[queue.pk])
            )
            return redirect(f"{target}?reviewed={item.pk}")
    elif answers is None:
        answers, notes = review_prefill(questions, labels)
    views = question_views(questions, turns, answers, errors)
    for view in views:
        view.note = notes.get(view.key, "")
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
        "questions": views,
        "prefilled": len(notes),
        "reviewed": id_or_none(request.GET.get("reviewed")),
        "message": message,
    }
    return render(request, "labeling/review_item.html", context, status=status)
