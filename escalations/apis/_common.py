"""Plumbing the escalations API views share."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from reviewapp import services as core_services
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project
from reviewapp.principal import Principal


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
