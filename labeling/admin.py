"""Labeling in the Django admin, scoped to the staff member's organizations like the core.

Writes that carry invariants (claims, labels, review) go through the API and browser pages,
which call the services; here labels and events are read-only so the admin cannot bypass the
slot accounting or rewrite history."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

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
from reviewapp.admin import OrganizationScopedAdmin


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SchemaVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = LabelSchemaVersion
    extra = 0
    fields = ["version", "instructions", "questions", "created_by", "created_at"]


@admin.register(LabelSchema)
class LabelSchemaAdmin(OrganizationScopedAdmin):
    list_display = ["name", "project", "latest_version", "created_at"]
    list_filter = ["organization"]
    readonly_fields = ["latest_version"]
    inlines = [SchemaVersionInline]


@admin.register(Queue)
class QueueAdmin(OrganizationScopedAdmin):
    list_display = ["name", "project", "annotations_per_item", "priority", "is_active", "backfill_done_at"]
    list_filter = ["organization", "is_active"]
    filter_horizontal = ["assignees"]
    readonly_fields = ["backfill_cursor", "backfill_done_at", "created_by", "created_at"]


@admin.register(QueueItem)
class QueueItemAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["pk", "queue", "status", "labels_done", "labels_needed", "leased_count", "source", "stratum"]
    list_filter = ["organization", "status", "source", "is_gold"]
    raw_id_fields = ["conversation", "reviewed_by"]
    show_full_result_count = False


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["item", "user", "status", "leased_at", "lease_expires_at", "finished_at"]
    list_filter = ["organization", "status"]
    show_full_result_count = False


@admin.register(Label)
class LabelAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["item", "user", "schema_version", "created_at", "updated_at"]
    list_filter = ["organization", "queue"]
    show_full_result_count = False


@admin.register(ItemEvent)
class ItemEventAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["created_at", "item", "kind", "user"]
    list_filter = ["organization", "kind"]
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ItemComment)
class ItemCommentAdmin(OrganizationScopedAdmin):
    organization_path = "item__organization"
    list_display = ["item", "user", "created_at"]


@admin.register(SamplingCounter)
class SamplingCounterAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    organization_path = "queue__organization"
    list_display = ["queue", "key", "day", "candidates", "admitted"]
