"""The queue editor: create a queue, change every setting `queue_settings_update` accepts and
the sampling rules (a row of fields per rule, read by labeling/builder.py and checked by the
sampler's own model), preview what the rules would have sampled, pause and resume."""

from __future__ import annotations

from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from labeling import builder, sampling, selectors, services
from labeling.forms import id_or_none
from labeling.models import LabelSchema, Queue, SkipPolicy
from labeling.views._access import managed_queue, membership, or_404
from reviewapp import form_rows, validation
from reviewapp import selectors as core_selectors
from reviewapp.decorators import member_required
from reviewapp.errors import ValidationFailed
from reviewapp.models import Role


class QueueForm(django_forms.Form):
    """The queue's settings, bounded as the API's QueueListCreateApi.InputSerializer bounds them."""

    name = django_forms.CharField(max_length=200)
    description = django_forms.CharField(
        required=False, max_length=2000, widget=django_forms.Textarea(attrs={"rows": 2})
    )
    annotations_per_item = django_forms.IntegerField(min_value=1, max_value=10, initial=1)
    max_extra_annotations = django_forms.IntegerField(min_value=0, max_value=5, initial=0)
    priority = django_forms.IntegerField(min_value=validation.INTEGER[0], max_value=validation.INTEGER[1], initial=0)
    lease_seconds = django_forms.IntegerField(min_value=30, max_value=86_400, initial=600)
    assignee_role = django_forms.ChoiceField(
        choices=[(r, Role(r).label) for r in (Role.ANNOTATOR, Role.ENGINEER, Role.ADMIN)], initial=Role.ANNOTATOR
    )
    assignees = django_forms.TypedMultipleChoiceField(coerce=int, required=False)
    show_judge_scores = django_forms.BooleanField(required=False)
    skip_policy = django_forms.ChoiceField(choices=SkipPolicy.choices, initial=SkipPolicy.OTHERS)
    max_per_day = django_forms.IntegerField(min_value=1, max_value=sampling.MAX_PER_DAY, required=False)
    backfill_days = django_forms.IntegerField(min_value=0, max_value=365, initial=30)
    gold_rate = django_forms.FloatField(min_value=0, max_value=1, initial=0)
    is_active = django_forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, members: list[tuple[int, str]], schemas: list[LabelSchema] | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["assignees"].choices = members
        if schemas is not None:
            self.fields["schema"] = django_forms.TypedChoiceField(
                coerce=int, choices=[(s.pk, f"{s.project.name} · {s.name}") for s in schemas]
            )
            self.order_fields(["schema"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name, value in data.items():
            if isinstance(value, str) and "\x00" in value:
                self.add_error(name, "Remove the NUL character.")
        return data


def _members(request: HttpRequest) -> list[tuple[int, str]]:
    return [
        (m.user_id, f"{m.user.get_username()} ({m.role})")
        for m in core_selectors.membership_list(organization=membership(request).organization)
    ]


def _schemas(request: HttpRequest) -> list[LabelSchema]:
    return list(
        selectors.label_schema_list(organization=membership(request).organization).order_by("project__name", "name")
    )


def _initial(queue: Queue) -> dict[str, Any]:
    initial = {name: getattr(queue, name) for name in services.QUEUE_SETTINGS}
    initial["max_per_day"] = queue.max_per_day
    initial["assignees"] = [u.pk for u in queue.assignees.all()]
    return initial


def _page(
    request: HttpRequest,
    *,
    queue: Queue | None,
    form: QueueForm,
    rows: list[dict[str, str]],
    rule_errors: dict[str, list[str]] | None = None,
    preview: Any = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "queue": queue,
        "form": form,
        "rules": form_rows.row_views(rows, rule_errors or {}, "r"),
        "rule_count": len(rows),
        "rule_errors": rule_errors or {},
        "max_rules": builder.MAX_RULES,
        "signals": builder.SIGNALS,
        "signal_sources": ("agent", "derived"),
        "feedback_ratings": ("up", "down"),
        "yes_no": ("yes", "no"),
        "preview": preview,
        "preview_size": services.PREVIEW_CONVERSATIONS,
    }
    return render(request, "labeling/queue_edit.html", context, status=status)


def _rules_from_post(
    request: HttpRequest,
) -> tuple[list[dict[str, str]], list[sampling.SamplingRule], dict[str, list[str]]]:
    rows = builder.rule_rows_from_post(request.POST)
    document, errors = builder.rules_document(rows)
    parsed, model_errors = builder.rules_validate(document)
    return rows, parsed, {**model_errors, **errors}


def _int_or_none(value: str | None) -> int | None:
    try:
        return validation.parse_int_or_none(value, field="max_per_day", min=1, max=sampling.MAX_PER_DAY)
    except validation.InputError:
        return None


def _preview_for(request: HttpRequest, queue: Queue | None) -> Any:
    """The preview of the posted rules, or None when the rules or the project are not known."""
    _, parsed, errors = _rules_from_post(request)
    if errors:
        return None
    project = queue.project if queue is not None else None
    if project is None:
        schema_id = id_or_none(request.POST.get("schema"))
        schema = next((s for s in _schemas(request) if s.pk == schema_id), None)
        project = schema.project if schema is not None else None
    if project is None:
        return None
    max_per_day = _int_or_none(request.POST.get("max_per_day"))
    return services.sampling_preview(
        project=project, rules=parsed, max_per_day=max_per_day, queue_id=queue.pk if queue else None
    )


def _post(request: HttpRequest, queue: Queue | None) -> HttpResponse:
    schemas = _schemas(request) if queue is None else None
    form = QueueForm(request.POST, members=_members(request), schemas=schemas)
    op = request.POST.get("op", "")
    if op != "save":
        rows = form_rows.rows_apply(
            builder.rule_rows_from_post(request.POST), op, builder.blank_rule(), builder.MAX_RULES
        )
        preview = _preview_for(request, queue) if op == "preview" else None
        return _page(request, queue=queue, form=_unvalidated(form), rows=rows, preview=preview)
    rows, parsed, rule_errors = _rules_from_post(request)
    if not form.is_valid() or rule_errors:
        return _page(request, queue=queue, form=form, rows=rows, rule_errors=rule_errors, status=400)
    data = form.cleaned_data
    rules = builder.rules_dump(parsed)
    try:
        if queue is None:
            schema = next(s for s in schemas or [] if s.pk == data["schema"])
            spec = services.QueueSpec(
                name=data["name"],
                schema=schema,
                description=data["description"],
                annotations_per_item=data["annotations_per_item"],
                max_extra_annotations=data["max_extra_annotations"],
                priority=data["priority"],
                lease_seconds=data["lease_seconds"],
                assignee_role=data["assignee_role"],
                assignee_ids=tuple(data["assignees"]),
                show_judge_scores=data["show_judge_scores"],
                skip_policy=data["skip_policy"],
                sampling=tuple(rules),
                max_per_day=data["max_per_day"],
                backfill_days=data["backfill_days"],
                gold_rate=data["gold_rate"],
                is_active=data["is_active"],
            )
            queue = services.queue_create(project=schema.project, spec=spec, user=request.user)
            messages.success(request, f"Created the queue {queue.name}.")
        else:
            changes = {name: data[name] for name in services.QUEUE_SETTINGS}
            services.queue_settings_update(queue=queue, changes=changes, assignee_ids=tuple(data["assignees"]))
            stored = builder.rules_dump(sampling.rules_parse(queue.sampling or []))
            if rules != stored or data["max_per_day"] != queue.max_per_day:
                # Only a real change: it restarts the backfill over the project's history.
                services.queue_sampling_update(queue=queue, rules=rules, max_per_day=data["max_per_day"])
            messages.success(request, f"Saved the queue {queue.name}.")
    except ValidationFailed as exc:
        for path, problems in builder.errors_for_form(exc.errors or {}).items():
            if path in form.fields:
                for problem in problems:
                    form.add_error(path, problem)
            else:
                rule_errors.setdefault(path, []).extend(problems)
        if not exc.errors:
            form.add_error(None, exc.message)
        return _page(request, queue=queue, form=form, rows=rows, rule_errors=rule_errors, status=400)
    return redirect("labeling:queue-edit", queue.pk)


def _unvalidated(form: QueueForm) -> QueueForm:
    """A bound form shown without its errors: adding or moving a rule is not a save, so a field
    left empty so far is not reported yet."""
    form.full_clean()
    form._errors = django_forms.utils.ErrorDict()  # type: ignore[attr-defined]
    return form


@member_required("labeling.manage")
@require_http_methods(["GET", "POST"])
def queue_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _post(request, None)
    schemas = _schemas(request)
    initial: dict[str, Any] = {}
    schema_id = id_or_none(request.GET.get("schema"))
    if schema_id is not None:
        initial["schema"] = schema_id
    form = QueueForm(initial=initial, members=_members(request), schemas=schemas)
    return _page(request, queue=None, form=form, rows=[builder.blank_rule()])


@member_required("labeling.manage")
@require_http_methods(["GET", "POST"])
def queue_edit(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = managed_queue(request, queue_id)
    if request.method == "POST":
        return _post(request, queue)
    form = QueueForm(initial=_initial(queue), members=_members(request), schemas=None)
    rows = [builder.rule_row_from_json(r) for r in queue.sampling or []]
    return _page(request, queue=queue, form=form, rows=rows)


@member_required("labeling.manage")
@require_POST
def queue_active(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Pause (`active=0`) or resume (`active=1`) a queue: paused, it samples nothing and no one
    can claim from it; its items and labels stay."""
    queue = managed_queue(request, queue_id)
    active = request.POST.get("active") == "1"
    services.queue_settings_update(queue=queue, changes={"is_active": active})
    messages.success(request, f"{'Resumed' if active else 'Paused'} the queue {queue.name}.")
    if request.POST.get("next") == "build":
        return redirect("labeling:build")
    return redirect("labeling:queue-edit", queue.pk)


@member_required("labeling.manage")
@require_POST
def sampling_preview(request: HttpRequest) -> HttpResponse:
    """The editor's preview (htmx): what the posted rules would have sampled."""
    queue_id = id_or_none(request.POST.get("queue"))
    queue = None
    if queue_id is not None:
        queue = or_404(selectors.queue_get, organization=membership(request).organization, queue_id=queue_id)
    _, _, errors = _rules_from_post(request)
    context = {
        "preview": _preview_for(request, queue),
        "preview_errors": bool(errors),
        "preview_size": services.PREVIEW_CONVERSATIONS,
    }
    return render(request, "labeling/_sampling_preview.html", context)
