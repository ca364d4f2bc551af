"""Review: the items awaiting a reviewer, and the reviewer's final answer."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors, services
from reviewapp.fields import BoundedJSONField
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


class ItemReviewApi(APIView):
    """Record the final answer for an item (engineers and admins)."""

    required_capability = "labeling.manage"

    class InputSerializer(serializers.Serializer):
        answers = BoundedJSONField()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "Reviewed",
                fields={
                    "id": serializers.IntegerField(),
                    "status": serializers.CharField(),
                    "final_answers": serializers.DictField(),
                },
            ),
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def post(self, request: Request, item_id: int) -> Response:
        p = principal_of(request)
        item = selectors.item_get(organization=p.organization, item_id=item_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.item_review(item=item, user=p.user, answers=data.validated_data["answers"])
        return Response({"id": item.pk, "status": item.status, "final_answers": item.final_answers})


class QueueReviewListApi(APIView):
    required_capability = "labeling.manage"

    @extend_schema(
        responses={200: inline_serializer("ReviewList", fields={"items": serializers.ListField()})}, tags=["labeling"]
    )
    def get(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        items = selectors.review_items(queue=queue)
        return Response(
            {
                "items": [
                    {
                        "id": i.pk,
                        "conversation": i.conversation_id,
                        "external_id": i.conversation.external_id,
                        "labels_done": i.labels_done,
                    }
                    for i in items
                ]
            }
        )
