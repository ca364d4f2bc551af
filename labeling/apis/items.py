"""Items: the claim, labels, leases, skips, drafts, comments, and an item's detail."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors, services
from labeling.apis.rubrics import QuestionSerializer
from labeling.models import QueueItem
from reviewapp import selectors as core_selectors
from reviewapp import validation
from reviewapp.errors import Conflict
from reviewapp.fields import BoundedDictField, BoundedJSONField, ColumnIntegerField, IdField
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE, ConversationDetailSerializer, conversation_detail_payload


class SchemaForItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="schema_id")
    version_id = serializers.IntegerField(source="id")
    version = serializers.IntegerField()
    instructions = serializers.CharField()
    questions = QuestionSerializer(many=True)


class ClaimOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The item id.")
    queue = serializers.IntegerField()
    conversation = ConversationDetailSerializer()
    schema = SchemaForItemSerializer()
    lease_expires_at = serializers.DateTimeField()
    draft = serializers.DictField()


def item_payload_for_worker(
    item: QueueItem, *, lease_expires_at: Any, draft: dict[str, Any], show_judge_scores: bool | None = None
) -> dict[str, Any]:
    """What an annotator sees: the transcript and rubric, never other people's labels, and judge
    scores only where the queue shows them (hidden by default against anchoring)."""
    conversation = item.conversation
    show = item.queue.show_judge_scores if show_judge_scores is None else show_judge_scores
    feedback, scores = core_selectors.conversation_feedback_and_scores(conversation=conversation, judge_scores=show)
    conv = conversation_detail_payload(conversation, feedback=feedback, judge_scores=scores)
    version = item.queue.schema.latest_version
    return {
        "id": item.pk,
        "queue": item.queue_id,
        "conversation": conv,
        "schema": SchemaForItemSerializer(version).data,
        "lease_expires_at": lease_expires_at,
        "draft": draft,
    }


class QueueClaimApi(APIView):
    """Lease the next item for the caller. 204 when nothing is left for them."""

    required_capability = "labeling.work"

    @extend_schema(
        request=None,
        responses={200: ClaimOutputSerializer, 204: None, 404: ERROR_RESPONSE},
        tags=["labeling"],
    )
    def post(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get_for_worker(organization=p.organization, queue_id=queue_id, user=p.user, role=p.role)
        exclude = validation.parse_int_or_none(
            request.query_params.get("exclude"), field="exclude", min=validation.ID_MIN, max=validation.ID_MAX
        )
        assignment = services.item_claim(queue=queue, user=p.user, exclude_item_id=exclude)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        item = selectors.item_with_conversation(item=assignment.item, queue=queue)
        return Response(
            item_payload_for_worker(item, lease_expires_at=assignment.lease_expires_at, draft=assignment.draft_answers)
        )


class LabelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id")
    user = serializers.CharField(source="user.username")
    schema_version = serializers.IntegerField(source="schema_version.version")
    answers = serializers.DictField()
    client_token = serializers.CharField()
    time_spent_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ItemLabelSubmitApi(APIView):
    """Submit (or edit) your label on an item. 201 when created; 200 when an edit or a replay of
    the same `client_token`; 409 when your lease was lost and the item is already complete."""

    required_capability = "labeling.work"

    class InputSerializer(serializers.Serializer):
        answers = BoundedJSONField()
        client_token = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)
        schema_version = IdField(required=False, allow_null=True, default=None, help_text="Version id")
        time_spent_ms = ColumnIntegerField(
            validation.POSITIVE,
            required=False,
            allow_null=True,
            default=None,
            help_text=f"Time on task; counted as at most {services.MAX_TIME_SPENT_MS} ms.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: LabelOutputSerializer,
            200: LabelOutputSerializer,
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def post(self, request: Request, item_id: int) -> Response:
        p = principal_of(request)
        item = selectors.item_get_for_worker(organization=p.organization, item_id=item_id, user=p.user, role=p.role)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        outcome = services.label_submit(
            item=item,
            user=p.user,
            answers=v["answers"],
            client_token=v["client_token"],
            schema_version_id=v["schema_version"],
            time_spent_ms=v["time_spent_ms"],
        )
        body = dict(LabelOutputSerializer(outcome.label).data, item_status=outcome.item_status)
        return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)


class ItemLeaseApi(APIView):
    """Keep working on an item: restarts your lease on it (the queue's `lease_seconds` from
    now) while it is still live. 409 when it has already run out: claim again."""

    required_capability = "labeling.work"

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "LeaseRestarted",
                fields={"item": serializers.IntegerField(), "lease_expires_at": serializers.DateTimeField()},
            ),
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def post(self, request: Request, item_id: int) -> Response:
        p = principal_of(request)
        item = selectors.item_get_for_worker(organization=p.organization, item_id=item_id, user=p.user, role=p.role)
        expires = services.lease_restart(queue=item.queue, item_id=item.pk, user=p.user)
        if expires is None:
            raise Conflict("You hold no live lease on this item; claim again.")
        return Response({"item": item.pk, "lease_expires_at": serializers.DateTimeField().to_representation(expires)})


class ItemSkipApi(APIView):
    required_capability = "labeling.work"

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "Skipped", fields={"item": serializers.IntegerField(), "status": serializers.CharField()}
            ),
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def post(self, request: Request, item_id: int) -> Response:
        p = principal_of(request)
        item = selectors.item_get_for_worker(organization=p.organization, item_id=item_id, user=p.user, role=p.role)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.item_skip(item=item, user=p.user, reason=data.validated_data["reason"])
        return Response({"item": item.pk, "status": "skipped"})


class ItemDraftApi(APIView):
    required_capability = "labeling.work"

    class InputSerializer(serializers.Serializer):
        answers = BoundedDictField()

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("Draft", fields={"answers": serializers.DictField()}), 409: ERROR_RESPONSE},
        tags=["labeling"],
    )
    def put(self, request: Request, item_id: int) -> Response:
        p = principal_of(request)
        item = selectors.item_get_for_worker(organization=p.organization, item_id=item_id, user=p.user, role=p.role)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = services.draft_save(item=item, user=p.user, answers=data.validated_data["answers"])
        return Response({"answers": assignment.draft_answers})


class ItemCommentApi(APIView):
    required_capability = "labeling.work"

    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=10_000)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "Comment", fields={"id": serializers.IntegerField(), "body": serializers.CharField()}
            )
        },
        tags=["labeling"],
    )
    def post(self, request: Request, item_id: int) -> Response:
        p = principal_of(request)
        item = selectors.item_get_for_worker(organization=p.organization, item_id=item_id, user=p.user, role=p.role)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comment = services.item_comment_add(
            item=item, user=p.user, body=data.validated_data["body"], is_reviewer=p.can("labeling.manage")
        )
        return Response({"id": comment.pk, "body": comment.body}, status=status.HTTP_201_CREATED)


class ItemDetailApi(APIView):
    """An item. Reviewers (engineers, admins) see every label side by side, comments and the
    event trail; annotators see the item as they work it, with only their own label."""

    required_capability = "labeling.work"

    @extend_schema(
        responses={
            200: inline_serializer("ItemDetail", fields={"id": serializers.IntegerField()}),
            404: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def get(self, request: Request, item_id: int) -> Response:
        p = principal_of(request)
        item = selectors.item_get_for_worker(organization=p.organization, item_id=item_id, user=p.user, role=p.role)
        if p.can("labeling.manage"):
            # Reviewers see the judge scores whatever the queue shows annotators.
            body = item_payload_for_worker(item, lease_expires_at=None, draft={}, show_judge_scores=True)
            body.update(_item_review_fields(item))
            return Response(body)
        assignment = selectors.assignment_for(item=item, user=p.user)
        if assignment is None:
            raise selectors.NotFound("Item not found.")
        body = item_payload_for_worker(
            item, lease_expires_at=assignment.lease_expires_at, draft=assignment.draft_answers
        )
        mine = selectors.label_for(item=item, user=p.user)
        body["my_label"] = LabelOutputSerializer(mine).data if mine else None
        body["status"] = item.status
        return Response(body)


def _item_review_fields(item: QueueItem) -> dict[str, Any]:
    return {
        "status": item.status,
        "labels_needed": item.labels_needed,
        "labels_done": item.labels_done,
        "final_answers": item.final_answers,
        "final_source": item.final_source,
        "sampling": {
            "source": item.source,
            "rule": item.sampling_rule,
            "strategy": item.sampling_strategy,
            "inclusion_probability": item.inclusion_probability,
            "stratum": item.stratum,
        },
        "labels": LabelOutputSerializer(selectors.item_labels(item=item), many=True).data,
        "comments": [
            {"user": c.user.get_username(), "body": c.body, "created_at": c.created_at}
            for c in item.comments.select_related("user")
        ],
        "events": [
            {
                "kind": e.kind,
                "user": e.user.get_username() if e.user else None,
                "data": e.data,
                "created_at": e.created_at,
            }
            for e in item.events.select_related("user")
        ],
    }
