"""Browser pages for evaluation, under /evaluation/ (the JSON API is in urls_api.py)."""

from django.urls import path

from evaluation import views

app_name = "evaluation"

urlpatterns = [
    path("", views.index, name="index"),
    path("calibration/", views.calibration, name="calibration"),
    path("calibration/trust-rule", views.trust_rule_add, name="trust-rule-add"),
]
