"""A project's whole configuration as one document: read it (engineers), apply it (admins)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning import document, selectors, services
from reviewapp.errors import ValidationFailed
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


class RubricConfigSerializer(serializers.Serializer):
    name = serializers.CharField()
    instructions = serializers.CharField(allow_blank=True)
    questions = serializers.ListField(child=serializers.DictField(), help_text="As in `POST /label-schemas`.")


class QueueConfigSerializer(serializers.Serializer):
    name = serializers.CharField()
    rubric = serializers.CharField(help_text="The name of a rubric of the document or of the project.")
    kind = serializers.ChoiceField(
        choices=list(document.QUEUE_KINDS),
        required=False,
        help_text="Set when the queue is made, never changed; left out: an existing queue's own, a new one `label`. "
        "A `pairwise` queue's rubric asks pairwise questions only.",
    )
    description = serializers.CharField(allow_blank=True)
    annotations_per_item = serializers.IntegerField()
    max_extra_annotations = serializers.IntegerField()
    priority = serializers.IntegerField()
    lease_seconds = serializers.IntegerField()
    assignee_role = serializers.CharField()
    show_judge_scores = serializers.BooleanField()
    skip_policy = serializers.CharField()
    backfill_days = serializers.IntegerField()
    gold_rate = serializers.FloatField()
    is_active = serializers.BooleanField()
    sampling = serializers.ListField(child=serializers.DictField(), help_text="As in `PUT /queues/{id}/sampling`.")
    max_per_day = serializers.IntegerField(allow_null=True)
    budget_controller = serializers.DictField(help_text="As in `PUT /queues/{id}/budget-controller`; {} is off.")


class LadderConfigSerializer(serializers.Serializer):
    name = serializers.CharField()
    tiers = serializers.ListField(child=serializers.DictField())
    timeout_outcome = serializers.CharField()
    notify_webhook_url = serializers.CharField(allow_blank=True)


class PolicyConfigSerializer(serializers.Serializer):
    rules = serializers.ListField(child=serializers.DictField())
    default_ladder = serializers.CharField()


class BudgetConfigSerializer(serializers.Serializer):
    daily_items = serializers.IntegerField()
    shares = serializers.DictField(child=serializers.FloatField(), help_text="Queue name to its share.")


class BarConfigSerializer(serializers.Serializer):
    kappa = serializers.FloatField()
    tpr = serializers.FloatField()
    tnr = serializers.FloatField()
    webhook_url = serializers.CharField(allow_blank=True)


class ProjectSettingsConfigSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    frustration_terms = serializers.ListField(child=serializers.CharField())


class ProjectConfigSerializer(serializers.Serializer):
    """The document. Every section may be left out (or null) when applying: it is left alone."""

    kind = serializers.ChoiceField(choices=[document.KIND])
    version = serializers.ChoiceField(choices=[document.VERSION])
    project = ProjectSettingsConfigSerializer()
    rubrics = RubricConfigSerializer(many=True)
    queues = QueueConfigSerializer(many=True)
    ladders = LadderConfigSerializer(many=True)
    policy = PolicyConfigSerializer(allow_null=True, help_text="The policy in force; null: none yet.")
    budget = BudgetConfigSerializer(allow_null=True, help_text="The daily labeling budget; null: none.")
    calibration_bar = BarConfigSerializer()


class ChangeSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Where in the document: `queues[2]`.")
    object = serializers.ChoiceField(
        choices=["project", "rubric", "queue", "ladder", "policy", "budget", "calibration_bar"]
    )
    name = serializers.CharField()
    change = serializers.ChoiceField(choices=["created", "new_version", "changed", "unchanged"])
    fields = serializers.ListField(child=serializers.CharField(), help_text="What changed.")


class ApplyResultSerializer(serializers.Serializer):
    project = serializers.CharField()
    dry_run = serializers.BooleanField()
    summary = serializers.DictField(child=serializers.IntegerField())
    changes = ChangeSerializer(many=True)


def _dry_run(request: Request) -> bool:
    value = request.query_params.get("dry_run", "0")
    if value not in ("0", "1", "true", "false"):
        raise ValidationFailed("Invalid dry_run.", errors={"dry_run": ["1 or 0."]})
    return value in ("1", "true")


class ProjectConfigApi(APIView):
    """`GET` a project's whole configuration as one document, keyed by names (never ids), so it
    applies to any project. `POST` such a document: what is missing is created, a rubric, ladder
    or policy that differs gets a new version, queue settings and sampling that differ are
    updated, the rest is left alone; in one transaction. `?dry_run=1` answers the same diff and
    writes nothing."""

    # Engineers build rubrics, queues and policies, so they may read them all at once; applying
    # also sets budgets and the calibration bar, which are the admins'.
    required_capability = {"GET": "labeling.manage", "POST": "projects.manage"}

    def _project(self, request: Request, project_slug: str) -> Any:
        return selectors.project_get_by_slug(organization=principal_of(request).organization, slug=project_slug)

    @extend_schema(responses={200: ProjectConfigSerializer, 404: ERROR_RESPONSE}, tags=["projects"])
    def get(self, request: Request, project_slug: str) -> Response:
        project = self._project(request, project_slug)
        return Response(selectors.project_config(organization=project.organization, project=project))

    @extend_schema(
        request=ProjectConfigSerializer,
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.STR, enum=["0", "1", "true", "false"], description="Diff only.")
        ],
        description="400 names the place in the document, e.g. `queues[2].sampling[0].rate`.",
        responses={200: ApplyResultSerializer, 400: ERROR_RESPONSE, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=["projects"],
    )
    def post(self, request: Request, project_slug: str) -> Response:
        principal = principal_of(request)
        project = self._project(request, project_slug)
        dry_run = _dry_run(request)
        result = services.project_config_apply(principal=principal, project=project, data=request.data, dry_run=dry_run)
        return Response(result.as_dict(), status=status.HTTP_200_OK)
