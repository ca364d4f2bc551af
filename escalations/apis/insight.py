"""Looking back over decided actions: the policy dry run and the confidence envelopes
(engineers and admins: `escalations.manage`). Both only read; nothing here changes the policy."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from escalations import envelopes, selectors_insight
from escalations.apis._common import body_of, project_for
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


class PolicySimulateApi(APIView):
    """Replay a draft policy over past actions (the newest `last`, default 1,000, at most
    10,000, optionally within `since`..`until`) and compare it with what really happened."""

    required_capability = "escalations.manage"

    class InputSerializer(serializers.Serializer):
        project = serializers.SlugField(required=False, max_length=100, help_text="Required with a personal token.")
        policy = serializers.DictField(
            help_text='The draft: `{"rules": [...], "default_ladder": ...}`, checked exactly as '
            "`POST /api/v1/policy` checks it; a bad field is named under `policy.` "
            "(`policy.rules[1].if.args[0].op`)."
        )
        last = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=selectors_insight.MAX_REPLAY,
            help_text="How many of the newest actions to replay (default 1,000; 10,000 with a range).",
        )
        since = serializers.DateTimeField(required=False, help_text="Actions created at or after (inclusive).")
        until = serializers.DateTimeField(required=False, help_text="Actions created before (exclusive).")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            since, until = attrs.get("since"), attrs.get("until")
            if since is not None and until is not None and until <= since:
                raise serializers.ValidationError({"until": ["Must be after since."]})
            return attrs

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OpenApiResponse(
                description="Counts per action type and per rule (draft against the policy then and the people's "
                "decisions), the transitions between outcomes, and `human_overrides_auto_approved`: the actions "
                "people rejected or edited that the draft would approve (count and ids)."
            ),
            400: ERROR_RESPONSE,
        },
        tags=["policy"],
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        data = body_of(request)
        # The serializer checks the range and that the draft is an object; the policy module
        # then checks the draft itself and names the exact field.
        params = self.InputSerializer(data=data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        project = project_for(principal, data.get("project"))
        policy = selectors_insight.policy_draft_validate(project=project, data=data["policy"])
        ranged = "since" in values or "until" in values
        default = selectors_insight.MAX_REPLAY if ranged else selectors_insight.DEFAULT_REPLAY
        selection = selectors_insight.ReplaySelection(
            last=values.get("last", default), since=values.get("since"), until=values.get("until")
        )
        report = selectors_insight.policy_simulate(
            organization=principal.organization, project=project, policy=policy, selection=selection
        )
        return Response(report)


class ActionEnvelopesApi(APIView):
    """Per action type: the agent's confidence against what approvers decided (a reliability
    table), and the lowest confidence threshold whose approval rate keeps its Wilson 95% lower
    bound at `target` or above, with the sample, the share of traffic it would auto-approve and
    a suggested rule. Suggested only: nothing is applied."""

    required_capability = "escalations.manage"

    class ParamsSerializer(serializers.Serializer):
        project = serializers.SlugField(required=False, max_length=100, help_text="Required with a personal token.")
        action = serializers.CharField(required=False, max_length=100, help_text="One action type; default all.")
        target = serializers.FloatField(
            required=False,
            min_value=0.5,
            max_value=0.9999,
            default=envelopes.DEFAULT_TARGET,
            help_text="The approval rate the Wilson lower bound must reach (default 0.99).",
        )
        since = serializers.DateTimeField(required=False, help_text="Decisions since (default: the last 90 days).")
        agent_version = serializers.CharField(required=False, max_length=100)

    @extend_schema(
        parameters=[ParamsSerializer],
        responses={200: OpenApiResponse(description="`{project, target, envelopes: [...]}`"), 400: ERROR_RESPONSE},
        tags=["policy"],
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        params = self.ParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        project = project_for(principal, values.get("project"))
        found = selectors_insight.action_envelopes(
            organization=principal.organization,
            project=project,
            action=values.get("action"),
            target=values["target"],
            since=values.get("since"),
            agent_version=values.get("agent_version"),
        )
        return Response({"project": project.slug, "target": values["target"], "envelopes": found})
