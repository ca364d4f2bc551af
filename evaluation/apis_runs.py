"""Release-gate runs: an agent version's results on a frozen dataset version, the gate's verdict,
kept runs and their item-by-item comparison. People read with `datasets.read` and post runs
with `datasets.run` (engineers, admins); a project key (a CI job) may do both on its own
project's datasets."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation import selectors_runs, services_runs
from evaluation.models import Dataset
from reviewapp.errors import ValidationFailed
from reviewapp.pagination import IdCursorPagination
from reviewapp.permissions import principal_of
from reviewapp.principal import Principal


def _dataset(principal: Principal, dataset_id: int) -> Dataset:
    return selectors_runs.dataset_get(
        organization=principal.organization, dataset_id=dataset_id, project=principal.project
    )


_SEGMENTS = inline_serializer(
    "RunSegment",
    many=True,
    fields={
        "kind": serializers.ChoiceField(choices=["tag", "split"]),
        "name": serializers.CharField(),
        "n": serializers.IntegerField(),
        "passed": serializers.IntegerField(),
        "pass_rate": serializers.FloatField(allow_null=True),
        "low": serializers.FloatField(),
        "high": serializers.FloatField(),
        "critical": serializers.IntegerField(),
        "critical_passed": serializers.IntegerField(),
    },
)

_RUN_FIELDS: dict[str, Any] = {
    "id": serializers.IntegerField(),
    "dataset": serializers.IntegerField(),
    "version": serializers.IntegerField(help_text="The dataset version's number."),
    "version_hash": serializers.CharField(help_text="The version's content hash the run was judged on."),
    "agent_version": serializers.CharField(),
    "created_at": serializers.DateTimeField(),
    "gate": serializers.ChoiceField(choices=["pass", "fail"]),
    "reasons": serializers.ListField(child=serializers.CharField(), help_text="Why the gate failed."),
    "warnings": serializers.ListField(child=serializers.CharField()),
    "item_count": serializers.IntegerField(),
    "passed_count": serializers.IntegerField(),
    "critical_count": serializers.IntegerField(),
    "critical_passed_count": serializers.IntegerField(),
    "pass_rate": serializers.FloatField(allow_null=True),
    "critical_pass_rate": serializers.FloatField(allow_null=True, help_text="Null with no critical items."),
    "wilson_lower": serializers.FloatField(allow_null=True),
    "wilson_upper": serializers.FloatField(allow_null=True),
    "critical_lower": serializers.FloatField(
        allow_null=True, help_text="Exact (Clopper-Pearson) lower bound of the critical pass rate."
    ),
    "needed_items": inline_serializer(
        "RunNeededItems",
        fields={
            "n": serializers.IntegerField(allow_null=True),
            "assumption": serializers.ChoiceField(choices=["observed_rate", "zero_failures", "unreachable"]),
            "target": serializers.FloatField(),
            "enough": serializers.BooleanField(),
        },
        allow_null=True,
    ),
    "critical_needed_items": serializers.IntegerField(allow_null=True),
    "segments": _SEGMENTS,
    "missing": serializers.ListField(child=serializers.CharField(), help_text="Items with no result (failed)."),
    "not_worse": serializers.BooleanField(allow_null=True),
    "comparison": serializers.DictField(allow_null=True),
    "gate_settings": serializers.DictField(),
}
RUN_OUTPUT = inline_serializer("DatasetRun", fields=_RUN_FIELDS)
_RUNS = inline_serializer("DatasetRun", fields=_RUN_FIELDS, many=True)
_RUN_PAGE = inline_serializer(
    "DatasetRunPage",
    fields={
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": _RUNS,
    },
)
_RESULTS = inline_serializer(
    "DatasetRunResult",
    many=True,
    fields={
        "item_id": serializers.CharField(),
        "passed": serializers.BooleanField(),
        "score": serializers.FloatField(allow_null=True),
        "output": serializers.JSONField(allow_null=True),
    },
)


class RunResultInSerializer(serializers.Serializer):
    """Documents the body; it is checked by services_runs.run_results_parse (faster)."""

    item_id = serializers.CharField(max_length=64)
    passed = serializers.BooleanField()
    score = serializers.FloatField(required=False, allow_null=True)
    output = serializers.JSONField(required=False, allow_null=True, help_text="Any JSON (bounded depth).")


class RunInSerializer(serializers.Serializer):
    agent_version = serializers.CharField(max_length=100)
    results = RunResultInSerializer(many=True, max_length=services_runs.MAX_RUN_RESULTS)


class RunFilterSerializer(serializers.Serializer):
    agent_version = serializers.CharField(required=False, max_length=100)
    cursor = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500)


def _params(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def _run_page(request: Request, view: APIView, qs: Any) -> Response:
    paginator = IdCursorPagination()  # newest first
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response([selectors_runs.run_payload(r) for r in page or []])


class DatasetVersionRunsApi(APIView):
    """`POST` a run of an agent version on this version: its per-item results, judged by the
    dataset's gate. Every item without a result counts as failed (listed in `missing`); a result
    for an item the version does not hold is a 400 naming it. `GET` lists this version's runs,
    newest first."""

    required_capability = {"GET": "datasets.read", "POST": "datasets.run"}

    @extend_schema(
        operation_id="v1_dataset_version_runs_list",
        parameters=[RunFilterSerializer],
        responses={200: _RUN_PAGE},
        tags=["datasets"],
    )
    def get(self, request: Request, dataset_id: int, number: int) -> Response:
        p = principal_of(request)
        params = _params(RunFilterSerializer, request)
        dataset = _dataset(p, dataset_id)
        version = selectors_runs.dataset_version_get(organization=p.organization, dataset=dataset, number=number)
        qs = selectors_runs.dataset_run_list(
            organization=p.organization, dataset=dataset, version=version, agent_version=params.get("agent_version")
        )
        return _run_page(request, self, qs)

    @extend_schema(
        request=RunInSerializer,
        description=(
            f"Up to {services_runs.MAX_RUN_RESULTS:,} results, one per item (`item_id` is the dataset item's "
            "key). Answers the pass rates, per-segment rates, the Wilson lower bound, how many items a "
            "confident claim of the target needs, `gate` (`pass`/`fail`) and the `reasons`."
        ),
        responses={201: RUN_OUTPUT},
        tags=["datasets"],
    )
    def post(self, request: Request, dataset_id: int, number: int) -> Response:
        p = principal_of(request)
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed("Send a JSON object.", errors={"body": ["Expected an object."]})
        dataset = _dataset(p, dataset_id)
        version = selectors_runs.dataset_version_get(organization=p.organization, dataset=dataset, number=number)
        unknown = set(body) - {"agent_version", "results"}
        if unknown:
            raise ValidationFailed("Unknown fields.", errors={k: ["Unknown field."] for k in sorted(unknown)[:10]})
        if "results" not in body:
            raise ValidationFailed("Send the results.", errors={"results": ["This field is required."]})
        results = services_runs.run_results_parse(body["results"])
        run, _ = services_runs.dataset_run_create(
            dataset=dataset,
            version=version,
            agent_version=body.get("agent_version"),
            results=results,
            actor=p.user,
        )
        return Response(selectors_runs.run_payload(run), status=status.HTTP_201_CREATED)


class DatasetRunsApi(APIView):
    """Every run of the dataset (any version), newest first; filter by `agent_version`."""

    required_capability = "datasets.read"

    @extend_schema(
        operation_id="v1_dataset_runs_list",
        parameters=[RunFilterSerializer],
        responses={200: _RUN_PAGE},
        tags=["datasets"],
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        p = principal_of(request)
        params = _params(RunFilterSerializer, request)
        dataset = _dataset(p, dataset_id)
        qs = selectors_runs.dataset_run_list(
            organization=p.organization, dataset=dataset, agent_version=params.get("agent_version")
        )
        return _run_page(request, self, qs)


class RunResultsFilterSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000)


class DatasetRunDetailApi(APIView):
    """One run: its figures and verdict, and one page of its stored results (`results`, in the
    order sent; follow `next`)."""

    required_capability = "datasets.read"

    @extend_schema(
        parameters=[RunResultsFilterSerializer],
        responses={
            200: inline_serializer(
                "DatasetRunDetail",
                fields={
                    **_RUN_FIELDS,
                    "results": _RESULTS,
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                },
            )
        },
        tags=["datasets"],
    )
    def get(self, request: Request, dataset_id: int, run_id: int) -> Response:
        p = principal_of(request)
        _params(RunResultsFilterSerializer, request)
        dataset = _dataset(p, dataset_id)
        run = selectors_runs.dataset_run_get(organization=p.organization, dataset=dataset, run_id=run_id)
        paginator = IdCursorPagination(ordering="id", page_size=100, max_page_size=1000)
        page = paginator.paginate_queryset(selectors_runs.dataset_run_results(run=run), request, view=self) or []
        return Response(
            {
                **selectors_runs.run_payload(run),
                "results": [
                    {"item_id": r.item.key, "passed": r.passed, "score": r.score, "output": r.output} for r in page
                ],
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
            }
        )


_CHANGES = inline_serializer(
    "RunItemChange",
    many=True,
    fields={
        "change": serializers.ChoiceField(choices=list(selectors_runs.ORDER)),
        "item_id": serializers.CharField(),
        "critical": serializers.BooleanField(),
        "a_passed": serializers.BooleanField(allow_null=True),
        "b_passed": serializers.BooleanField(allow_null=True),
        "a_score": serializers.FloatField(allow_null=True),
        "b_score": serializers.FloatField(allow_null=True),
    },
)


class DatasetRunCompareApi(APIView):
    """Two runs of the dataset item by item, `run_id` as the baseline (a) and `other_run_id` as
    the candidate (b): regressions (passed in a, failed in b) first, then fixes, then unchanged
    failures, then items only one of the two versions holds. An item without a result in a run
    failed there. Unchanged passes are only counted. At most 10,000 items are listed
    (`truncated`); the counts are complete."""

    required_capability = "datasets.read"

    @extend_schema(
        parameters=[OpenApiParameter("other_run_id", int, OpenApiParameter.PATH)],
        responses={
            200: inline_serializer(
                "DatasetRunCompare",
                fields={
                    "a": serializers.IntegerField(),
                    "b": serializers.IntegerField(),
                    "same_version": serializers.BooleanField(),
                    "counts": serializers.DictField(child=serializers.IntegerField()),
                    "items": _CHANGES,
                    "truncated": serializers.BooleanField(),
                },
            )
        },
        tags=["datasets"],
    )
    def get(self, request: Request, dataset_id: int, run_id: int, other_run_id: int) -> Response:
        p = principal_of(request)
        dataset = _dataset(p, dataset_id)
        run_a = selectors_runs.dataset_run_get(organization=p.organization, dataset=dataset, run_id=run_id)
        run_b = selectors_runs.dataset_run_get(organization=p.organization, dataset=dataset, run_id=other_run_id)
        return Response(selectors_runs.dataset_run_compare(run_a=run_a, run_b=run_b))
