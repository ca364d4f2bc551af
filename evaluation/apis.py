"""Calibration: how far each judge (and the agent's own confidence) agrees with people, and the
project's bar. Engineers and admins read (`evaluation.read`); admins set the bar
(`evaluation.manage`). Agent keys are not admitted: the figures describe the agent itself."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation import selectors, services
from reviewapp import services as core_services
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


class ProjectParamSerializer(serializers.Serializer):
    project = serializers.SlugField(max_length=100)


def _params(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


class CalibrationFilterSerializer(ProjectParamSerializer):
    judge = serializers.CharField(required=False, max_length=100)
    criterion = serializers.CharField(required=False, max_length=100)
    judge_version = serializers.CharField(required=False, max_length=100, allow_blank=True)
    agent_version = serializers.CharField(required=False, max_length=100, allow_blank=True)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class CalibrationApi(APIView):
    """Per judge, criterion and judge version: `n` pairs; `binary` (accuracy, cohen_kappa,
    tpr, tnr, prevalence, each with a 95% interval, and the confusion matrix); `scores`
    (Spearman, Kendall, MAE); `confidence` (ECE, Brier, reliability table); `pass_rate`
    (judge-only over every judged conversation, Rogan-Gladen, human-only and prediction-powered
    estimates); a weekly `trend`; `status` against the project's bar (`ok`, `below_bar`,
    `too_few`). Estimates are weighted by each item's inclusion probability."""

    required_capability = "evaluation.read"

    @extend_schema(
        parameters=[CalibrationFilterSerializer],
        responses={
            200: inline_serializer(
                "Calibration",
                fields={
                    "project": serializers.CharField(),
                    "bar": serializers.DictField(),
                    "judges": serializers.ListField(child=serializers.DictField()),
                    "truncated": serializers.BooleanField(),
                },
            ),
            400: ERROR_RESPONSE,
        },
        tags=["evaluation"],
    )
    def get(self, request: Request) -> Response:
        p = principal_of(request)
        params = _params(CalibrationFilterSerializer, request)
        project = core_services.project_resolve(principal=p, slug=params.pop("project"))
        report = selectors.calibration_report(
            organization=p.organization, project=project, filters=selectors.Filters(**params)
        )
        return Response(report)


class AgentCalibrationFilterSerializer(ProjectParamSerializer):
    action = serializers.CharField(required=False, max_length=100)


class AgentCalibrationApi(APIView):
    """Per action name: how often people approve the agent's escalated actions (with a 95%
    interval), how well its confidence predicts approval (ECE, Brier, reliability table), and
    the lowest confidence from which approval stays above 90% (`trust`)."""

    required_capability = "evaluation.read"

    @extend_schema(
        parameters=[AgentCalibrationFilterSerializer],
        responses={
            200: inline_serializer(
                "AgentCalibration",
                fields={
                    "project": serializers.CharField(),
                    "actions": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: ERROR_RESPONSE,
        },
        tags=["evaluation"],
    )
    def get(self, request: Request) -> Response:
        p = principal_of(request)
        params = _params(AgentCalibrationFilterSerializer, request)
        project = core_services.project_resolve(principal=p, slug=params["project"])
        return Response(
            selectors.agent_calibration(organization=p.organization, project=project, action=params.get("action"))
        )


class BarSerializer(serializers.Serializer):
    kappa = serializers.FloatField(min_value=0, max_value=1, required=False)
    tpr = serializers.FloatField(min_value=0, max_value=1, required=False)
    tnr = serializers.FloatField(min_value=0, max_value=1, required=False)
    webhook_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)


class CalibrationBarApi(APIView):
    """The project's bar: `GET` (defaults kappa 0.6, TPR 0.9, TNR 0.9 until set); `PUT` any of
    kappa, tpr, tnr (0..1) and webhook_url (audited)."""

    required_capability = "evaluation.manage"

    @extend_schema(
        parameters=[ProjectParamSerializer],
        responses={200: inline_serializer("CalibrationBar", fields={**BarSerializer().fields}), 400: ERROR_RESPONSE},
        tags=["evaluation"],
    )
    def get(self, request: Request) -> Response:
        p = principal_of(request)
        project = core_services.project_resolve(principal=p, slug=_params(ProjectParamSerializer, request)["project"])
        return Response(selectors.bar_payload(selectors.bar_get(organization=p.organization, project=project)))

    @extend_schema(
        parameters=[ProjectParamSerializer],
        request=BarSerializer,
        responses={200: inline_serializer("CalibrationBarSet", fields={**BarSerializer().fields}), 400: ERROR_RESPONSE},
        tags=["evaluation"],
    )
    def put(self, request: Request) -> Response:
        p = principal_of(request)
        project = core_services.project_resolve(principal=p, slug=_params(ProjectParamSerializer, request)["project"])
        body = BarSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        bar = services.bar_set(project=project, values=dict(body.validated_data), actor=p.user)
        return Response(selectors.bar_payload(bar))
