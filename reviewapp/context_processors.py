from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# Whether the system prompt starts open on labeling pages. Kept in the person's session, like the
# organization they work in: server-side, so a page renders it as they left it without a flash
# of the other state, and free, since every signed-in request reads the session already. A
# session belongs to one user (Django flushes it when another signs in); it is forgotten at
# sign-out, which brings back the default (collapsed).
SYSTEM_PROMPT_OPEN = "system_prompt_open"


def organization(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    if membership is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"current_membership": None}
    return {"current_membership": membership if membership else None}


def transcript(request: HttpRequest) -> dict[str, Any]:
    """`system_prompt_open`: the person's choice (reviewapp.views.system_prompt_preference)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"system_prompt_open": False}
    return {"system_prompt_open": bool(request.session.get(SYSTEM_PROMPT_OPEN, False))}
