"""Labeling in the Django admin, scoped to the staff member's organizations like the core.

Rubrics and queues are written through the labeling services, with the API's validation: a
rubric added here gets its version 1, an edit adds a version, sampling rules are checked and
a change restarts the backfill. Writes that carry invariants (claims, labels, review,
comments) go through the API and browser pages; here those rows and the event trail are
read-only so the admin cannot bypass the slot accounting, write as someone else, or rewrite
history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import HttpRequest
from pydantic import ValidationError as PydanticValidationError

from labeling import rubric, sampling, services
from labeling.apis import QueueListCreateApi
from labeling.models import (
    Assignment,
    ItemComment,
    ItemEvent,
    Label,
    LabelSchema,
    LabelSchemaVersion,
    Queue,
    QueueItem,
    SamplingCounter,
)
from reviewapp.admin_scoping import OrganizationScopedAdmin, OrganizationScopedForm, ScopedTabularInline
from reviewapp.errors import ValidationFailed
from reviewapp.ingest_schemas import errors_from_pydantic


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class UndeletableMixin:
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class JsonInputField(forms.JSONField):
    """A JSON form field that turns nesting too deep to decode into a form error, not a 500."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("Nested too deeply.", code="invalid") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


def _pydantic_messages(exc: PydanticValidationError, prefix: tuple[int | str, ...] = ()) -> list[str]:
    return [
        f"{path}: {message}"
        for path, messages in errors_from_pydantic(exc, prefix=prefix).items()
        for message in messages
    ]


# --- rubrics ---------------------------------------------------------------------------------


class SchemaVersionInline(ReadOnlyMixin, UndeletableMixin, ScopedTabularInline):
    # Versions are immutable: labels point at the version they were made with.
    model = LabelSchemaVersion
    extra = 0
    fields = ["version", "instructions", "questions", "created_by", "created_at"]


