"""Calibration and golden datasets in the Django admin: read-only (pairs are derived rows, the bar is written
through the API so it is validated and audited), scoped to the staff member's organizations."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from evaluation.models import (
    CalibrationBar,
    CalibrationPair,
    CalibrationStatus,
    Dataset,
    DatasetItem,
    DatasetVersion,
    DatasetVersionItem,
)
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


# --- Golden datasets ----------------------------------------------------------------------------
# Read-only as well: datasets change through the API and the dataset pages, whose services check
# rules, recompute content hashes and hold the dataset lock; a frozen version never changes.


@admin.register(Dataset)
class DatasetAdmin(_ReadOnlyAdmin):
    list_display = ["name", "project", "gate_mode", "gate_pass_rate", "gate_critical_pass_rate", "updated_at"]
    list_filter = ["organization", "project"]
    search_fields = ["name"]


@admin.register(DatasetItem)
class DatasetItemAdmin(_ReadOnlyAdmin):
    list_display = ["key", "dataset", "split", "critical", "added_at"]
    list_filter = ["organization", "split", "critical"]
    raw_id_fields = ["conversation", "queue_item"]
    search_fields = ["key"]
    show_full_result_count = False


@admin.register(DatasetVersion)
class DatasetVersionAdmin(_ReadOnlyAdmin):
    list_display = ["dataset", "number", "item_count", "critical_count", "content_hash", "created_at"]
    list_filter = ["organization"]


@admin.register(DatasetVersionItem)
class DatasetVersionItemAdmin(_ReadOnlyAdmin):
    list_display = ["key", "version", "split", "critical", "content_hash"]
    list_filter = ["split", "critical"]
    raw_id_fields = ["conversation", "queue_item"]
    search_fields = ["key"]
    show_full_result_count = False
