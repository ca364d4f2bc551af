"""Browser pages for evaluation, under /evaluation/ (the JSON API is in urls_api.py)."""

from django.urls import path

from evaluation import views, views_datasets

app_name = "evaluation"

urlpatterns = [
    path("", views.index, name="index"),
    path("calibration/", views.calibration, name="calibration"),
    path("calibration/trust-rule", views.trust_rule_add, name="trust-rule-add"),
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
]
