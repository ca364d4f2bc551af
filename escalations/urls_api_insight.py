from django.urls import path

from escalations.apis import insight

urlpatterns = [
    path("policy/simulate", insight.PolicySimulateApi.as_view(), name="policy-simulate"),
    path("actions/envelopes", insight.ActionEnvelopesApi.as_view(), name="action-envelopes"),
]
