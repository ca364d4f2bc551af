"""Agreement and annotator statistics, from the queue's stored snapshot."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors, services
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


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
