"""Browser pages for labeling: the annotator's queue list, labeling page and "my work", and the
engineer's review, annotators and agreement pages. They call the same selectors and services
as labeling/apis.py, so the browser and the API cannot drift.

The labeling page is one long-lived page. Loading it never leases (link prefetchers and
background tabs load pages too): it shows the item already held, or a start panel that
labeling.js posts once the page is on screen. Each item is a panel (`_panel.html`); submit and skip
post from the panel with htmx and the response replaces that panel. labeling.js prefetches the
next item's panel into the page (a second lease, `item_claim(exclude_item_id=...)`) and shows
it the moment the annotator submits; it then sends `shown=<id>` and the server restarts that
item's lease clock (it ran from the prefetch) and answers with an empty body instead of
claiming again. Without a prefetched panel, the server claims the next
item itself and answers with its panel. Either way there is one request per item.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from labeling import rubric, selectors, services
from labeling.models import Assignment, ItemStatus, LabelSchemaVersion, Queue, QueueItem
from reviewapp import validation
from reviewapp.decorators import member_required
from reviewapp.errors import Conflict, NotFound, ValidationFailed
from reviewapp.principal import CAPABILITIES
from reviewapp.transcript import TurnView, transcript_turns

T = TypeVar("T")

# Digits pick options; "0" is the tenth. Options past the tenth are picked by mouse or Tab.
_DIGITS = [*"123456789", "0"]
RECENT_LABELS = 50
NOTICE_EVENT = "labeling-notice"


# --- access ----------------------------------------------------------------------------------


def label_editable(item: QueueItem) -> bool:
    """Whether its annotators may still change their labels (label_submit's rule): until a
    reviewer has ruled on the item or it was dropped."""
    return item.status != ItemStatus.DROPPED and item.final_source != "review"


def _membership(request: HttpRequest) -> Any:
    return request.membership  # type: ignore[attr-defined]


def _can_manage(request: HttpRequest) -> bool:
    return "labeling.manage" in CAPABILITIES.get(_membership(request).role, frozenset())


def _or_404(selector: Callable[..., T], **kwargs: Any) -> T:
    """The selectors raise NotFound for a missing or forbidden object (the API answers 404);
    pages turn it into Django's 404."""
    try:
        return selector(**kwargs)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _worker_queue(request: HttpRequest, queue_id: int) -> Queue:
    m = _membership(request)
    return _or_404(
        selectors.queue_get_for_worker, organization=m.organization, queue_id=queue_id, user=request.user, role=m.role
    )


def _worker_item(request: HttpRequest, item_id: int) -> QueueItem:
    m = _membership(request)
    return _or_404(
        selectors.item_get_for_worker, organization=m.organization, item_id=item_id, user=request.user, role=m.role
    )


def _managed_queue(request: HttpRequest, queue_id: int) -> Queue:
    return _or_404(selectors.queue_get, organization=_membership(request).organization, queue_id=queue_id)


def _managed_item(request: HttpRequest, item_id: int) -> QueueItem:
    return _or_404(selectors.item_get, organization=_membership(request).organization, item_id=item_id)


# --- the rubric as a form --------------------------------------------------------------------


@dataclass
class ChoiceView:
    value: str
    text: str
    checked: bool
    kbd: str = ""
    detail: str = ""


@dataclass
class QuestionView:
    number: int
    key: str
    type: str
    label: str
    help: str
    required: bool
    choices: list[ChoiceView] = field(default_factory=list)
    text: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def field_name(self) -> str:
        return f"a-{self.key}"

    @property
    def multiple(self) -> bool:
        return self.type == "multi_choice"


def _choice_values(q: rubric.Question, turns: list[TurnView]) -> list[tuple[str, str, str]]:
    """(value, text, detail) of each option, in order."""
    if q.type in ("single_choice", "multi_choice"):
        return [(o, o, "") for o in q.options]
    if q.type == "rating":
        return [(str(v), str(v), "") for v in range(q.min or 0, (q.max or 0) + 1)]
    if q.type == "boolean":
        return [("yes", "Yes", ""), ("no", "No", "")]
    if q.type == "turn":
        roles = set(q.roles or ["assistant"])
        out = []
        for t in turns:
            if t.role not in roles:
                continue
            preview = t.text or ", ".join(f"calls {c.name}" for c in t.tool_calls)
            out.append((str(t.index), f"#{t.index} {t.role}", preview[:90] + ("…" if len(preview) > 90 else "")))
        return out
    return []


def _kbd_for(q: rubric.Question, position: int, value: str) -> str:
    # A 1-5 or 0-9 scale is picked by its own digit; everything else by position.
    if q.type == "rating" and (q.min or 0) >= 0 and (q.max or 0) <= 9:
        return value
    return _DIGITS[position] if position < len(_DIGITS) else ""


def _as_strings(value: Any) -> set[str]:
    if value is True:
        return {"yes"}
    if value is False:
        return {"no"}
    if isinstance(value, list):
        return {str(v) for v in value}
    return set() if value is None else {str(value)}


def question_views(
    questions: list[rubric.Question],
    turns: list[TurnView],
    answers: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[QuestionView]:
    answers = answers if isinstance(answers, dict) else {}
    errors = errors or {}
    views = []
    for number, q in enumerate(questions, start=1):
        chosen = _as_strings(answers.get(q.key))
        view = QuestionView(
            number=number,
            key=q.key,
            type=q.type,
            label=q.label,
            help=q.help,
            required=q.required,
            errors=errors.get(f"answers.{q.key}", []),
        )
        if q.type == "text":
            value = answers.get(q.key)
            view.text = value if isinstance(value, str) else ""
        for position, (value, text, detail) in enumerate(_choice_values(q, turns)):
            view.choices.append(ChoiceView(value, text, value in chosen, _kbd_for(q, position, value), detail))
        views.append(view)
    return views


def answers_from_post(questions: list[rubric.Question], data: QueryDict) -> dict[str, Any]:
    """Form fields (`a-<key>`) to typed answers. Unparseable values are passed on as sent so
    the rubric's validation names the question; empty ones are left out (unanswered)."""
    answers: dict[str, Any] = {}
    for q in questions:
        name = f"a-{q.key}"
        if q.type == "multi_choice":
            picked = [v for v in data.getlist(name) if v]
            if picked:
                answers[q.key] = picked
            continue
        raw = data.get(name, "")
        if q.type == "text":
            raw = raw.strip()
        if not raw:
            continue
        if q.type in ("rating", "turn"):
            try:
                low, high = validation.INTEGER
                answers[q.key] = validation.parse_int(raw, field=name, min=low, max=high)
            except validation.InputError:
                answers[q.key] = raw
        elif q.type == "boolean":
            answers[q.key] = {"yes": True, "no": False}.get(raw, raw)
        else:
            answers[q.key] = raw
    return answers


def _id_or_none(value: str | None) -> int | None:
    """An id the page sends back as a hint (`exclude`, `reviewed`): None unless it is one."""
    try:
        return validation.parse_int_or_none(value, field="id", min=validation.ID_MIN, max=validation.ID_MAX)
    except validation.InputError:
        return None


def _submit_fields(data: QueryDict) -> tuple[int | None, int | None, int | None]:
    """schema_version, time_spent_ms and shown of a label submit, parsed before anything is
    saved: a bad one is the client's error (InputError naming it), never a 500 after the save."""
    ids = {"min": validation.ID_MIN, "max": validation.ID_MAX}
    version_id = validation.parse_int_or_none(data.get("schema_version"), field="schema_version", **ids)
    spent = validation.parse_int_or_none(
        data.get("time_spent_ms"), field="time_spent_ms", min=validation.POSITIVE[0], max=validation.POSITIVE[1]
    )
    shown = validation.parse_int_or_none(data.get("shown"), field="shown", **ids)
    return version_id, spent, shown


def _version(queue: Queue, version_id: int | None) -> LabelSchemaVersion | None:
    # Only for reading a draft's fields (drafts are kept unvalidated); a label's version is
    # resolved, and refused when unknown, by services.schema_version_resolve.
    latest = queue.schema.latest_version
    if version_id is None or (latest is not None and latest.pk == version_id):
        return latest
    return queue.schema.versions.filter(pk=version_id).first() or latest


# --- the labeling page -----------------------------------------------------------------------


def _panel_context(
    *,
    item: QueueItem,
    mode: str = "work",
    active: bool = True,
    answers: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    message: str = "",
    client_token: str = "",
    version: LabelSchemaVersion | None = None,
) -> dict[str, Any]:
    """Everything one item's panel shows. Never other people's labels; judge scores only where
    the queue shows them (hidden by default against anchoring)."""
    queue = item.queue
    version = version or queue.schema.latest_version
    questions = rubric.questions_from_json(version.questions if version else [])
    turns = transcript_turns(item.conversation.messages)
    general = [m for key, messages in (errors or {}).items() if not key.startswith("answers.") for m in messages]
    return {
        "item": item,
        "queue": queue,
        "mode": mode,
        "active": active,
        "version": version,
        "instructions": version.instructions if version else "",
        "questions": question_views(questions, turns, answers, errors),
        "turns": turns,
        "turn_prefix": f"i{item.pk}-",
        "judge_scores": list(item.conversation.judge_scores.all()) if queue.show_judge_scores else [],
        "message": message,
        "general_errors": general,
        "client_token": client_token or uuid.uuid4().hex,
        "state": "invalid" if errors else "ready",
    }


def _claimed_panel_context(
    request: HttpRequest, assignment: Assignment | None, *, queue: Queue, active: bool = True
) -> dict[str, Any]:
    if assignment is None:
        return {"done": True, "queue": queue, "active": active}
    # The claim brought the item (on PostgreSQL with its conversation) and the queue came with
    # its rubric: attach rather than reload them through item_get's join.
    item = selectors.item_with_conversation(item=assignment.item, queue=queue)
    return _panel_context(item=item, active=active, answers=assignment.draft_answers)


def _panel_template(context: dict[str, Any]) -> str:
    if context.get("start"):
        return "labeling/_start.html"
    return "labeling/_done.html" if context.get("done") else "labeling/_panel.html"


def _render_panel(request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    """A panel for htmx: one to show arrives as .incoming (labeling.js activates it), a
    prefetched one as neither."""
    context = {**context, "placement": "incoming" if context.get("active") else ""}
    return render(request, _panel_template(context), context, status=status)


def _render_work_page(
    request: HttpRequest,
    queue: Queue,
    panel: dict[str, Any],
    *,
    template: str = "labeling/work.html",
    status: int = 200,
) -> HttpResponse:
    panel = {**panel, "placement": "active"}
    panel_html = render_to_string(_panel_template(panel), panel, request=request)
    return render(request, template, {"queue": queue, "panel_html": panel_html, **panel}, status=status)


@member_required("labeling.work")
@require_GET
def queue_list(request: HttpRequest) -> HttpResponse:
    m = _membership(request)
    queues = selectors.queue_list_for_worker(organization=m.organization, user=request.user, role=m.role)
    counts = selectors.queue_counts_many(queues=queues)
    mine = selectors.user_queue_progress_many(queues=queues, user=request.user)
    rows = [{"queue": q, "counts": counts[q.pk], "mine": mine[q.pk]} for q in queues]
    context = {"rows": rows, "can_manage": _can_manage(request)}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "labeling/_queue_table.html", context)
    return render(request, "labeling/queue_list.html", context)


@member_required("labeling.work")
@require_http_methods(["GET", "HEAD", "POST"])
def work(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The labeling page. GET only shows: the item this person already holds, else a start
    panel whose form (sent by labeling.js once the page is really on screen) claims one. Link
    prefetchers, prerendering and tabs opened in the background therefore take no lease.
    POST claims (a reload gets back the lease already held, never a new item): htmx gets the
    item's panel, a plain form post is redirected to the page, which then shows the lease."""
    queue = _worker_queue(request, queue_id)
    if request.method == "POST":
        assignment = services.item_claim(queue=queue, user=request.user)
        if not request.htmx:  # type: ignore[attr-defined]
            return redirect("labeling:work", queue_id=queue.pk)
        return _render_panel(request, _claimed_panel_context(request, assignment, queue=queue))
    held = selectors.lease_held(queue=queue, user=request.user)
    if held is None:
        return _render_work_page(request, queue, {"start": True, "queue": queue, "active": True})
    return _render_work_page(request, queue, _claimed_panel_context(request, held, queue=queue))


@member_required("labeling.work")
@require_POST
def next_panel(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Prefetch: lease a second item while the annotator works on `exclude`, and send its
    panel (hidden until they submit). 204 when there is nothing more for them."""
    queue = _worker_queue(request, queue_id)
    exclude = _id_or_none(request.GET.get("exclude") or request.POST.get("exclude"))
    assignment = services.item_claim(queue=queue, user=request.user, exclude_item_id=exclude)
    if assignment is None or assignment.item_id == exclude:
        return HttpResponse(status=204)
    return _render_panel(request, _claimed_panel_context(request, assignment, queue=queue, active=False))


def _after_item(request: HttpRequest, queue: Queue, *, notice: str = "", status: int = 200) -> HttpResponse:
    """What replaces a finished panel: nothing when the browser already shows its prefetched
    item, else the next item's panel (claimed here), else the "all done" panel."""
    if not request.htmx:  # type: ignore[attr-defined]
        # A plain form post: lease the next item here (a POST), so the page it is sent back to
        # shows it, as it would have without the start panel.
        services.item_claim(queue=queue, user=request.user)
        return redirect("labeling:work", queue_id=queue.pk)
    if shown := _id_or_none(request.POST.get("shown")):
        services.lease_restart(queue=queue, item_id=shown, user=request.user)
        response = HttpResponse("", status=status)
    else:
        assignment = services.item_claim(queue=queue, user=request.user)
        response = _render_panel(request, _claimed_panel_context(request, assignment, queue=queue), status=status)
    if notice:
        trigger_client_event(response, NOTICE_EVENT, {"message": notice})
    return response


def _page_or_panel(request: HttpRequest, context: dict[str, Any], *, status: int) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        return _render_panel(request, context, status=status)
    template = "labeling/edit.html" if context.get("mode") == "edit" else "labeling/work.html"
    return _render_work_page(request, context["queue"], context, template=template, status=status)


@member_required("labeling.work")
@require_POST
def submit(request: HttpRequest, item_id: int) -> HttpResponse:
    """Record the label (or the edit of one), then move on. Invalid answers come back on the
    same item's form with the messages (422); a lost lease on a completed item is a notice and
    the next item (409)."""
    item = _worker_item(request, item_id)
    queue = item.queue
    mode = "edit" if request.POST.get("mode") == "edit" else "work"
    token = request.POST.get("client_token", "")[:100]
    try:
        version_id, spent, _shown = _submit_fields(request.POST)
        version = services.schema_version_resolve(queue=queue, version_id=version_id)
    except ValidationFailed as exc:  # InputError included
        context = _panel_context(item=item, mode=mode, errors=exc.errors, message=exc.message, client_token=token)
        return _page_or_panel(request, context, status=422)
    except Conflict as exc:  # the rubric has no version
        return _after_item(request, queue, notice=exc.message, status=409)
    questions = rubric.questions_from_json(version.questions)
    answers = answers_from_post(questions, request.POST)
    try:
        services.label_submit(
            item=item,
            user=request.user,
            answers=answers,
            client_token=token,
            schema_version_id=version.pk,
            time_spent_ms=spent,
        )
    except ValidationFailed as exc:
        context = _panel_context(
            item=item,
            mode=mode,
            answers=answers,
            errors=exc.errors or {"answers": [exc.message]},
            message=exc.message,
            client_token=token,
            version=version,
        )
        return _page_or_panel(request, context, status=422)
    except Conflict as exc:
        if mode == "edit":
            return _render_edit_result(request, item, notice=exc.message, status=409)
        return _after_item(request, queue, notice=exc.message, status=409)
    if mode == "edit":
        return _render_edit_result(request, item)
    return _after_item(request, queue)


@member_required("labeling.work")
@require_POST
def skip(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _worker_item(request, item_id)
    try:
        services.item_skip(item=item, user=request.user, reason=request.POST.get("reason", "").strip()[:500])
    except Conflict as exc:
        return _after_item(request, item.queue, notice=exc.message, status=409)
    except ValidationFailed as exc:
        return HttpResponse(exc.message, status=422, content_type="text/plain")
    return _after_item(request, item.queue)


@member_required("labeling.work")
@require_http_methods(["PUT", "POST"])
def draft(request: HttpRequest, item_id: int) -> HttpResponse:
    """Autosave: the form as it stands, unvalidated, kept on the person's assignment."""
    item = _worker_item(request, item_id)
    data = request.POST if request.method == "POST" else QueryDict(request.body)
    version = _version(item.queue, _id_or_none(data.get("schema_version")))
    answers = answers_from_post(rubric.questions_from_json(version.questions if version else []), data)
    try:
        services.draft_save(item=item, user=request.user, answers=answers)
    except Conflict as exc:
        return HttpResponse(exc.message, status=409, content_type="text/plain")
    except ValidationFailed as exc:
        return HttpResponse(exc.message, status=422, content_type="text/plain")
    return HttpResponse(status=204)


@member_required("labeling.work")
@require_POST
def comment(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _worker_item(request, item_id)
    body = request.POST.get("body", "")
    try:
        saved = services.item_comment_add(item=item, user=request.user, body=body, is_reviewer=_can_manage(request))
    except (ValidationFailed, Conflict) as exc:
        errors = [m for messages in exc.errors.values() for m in messages] or [exc.message]
        context = {"item": item, "errors": errors, "body": body}
        status = 422 if isinstance(exc, ValidationFailed) else exc.status_code  # both swapped by labeling.js
        return render(request, "labeling/_comment_box.html", context, status=status)
    return render(request, "labeling/_comment_box.html", {"item": item, "sent": saved})


@member_required("labeling.work")
@require_GET
def edit(request: HttpRequest, item_id: int) -> HttpResponse:
    """Change my label on an item, while the item is not final."""
    item = _worker_item(request, item_id)
    label = selectors.label_for(item=item, user=request.user)
    if label is None:
        raise Http404("You have no label on this item.")
    if not label_editable(item):
        return render(request, "labeling/edit.html", {"queue": item.queue, "final": True})
    context = _panel_context(item=item, mode="edit", answers=label.answers)
    return _render_work_page(request, item.queue, context, template="labeling/edit.html")


def _render_edit_result(request: HttpRequest, item: QueueItem, *, notice: str = "", status: int = 200) -> HttpResponse:
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("labeling:mine")
    context = {"item": item, "queue": item.queue, "notice": notice, "placement": "incoming"}
    return render(request, "labeling/_saved.html", context, status=status)


# --- my work ---------------------------------------------------------------------------------


@member_required("labeling.work")
@require_GET
def my_work(request: HttpRequest) -> HttpResponse:
    m = _membership(request)
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
    return render(request, "labeling/mine.html", {"rows": rows, "recent": recent, "page": page})


# --- engineer pages --------------------------------------------------------------------------


@member_required("labeling.manage")
@require_GET
def review_list(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = _managed_queue(request, queue_id)
    items = list(selectors.review_items(queue=queue))
    reviewed = _id_or_none(request.GET.get("reviewed"))
    return render(
        request,
        "labeling/review_list.html",
        {"queue": queue, "items": items, "counts": selectors.queue_counts(queue=queue), "reviewed": reviewed},
    )


def _answer_text(q: rubric.Question | None, value: Any, turns: list[TurnView]) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if q is not None and q.type == "turn" and isinstance(value, int):
        role = next((t.role for t in turns if t.index == value), "")
        return f"#{value} {role}".strip()
    return str(value)


@member_required("labeling.manage")
@require_http_methods(["GET", "POST"])
def review_item(request: HttpRequest, item_id: int) -> HttpResponse:
    """Every label side by side, the comments, and a form for the final answer."""
    item = _managed_item(request, item_id)
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
    by_key = {q.key: q for q in questions}
    keys = [q.key for q in questions]
    for label in labels:
        keys += [k for k in (label.answers or {}) if k not in keys]
    table = [
        {
            "key": key,
            "label": by_key[key].label if key in by_key else key,
            "cells": [_answer_text(by_key.get(key), (label.answers or {}).get(key), turns) for label in labels],
            "final": _answer_text(by_key.get(key), (item.final_answers or {}).get(key), turns)
            if item.final_answers
            else "",
            "gold": _answer_text(by_key.get(key), (item.gold_answers or {}).get(key), turns)
            if item.gold_answers
            else "",
            "differs": len({repr((label.answers or {}).get(key)) for label in labels}) > 1,
        }
        for key in keys
    ]
    context = {
        "item": item,
        "queue": queue,
        "turns": turns,
        "turn_prefix": "",
        "labels": labels,
        "table": table,
        "times": [
            _num(label.time_spent_ms / 1000, 1) + " s" if label.time_spent_ms is not None else "—" for label in labels
        ],
        "comments": list(item.comments.select_related("user")),
        "judge_scores": list(item.conversation.judge_scores.all()),
        "questions": question_views(questions, turns, answers, errors),
        "message": message,
    }
    return render(request, "labeling/review_item.html", context, status=status)


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _num(value: Any, places: int = 2) -> str:
    return "—" if value is None else f"{value:.{places}f}"


def _ci(value: Any) -> str:
    if not value or len(value) != 2 or value[0] is None or value[1] is None:
        return ""
    return f"[{value[0]:.2f}, {value[1]:.2f}]"


# --- statistics pages: read the queue's snapshot ----------------------------------------------

_PAIRS_SHOWN = 100


def _snapshot_context(queue: Queue, snapshot: Any) -> dict[str, Any]:
    return {
        "snapshot": snapshot,
        "refreshing": snapshot.state != "idle",
        "as_of_token": snapshot.computed_at.isoformat() if snapshot.computed_at else "",
    }


@member_required("labeling.manage")
@require_GET
def annotators(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = _managed_queue(request, queue_id)
    snapshot = services.agreement_snapshot_current(queue=queue)
    rows = [
        dict(
            row,
            agreement=_pct(row.get("agreement_with_others")),
            gold=_pct(row.get("gold_accuracy")),
            median=_num(row.get("median_seconds"), 1),
            per_hour=_num(row.get("labels_per_hour"), 1),
        )
        for row in (snapshot.payload or {}).get("annotators") or []
    ]
    context = {"queue": queue, "rows": rows, "page": "annotators", **_snapshot_context(queue, snapshot)}
    return render(request, "labeling/annotators.html", context)


def _category_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@member_required("labeling.manage")
@require_GET
def agreement(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Agreement per question with bootstrap intervals (order-free coefficients only), annotator
    pairs with Cohen's kappa, and which answers met on items with exactly two labels, all from
    the queue's statistics snapshot."""
    queue = _managed_queue(request, queue_id)
    snapshot = services.agreement_snapshot_current(queue=queue)
    payload = snapshot.payload or {}
    report = payload.get("agreement") or {}
    questions_by_key = {q.key: q for q in selectors.queue_questions(queue=queue)}
    labels = {key: q.label for key, q in questions_by_key.items()}
    questions = []
    for key, stats in (report.get("questions") or {}).items():
        prevalence = stats.get("prevalence") or {}
        questions.append(
            {
                "key": key,
                "label": labels.get(key, key),
                "n_items": stats.get("n_items") or 0,
                "percent_agreement": _pct(stats.get("percent_agreement")),
                "stats": [
                    (name, _num(stats.get(field)), _ci(stats.get(f"{field}_ci")))
                    for name, field in (
                        ("Fleiss' κ", "fleiss_kappa"),
                        ("Krippendorff's α", "krippendorff_alpha"),  # noqa: RUF001 - the letter is meant
                        ("Gwet's AC1", "gwet_ac1"),
                    )
                ],
                "prevalence": [(_category_text(category), _pct(share)) for category, share in prevalence.items()],
            }
        )
    usernames = {row["user_id"]: row["username"] for row in payload.get("annotators") or []}
    all_pairs = sorted(report.get("pairs") or [], key=lambda p: -(p.get("n_items") or 0))
    pairs = [
        {
            "a": usernames.get(p.get("annotator_a"), f"user {p.get('annotator_a')}"),
            "b": usernames.get(p.get("annotator_b"), f"user {p.get('annotator_b')}"),
            "n_items": p.get("n_items") or 0,
            "questions": [
                (
                    labels.get(key, key),
                    (figures or {}).get("n_items") or 0,
                    _pct((figures or {}).get("percent_agreement")),
                    _num((figures or {}).get("cohen_kappa")),
                    _num((figures or {}).get("cohen_kappa_weighted"))
                    if getattr(questions_by_key.get(key), "level", "") == "ordinal"
                    else "",
                )
                for key, figures in (p.get("questions") or {}).items()
            ],
        }
        for p in all_pairs[:_PAIRS_SHOWN]
    ]
    keys = [q["key"] for q in questions]
    chosen = request.GET.get("question") if request.GET.get("question") in keys else (keys[0] if keys else None)
    confusion = None
    table = (report.get("answer_pairs") or {}).get(chosen) if chosen else None
    if table:
        categories = [_category_text(c) for c in table.get("categories") or []]
        rows = table.get("rows") or []
        confusion = {
            "key": chosen,
            "label": labels.get(chosen, chosen),
            "categories": categories,
            "rows": [(categories[i], row, sum(row)) for i, row in enumerate(rows)],
            "totals": [sum(row[j] for row in rows) for j in range(len(categories))],
            "n": table.get("n_items") or 0,
        }
    context = {
        "queue": queue,
        "questions": questions,
        "pairs": pairs,
        "n_pairs": len(all_pairs),
        "confusion": confusion,
        "keys": keys,
        "page": "agreement",
        **_snapshot_context(queue, snapshot),
    }
    return render(request, "labeling/agreement.html", context)


@member_required("labeling.manage")
@require_POST
def statistics_refresh(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The refresh button: queue a background refresh; htmx swaps in the status line, which then
    polls until the new snapshot is in."""
    queue = _managed_queue(request, queue_id)
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
    queue = _managed_queue(request, queue_id)
    snapshot = selectors.agreement_snapshot_get(queue=queue)
    if snapshot is None:
        raise Http404("No statistics yet.")
    as_of = snapshot.computed_at.isoformat() if snapshot.computed_at else ""
    if snapshot.state == "idle" or as_of != request.GET.get("as_of", ""):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "labeling/_snapshot_status.html", {"queue": queue, **_snapshot_context(queue, snapshot)})
