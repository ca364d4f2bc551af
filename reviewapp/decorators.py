"""Access checks for browser pages, shared by every app's views (they import this module,
never another app's `views`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render

from reviewapp.principal import CAPABILITIES

View = Callable[..., HttpResponse]


def member_required(capability: str | None = None) -> Callable[[View], View]:
    """Signed in, a member of the current organization, and (optionally) holding a capability."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = request.membership  # type: ignore[attr-defined]
            if not membership:
                return render(request, "reviewapp/no_membership.html", status=403)
            if capability and capability not in CAPABILITIES.get(membership.role, frozenset()):
                return HttpResponseForbidden("Your role may not open this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