class LabelSchemaAdminForm(OrganizationScopedForm):
    """A rubric as the API takes it (name, instructions, questions), validated by the same
    pydantic model; saving adds a version instead of rewriting one."""

    instructions = forms.CharField(widget=forms.Textarea, required=False, help_text="Markdown.")
    questions = JsonInputField(
        help_text='A JSON list of questions, as in POST /api/v1/label-schemas: [{"key": "quality", '
        '"type": "single_choice", "label": "Was the answer right?", "options": ["good", "bad"]}]'
    )

    class Meta:
        model = LabelSchema
        fields = ["project", "name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        version = self.instance.latest_version if self.instance.pk else None
        if version is not None:
            self.fields["instructions"].initial = version.instructions
            self.fields["questions"].initial = version.questions
        self.rubric: rubric.Rubric | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "name" in self.errors or "questions" in self.errors:
            return data
        try:
            self.rubric = rubric.Rubric.model_validate(
                {
                    "name": data.get("name", ""),
                    "instructions": data.get("instructions", ""),
                    "questions": data.get("questions"),
                }
            )
        except PydanticValidationError as exc:
            self._add_rubric_errors(errors_from_pydantic(exc))
            return data
        if self.instance.pk:
            # What only the service knows (the rubric's pairwise queues), asked before saving so
            # it is a form error; the save asks again under the rubric's lock.
            try:
                services.label_schema_version_check(schema=self.instance, rubric_in=self.rubric)
            except ValidationFailed as exc:
                self.rubric = None
                self._add_rubric_errors(exc.errors or {"questions": [exc.message]})
        return data

    def _add_rubric_errors(self, errors: dict[str, list[str]]) -> None:
        """Errors by the API's paths (`questions[1].options`) beside the form field they are in."""
        for path, messages in errors.items():
            field = path.split(".")[0].split("[")[0]
            field = field if field in ("name", "instructions", "questions") else None
            for message in messages:
                self.add_error(field, f"{path}: {message}" if field == "questions" else message)


@admin.register(LabelSchema)
class LabelSchemaAdmin(OrganizationScopedAdmin):
    form = LabelSchemaAdminForm
    list_display = ["name", "project", "latest_version", "created_at"]
    list_filter = ["organization", "project"]
    fields = ["project", "name", "instructions", "questions", "latest_version"]
    readonly_fields = ["latest_version"]
    inlines = [SchemaVersionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Queues and labels of the project point at this rubric: it stays in its project.
        return [*self.readonly_fields, "project"] if obj is not None else list(self.readonly_fields)

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def save_model(self, request: HttpRequest, obj: LabelSchema, form: Any, change: bool) -> None:
        rubric_in = form.rubric
        if not change:
            created = services.label_schema_create(project=obj.project, rubric_in=rubric_in, user=request.user)
            obj.pk = created.pk
            obj.organization_id = created.organization_id
            obj.latest_version_id = created.latest_version_id
            obj.created_at = created.created_at
            return
        if {"name", "instructions", "questions"} & set(form.changed_data):
            services.label_schema_version_create(schema=obj, rubric_in=rubric_in, user=request.user)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The services wrote the rubric; the version inline is read-only, so this saves nothing
        # but lets the admin build its change message.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


# --- queues ----------------------------------------------------------------------------------


def _api_bounds(field: forms.Field, name: str) -> None:
    """Give an admin form field the API's bounds for the same setting (one source)."""
    api_field = QueueListCreateApi.InputSerializer().fields[name]
    if getattr(api_field, "min_value", None) is not None:
        field.validators.append(MinValueValidator(api_field.min_value))
    if getattr(api_field, "max_value", None) is not None:
        field.validators.append(MaxValueValidator(api_field.max_value))


class QueueAdminForm(OrganizationScopedForm):
    sampling = JsonInputField(
        required=False,
        help_text='A JSON list of rules, as in PUT /api/v1/queues/{id}/sampling: [{"name": "thumbs-down", '
        '"rate": 1, "if": {"feedback_rating": "down"}}]. Changing it restarts the backfill.',
    )
    assignee_role = forms.ChoiceField(
        choices=[(c, c) for c in QueueListCreateApi.InputSerializer().fields["assignee_role"].choices]
    )

    class Meta:
        model = Queue
        fields = [
            "project",
            "schema",
            "name",
            "description",
            "annotations_per_item",
            "max_extra_annotations",
            "priority",
            "lease_seconds",
            "assignee_role",
            "assignees",
            "show_judge_scores",
            "skip_policy",
            "sampling",
            "max_per_day",
            "backfill_days",
            "gold_rate",
            "is_active",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in (
            "annotations_per_item",
            "max_extra_annotations",
            "lease_seconds",
            "max_per_day",
            "backfill_days",
            "gold_rate",
        ):
            if name in self.fields:
                _api_bounds(self.fields[name], name)
        self.rules: list[dict[str, Any]] = []

    def clean_sampling(self) -> list[dict[str, Any]]:
        value = self.cleaned_data.get("sampling")
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            raise forms.ValidationError("Send a list of rules.")
        messages: list[str] = []
        for index, raw in enumerate(value):
            try:
                sampling.SamplingRule.model_validate(raw)
            except PydanticValidationError as exc:
                messages.extend(_pydantic_messages(exc, prefix=("sampling", index)))
        if messages:
            raise forms.ValidationError(messages)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        project, schema = data.get("project"), data.get("schema")
        if (
            project is not None
            and schema is not None
            and schema.project_id != project.pk
            and "schema" not in self.errors
        ):
            self.add_error("schema", "Choose a rubric of the queue's project.")
        return data


@admin.register(Queue)
class QueueAdmin(OrganizationScopedAdmin):
    form = QueueAdminForm
    list_display = ["name", "project", "annotations_per_item", "priority", "is_active", "backfill_done_at"]
    list_filter = ["organization", "project", "is_active"]
    filter_horizontal = ["assignees"]
    readonly_fields = ["backfill_cursor", "backfill_done_at", "created_by", "created_at"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*QueueAdminForm.Meta.fields, *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Labels point at the rubric's versions and items at the project's conversations.
        return [*self.readonly_fields, "project", "schema"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: Queue, form: Any, change: bool) -> None:
        data = form.cleaned_data
        assignee_ids = tuple(sorted(u.pk for u in data.get("assignees", [])))
        if not change:
            spec = services.QueueSpec(
                name=data["name"],
                schema=data["schema"],
                description=data["description"],
                annotations_per_item=data["annotations_per_item"],
                max_extra_annotations=data["max_extra_annotations"],
                priority=data["priority"],
                lease_seconds=data["lease_seconds"],
                assignee_role=data["assignee_role"],
                assignee_ids=assignee_ids,
                show_judge_scores=data["show_judge_scores"],
                skip_policy=data["skip_policy"],
                sampling=tuple(data["sampling"]),
                max_per_day=data["max_per_day"],
                backfill_days=data["backfill_days"],
                gold_rate=data["gold_rate"],
                is_active=data["is_active"],
            )
            created = services.queue_create(project=data["project"], spec=spec, user=request.user)
            obj.pk = created.pk
            obj.organization_id = created.organization_id
            obj.created_at = created.created_at
            return
        changes = {name: data[name] for name in form.changed_data if name in services.QUEUE_SETTINGS}
        services.queue_settings_update(
            queue=obj, changes=changes, assignee_ids=assignee_ids if "assignees" in form.changed_data else None
        )
        if {"sampling", "max_per_day", "backfill_days"} & set(form.changed_data):
            services.queue_sampling_update(queue=obj, rules=data["sampling"], max_per_day=data.get("max_per_day"))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The services set the assignees (no form.save_m2m()).
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


# --- read-only rows --------------------------------------------------------------------------


@admin.register(QueueItem)
class QueueItemAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["pk", "queue", "status", "labels_done", "labels_needed", "leased_count", "source", "stratum"]
    list_filter = ["organization", "queue", "status", "source", "is_gold"]
    raw_id_fields = ["conversation", "reviewed_by"]
    show_full_result_count = False


# Deleting a claim or a label would leave the item's slot counts (leased_count, labels_done)
# counting rows that are gone.
@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyMixin, UndeletableMixin, OrganizationScopedAdmin):
    list_display = ["item", "user", "status", "leased_at", "lease_expires_at", "finished_at"]
    list_filter = ["organization", "queue", "status"]
    show_full_result_count = False


@admin.register(Label)
class LabelAdmin(ReadOnlyMixin, UndeletableMixin, OrganizationScopedAdmin):
    list_display = ["item", "user", "schema_version", "created_at", "updated_at"]
    list_filter = ["organization", "queue"]
    show_full_result_count = False


@admin.register(ItemEvent)
class ItemEventAdmin(ReadOnlyMixin, UndeletableMixin, OrganizationScopedAdmin):
    list_display = ["created_at", "item", "kind", "user"]
    list_filter = ["organization", "kind"]
    show_full_result_count = False


@admin.register(ItemComment)
class ItemCommentAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    """Comments are written by the person who was handed the item, on its page or through
    POST /api/v1/items/{id}/comments; here they can be read and, for moderation, deleted."""

    list_display = ["item", "user", "created_at"]
    list_filter = ["item__queue"]


# Deleting a counter would hand that day's budget out a second time.
@admin.register(SamplingCounter)
class SamplingCounterAdmin(ReadOnlyMixin, UndeletableMixin, OrganizationScopedAdmin):
    list_display = ["queue", "key", "day", "candidates", "admitted"]
    list_filter = ["queue"]
