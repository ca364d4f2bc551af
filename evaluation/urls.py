"""Browser pages for evaluation, under /evaluation/ (the JSON API is in urls_api.py)."""

from django.urls import path

from evaluation import views, views_datasets, views_exports, views_pairwise, views_runs
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

app_name = "evaluation"

urlpatterns = [
    path("", views.index, name="index"),
    path("calibration/", views.calibration, name="calibration"),
    path("calibration/trust-rule", views.trust_rule_add, name="trust-rule-add"),
    path("datasets/<id:dataset_id>/runs/", views_runs.runs_list, name="dataset-runs"),
    path("datasets/<id:dataset_id>/runs/section", views_runs.runs_section, name="dataset-runs-section"),
    path("datasets/<id:dataset_id>/runs/compare/", views_runs.run_compare, name="dataset-run-compare"),
    path("datasets/<id:dataset_id>/runs/<id:run_id>/", views_runs.run_detail, name="dataset-run-detail"),
    path(
        "datasets/<id:dataset_id>/runs/<id:run_id>/compare-previous",
        views_runs.run_compare_previous,
        name="dataset-run-compare-previous",
    ),
    path("pairwise/<id:queue_id>/", views_pairwise.pairwise_result, name="pairwise-result"),
    path("datasets/", views_datasets.dataset_list, name="datasets"),
    path("datasets/add", views_datasets.dataset_add_item, name="dataset-add-item"),
    path("datasets/<id:dataset_id>/", views_datasets.dataset_detail, name="dataset"),
    path("datasets/<id:dataset_id>/settings", views_datasets.dataset_settings, name="dataset-settings"),
    path("datasets/<id:dataset_id>/promote", views_datasets.dataset_promote, name="dataset-promote"),
    path("datasets/<id:dataset_id>/freeze", views_datasets.dataset_freeze, name="dataset-freeze"),
    path("datasets/<id:dataset_id>/compare", views_datasets.dataset_compare, name="dataset-compare"),
    path(
        "datasets/<id:dataset_id>/items/<id:item_id>/edit", views_datasets.dataset_item_edit, name="dataset-item-edit"
    ),
    path(
        "datasets/<id:dataset_id>/items/<id:item_id>/remove",
        views_datasets.dataset_item_remove,
        name="dataset-item-remove",
    ),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/tags",
        views_datasets.dataset_version_tags,
        name="dataset-version-tags",
    ),
    path("queues/<id:queue_id>/export", views_exports.queue_export, name="queue-export"),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/export",
        views_exports.dataset_version_export,
        name="dataset-version-export",
    ),
]
