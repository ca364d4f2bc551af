"""Golden dataset pages, under /evaluation/datasets/ (engineers and admins: `datasets.read` to
look, `datasets.write` to change). Every change is a plain form POST to one of the views below,
which calls the same service as the API and redirects back with a message: no script, so the
strict CSP holds.

The labeling review page links to `dataset_add_item` with `?queue_item=` (labeling may not
import evaluation): the page lists the item's project's datasets to add it to.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evaluation import selectors_datasets as selectors
from evaluation import services_datasets as services
from evaluation.models import Dataset, DatasetItem, GateMode, Split
from labeling import selectors as labeling_selectors
from reviewapp import selectors as core_selectors
from reviewapp import validation
from reviewapp.decorators import member_required
from reviewapp.errors import ApplicationError, NotFound
from reviewapp.models import Organization
from reviewapp.principal import CAPABILITIES

READ = "datasets.read"
WRITE = "datasets.write"
ITEMS_PER_PAGE = 50
# Tags typed into one box, comma-separated (the service bounds them).
TAGS_INPUT_MAX_CHARS = 2_000


def _organization(request: HttpRequest) -> Organization:
    return request.membership.organization  # type: ignore[attr-defined]


def _can_write(request: HttpRequest) -> bool:
    return WRITE in CAPABILITIES.get(request.membership.role, frozenset())  # type: ignore[attr-defined]


def _dataset(request: HttpRequest, dataset_id: int) -> Dataset:
    try:
        return selectors.dataset_get(organization=_organization(request), dataset_id=dataset_id)
    except NotFound:
        raise Http404("No such dataset.") from None


def _item(dataset: Dataset, item_id: int) -> DatasetItem:
    try:
        return selectors.dataset_item_get(dataset=dataset, item_id=item_id)
    except NotFound:
        raise Http404("No such item.") from None


def _tags(text: str) -> list[str]:
    if len(text) > TAGS_INPUT_MAX_CHARS:
        raise validation.InputError(f"At most {TAGS_INPUT_MAX_CHARS} characters of tags.", "tags")
    return [t.strip() for t in text.split(",") if t.strip()]


def _error_text(exc: ApplicationError) -> str:
    detail = "; ".join(f"{field}: {', '.join(map(str, errs))}" for field, errs in exc.errors.items())
    return f"{exc.message} {detail}".strip()


def _back(dataset: Dataset) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("evaluation:dataset", args=[dataset.pk]))


@require_http_methods(["GET", "POST"])
@member_required(READ)
def dataset_list(request: HttpRequest) -> HttpResponse:
    """The datasets of a project, and (for writers) a form to create one."""
    organization = _organization(request)
    projects = list(core_selectors.project_list(organization=organization))
    slug = request.GET.get("project") or request.POST.get("project")
    project = next((p for p in projects if p.slug == slug), None) if slug else (projects[0] if projects else None)
    if slug and project is None:
        raise Http404("No such project.")
    if request.method == "POST":
        if not _can_write(request):
            return HttpResponse("Your role may not create datasets.", status=403)
        if project is None:
            raise Http404("No such project.")
        values: dict[str, Any] = {
            "name": request.POST.get("name", ""),
            "description": request.POST.get("description", ""),
        }
        try:
            dataset = services.dataset_create(project=project, values=values, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, _error_text(exc))
            return HttpResponseRedirect(f"{reverse('evaluation:datasets')}?{urlencode({'project': project.slug})}")
        messages.success(request, f"Created {dataset.name}.")
        return _back(dataset)
    datasets = list(selectors.dataset_list(organization=organization, project=project)) if project else []
    return render(
        request,
        "evaluation/datasets/list.html",
        {"projects": projects, "project": project, "datasets": datasets, "can_write": _can_write(request)},
    )


@require_GET
@member_required(READ)
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    page = Paginator(selectors.dataset_item_list(dataset=dataset), ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    versions = list(selectors.dataset_version_list(dataset=dataset))
    return render(
        request,
        "evaluation/datasets/detail.html",
        {
            "dataset": dataset,
            "page": page,
            "versions": versions,
            "splits": Split.values,
            "gate_modes": GateMode.choices,
            "can_write": _can_write(request),
        },
    )


@require_POST
@member_required(WRITE)
def dataset_settings(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    values: dict[str, Any] = {"name": request.POST.get("name", ""), "description": request.POST.get("description", "")}
    try:
        for name in ("gate_pass_rate", "gate_critical_pass_rate"):
            values[name] = float(request.POST.get(name, ""))
    except ValueError:
        messages.error(request, "Thresholds are numbers from 0 to 1.")
        return _back(dataset)
    values["gate_mode"] = request.POST.get("gate_mode", "")
    values["gate_require_not_worse"] = request.POST.get("gate_require_not_worse") == "on"
    try:
        services.dataset_update(dataset=dataset, values=values)
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
        return _back(dataset)
    messages.success(request, "Saved.")
    return _back(dataset)


@require_POST
@member_required(WRITE)
def dataset_item_edit(request: HttpRequest, dataset_id: int, item_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    item = _item(dataset, item_id)
    try:
        services.dataset_item_update(
            item=item,
            values={
                "critical": request.POST.get("critical") == "on",
                "tags": _tags(request.POST.get("tags", "")),
                "split": request.POST.get("split", item.split),
            },
        )
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
        return _back(dataset)
    messages.success(request, f"Saved item {item.key}.")
    return _back(dataset)


@require_POST
@member_required(WRITE)
def dataset_item_remove(request: HttpRequest, dataset_id: int, item_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    item = _item(dataset, item_id)
    services.dataset_item_remove(item=item)
    messages.success(request, f"Removed item {item.key}; frozen versions keep it.")
    return _back(dataset)


@require_POST
@member_required(WRITE)
def dataset_freeze(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    try:
        version = services.dataset_version_freeze(
            dataset=dataset, note=request.POST.get("note", ""), actor=request.user
        )
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
        return _back(dataset)
    messages.success(request, f"Froze version {version.number} ({version.item_count} items).")
    return _back(dataset)


@require_POST
@member_required(WRITE)
def dataset_version_tags(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    try:
        version = selectors.dataset_version_get(dataset=dataset, number=number)
        services.dataset_version_tag(version=version, tags=_tags(request.POST.get("tags", "")), replace=True)
    except NotFound:
        raise Http404("No such version.") from None
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
        return _back(dataset)
    messages.success(request, f"Tagged version {number}.")
    return _back(dataset)


@require_POST
@member_required(WRITE)
def dataset_promote(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    result = services.dataset_promote(dataset=dataset, actor=request.user)
    messages.success(
        request,
        f"Rules matched {result.matched} final items: {len(result.added)} added, {result.existing} already there.",
    )
    return _back(dataset)


def _number(value: str | None, *, high: int = validation.POSITIVE[1]) -> int | None:
    try:
        return validation.parse_int(value, field="number", min=1, max=high)
    except ApplicationError:
        return None


@require_GET
@member_required(READ)
def dataset_compare(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """`?a=1&b=2`: the items added, removed and changed from version a to version b."""
    dataset = _dataset(request, dataset_id)
    a, b = _number(request.GET.get("a")), _number(request.GET.get("b"))
    if a is None or b is None:
        raise Http404("Name two versions.")
    try:
        va = selectors.dataset_version_get(dataset=dataset, number=a)
        vb = selectors.dataset_version_get(dataset=dataset, number=b)
    except NotFound:
        raise Http404("No such version.") from None
    return render(
        request,
        "evaluation/datasets/compare.html",
        {"dataset": dataset, "a": va, "b": vb, "diff": selectors.dataset_version_compare(a=va, b=vb)},
    )


@require_http_methods(["GET", "POST"])
@member_required(WRITE)
def dataset_add_item(request: HttpRequest) -> HttpResponse:
    """Add one final queue item (`?queue_item=`) to a dataset of its project: the labeling
    review page links here."""
    organization = _organization(request)
    raw = request.GET.get("queue_item") or request.POST.get("queue_item")
    try:
        item_id = validation.parse_int(raw, field="queue_item", min=validation.ID_MIN, max=validation.ID_MAX)
        queue_item = labeling_selectors.item_get(organization=organization, item_id=item_id)
    except ApplicationError:
        raise Http404("No such item.") from None
    datasets = list(selectors.dataset_list(organization=organization, project=queue_item.queue.project))
    if request.method == "POST":
        chosen = _number(request.POST.get("dataset"), high=validation.ID_MAX)
        dataset = next((d for d in datasets if d.pk == chosen), None)
        if dataset is None:
            raise Http404("No such dataset.")
        try:
            entry = services.ItemEntry(
                queue_item=queue_item.pk,
                critical=request.POST.get("critical") == "on",
                tags=_tags(request.POST.get("tags", "")),
            )
            result = services.dataset_items_add(dataset=dataset, entries=[entry], actor=request.user)
        except ApplicationError as exc:
            messages.error(request, _error_text(exc))
            return HttpResponseRedirect(
                f"{reverse('evaluation:dataset-add-item')}?{urlencode({'queue_item': queue_item.pk})}"
            )
        messages.success(request, "Added." if result.added else "Already in this dataset: not added twice.")
        return _back(dataset)
    return render(
        request,
        "evaluation/datasets/add_item.html",
        {"queue_item": queue_item, "datasets": datasets, "final": queue_item.final_answers is not None},
    )
