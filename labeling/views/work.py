"""The labeling page.

The labeling page is one long-lived page. Loading it never leases (link prefetchers and
background tabs load pages too): it shows the item already held, or a start panel that
labeling.js posts once the page is on screen. Each item is a panel (`_panel.html`); submit and skip
post from the panel with htmx and the response replaces that panel. labeling.js prefetches the
next item's panel into the page (a second lease, `item_claim(exclude_item_id=...)`) and shows
it the moment the annotator submits; it then sends `shown=<id>` and the server restarts that
item's lease clock (it ran from the prefetch) and answers with an empty body instead of
claiming again. Without a prefetched panel, the server claims the next
item itself and answers with its panel. Either way there is one request per item."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from labeling import rubric, selectors, services
from labeling.forms import answers_from_post, id_or_none, label_editable, question_views, submit_fields
from labeling.models import Assignment, LabelSchemaVersion, Queue, QueueItem
from labeling.views._access import can_manage, worker_item, worker_queue
from reviewapp import selectors as core_selectors
from reviewapp.decorators import member_required
from reviewapp.errors import Conflict, ValidationFailed
from reviewapp.transcript import transcript_turns

NOTICE_EVENT = "labeling-notice"


def _version(queue: Queue, version_id: int | None) -> LabelSchemaVersion | None:
    # Only for reading a draft's fields (drafts are kept unvalidated); a label's version is
    # resolved, and refused when unknown, by services.schema_version_resolve.
    latest = queue.schema.latest_version
    if version_id is None or (latest is not None and latest.pk == version_id):
        return latest
    return queue.schema.versions.filter(pk=version_id).first() or latest


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
    pair = selectors.pairwise_item_for(item=item)
    turns = transcript_turns(pair.input_messages if pair and pair.input_messages else item.conversation.messages)
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
        # A pairwise item: the two outputs as A (left) and B (right), each through the same
        # renderer as the transcript; which one is the candidate is never shown.
        "pairwise": {"a": transcript_turns(pair.left_output), "b": transcript_turns(pair.right_output)}
        if pair is not None
        else None,
        # What the transcript already shows, pointed at: the annotator reads the turn either way.
        "signals": core_selectors.signals_for_conversations(
            project=item.conversation.project, conversation_ids=[item.conversation_id]
        ).get(item.conversation_id, []),
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
@require_http_methods(["GET", "HEAD", "POST"])
def work(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The labeling page. GET only shows: the item this person already holds, else a start
    panel whose form (sent by labeling.js once the page is really on screen) claims one. Link
    prefetchers, prerendering and tabs opened in the background therefore take no lease.
    POST claims (a reload gets back the lease already held, never a new item): htmx gets the
    item's panel, a plain form post is redirected to the page, which then shows the lease."""
    queue = worker_queue(request, queue_id)
    if request.method == "POST":
        assignment = services.item_claim(queue=queue, user=request.user)
        if not request.htmx:  # type: ignore[attr-defined]
            if assignment is None:
                # Redirecting would show the start panel again, whose form posts again: a loop.
                return _render_work_page(request, queue, _claimed_panel_context(request, None, queue=queue))
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
    queue = worker_queue(request, queue_id)
    exclude = id_or_none(request.GET.get("exclude") or request.POST.get("exclude"))
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
    if shown := id_or_none(request.POST.get("shown")):
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
    item = worker_item(request, item_id)
    queue = item.queue
    mode = "edit" if request.POST.get("mode") == "edit" else "work"
    token = request.POST.get("client_token", "")[:100]
    try:
        version_id, spent, _shown = submit_fields(request.POST)
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
    item = worker_item(request, item_id)
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
    item = worker_item(request, item_id)
    data = request.POST if request.method == "POST" else QueryDict(request.body)
    version = _version(item.queue, id_or_none(data.get("schema_version")))
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
    item = worker_item(request, item_id)
    body = request.POST.get("body", "")
    try:
        saved = services.item_comment_add(item=item, user=request.user, body=body, is_reviewer=can_manage(request))
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
    item = worker_item(request, item_id)
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
