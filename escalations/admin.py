"""Escalations in the Django admin, scoped to the staff member's organizations like the core.

Read-only: actions are written by the API's services (policy, decisions, the timeout job) and
every change is a compare-and-set with a trail row; policies and ladders are immutable
versions created through POST /api/v1/policy and /api/v1/ladders, with their validation and
audit event. Nothing here is deleted either: actions pin the ladder version they are on, and
the trail is the audit record."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from escalations.models import Action, ActionEvent, LadderVersion, PolicyVersion
from reviewapp.admin_scoping import OrganizationScopedAdmin, ScopedTabularInline


class ReadOnlyMixin:
    # URLs are shown, never entered here; stated so Django's form field does not warn about
    # the default scheme it will assume from 6.0.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ActionEventInline(ReadOnlyMixin, ScopedTabularInline):
    model = ActionEvent
    extra = 0
    fields = ["created_at", "kind", "actor_user", "actor_api_key", "data"]
    readonly_fields = fields


@admin.register(Action)
class ActionAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["pk", "project", "external_id", "action", "status", "decided_by", "matched_rule", "created_at"]
    list_filter = ["organization", "project", "status", "decided_by"]
    search_fields = ["external_id", "action", "end_user_id"]
    inlines = [ActionEventInline]
    show_full_result_count = False


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["project", "version", "default_ladder", "note", "created_by", "created_at"]
    list_filter = ["organization", "project"]


@admin.register(LadderVersion)
class LadderVersionAdmin(ReadOnlyMixin, OrganizationScopedAdmin):
    list_display = ["project", "name", "version", "timeout_outcome", "created_by", "created_at"]
    list_filter = ["organization", "project"]
    search_fields = ["name"]
