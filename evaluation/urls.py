"""Browser pages for evaluation, under /evaluation/ (the JSON API is in urls_api.py)."""

from django.urls import path

from evaluation import views, views_exports
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

app_name = "evaluation"

urlpatterns = [
    path("", views.index, name="index"),
    path("calibration/", views.calibration, name="calibration"),
    path("calibration/trust-rule", views.trust_rule_add, name="trust-rule-add"),
    path("queues/<id:queue_id>/export", views_exports.queue_export, name="queue-export"),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/export",
        views_exports.dataset_version_export,
        name="dataset-version-export",
    ),
]
