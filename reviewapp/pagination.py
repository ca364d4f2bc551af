"""Cursor pagination by id for the API's lists, tamper-safe: one class the apps share.

DRF's CursorPagination hands the position it decodes from `?cursor=` to the ORM unchecked;
a tampered cursor (not base64, a position that is no integer, or one past the column's range)
would be a 500 there. Here it is the client's error: a 400 naming `cursor`.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from reviewapp import validation


class IdCursorPagination(CursorPagination):
    """Pages ordered by id (`-id`: newest first; `id`: in the order added), `limit` up to
    `max_page_size`, follow `next` until it is null. Each list says its order and sizes when it
    makes one: `IdCursorPagination(ordering="id", page_size=100)`."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def __init__(self, *, ordering: str = "-id", page_size: int = 50, max_page_size: int = 500) -> None:
        if ordering not in ("id", "-id"):
            # The position is checked as an id below: any other ordering would need its own check.
            raise ValueError(f"IdCursorPagination orders by id, not {ordering!r}.")
        self.ordering = ordering
        self.page_size = page_size
        self.max_page_size = max_page_size

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise validation.InputError("Invalid cursor.", "cursor") from exc
        if cursor is not None and cursor.position is not None:
            validation.parse_int(cursor.position, field="cursor", min=validation.ID_MIN, max=validation.ID_MAX)
        return cursor


__all__ = ["IdCursorPagination"]
