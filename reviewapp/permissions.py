"""Role checks. A view names the capability it needs; the role table is in principal.py."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from reviewapp.principal import Principal


class IsOrganizationMember(BasePermission):
    """Authenticated through a bearer token and, if the view names one, holding its
    `required_capability` (a dict per HTTP method is allowed too)."""

    message = "Your role may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False
        needed = getattr(view, "required_capability", None)
        if isinstance(needed, dict):
            needed = needed.get(request.method)
        return needed is None or principal.can(needed)
