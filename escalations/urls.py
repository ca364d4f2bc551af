"""Browser pages for escalations, under /escalations/ (the JSON API is in urls_api*.py)."""

from django.urls import path

from escalations import converters as escalations_converters  # noqa: F401 - registers <ladder:>
from escalations.views import approvals, insight, ladders, webhooks
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
    path("ladders/", ladders.ladder_list, name="ladders"),
    path("ladders/new", ladders.ladder_new, name="ladder-new"),
    path("ladders/<ladder:ladder_name>/", ladders.ladder_edit, name="ladder-edit"),
]
