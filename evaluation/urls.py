"""Browser pages for evaluation, under /evaluation/ (the JSON API is in urls_api.py)."""

from django.urls import path

from evaluation import views, views_pairwise, views_runs
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
]
