"""Browser pages for escalations, under /escalations/ (the JSON API is in urls_api*.py)."""

from django.urls import path

from escalations.views import approvals, insight, webhooks
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

app_name = "escalations"

urlpatterns = [
    path("", approvals.inbox, name="inbox"),
    path("actions/<id:action_id>/", approvals.action_detail, name="action-detail"),
    path("actions/<id:action_id>/decide", approvals.action_decide, name="action-decide"),
    path("actions/<id:action_id>/claim", approvals.action_claim, name="action-claim"),
    path("settings/webhooks/", webhooks.webhook_settings, name="webhook-settings"),
    path("dashboard/", insight.dashboard, name="dashboard"),
    path("policy/", insight.policy_page, name="policy"),
]
