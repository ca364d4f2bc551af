"""Policy and ladder versions: read by anyone who reads actions, written by engineers and
admins (`escalations.manage`). Every write is a new version; nothing is edited in place."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from escalations import selectors, services
from escalations.apis._common import body_of, project_for
from escalations.serializers import (
    LadderVersionOutputSerializer,
    PolicyVersionOutputSerializer,
    ladder_version_payload,
    policy_version_payload,
)
from reviewapp.errors import NotFound, ValidationFailed
from reviewapp.permissions import principal_of


class ProjectParamSerializer(serializers.Serializer):
    project = serializers.SlugField(required=False, help_text="Required with a personal token.")


def _project_param(request: Request) -> str | None:
    params = ProjectParamSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data.get("project")


class PolicyInputSerializer(serializers.Serializer):
    """Documentation of the body; escalations/policies.py validates it (one source)."""

    project = serializers.SlugField(required=False, help_text="Required with a personal token.")
    rules = serializers.ListField(
        child=serializers.DictField(),
        max_length=200,
        help_text='Ordered; the first that matches decides: `{"name": ..., "if": {"action": "refund*", '
        '"confidence_below": 0.9, "args": [{"path": "amount", "op": ">", "value": 200}], "velocity": '
        '[{"window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400}, "op": ">", '
        '"value": 1000}]}, "then": "approve" | "reject" | "escalate", "ladder": ..., "reason": ...}`.',
    )
    default_ladder = serializers.CharField(
        required=False, max_length=100, help_text='Where no rule matched goes; default "default".'
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class PolicyApi(APIView):
    """`GET` the policy in force (version null: none yet, everything escalates to the default
    ladder); `POST` a whole policy to make it the next version."""

    required_capability = {"GET": "actions.read", "POST": "escalations.manage"}

    @extend_schema(parameters=[ProjectParamSerializer], responses={200: PolicyVersionOutputSerializer}, tags=["policy"])
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        project = project_for(principal, _project_param(request))
        version = selectors.policy_version_current(organization=principal.organization, project=project)
        return Response(policy_version_payload(version, project_slug=project.slug))

    @extend_schema(
        request=PolicyInputSerializer,
        description="400 names the bad field exactly, e.g. `rules[1].if.args[0].op` or `rules[0].ladder` "
        '(every ladder named must exist; "default" is created when first needed).',
        responses={201: PolicyVersionOutputSerializer},
        tags=["policy"],
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        data = body_of(request)
        project = project_for(principal, data.get("project"))
        version = services.policy_version_create(principal=principal, project=project, data=data)
        return Response(policy_version_payload(version, project_slug=project.slug), status=status.HTTP_201_CREATED)


class LadderInputSerializer(serializers.Serializer):
    """Documentation of the body; escalations/policies.py validates it (one source)."""

    project = serializers.SlugField(required=False, help_text="Required with a personal token.")
    name = serializers.CharField(max_length=100)
    tiers = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=10,
        help_text='Each `{"role": "approver"}` or `{"users": ["lead"]}`, with `timeout_seconds` '
        "(60 .. 30 days) and `approvals_required` (1 .. 5, default 1).",
    )
    timeout_outcome = serializers.ChoiceField(
        choices=["reject"], required=False, help_text="What a timeout past the last tier does: reject (fail closed)."
    )
    notify_webhook_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="A Slack or Teams incoming webhook."
    )


class LaddersApi(APIView):
    """`GET` the latest version of each ladder; `POST` a ladder to make the next version of its name."""

    required_capability = {"GET": "actions.read", "POST": "escalations.manage"}

    @extend_schema(
        parameters=[ProjectParamSerializer], responses={200: LadderVersionOutputSerializer(many=True)}, tags=["policy"]
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        project = project_for(principal, _project_param(request))
        ladders = selectors.ladder_list_latest(organization=principal.organization, project=project)
        reveal = principal.can("escalations.manage")
        return Response([ladder_version_payload(v, project_slug=project.slug, reveal_webhook=reveal) for v in ladders])

    @extend_schema(request=LadderInputSerializer, responses={201: LadderVersionOutputSerializer}, tags=["policy"])
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        data = body_of(request)
        project = project_for(principal, data.get("project"))
        version = services.ladder_version_create(principal=principal, project=project, data=data)
        payload = ladder_version_payload(version, project_slug=project.slug, reveal_webhook=True)  # POST: manage
        return Response(payload, status=status.HTTP_201_CREATED)


class LadderDetailApi(APIView):
    """One ladder with all its versions, newest first. A person may leave `project` out when only
    one project of the organization has a ladder of that name."""

    required_capability = "actions.read"

    @extend_schema(
        parameters=[ProjectParamSerializer],
        responses={
            200: inline_serializer(
                "LadderDetail",
                fields={
                    "ladder": LadderVersionOutputSerializer(),
                    "versions": LadderVersionOutputSerializer(many=True),
                },
            )
        },
        tags=["policy"],
    )
    def get(self, request: Request, ladder_name: str) -> Response:
        principal = principal_of(request)
        slug = _project_param(request)
        if principal.project is not None or slug:
            project = project_for(principal, slug)
            versions = selectors.ladder_version_list(
                organization=principal.organization, project=project, name=ladder_name
            )
        else:
            versions = selectors.ladder_version_list_any_project(organization=principal.organization, name=ladder_name)
            if len({v.project_id for v in versions}) > 1:
                raise ValidationFailed(
                    "Name the project.", errors={"project": ["Several projects have a ladder of this name."]}
                )
        if not versions:
            raise NotFound("Ladder not found.")
        slug_of = versions[0].project.slug
        reveal = principal.can("escalations.manage")
        payloads = [ladder_version_payload(v, project_slug=slug_of, reveal_webhook=reveal) for v in versions]
        return Response({"ladder": payloads[0], "versions": payloads})
