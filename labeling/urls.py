"""Browser pages for labeling (the JSON API is in urls_api.py)."""

from django.urls import path

from labeling import views
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

app_name = "labeling"

urlpatterns = [
    path("", views.queue_list, name="queue-list"),
    path("mine", views.my_work, name="mine"),
    path("build/", views.build, name="build"),
    path("rubrics/new", views.rubric_new, name="rubric-new"),
    path("rubrics/preview", views.rubric_preview, name="rubric-preview"),
    path("rubrics/<id:schema_id>/", views.rubric_history, name="rubric-history"),
    path("rubrics/<id:schema_id>/edit", views.rubric_edit, name="rubric-edit"),
    path("queues/new", views.queue_new, name="queue-new"),
    path("queues/sampling-preview", views.sampling_preview, name="sampling-preview"),
    path("queues/<id:queue_id>/settings", views.queue_edit, name="queue-edit"),
    path("queues/<id:queue_id>/active", views.queue_active, name="queue-active"),
    path("queues/<id:queue_id>/work", views.work, name="work"),
    path("queues/<id:queue_id>/next", views.next_panel, name="next"),
    path("queues/<id:queue_id>/review", views.review_list, name="review-list"),
    path("queues/<id:queue_id>/annotators", views.annotators, name="annotators"),
    path("queues/<id:queue_id>/agreement", views.agreement, name="agreement"),
    path("queues/<id:queue_id>/statistics/refresh", views.statistics_refresh, name="statistics-refresh"),
    path("queues/<id:queue_id>/statistics/status", views.statistics_status, name="statistics-status"),
    path("items/<id:item_id>/submit", views.submit, name="submit"),
    path("items/<id:item_id>/skip", views.skip, name="skip"),
    path("items/<id:item_id>/draft", views.draft, name="draft"),
    path("items/<id:item_id>/comments", views.comment, name="comment"),
    path("items/<id:item_id>/edit", views.edit, name="edit"),
    path("items/<id:item_id>/review", views.review_item, name="review-item"),
]
