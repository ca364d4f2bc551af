"""Calibration in the Django admin: read-only (pairs are derived rows, the bar is written
through the API so it is validated and audited), scoped to the staff member's organizations."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from evaluation.models import CalibrationBar, CalibrationPair, CalibrationStatus
from reviewapp.admin_scoping import OrganizationScopedAdmin


class _ReadOnlyAdmin(OrganizationScopedAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CalibrationPair)
class CalibrationPairAdmin(_ReadOnlyAdmin):
    list_display = ["pk", "project", "kind", "judge", "judge_version", "criterion", "judge_pass", "human_pass"]
    list_filter = ["organization", "project", "kind"]
    raw_id_fields = ["conversation", "queue_item"]
    show_full_result_count = False


@admin.register(CalibrationBar)
class CalibrationBarAdmin(_ReadOnlyAdmin):
    list_display = ["project", "kappa", "tpr", "tnr", "updated_at"]
    list_filter = ["organization"]


@admin.register(CalibrationStatus)
class CalibrationStatusAdmin(_ReadOnlyAdmin):
    list_display = ["project", "judge", "judge_version", "criterion", "status", "changed_at"]
    list_filter = ["organization", "project"]
