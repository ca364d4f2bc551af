"""Plumbing the escalations API views share."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from reviewapp import services as core_services
from reviewapp import validation
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project
from reviewapp.principal import Principal


class NewestFirstCursorPagination(CursorPagination):
    """Like the conversations list: newest first, `limit` up to 500, follow `next`."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def decode_cursor(self, request: Request) -> Cursor | None:
        """A tampered cursor is the client's error (400 naming `cursor`), never a 500: DRF hands
        the position to the ORM unchecked, and ours is an id."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise validation.InputError("Invalid cursor.", "cursor") from exc
        if cursor is not None and cursor.position is not None:
            validation.parse_int(cursor.position, field="cursor", min=validation.ID_MIN, max=validation.ID_MAX)
        return cursor


def body_of(request: Request) -> dict[str, Any]:
    return object_of(request.data)


def object_of(data: Any) -> dict[str, Any]:
    """A parsed body that must be a JSON object."""
    if not isinstance(data, dict):
        raise ValidationFailed("Send a JSON object.", errors={"body": ["Expected an object."]})
    return data


def project_slug(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 100:
        raise ValidationFailed("Unknown project.", errors={"project": ["Must be a project's slug."]})
    return value


def project_for(principal: Principal, slug: Any) -> Project:
    """The project a request is about: an agent key's own, or the one a person names."""
    return core_services.project_resolve(principal=principal, slug=project_slug(slug))
