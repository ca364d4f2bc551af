"""Browser pages for evaluation, under /evaluation/ (the JSON API is in urls_api.py)."""

from django.urls import path

from evaluation import views, views_pairwise
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

app_name = "evaluation"

urlpatterns = [
    path("", views.index, name="index"),
    path("calibration/", views.calibration, name="calibration"),
    path("calibration/trust-rule", views.trust_rule_add, name="trust-rule-add"),
    path("pairwise/<id:queue_id>/", views_pairwise.pairwise_result, name="pairwise-result"),
]
