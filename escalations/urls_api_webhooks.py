"""JSON API routes for webhook secrets and deliveries (included under /api/v1/ next to
urls_api.py, which the action work owns; they may be merged)."""

from django.urls import path

from escalations.apis import webhooks
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

urlpatterns = [
    path("webhook-secrets", webhooks.WebhookSecretListCreateApi.as_view(), name="webhook-secrets"),
    path(
        "actions/<id:action_id>/deliveries",
        webhooks.ActionDeliveryListApi.as_view(),
        name="action-deliveries",
    ),
]
