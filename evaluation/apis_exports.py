"""Exports over the API: a queue's labels (engineers and admins, `labeling.manage`) and a
dataset version's items (engineers, admins and the project's own key, `datasets.export`), as
JSONL, CSV, Parquet or OpenAI chat fine-tuning JSONL, streamed. Row shape: evaluation/exports.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from evaluation import exports, selectors_exports
from evaluation.export_responses import export_response
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE

_FORMAT_HELP = (
    "`jsonl` (one row per line), `csv` (nested values as JSON text), `parquet` (one row group per "
    '2,000 rows), `openai` (`{"messages": [...]}` per line, ending with the accepted assistant '
    "turn; rows without one are left out)."
)
_BODIES = {
    (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="`jsonl` and `openai`"),
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="`csv`"),
    (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY, description="`parquet`"),
}


class _ExportApi(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # `?format=` names the export here, not a DRF renderer; errors are always JSON.
        return JSONRenderer(), JSONRenderer.media_type


class QueueExportApi(_ExportApi):
    """A queue's labels, streamed. `rows=items` (default): one row per completed item, with
    its final answers and every label in `label_ids`, `annotators` and `label_details`;
    `rows=labels`: one row per label with that label's answers. Every row has the same
    columns (README "Exports"); `item_id`, `dataset_id` and `dataset_version` are null."""

    required_capability = "labeling.manage"

    class ParamsSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=exports.FORMATS, default="jsonl", help_text=_FORMAT_HELP)
        rows = serializers.ChoiceField(choices=exports.ROW_MODES, default="items")

    @extend_schema(parameters=[ParamsSerializer], responses={**_BODIES, 400: ERROR_RESPONSE}, tags=["exports"])
    def get(self, request: Request, queue_id: int) -> Any:
        p = principal_of(request)
        queue = selectors_exports.queue_for_export(organization=p.organization, queue_id=queue_id)
        params = self.ParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        fmt, rows = params.validated_data["format"], params.validated_data["rows"]
        batches = selectors_exports.queue_batches(queue=queue, rows=rows)
        return export_response(
            request._request,
            fmt=fmt,
            stem=selectors_exports.queue_export_stem(queue, rows),
            chunks=exports.stream(fmt, batches),
        )


class DatasetVersionExportApi(_ExportApi):
    """A dataset version's items, streamed, with their lineage (README "Exports"). A project
    key exports its own project's datasets only."""

    required_capability = "datasets.export"

    class ParamsSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=exports.FORMATS, default="jsonl", help_text=_FORMAT_HELP)

    @extend_schema(parameters=[ParamsSerializer], responses={**_BODIES, 400: ERROR_RESPONSE}, tags=["exports"])
    def get(self, request: Request, dataset_id: int, number: int) -> Any:
        p = principal_of(request)
        version = selectors_exports.dataset_version_for_export(
            organization=p.organization, project=p.project, dataset_id=dataset_id, number=number
        )
        params = self.ParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        fmt = params.validated_data["format"]
        return export_response(
            request._request,
            fmt=fmt,
            stem=selectors_exports.dataset_export_stem(version),
            chunks=selectors_exports.dataset_version_chunks(version=version, fmt=fmt),
        )
