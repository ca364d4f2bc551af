"""Browser pages for escalations, under /escalations/ (the JSON API is in urls_api*.py)."""

from django.urls import path

from escalations.views import webhooks
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

app_name = "escalations"

urlpatterns = [
    path("settings/webhooks/", webhooks.webhook_settings, name="webhook-settings"),
]
