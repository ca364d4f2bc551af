"""Which organization a signed-in browser user is working in, the security headers, and JSON
errors under /api/."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.functional import SimpleLazyObject

logger = logging.getLogger(__name__)
View = Callable[..., HttpResponse]
# Responses under the API are one caller's data (the token endpoint's holds a secret): never cached.
PRIVATE_API_PREFIX = "/api/v1/"

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
            request.path.startswith(PRIVATE_API_PREFIX)
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


API_PREFIX = "/api/"
_STATUS_MESSAGES = {
    400: "Bad request.",
    403: "Forbidden.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    500: "Internal server error.",
}


def _api_error(status: int, message: str | None = None) -> HttpResponse:
    return JsonResponse({"message": message or _STATUS_MESSAGES.get(status, "Error."), "errors": {}}, status=status)


class ApiErrorMiddleware:
    """Under /api/ every answer is JSON in the API's one error shape, whatever produced it:
    an unknown route (404), a method a plain Django view does not take (405), a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE (413), an unhandled exception (500, logged). DRF views answer
    their own errors; this catches what happens around and below them. Other paths keep
    Django's HTML pages. Goes first in MIDDLEWARE so it sees every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = request.META.get("CONTENT_LENGTH") or ""
        if limit is not None and length.isascii() and length.isdecimal() and int(length) > limit:
            return _api_error(413, f"Request body is over the {limit}-byte limit.")
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            # Django's own error pages (404 from the resolver, 405 from require_http_methods,
            # 400 from a too-big form body, 500 from a crash in a middleware).
            original = response
            response = _api_error(original.status_code)
            # Keep what the inner middleware decided (security headers, never cached) and 405's Allow.
            for header in ("Allow", "Cache-Control", "Expires", "Content-Security-Policy"):
                if header in original:
                    response[header] = original[header]
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return _api_error(413)
        if isinstance(exception, Http404):
            return _api_error(404)
        if isinstance(exception, PermissionDenied):
            return _api_error(403)
        if isinstance(exception, SuspiciousOperation | BadRequest):
            return _api_error(400)
        logger.error("Unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return _api_error(500)
