"""Which organization a signed-in browser user is working in."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

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
