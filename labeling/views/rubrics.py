"""The rubric builder: list, create, edit (each save is the next version), preview, history.

The form posts every question as a row of fields (labeling/builder.py reads them); the buttons
that add, move and remove a question post the form back and the page comes back with the rows
changed, so it needs no script. The document it builds is checked by the API's own model and
saved through the same services as `POST /api/v1/label-schemas`."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling import builder, forms, rubric, selectors, services
from labeling.models import LabelSchema
from labeling.views._access import membership, or_404
from reviewapp import form_rows
from reviewapp import selectors as core_selectors
from reviewapp.decorators import member_required
from reviewapp.errors import ValidationFailed

FIELD_TYPES = {
    "options": "single_choice multi_choice",
    "passing_options": "single_choice multi_choice",
    "min": "rating",
    "max": "rating",
    "passing_min": "rating",
    "roles": "turn",
}


def _schema(request: HttpRequest, schema_id: int) -> LabelSchema:
    return or_404(selectors.label_schema_get, organization=membership(request).organization, schema_id=schema_id)


def _preview(document: dict[str, Any]) -> dict[str, Any]:
    """The labeling form as annotators will see it: each question that is valid on its own, so
    the preview follows the typing even while another question is unfinished."""
    shown, broken = [], []
    for number, q in enumerate(document.get("questions") or [], start=1):
        try:
            shown.append(rubric.Question.model_validate(q))
        except ValueError:
            broken.append(number)
    return {
        "preview_questions": forms.question_views(shown, []),
        "preview_broken": broken,
        "preview_instructions": document.get("instructions") or "",
    }


def _builder_page(
    request: HttpRequest,
    *,
    schema: LabelSchema | None,
    name: str,
    instructions: str,
    rows: list[dict[str, Any]],
    errors: dict[str, list[str]] | None = None,
    project_slug: str = "",
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    document, _ = builder.rubric_document(name, instructions, rows)
    projects = list(core_selectors.project_list(organization=membership(request).organization))
    context = {
        "schema": schema,
        "name": name,
        "instructions": instructions,
        "rows": form_rows.row_views(rows, errors, "q"),
        "count": len(rows),
        "errors": errors,
        "projects": projects,
        "project_slug": project_slug or (projects[0].slug if projects else ""),
        "types": builder.TYPE_CHOICES,
        "roles": builder.ROLES,
        "field_types": FIELD_TYPES,
        "max_questions": builder.MAX_QUESTIONS,
        **_preview(document),
    }
    return render(request, "labeling/rubric_edit.html", context, status=status)


@member_required("labeling.manage")
@require_GET
def build(request: HttpRequest) -> HttpResponse:
    """Every rubric and every queue of the organization, paused ones included (the annotators'
    queue list shows active queues only), with what to do next when there are none."""
    organization = membership(request).organization
    schemas = selectors.label_schema_list(organization=organization).order_by("project__name", "name", "pk")
    queues = selectors.queue_list(organization=organization).order_by("project__name", "name", "pk")
    return render(request, "labeling/rubric_list.html", {"schemas": schemas, "queues": queues})


def _save(
    request: HttpRequest, schema: LabelSchema | None
) -> tuple[LabelSchema | None, int | None, dict[str, list[str]], str]:
    """Validate the posted rubric and save it: (schema, version number, errors, project slug)."""
    name, instructions = request.POST.get("name", ""), request.POST.get("instructions", "")
    rows = builder.question_rows_from_post(request.POST)
    document, errors = builder.rubric_document(name, instructions, rows)
    project_slug = request.POST.get("project", "")
    project = None
    if schema is None:
        project = core_selectors.project_get_by_slug(organization=membership(request).organization, slug=project_slug)
        if project is None:
            errors["project"] = ["Choose one of the organization's projects."]
    parsed, model_errors = builder.rubric_validate(document)
    errors = {**model_errors, **errors}
    if errors or parsed is None:
        return None, None, errors, project_slug
    try:
        if schema is None:
            assert project is not None  # checked above
            schema = services.label_schema_create(project=project, rubric_in=parsed, user=request.user)
            return schema, 1, {}, project_slug
        latest = schema.latest_version
        if (
            latest is not None
            and parsed.name == schema.name
            and parsed.instructions == latest.instructions
            and [q.model_dump(exclude_none=True) for q in parsed.questions] == latest.questions
        ):
            return schema, None, {}, project_slug
        version = services.label_schema_version_create(schema=schema, rubric_in=parsed, user=request.user)
        return schema, version.version, {}, project_slug
    except ValidationFailed as exc:
        return None, None, builder.errors_for_form(exc.errors or {"form": [str(exc)]}), project_slug


def _builder_post(request: HttpRequest, schema: LabelSchema | None) -> HttpResponse:
    op = request.POST.get("op", "")
    if op == "save":
        saved, version, errors, project_slug = _save(request, schema)
        if saved is not None:
            if version is None:
                messages.info(request, "Nothing changed: no new version was made.")
            else:
                messages.success(request, f"Saved {saved.name} as version {version}.")
            return redirect("labeling:rubric-history", saved.pk)
        rows = builder.question_rows_from_post(request.POST)
        return _builder_page(
            request,
            schema=schema,
            name=request.POST.get("name", ""),
            instructions=request.POST.get("instructions", ""),
            rows=rows,
            errors=errors,
            project_slug=project_slug,
            status=400,
        )
    rows = form_rows.rows_apply(
        builder.question_rows_from_post(request.POST), op, builder.blank_question(), builder.MAX_QUESTIONS
    )
    return _builder_page(
        request,
        schema=schema,
        name=request.POST.get("name", ""),
        instructions=request.POST.get("instructions", ""),
        rows=rows,
        project_slug=request.POST.get("project", ""),
    )


@member_required("labeling.manage")
@require_http_methods(["GET", "POST"])
def rubric_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _builder_post(request, None)
    return _builder_page(
        request, schema=None, name="", instructions="", rows=[builder.blank_question()], project_slug=""
    )


@member_required("labeling.manage")
@require_http_methods(["GET", "POST"])
def rubric_edit(request: HttpRequest, schema_id: int) -> HttpResponse:
    schema = _schema(request, schema_id)
    if request.method == "POST":
        return _builder_post(request, schema)
    latest = schema.latest_version
    rows = [builder.question_row_from_json(q) for q in (latest.questions if latest else [])]
    return _builder_page(
        request,
        schema=schema,
        name=schema.name,
        instructions=latest.instructions if latest else "",
        rows=rows or [builder.blank_question()],
    )


@member_required("labeling.manage")
@require_POST
def rubric_preview(request: HttpRequest) -> HttpResponse:
    """The builder's live preview (htmx): the posted form, as annotators would see it."""
    rows = builder.question_rows_from_post(request.POST)
    document, _ = builder.rubric_document(request.POST.get("name", ""), request.POST.get("instructions", ""), rows)
    return render(request, "labeling/_rubric_preview.html", _preview(document))


def _version_number(value: str | None, numbers: list[int], default: int) -> int:
    try:
        number = int(value or "")
    except ValueError:
        return default
    return number if number in numbers else default


@member_required("labeling.manage")
@require_GET
def rubric_history(request: HttpRequest, schema_id: int) -> HttpResponse:
    """Every version, and what changed between two of them (the last two unless chosen)."""
    schema = _schema(request, schema_id)
    versions = list(schema.versions.order_by("-version").select_related("created_by"))
    if not versions:
        raise Http404("This rubric has no version.")
    numbers = [v.version for v in versions]
    by_number = {v.version: v for v in versions}
    new_n = _version_number(request.GET.get("b"), numbers, numbers[0])
    old_n = _version_number(request.GET.get("a"), numbers, numbers[1] if len(numbers) > 1 else numbers[0])
    old, new = by_number[old_n], by_number[new_n]
    diff = builder.rubric_diff(
        old.questions, new.questions, old_instructions=old.instructions, new_instructions=new.instructions
    )
    context = {
        "schema": schema,
        "versions": versions,
        "old": old,
        "new": new,
        "diff": diff,
        "edit_url": reverse("labeling:rubric-edit", args=[schema.pk]),
    }
    return render(request, "labeling/rubric_history.html", context)
