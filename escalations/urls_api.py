from django.urls import path

from escalations import converters as escalations_converters  # noqa: F401 - registers <ladder:>
from escalations.apis import actions, policy
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

urlpatterns = [
    path("actions", actions.ActionsApi.as_view(), name="actions"),
    path("actions/<id:action_id>", actions.ActionDetailApi.as_view(), name="action-detail"),
    path("actions/<id:action_id>/events", actions.ActionEventsApi.as_view(), name="action-events"),
    path("policy", policy.PolicyApi.as_view(), name="policy"),
    path("ladders", policy.LaddersApi.as_view(), name="ladders"),
    path("ladders/<ladder:ladder_name>", policy.LadderDetailApi.as_view(), name="ladder-detail"),
]
