"""Release-gate pages (`datasets.read`: engineers and admins): a dataset's runs, one run with its
verdict, reasons, figures and segments, and two runs compared item by item. The same selectors
as the API (selectors_runs). `runs_section` is the runs table alone, for the dataset page to
include by URL (hx-get), so the two pages share no template."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from evaluation import selectors_runs
from evaluation.models import Dataset
from reviewapp import validation
from reviewapp.decorators import member_required
from reviewapp.errors import NotFound

# Runs listed on a page (newest first), results shown on a run page, items on a compare page.
RUNS_SHOWN = 100
RESULTS_SHOWN = 500
CHANGES_SHOWN = 1000


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _dataset(request: HttpRequest, dataset_id: int) -> Dataset:
    try:
        return selectors_runs.dataset_get(
            organization=request.membership.organization,  # type: ignore[attr-defined]
            dataset_id=dataset_id,
        )
    except NotFound as exc:
        raise Http404("No such dataset.") from exc


def _run(request: HttpRequest, dataset: Dataset, run_id: int) -> Any:
    try:
        return selectors_runs.dataset_run_get(
            organization=request.membership.organization,  # type: ignore[attr-defined]
            dataset=dataset,
            run_id=run_id,
        )
    except NotFound as exc:
        raise Http404("No such run.") from exc


def _row(run: Any) -> dict[str, Any]:
    data = selectors_runs.run_payload(run)
    data["pass_rate_text"] = _pct(data["pass_rate"])
    data["critical_text"] = _pct(data["critical_pass_rate"])
    data["lower_text"] = _pct(data["wilson_lower"])
    return data


def _runs_context(request: HttpRequest, dataset: Dataset) -> dict[str, Any]:
    runs = selectors_runs.dataset_run_list(
        organization=request.membership.organization,  # type: ignore[attr-defined]
        dataset=dataset,
    ).order_by("-id")[:RUNS_SHOWN]
    return {"dataset": dataset, "runs": [_row(r) for r in runs], "shown": RUNS_SHOWN}


@require_GET
@member_required("datasets.read")
def runs_list(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    return render(request, "evaluation/runs/list.html", _runs_context(request, dataset))


@require_GET
@member_required("datasets.read")
def runs_section(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    return render(request, "evaluation/runs/_section.html", _runs_context(request, dataset))


@require_GET
@member_required("datasets.read")
def run_detail(request: HttpRequest, dataset_id: int, run_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    run = _run(request, dataset, run_id)
    data = _row(run)
    for segment in data["segments"]:
        segment["rate_text"] = _pct(segment["pass_rate"])
        segment["interval_text"] = f"{_pct(segment['low'])} to {_pct(segment['high'])}"
    results = list(selectors_runs.dataset_run_results(run=run).order_by("id")[:RESULTS_SHOWN])
    earlier = (
        selectors_runs.dataset_run_list(
            organization=request.membership.organization,  # type: ignore[attr-defined]
            dataset=dataset,
        )
        .exclude(pk=run.pk)
        .order_by("-id")[:20]
    )
    return render(
        request,
        "evaluation/runs/detail.html",
        {
            "dataset": dataset,
            "run": data,
            "needed": data["needed_items"] or {},
            "critical_lower_text": _pct(data["critical_lower"]),
            "upper_text": _pct(data["wilson_upper"]),
            "results": results,
            "results_total": run.item_count - len(data["missing"]),
            "results_shown": RESULTS_SHOWN,
            "others": earlier,
        },
    )


@require_GET
@member_required("datasets.read")
def run_compare(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """`?a=<run id>&b=<run id>`: `a` the baseline, `b` the candidate."""
    dataset = _dataset(request, dataset_id)
    try:
        a = validation.parse_int(request.GET.get("a"), field="a", min=validation.ID_MIN, max=validation.ID_MAX)
        b = validation.parse_int(request.GET.get("b"), field="b", min=validation.ID_MIN, max=validation.ID_MAX)
    except validation.InputError:
        return HttpResponseBadRequest("Choose two runs (a and b) by id.")
    run_a = _run(request, dataset, a)
    run_b = _run(request, dataset, b)
    comparison = selectors_runs.dataset_run_compare(run_a=run_a, run_b=run_b, limit=CHANGES_SHOWN)
    for item in comparison["items"]:
        item["label"] = item["change"].replace("_", " ")
    return render(
        request,
        "evaluation/runs/compare.html",
        {"dataset": dataset, "a": _row(run_a), "b": _row(run_b), "comparison": comparison},
    )


@require_GET
@member_required("datasets.read")
def run_compare_previous(request: HttpRequest, dataset_id: int, run_id: int) -> HttpResponse:
    """A run against the run before it of the same dataset version (the common question)."""
    dataset = _dataset(request, dataset_id)
    run = _run(request, dataset, run_id)
    previous = (
        selectors_runs.dataset_run_list(
            organization=request.membership.organization,  # type: ignore[attr-defined]
            dataset=dataset,
            version=run.version,
        )
        .filter(pk__lt=run.pk)
        .order_by("-id")
        .first()
    )
    if previous is None:
        raise Http404("No earlier run of this version.")
    url = reverse("evaluation:dataset-run-compare", kwargs={"dataset_id": dataset.pk})
    return HttpResponseRedirect(f"{url}?a={previous.pk}&b={run.pk}")
