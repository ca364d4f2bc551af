"""Queues: create, read, sampling rules, adding items and gold checks."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import sampling, selectors, services
from labeling.models import LabelSchema, Queue
from labeling.sampling import MAX_PER_DAY
from labeling.serializers import QueueSettingsSerializer
from reviewapp import selectors as core_selectors
from reviewapp import services as core_services
from reviewapp.errors import ValidationFailed
from reviewapp.fields import BoundedDictField, IdField
from reviewapp.ingest_schemas import errors_from_pydantic
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


class QueueOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    schema = serializers.IntegerField(source="schema_id")
    annotations_per_item = serializers.IntegerField()
    max_extra_annotations = serializers.IntegerField()
    priority = serializers.IntegerField()
    lease_seconds = serializers.IntegerField()
    assignee_role = serializers.CharField()
    assignees = serializers.SerializerMethodField()
    show_judge_scores = serializers.BooleanField()
    skip_policy = serializers.CharField()
    sampling = serializers.ListField(child=serializers.DictField())
    max_per_day = serializers.IntegerField(allow_null=True)
    backfill_days = serializers.IntegerField()
    backfill_done = serializers.SerializerMethodField()
    gold_rate = serializers.FloatField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    sampling_health = serializers.SerializerMethodField(
        help_text="The last sampling failure of this queue (other queues are sampled regardless; the "
        "conversations stay owed to this one and are retried with backoff), and how many were given "
        "up after the last retry."
    )

    budget = serializers.SerializerMethodField(
        help_text="Today's use of the project's daily labeling budget by this queue (limit, used, left, "
        "share) and by the whole project (project_used, project_left); null when the project has none."
    )
    sampling_rate = serializers.SerializerMethodField(
        help_text="The rate the budget controller sets for this queue's uniform rules (pinned or "
        "controlled); null when the controller is off."
    )

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_budget(self, queue: Queue) -> dict[str, Any] | None:
        budgets = self.context.get("budgets")
        if budgets is None:
            budgets = selectors.queue_budgets_many(queues=[queue])
        return budgets.get(queue.pk)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_sampling_rate(self, queue: Queue) -> float | None:
        return services.queue_rate_in_force(queue)

    def get_assignees(self, queue: Queue) -> list[str]:
        return sorted(u.get_username() for u in queue.assignees.all())

    def get_backfill_done(self, queue: Queue) -> bool:
        return queue.backfill_done_at is not None

    @extend_schema_field(
        inline_serializer(
            "SamplingHealth",
            fields={
                "failures": serializers.IntegerField(),
                "last_error": serializers.CharField(),
                "last_error_at": serializers.DateTimeField(allow_null=True),
                "given_up": serializers.IntegerField(
                    help_text="Conversations this queue never sampled: still failing after the last retry."
                ),
                "given_up_at": serializers.DateTimeField(allow_null=True),
            },
        )
    )
    def get_sampling_health(self, queue: Queue) -> dict[str, Any]:
        moment = serializers.DateTimeField()
        return {
            "failures": queue.sampling_failures,
            "last_error": queue.sampling_error,
            "last_error_at": moment.to_representation(queue.sampling_error_at) if queue.sampling_error_at else None,
            "given_up": queue.sampling_given_up,
            "given_up_at": moment.to_representation(queue.sampling_given_up_at) if queue.sampling_given_up_at else None,
        }


class QueueDetailSerializer(QueueOutputSerializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    total = serializers.IntegerField()


def _sampling_from(data: Any, field: str = "sampling") -> list[dict[str, Any]]:
    if data in (None, ""):
        return []
    if not isinstance(data, list):
        raise ValidationFailed("Invalid sampling rules.", errors={field: ["Send a list of rules."]})
    errors: dict[str, list[str]] = {}
    for index, raw in enumerate(data):
        try:
            sampling.SamplingRule.model_validate(raw)
        except PydanticValidationError as exc:
            errors.update(errors_from_pydantic(exc, prefix=(field, index)))
    if errors:
        raise ValidationFailed("Invalid sampling rules.", errors=errors)
    return list(data)


class QueueListCreateApi(APIView):
    required_capability = {"GET": "labeling.work", "POST": "labeling.manage"}

    class InputSerializer(QueueSettingsSerializer):
        project = serializers.SlugField(required=False)
        schema = IdField(help_text="Label schema id.")
        assignees = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    @extend_schema(responses={200: QueueOutputSerializer(many=True)}, tags=["labeling"])
    def get(self, request: Request) -> Response:
        p = principal_of(request)
        queues = list(selectors.queue_list_for_worker(organization=p.organization, user=p.user, role=p.role))
        context = {"budgets": selectors.queue_budgets_many(queues=queues)}
        return Response(QueueOutputSerializer(queues, many=True, context=context).data)

    @extend_schema(
        request=InputSerializer, responses={201: QueueDetailSerializer, 400: ERROR_RESPONSE}, tags=["labeling"]
    )
    def post(self, request: Request) -> Response:
        p = principal_of(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rules = _sampling_from(request.data.get("sampling"))
        project = core_services.project_resolve(principal=p, slug=v.get("project"))
        schema = LabelSchema.objects.filter(organization=p.organization, project=project, pk=v["schema"]).first()
        if schema is None:
            raise ValidationFailed("Unknown schema.", errors={"schema": ["No such label schema in this project."]})
        members = {
            m.user.get_username(): m.user_id for m in core_selectors.membership_list(organization=p.organization)
        }
        unknown = [u for u in v["assignees"] if u not in members]
        if unknown:
            raise ValidationFailed(
                "Unknown assignees.", errors={"assignees": [f"Not members of this organization: {', '.join(unknown)}."]}
            )
        spec = services.QueueSpec(
            name=v["name"],
            schema=schema,
            description=v["description"],
            annotations_per_item=v["annotations_per_item"],
            max_extra_annotations=v["max_extra_annotations"],
            priority=v["priority"],
            lease_seconds=v["lease_seconds"],
            assignee_role=v["assignee_role"],
            assignee_ids=tuple(members[u] for u in v["assignees"]),
            show_judge_scores=v["show_judge_scores"],
            skip_policy=v["skip_policy"],
            sampling=tuple(rules),
            max_per_day=v["max_per_day"],
            backfill_days=v["backfill_days"],
            gold_rate=v["gold_rate"],
        )
        queue = services.queue_create(project=project, spec=spec, user=p.user)
        return Response(_queue_detail(queue), status=status.HTTP_201_CREATED)


def _queue_detail(queue: Queue) -> dict[str, Any]:
    counts = selectors.queue_counts(queue=queue)
    total = counts.pop("total")
    return dict(QueueOutputSerializer(queue).data, counts=counts, total=total)


class QueueDetailApi(APIView):
    required_capability = "labeling.work"

    @extend_schema(responses={200: QueueDetailSerializer, 404: ERROR_RESPONSE}, tags=["labeling"])
    def get(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get_for_worker(organization=p.organization, queue_id=queue_id, user=p.user, role=p.role)
        return Response(_queue_detail(queue))


class QueueSamplingUpdateApi(APIView):
    """Replace a queue's sampling rules; older conversations are backfilled under the new rules."""

    required_capability = "labeling.manage"

    class InputSerializer(serializers.Serializer):
        sampling = serializers.ListField(child=BoundedDictField(), max_length=100)
        max_per_day = serializers.IntegerField(
            min_value=1, max_value=MAX_PER_DAY, required=False, allow_null=True, default=None
        )

    @extend_schema(
        request=InputSerializer, responses={200: QueueDetailSerializer, 400: ERROR_RESPONSE}, tags=["labeling"]
    )
    def put(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rules = _sampling_from(request.data.get("sampling"))
        queue = services.queue_sampling_update(queue=queue, rules=rules, max_per_day=data.validated_data["max_per_day"])
        return Response(_queue_detail(queue))


class QueueItemsAddApi(APIView):
    """Add conversations to a queue by hand, by id or by external_id."""

    required_capability = "labeling.manage"

    class InputSerializer(serializers.Serializer):
        conversation_ids = serializers.ListField(child=IdField(), required=False, max_length=10_000)
        external_ids = serializers.ListField(child=serializers.CharField(), required=False, max_length=10_000)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("conversation_ids") and not attrs.get("external_ids"):
                raise serializers.ValidationError({"conversation_ids": "Send conversation_ids or external_ids."})
            return attrs

    class ResultSerializer(serializers.Serializer):
        conversation_id = serializers.IntegerField()
        item_id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=["created", "duplicate"])

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer("QueueItemsAdded", fields={"results": ResultSerializer(many=True)}),
            400: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def post(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = data.validated_data.get("conversation_ids") or []
        wanted_ext = data.validated_data.get("external_ids") or []
        found, by_ext = selectors.conversations_in_project(project=queue.project, ids=wanted, external_ids=wanted_ext)
        ids: list[int] = []
        errors: dict[str, list[str]] = {}
        for index, cid in enumerate(wanted):
            if cid in found:
                ids.append(cid)
            else:
                errors[f"conversation_ids[{index}]"] = ["No such conversation in this queue's project."]
        for index, ext in enumerate(wanted_ext):
            if ext in by_ext:
                ids.append(by_ext[ext])
            else:
                errors[f"external_ids[{index}]"] = ["No such conversation in this queue's project."]
        if errors:
            raise ValidationFailed("Some conversations were not found.", errors=errors)
        results = services.queue_items_add(queue=queue, conversation_ids=ids, user=p.user)
        return Response({"results": [self.ResultSerializer(r).data for r in results]}, status=status.HTTP_201_CREATED)


class QueueGoldAddApi(APIView):
    """Add gold checks (conversations with known answers) to a queue; they are served unmarked
    at the queue's `gold_rate` to measure each annotator's accuracy."""

    required_capability = "labeling.manage"

    class GoldSerializer(serializers.Serializer):
        conversation_id = IdField(required=False)
        external_id = serializers.CharField(required=False)
        answers = BoundedDictField()

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("conversation_id") and not attrs.get("external_id"):
                raise serializers.ValidationError({"conversation_id": "Send conversation_id or external_id."})
            return attrs

    class InputSerializer(serializers.Serializer):
        items = serializers.ListField(child=BoundedDictField(), min_length=1, max_length=1000)

    @extend_schema(
        request=inline_serializer("GoldAdd", fields={"items": GoldSerializer(many=True)}),
        responses={
            201: inline_serializer("GoldAdded", fields={"results": QueueItemsAddApi.ResultSerializer(many=True)}),
            400: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def post(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        valid: list[tuple[int, dict[str, Any]]] = []
        errors: dict[str, list[str]] = {}
        for index, raw in enumerate(data.validated_data["items"]):
            one = self.GoldSerializer(data=raw)
            if one.is_valid():
                valid.append((index, one.validated_data))
            else:
                for field, messages in one.errors.items():
                    errors[f"items[{index}].{field}"] = [str(m) for m in messages]
        found, by_ext = selectors.conversations_in_project(
            project=queue.project,
            ids=[v["conversation_id"] for _, v in valid if v.get("conversation_id")],
            external_ids=[v["external_id"] for _, v in valid if not v.get("conversation_id")],
        )
        rows = []
        for index, v in valid:
            cid = v.get("conversation_id")
            cid = (cid if cid in found else None) if cid else by_ext.get(v["external_id"])
            if cid is None:
                errors[f"items[{index}].conversation_id"] = ["No such conversation in this queue's project."]
            else:
                rows.append(services.GoldItemIn(cid, v["answers"]))
        if errors:
            raise ValidationFailed("Some gold items are invalid.", errors=errors)
        results = services.gold_items_add(queue=queue, items=rows, user=p.user)
        return Response(
            {"results": [QueueItemsAddApi.ResultSerializer(r).data for r in results]}, status=status.HTTP_201_CREATED
        )
