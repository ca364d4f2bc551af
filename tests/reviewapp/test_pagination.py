"""The one tamper-safe id cursor pagination the API's lists share (reviewapp/pagination.py):
its orders and page sizes, and a tampered cursor as a 400 naming `cursor`."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from reviewapp.models import Conversation
from reviewapp.pagination import IdCursorPagination
from reviewapp.validation import InputError
from tests.factories import ConversationFactory


def _request(**query: str) -> Request:
    return Request(APIRequestFactory().get("/api/v1/things", query))


def _page(paginator: IdCursorPagination, **query: str) -> list[int]:
    page = paginator.paginate_queryset(Conversation.objects.all(), _request(**query))
    return [c.pk for c in page or []]


def test_newest_first_by_default_then_follow_next(project):
    ids = [ConversationFactory(project=project).pk for _ in range(5)]
    paginator = IdCursorPagination()

    first = _page(paginator, limit="2")
    cursor = parse_qs(urlparse(paginator.get_next_link()).query)["cursor"][0]
    second = _page(IdCursorPagination(), limit="2", cursor=cursor)

    assert first == ids[::-1][:2]
    assert second == ids[::-1][2:4]


def test_in_order_with_its_own_sizes(project):
    ids = [ConversationFactory(project=project).pk for _ in range(4)]

    assert _page(IdCursorPagination(ordering="id", page_size=3)) == ids[:3]
    assert _page(IdCursorPagination(ordering="id", max_page_size=2), limit="500") == ids[:2]


def test_only_an_id_order():
    with pytest.raises(ValueError, match="orders by id"):
        IdCursorPagination(ordering="-occurred_at")


@pytest.mark.parametrize(
    "cursor",
    [
        base64.b64encode(b"p=abc").decode(),
        base64.b64encode("p=²".encode()).decode(),
        base64.b64encode(b"p=" + b"9" * 30).decode(),
        "bm9wZQ",
        "not base64 at all",
    ],
)
def test_a_tampered_cursor_is_a_400_naming_cursor(db, cursor):
    with pytest.raises(InputError) as refused:
        _page(IdCursorPagination(), cursor=cursor)
    assert refused.value.status_code == 400
    assert list(refused.value.errors) == ["cursor"]
