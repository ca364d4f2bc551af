"""Browser downloads of exports (the "Download" form on the queue list and a dataset version's
page, templates/evaluation/_export_buttons.html): the same rows and writers as the API, for a
signed-in engineer or admin, streamed."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from evaluation import exports, selectors_exports
from evaluation.export_responses import export_response
from reviewapp.decorators import member_required
from reviewapp.errors import NotFound


def _choice(request: HttpRequest, name: str, choices: tuple[str, ...], default: str) -> str | None:
    value = request.GET.get(name, default)
    return value if value in choices else None


@member_required("labeling.manage")
@require_GET
def queue_export(request: HttpRequest, queue_id: int) -> HttpResponseBase:
    organization = request.membership.organization  # type: ignore[attr-defined]
    try:
        queue = selectors_exports.queue_for_export(organization=organization, queue_id=queue_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    fmt = _choice(request, "format", exports.FORMATS, "jsonl")
    rows = _choice(request, "rows", exports.ROW_MODES, "items")
    if fmt is None or rows is None:
        return HttpResponseBadRequest("format: one of jsonl, csv, parquet, openai; rows: items or labels.")
    return export_response(
        request,
        fmt=fmt,
        stem=selectors_exports.queue_export_stem(queue, rows),
        chunks=exports.stream(fmt, selectors_exports.queue_batches(queue=queue, rows=rows)),
    )


@member_required("datasets.export")
@require_GET
def dataset_version_export(request: HttpRequest, dataset_id: int, number: int) -> HttpResponseBase:
    organization = request.membership.organization  # type: ignore[attr-defined]
    try:
        version = selectors_exports.dataset_version_for_export(
            organization=organization, project=None, dataset_id=dataset_id, number=number
        )
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    fmt = _choice(request, "format", exports.FORMATS, "jsonl")
    if fmt is None:
        return HttpResponseBadRequest("format: one of jsonl, csv, parquet, openai.")
    return export_response(
        request,
        fmt=fmt,
        stem=selectors_exports.dataset_export_stem(version),
        chunks=selectors_exports.dataset_version_chunks(version=version, fmt=fmt),
    )
