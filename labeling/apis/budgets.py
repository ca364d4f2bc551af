"""Budgets: a project's daily labeling budget across its queues, and a queue's budget
controller (its rate, pin and history). Admins write, engineers read."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors, services
from labeling.models import Queue
from labeling.sampling import MAX_PER_DAY
from reviewapp import selectors as core_selectors
from reviewapp.errors import NotFound, ValidationFailed
from reviewapp.fields import BoundedDictField
from reviewapp.models import Organization, Project
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE

# A project with more queues than this is not one customer's agent.
MAX_SHARES = 200


def _project(organization: Organization, project_id: int) -> Project:
    project = core_selectors.project_list(organization=organization).filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def budget_payload(project: Project) -> dict[str, Any]:
    queues = list(Queue.objects.filter(project=project).order_by("pk"))
    usage = selectors.project_budget_usage(project=project, queues=queues)
    budget = selectors.project_budget_get(organization=project.organization, project=project)
    return {
        "project": project.slug,
        "timezone": project.timezone,
        "daily_items": budget.daily_items if budget else None,
        "shares": budget.shares if budget else {},
        "used": usage["used"],
        "left": usage["left"],
        "queues": [{"queue": q.pk, "name": q.name, **usage["queues"][q.pk]} for q in queues] if budget else [],
    }


BudgetOutput = inline_serializer(
    "ProjectBudget",
    fields={
        "project": serializers.CharField(),
        "timezone": serializers.CharField(),
        "daily_items": serializers.IntegerField(allow_null=True),
        "shares": serializers.DictField(child=serializers.FloatField()),
        "used": serializers.IntegerField(allow_null=True, help_text="Admitted today (the project's day)."),
        "left": serializers.IntegerField(allow_null=True),
        "queues": serializers.ListField(child=serializers.DictField()),
    },
)


class ProjectBudgetApi(APIView):
    """The project's daily human-labeling budget: `daily_items` spread over the project's day,
    `shares` (queue id to fraction, summing to at most 1) capping each queue's part of it.
    `daily_items: null` removes it."""

    required_capability = {"GET": "labeling.manage", "PUT": "budgets.manage"}

    class InputSerializer(serializers.Serializer):
        daily_items = serializers.IntegerField(min_value=1, max_value=MAX_PER_DAY, allow_null=True)
        shares = BoundedDictField(required=False, default=dict)

    @extend_schema(responses={200: BudgetOutput, 404: ERROR_RESPONSE}, tags=["labeling"])
    def get(self, request: Request, project_id: int) -> Response:
        p = principal_of(request)
        return Response(budget_payload(_project(p.organization, project_id)))

    @extend_schema(request=InputSerializer, responses={200: BudgetOutput, 400: ERROR_RESPONSE}, tags=["labeling"])
    def put(self, request: Request, project_id: int) -> Response:
        p = principal_of(request)
        project = _project(p.organization, project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        shares = data.validated_data["shares"]
        if len(shares) > MAX_SHARES:
            raise ValidationFailed("Invalid budget.", errors={"shares": [f"At most {MAX_SHARES} queues."]})
        services.project_budget_set(
            principal=p, project=project, daily_items=data.validated_data["daily_items"], shares=shares
        )
        return Response(budget_payload(project))


def controller_payload(queue: Queue) -> dict[str, Any]:
    return {
        "queue": queue.pk,
        "settings": queue.budget_controller or {"enabled": False},
        "rate": services.queue_rate_in_force(queue),
        "judge_version": queue.controller_judge_version,
        "changes": [
            {
                "at": serializers.DateTimeField().to_representation(c.at),
                "old_rate": c.old_rate,
                "new_rate": c.new_rate,
                "reason": c.reason,
                "judge_version": c.judge_version,
            }
            for c in selectors.queue_rate_changes(organization=queue.organization, queue=queue)
        ],
    }


ControllerOutput = inline_serializer(
    "QueueBudgetController",
    fields={
        "queue": serializers.IntegerField(),
        "settings": serializers.DictField(),
        "rate": serializers.FloatField(allow_null=True, help_text="The rate of the queue's uniform rules now."),
        "judge_version": serializers.CharField(),
        "changes": serializers.ListField(child=serializers.DictField(), help_text="Newest first, the last 50."),
    },
)


class QueueBudgetControllerApi(APIView):
    """The queue's budget controller: settings (`enabled`, `judge`, `criterion`, `base_rate`,
    `window_days`, `step`, `floor_rate`, `floor_per_day`, `pinned_rate`), the rate in force and
    every change with its reason."""

    required_capability = {"GET": "labeling.manage", "PUT": "budgets.manage"}

    @extend_schema(responses={200: ControllerOutput, 404: ERROR_RESPONSE}, tags=["labeling"])
    def get(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        return Response(controller_payload(selectors.queue_get(organization=p.organization, queue_id=queue_id)))

    @extend_schema(
        request=inline_serializer("QueueBudgetControllerIn", fields={"enabled": serializers.BooleanField()}),
        responses={200: ControllerOutput, 400: ERROR_RESPONSE},
        tags=["labeling"],
    )
    def put(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        queue = selectors.queue_get(organization=p.organization, queue_id=queue_id)
        body = BoundedDictField().run_validation(request.data)
        queue = services.queue_budget_controller_set(principal=p, queue=queue, data=body)
        return Response(controller_payload(queue))
