"""Deciding and claiming actions over the API: `POST /api/v1/actions/{id}/decision`,
`POST`/`DELETE /api/v1/actions/{id}/claim`. Thin: parse, call the service, answer the action."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from escalations import services
from escalations.serializers import ActionOutputSerializer, action_payload
from escalations.services.decisions import COMMENT_MAX, DECISION_FIELDS
from reviewapp.fields import BoundedDictField
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE

_ANSWERS = {200: ActionOutputSerializer, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE, 409: ERROR_RESPONSE}


class ActionDecisionApi(APIView):
    """Approve (optionally with edited args) or reject a pending action at its current tier.
    403 when you may not decide at that tier; 409 when it is already decided (the message
    names who decided and how) or you already voted. An approval short of the tier's
    `approvals_required` answers the action still pending."""

    required_capability = "actions.decide"

    class InputSerializer(serializers.Serializer):
        """Documentation of the body; the service checks it (after finding the action, so that
        another organization's id is a 404 whatever the body). Any other key is a 400 naming it."""

        decision = serializers.ChoiceField(choices=["approve", "reject"])
        args = BoundedDictField(required=False, help_text="Approve only: the args to run instead (the diff is kept).")
        expected_digest = serializers.CharField(
            required=False,
            min_length=64,
            max_length=64,
            help_text="Approve only: the `args_digest` of the args you reviewed (SHA-256 of the canonical JSON of "
            "action and args, as the SDK's `args_digest` computes it). Optional; when given and the args on the "
            "table changed since (a colleague's edit), 409 instead of approving args you never saw.",
        )
        comment = serializers.CharField(
            required=False,
            default="",
            allow_blank=True,
            max_length=COMMENT_MAX,
            help_text="Required to reject: the agent gets it back.",
        )

    @extend_schema(request=InputSerializer, responses=_ANSWERS, tags=["actions"])
    def post(self, request: Request, action_id: int) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        action = services.action_decide(
            principal=principal_of(request),
            action_id=action_id,
            decision=body.get("decision"),
            args=body.get("args"),
            comment=body.get("comment", ""),
            expected_digest=body.get("expected_digest"),
            unknown_fields=tuple(sorted(str(k) for k in body if k not in DECISION_FIELDS)),
        )
        return Response(action_payload(action))


class ActionClaimApi(APIView):
    """Claim (acknowledge) a pending action so colleagues see it is taken, or give the claim
    back. A claim is released when the tier times out; someone else's claim older than the
    tier's timeout may be taken over. 409 names the holder of a live claim."""

    required_capability = {"POST": "actions.decide", "DELETE": "actions.decide"}

    @extend_schema(request=None, responses=_ANSWERS, tags=["actions"])
    def post(self, request: Request, action_id: int) -> Response:
        action = services.action_claim(principal=principal_of(request), action_id=action_id)
        return Response(action_payload(action))

    @extend_schema(request=None, responses=_ANSWERS, tags=["actions"])
    def delete(self, request: Request, action_id: int) -> Response:
        action = services.action_release(principal=principal_of(request), action_id=action_id)
        return Response(action_payload(action))
