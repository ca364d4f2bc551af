"""Role checks. A view names the capability it needs; the role table is in principal.py.

Deny by default: a view must declare `required_capability`, either one capability for every
method it implements or a dict naming each implemented method. A method the dict leaves out is
refused (403), never let through. HEAD is answered by the GET handler, so it needs what GET
needs; OPTIONS describes the view, so it needs what at least one of the view's methods needs.
A method the view does not implement passes here and is answered 405 by the view.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from reviewapp.principal import Principal

# `required_capability = ANY_MEMBER`: any authenticated caller of the organization, whatever
# their role (who am I, log out this token). Spelled out so that an open view is a decision.
ANY_MEMBER = "any member"

_UNSET = object()


def implemented_methods(view: Any) -> list[str]:
    """The HTTP methods with a handler on `view` other than HEAD and OPTIONS (which follow GET
    and the other methods), upper case."""
    return [
        m.upper() for m in view.http_method_names if m not in ("head", "options") and callable(getattr(view, m, None))
    ]


def capability_for(view: Any, method: str) -> str | None:
    """The capability `method` needs on `view`; None when nothing may call it."""
    needed = getattr(view, "required_capability", _UNSET)
    if needed is _UNSET or needed is None:
        return None
    if method == "HEAD":
        method = "GET"
    if isinstance(needed, dict):
        return needed.get(method)
    return needed


class IsOrganizationMember(BasePermission):
    """Authenticated through a bearer token and holding the capability the view names for the
    request's method."""

    message = "Your role may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False
        method = (request.method or "").upper()
        if method == "OPTIONS":
            wanted = [capability_for(view, m) for m in implemented_methods(view)]
        elif ("GET" if method == "HEAD" else method) in implemented_methods(view):
            wanted = [capability_for(view, method)]
        else:
            return True  # no handler: the view answers 405
        return any(c is not None and (c == ANY_MEMBER or principal.can(c)) for c in wanted)


def principal_of(request: Request) -> Principal:
    """The caller of an API view guarded by IsOrganizationMember (which set request.auth)."""
    assert isinstance(request.auth, Principal)
    return request.auth
