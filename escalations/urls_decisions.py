from django.urls import path

from escalations.apis import decisions
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

urlpatterns = [
    path("actions/<id:action_id>/decision", decisions.ActionDecisionApi.as_view(), name="action-decision"),
    path("actions/<id:action_id>/claim", decisions.ActionClaimApi.as_view(), name="action-claim"),
]
