"""Who may see what: the selectors' NotFound as a page's 404, and the caller's membership."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import Http404, HttpRequest

from labeling import selectors
from labeling.models import Queue, QueueItem
from reviewapp.errors import NotFound
from reviewapp.principal import CAPABILITIES

T = TypeVar("T")


def membership(request: HttpRequest) -> Any:
    return request.membership  # type: ignore[attr-defined]


def can_manage(request: HttpRequest) -> bool:
    return "labeling.manage" in CAPABILITIES.get(membership(request).role, frozenset())


def or_404(selector: Callable[..., T], **kwargs: Any) -> T:
    """The selectors raise NotFound for a missing or forbidden object (the API answers 404);
    pages turn it into Django's 404."""
    try:
        return selector(**kwargs)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def worker_queue(request: HttpRequest, queue_id: int) -> Queue:
    m = membership(request)
    return or_404(
        selectors.queue_get_for_worker, organization=m.organization, queue_id=queue_id, user=request.user, role=m.role
    )


def worker_item(request: HttpRequest, item_id: int) -> QueueItem:
    m = membership(request)
    return or_404(
        selectors.item_get_for_worker, organization=m.organization, item_id=item_id, user=request.user, role=m.role
    )


def managed_queue(request: HttpRequest, queue_id: int) -> Queue:
    return or_404(selectors.queue_get, organization=membership(request).organization, queue_id=queue_id)


def managed_item(request: HttpRequest, item_id: int) -> QueueItem:
    return or_404(selectors.item_get, organization=membership(request).organization, item_id=item_id)
