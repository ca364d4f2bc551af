"""Rubrics (label schemas) and their versions."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import rubric, selectors, services
from reviewapp import services as core_services
from reviewapp import validation
from reviewapp.errors import ValidationFailed
from reviewapp.fields import ColumnIntegerField
from reviewapp.ingest_schemas import errors_from_pydantic
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


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
