"""Which organization a signed-in browser user is working in, and the security headers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.functional import SimpleLazyObject

View = Callable[..., HttpResponse]
API_PREFIX = "/api/v1/"

SESSION_KEY = "organization_id"


def _resolve(request: HttpRequest):  # -> Membership | None
    from reviewapp.selectors import membership_list_for_user

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    memberships = list(membership_list_for_user(user=user))
    if not memberships:
        return None
    wanted = request.session.get(SESSION_KEY)
    for membership in memberships:
        if membership.organization_id == wanted:
            return membership
    return memberships[0]


class CurrentOrganizationMiddleware:
    """Sets `request.membership` (lazily: pages that never look pay no query), from which
    `request.organization` and the role follow. The session remembers the switcher's choice."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = SimpleLazyObject(lambda: _resolve(request))  # type: ignore[attr-defined]
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Headers every response gets.

    - Content-Security-Policy from settings, unless the view set its own (the API docs pages).
    - Pages for a signed-in person and API responses (each is one caller's data, and the token
      endpoint answers with a secret) are never stored by a shared cache or left in the
      browser's cache for the next person at that computer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        user = getattr(request, "user", None)
        if (
            request.path.startswith(API_PREFIX)
            or "HTTP_AUTHORIZATION" in request.META
            or (user is not None and user.is_authenticated)
        ):
            if "Cache-Control" in response:
                patch_cache_control(response, private=True)
            else:
                add_never_cache_headers(response)
        return response


def content_security_policy(policy: str) -> Callable[[View], View]:
    """Give one view its own policy instead of the site's."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = policy
            return response

        return wrapper

    return decorator
