"""Pairwise comparisons of two agent versions: create the queue (from two runs on a dataset
version, or from pairs of conversations) with `labeling.manage` (engineers, admins: who create
queues), read the result with `evaluation.read`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation import selectors_pairwise, services_pairwise
from evaluation.models import Dataset, DatasetRun
from reviewapp import services as core_services
from reviewapp import validation
from reviewapp.errors import NotFound, ValidationFailed
from reviewapp.permissions import principal_of
from reviewapp.principal import Principal
from reviewapp.serializers import ERROR_RESPONSE

_QUESTION = inline_serializer(
    "PairwiseQuestionIn",
    fields={
        "key": serializers.RegexField(r"^[a-z][a-z0-9_]{0,63}$"),
        "label": serializers.CharField(max_length=500),
        "help": serializers.CharField(max_length=2000, required=False),
    },
)
_SETTINGS: dict[str, Any] = {
    "name": serializers.CharField(max_length=200, required=False),
    "annotations_per_item": serializers.IntegerField(min_value=1, max_value=10, required=False),
    "questions": serializers.ListField(
        child=_QUESTION,
        required=False,
        help_text="Each answered A better / B better / Equivalent / Both bad; default one `overall` question.",
    ),
    "instructions": serializers.CharField(max_length=50_000, required=False),
    "seed": serializers.IntegerField(min_value=0, required=False, help_text="Draws the sides; random if left out."),
}
_FROM_RUNS = inline_serializer(
    "PairwiseFromRunsIn",
    fields={"baseline_run": serializers.IntegerField(), "candidate_run": serializers.IntegerField(), **_SETTINGS},
)
_FROM_CONVERSATIONS = inline_serializer(
    "PairwiseFromConversationsIn",
    fields={
        "project": serializers.SlugField(max_length=100),
        "baseline_version": serializers.CharField(max_length=100),
        "candidate_version": serializers.CharField(max_length=100),
        "pairs": serializers.ListField(
            child=inline_serializer(
                "ConversationPairIn",
                fields={
                    "baseline": serializers.CharField(help_text="External id of the baseline's conversation."),
                    "candidate": serializers.CharField(help_text="External id of the candidate's conversation."),
                    "key": serializers.CharField(required=False),
                    "tags": serializers.ListField(child=serializers.CharField(), required=False),
                },
            )
        ),
        **_SETTINGS,
    },
)
_FIGURES: dict[str, Any] = {
    "n": serializers.IntegerField(),
    "decisive": serializers.IntegerField(),
    "counts": serializers.DictField(child=serializers.IntegerField()),
    "win_rate": serializers.FloatField(allow_null=True),
    "decisive_win_rate": serializers.FloatField(allow_null=True),
    "wilson": serializers.DictField(child=serializers.FloatField()),
    "bootstrap": serializers.DictField(child=serializers.FloatField(), allow_null=True),
    "sign_test_p": serializers.FloatField(allow_null=True),
}
RESULT = inline_serializer(
    "PairwiseResult",
    fields={
        "queue": serializers.IntegerField(),
        "name": serializers.CharField(),
        "dataset": serializers.IntegerField(allow_null=True),
        "version": serializers.IntegerField(allow_null=True),
        "baseline_run": serializers.IntegerField(allow_null=True),
        "candidate_run": serializers.IntegerField(allow_null=True),
        "baseline_agent_version": serializers.CharField(),
        "candidate_agent_version": serializers.CharField(),
        "seed": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "items": serializers.IntegerField(),
        "skipped": serializers.DictField(child=serializers.IntegerField()),
        "without_final": serializers.IntegerField(),
        "confidence": serializers.FloatField(),
        "gate_interval": serializers.CharField(),
        "questions": serializers.ListField(
            child=inline_serializer(
                "PairwiseQuestionResult",
                fields={
                    "key": serializers.CharField(),
                    "label": serializers.CharField(),
                    "unanswered": serializers.IntegerField(),
                    **_FIGURES,
                    "segments": serializers.ListField(
                        child=inline_serializer("PairwiseSegment", fields={"tag": serializers.CharField(), **_FIGURES})
                    ),
                },
            )
        ),
    },
)


def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    body = request.data
    if not isinstance(body, dict):
        raise ValidationFailed("Send a JSON object.", errors={"body": ["Expected an object."]})
    unknown = set(body) - allowed
    if unknown:
        raise ValidationFailed("Unknown fields.", errors={k: ["Unknown field."] for k in sorted(unknown)[:10]})
    return body


def _dataset(p: Principal, dataset_id: int) -> Dataset:
    qs = Dataset.objects.select_related("project").filter(organization=p.organization, pk=dataset_id)
    if p.project is not None:
        qs = qs.filter(project=p.project)
    dataset = qs.first()
    if dataset is None:
        raise NotFound("Dataset not found.")
    return dataset


def _run(dataset: Dataset, body: dict[str, Any], field: str) -> DatasetRun:
    if field not in body:
        raise validation.InputError("This field is required.", field)
    run_id = body[field]
    if not validation.is_id(run_id):
        raise validation.InputError("Send a run id.", field)
    run = DatasetRun.objects.filter(organization_id=dataset.organization_id, dataset=dataset, pk=run_id).first()
    if run is None:
        raise validation.InputError("No such run of this dataset.", field)
    return run


def _created(comparison: Any) -> Response:
    result = selectors_pairwise.comparison_result(comparison=comparison)
    return Response(selectors_pairwise.result_payload(result), status=status.HTTP_201_CREATED)


class DatasetPairwiseApi(APIView):
    """A pairwise queue comparing two runs on one dataset version: each item shows the baseline's
    and the candidate's `output` side by side (sides shuffled per item from `seed`, recorded).
    Items missing from either run, without a source conversation or on a conversation another
    item uses are skipped and counted in `skipped`."""

    required_capability = "labeling.manage"

    @extend_schema(
        operation_id="v1_dataset_pairwise_create",
        request=_FROM_RUNS,
        responses={201: RESULT, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=["datasets"],
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        p = principal_of(request)
        body = _body(request, {"baseline_run", "candidate_run", *_SETTINGS})
        dataset = _dataset(p, dataset_id)
        baseline = _run(dataset, body, "baseline_run")
        candidate = _run(dataset, body, "candidate_run")
        settings = services_pairwise.settings_parse(
            body, default_name=f"{candidate.agent_version} vs {baseline.agent_version}"[:200]
        )
        comparison = services_pairwise.pairwise_from_runs(
            dataset=dataset, baseline_run=baseline, candidate_run=candidate, settings=settings, actor=p.user
        )
        return _created(comparison)


class PairwiseApi(APIView):
    """A pairwise queue from pairs of conversations answering the same input (by external id):
    the messages both share from the start are the input, the rest of each is its output."""

    required_capability = "labeling.manage"

    @extend_schema(
        operation_id="v1_pairwise_create",
        request=_FROM_CONVERSATIONS,
        responses={201: RESULT, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=["datasets"],
    )
    def post(self, request: Request) -> Response:
        p = principal_of(request)
        body = _body(request, {"project", "baseline_version", "candidate_version", "pairs", *_SETTINGS})
        slug = body.get("project")
        if not isinstance(slug, str) or not slug or len(slug) > 100:
            raise validation.InputError("Name the project by its slug.", "project")
        validation.check_text(slug, field="project")
        project = core_services.project_resolve(principal=p, slug=slug)
        pairs = services_pairwise.conversation_pairs_parse(body.get("pairs"))
        default_name = f"{body.get('candidate_version')} vs {body.get('baseline_version')}"[:200]
        settings = services_pairwise.settings_parse(body, default_name=default_name)
        comparison = services_pairwise.pairwise_from_conversations(
            project=project,
            pairs=pairs,
            baseline_version=body.get("baseline_version"),
            candidate_version=body.get("candidate_version"),
            settings=settings,
            actor=p.user,
        )
        return _created(comparison)


class PairwiseResultApi(APIView):
    """The candidate's win rate over the baseline (ties as half) per question and per segment
    (tag), from each item's final answer (after agreement or review), with the Wilson interval
    on decisive pairs (the one the release gate reads), a bootstrap interval over items, the
    sign test's p-value and the count of each answer. Items without a final answer are left out
    and counted (`without_final`, per question `unanswered`)."""

    required_capability = "evaluation.read"

    @extend_schema(
        operation_id="v1_pairwise_result",
        responses={200: RESULT, 404: ERROR_RESPONSE},
        tags=["datasets"],
    )
    def get(self, request: Request, queue_id: int) -> Response:
        p = principal_of(request)
        comparison = selectors_pairwise.comparison_get(
            organization=p.organization, queue_id=queue_id, project=p.project
        )
        result = selectors_pairwise.comparison_result(comparison=comparison)
        return Response(selectors_pairwise.result_payload(result))
