"""Labeling JSON API: rubrics, queues, claims, labels, review, agreement."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import rubric, sampling, selectors, services
from labeling.models import LabelSchema, Queue, QueueItem, SkipPolicy
from labeling.sampling import MAX_PER_DAY
from reviewapp import selectors as core_selectors
from reviewapp import services as core_services
from reviewapp import validation
from reviewapp.errors import Conflict, ValidationFailed
from reviewapp.fields import BoundedDictField, BoundedJSONField, ColumnIntegerField, IdField
from reviewapp.ingest_schemas import errors_from_pydantic
from reviewapp.models import Role
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE, ConversationDetailSerializer, conversation_detail_payload

# --- rubrics ---------------------------------------------------------------------------------


class QuestionSerializer(serializers.Serializer):
    key = serializers.CharField()
    type = serializers.ChoiceField(choices=rubric.QUESTION_TYPES)
    label = serializers.CharField()
    help = serializers.CharField(required=False)
    required = serializers.BooleanField(required=False, default=True)
    options = serializers.ListField(child=serializers.CharField(), required=False)
    min = ColumnIntegerField(validation.INTEGER, required=False)
    max = ColumnIntegerField(validation.INTEGER, required=False)
    roles = serializers.ListField(child=serializers.CharField(), required=False)
    judge_criterion = serializers.CharField(required=False, allow_null=True)


class SchemaVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    instructions = serializers.CharField()
    questions = QuestionSerializer(many=True)
    created_at = serializers.DateTimeField()


class LabelSchemaOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    version = serializers.IntegerField(source="latest_version.version")
    version_id = serializers.IntegerField(source="latest_version.id")
    instructions = serializers.CharField(source="latest_version.instructions")
    questions = QuestionSerializer(many=True, source="latest_version.questions")
    created_at = serializers.DateTimeField()


class RubricInputSerializer(serializers.Serializer):
    """Documentation of the body; validation is the pydantic `Rubric` model (one source)."""

    project = serializers.SlugField(required=False, help_text="Required with a personal token.")
    name = serializers.CharField()
    instructions = serializers.CharField(required=False, help_text="Markdown.")
    questions = QuestionSerializer(many=True)


def _rubric_from(data: Any) -> rubric.Rubric:
    if not isinstance(data, dict):
        raise ValidationFailed("Send a JSON object.", errors={"body": ["Expected an object."]})
    body = {k: v for k, v in data.items() if k != "project"}
    try:
        return rubric.Rubric.model_validate(body)
    except PydanticValidationError as exc:
        raise ValidationFailed("Invalid rubric.", errors=errors_from_pydantic(exc)) from exc


class LabelSchemaListCreateApi(APIView):
    required_capability = {"GET": "labeling.manage", "POST": "labeling.manage"}

    @extend_schema(responses={200: LabelSchemaOutputSerializer(many=True)}, tags=["labeling"])
    def get(self, request: Request) -> Response:
        schemas = selectors.label_schema_list(organization=principal_of(request).organization)
        return Response(LabelSchemaOutputSerializer(schemas, many=True).data)

    @extend_schema(
        request=RubricInputSerializer,
        responses={201: LabelSchemaOutputSerializer, 400: ERROR_RESPONSE},
        tags=["labeling"],
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        rubric_in = _rubric_from(request.data)
        project = core_services.project_resolve(principal=principal, slug=request.data.get("project"))
        schema = services.label_schema_create(project=project, rubric_in=rubric_in, user=principal.user)
        return Response(LabelSchemaOutputSerializer(schema).data, status=status.HTTP_201_CREATED)


class LabelSchemaDetailApi(APIView):
    required_capability = "labeling.manage"

    @extend_schema(
        responses={
            200: inline_serializer(
                "LabelSchemaDetail",
                fields={"schema": LabelSchemaOutputSerializer(), "versions": SchemaVersionSerializer(many=True)},
            ),
            404: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def get(self, request: Request, schema_id: int) -> Response:
        schema = selectors.label_schema_get(organization=principal_of(request).organization, schema_id=schema_id)
        versions = schema.versions.order_by("version")
        return Response(
            {
                "schema": LabelSchemaOutputSerializer(schema).data,
                "versions": SchemaVersionSerializer(versions, many=True).data,
            }
        )


class LabelSchemaVersionCreateApi(APIView):
    """Edit a rubric: the body is a whole rubric; it becomes the next version."""

    required_capability = "labeling.manage"

    @extend_schema(
        request=RubricInputSerializer,
        responses={201: LabelSchemaOutputSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=["labeling"],
    )
    def post(self, request: Request, schema_id: int) -> Response:
        principal = principal_of(request)
        schema = selectors.label_schema_get(organization=principal.organization, schema_id=schema_id)
        rubric_in = _rubric_from(request.data)
        services.label_schema_version_create(schema=schema, rubric_in=rubric_in, user=principal.user)
        schema = selectors.label_schema_get(organization=principal.organization, schema_id=schema_id)
        return Response(LabelSchemaOutputSerializer(schema).data, status=status.HTTP_201_CREATED)


# --- queues ----------------------------------------------------------------------------------


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
        help_text="The last sampling failure of this queue (other queues are sampled regardless)."
    )

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
            },
        )
    )
    def get_sampling_health(self, queue: Queue) -> dict[str, Any]:
        return {
            "failures": queue.sampling_failures,
            "last_error": queue.sampling_error,
            "last_error_at": serializers.DateTimeField().to_representation(queue.sampling_error_at)
            if queue.sampling_error_at
            else None,
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

    class InputSerializer(serializers.Serializer):
        project = serializers.SlugField(required=False)
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, default="", allow_blank=True)
        schema = IdField(help_text="Label schema id.")
        annotations_per_item = serializers.IntegerField(min_value=1, max_value=10, default=1)
        max_extra_annotations = serializers.IntegerField(min_value=0, max_value=5, default=0)
        priority = ColumnIntegerField(validation.INTEGER, default=0)
        lease_seconds = serializers.IntegerField(min_value=30, max_value=86_400, default=600)
        # Approvers do not label (they decide agent actions), so they are no queue audience.
        assignee_role = serializers.ChoiceField(
            choices=[Role.ANNOTATOR, Role.ENGINEER, Role.ADMIN], default=Role.ANNOTATOR
        )
        assignees = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        show_judge_scores = serializers.BooleanField(default=False)
        skip_policy = serializers.ChoiceField(choices=SkipPolicy.values, default=SkipPolicy.OTHERS)
        sampling = serializers.ListField(child=BoundedDictField(), required=False, default=list, max_length=100)
        max_per_day = serializers.IntegerField(
            min_value=1, max_value=MAX_PER_DAY, required=False, allow_null=True, default=None
        )
        backfill_days = serializers.IntegerField(min_value=0, max_value=365, default=30)
        gold_rate = serializers.FloatField(min_value=0, max_value=1, default=0)

    @extend_schema(responses={200: QueueOutputSerializer(many=True)}, tags=["labeling"])
    def get(self, request: Request) -> Response:
        p = principal_of(request)
        queues = selectors.queue_list_for_worker(organization=p.organization, user=p.user, role=p.role)
        return Response(QueueOutputSerializer(queues, many=True).data)

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


# --- claims and labels -----------------------------------------------------------------------


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


def _snapshot_meta(snapshot: Any) -> dict[str, Any]:
    return {
        "as_of": snapshot.computed_at.isoformat() if snapshot.computed_at else None,
        "label_count": snapshot.label_count,
        "refreshing": snapshot.state != "idle",
    }


_SNAPSHOT_FIELDS = {
    "as_of": serializers.DateTimeField(allow_null=True),
    "label_count": serializers.IntegerField(),
    "refreshing": serializers.BooleanField(),
}


class QueueAgreementApi(APIView):
    """Agreement per question over items with two or more labels, with bootstrap intervals, and
    per annotator pair (Cohen's kappa), from the queue's statistics snapshot: `as_of` is when
    its labels were read. 202 with empty figures while the first snapshot is computed."""

    required_capability = "labeling.manage"

    @extend_schema(
        responses={
            200: inline_serializer(
                "Agreement",
                fields={
                    "questions": serializers.DictField(),
                    "pairs": serializers.ListField(),
                    "answer_pairs": serializers.DictField(),
                    **_SNAPSHOT_FIELDS,
                },
            ),
            404: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def get(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        snapshot = services.agreement_snapshot_current(queue=queue)
        report = (snapshot.payload or {}).get("agreement") or {"questions": {}, "pairs": [], "answer_pairs": {}}
        ready = snapshot.computed_at is not None
        return Response({**report, **_snapshot_meta(snapshot)}, status=200 if ready else status.HTTP_202_ACCEPTED)


class QueueAnnotatorsApi(APIView):
    """Per annotator: done, skipped, leased, labels per hour, median time, agreement with
    others and gold accuracy, from the statistics snapshot (202 while the first is computed)."""

    required_capability = "labeling.manage"

    @extend_schema(
        responses={
            200: inline_serializer("Annotators", fields={"annotators": serializers.ListField(), **_SNAPSHOT_FIELDS}),
            404: ERROR_RESPONSE,
        },
        tags=["labeling"],
    )
    def get(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        snapshot = services.agreement_snapshot_current(queue=queue)
        rows = (snapshot.payload or {}).get("annotators") or []
        ready = snapshot.computed_at is not None
        return Response(
            {"annotators": rows, **_snapshot_meta(snapshot)}, status=200 if ready else status.HTTP_202_ACCEPTED
        )


class QueueStatisticsRefreshApi(APIView):
    """Recompute the queue's agreement and annotator statistics in the background. Answers 202
    at once; GET .../agreement shows `refreshing` until the new snapshot is in."""

    required_capability = "labeling.manage"

    @extend_schema(
        request=None,
        responses={202: inline_serializer("StatisticsRefresh", fields=_SNAPSHOT_FIELDS), 404: ERROR_RESPONSE},
        tags=["labeling"],
    )
    def post(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        snapshot = services.agreement_snapshot_request(queue=queue)
        return Response(_snapshot_meta(snapshot), status=status.HTTP_202_ACCEPTED)
