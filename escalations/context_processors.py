"""`approvals_inbox` for every page: how many actions wait for the signed-in person's decision,
shown in the navigation bar. Lazy: a page that does not show it (or a person whose role does
not decide) costs no query; one that does costs one (selectors_inbox.inbox_summary), shared
with the inbox and action pages when they computed it already."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.http import HttpRequest

from escalations import selectors_inbox
from escalations.selectors_inbox import InboxSummary
from reviewapp.principal import CAPABILITIES, Principal


def request_inbox_summary(request: HttpRequest, principal: Principal) -> InboxSummary:
    """The person's inbox summary, computed once per request: the inbox and action pages and
    the navigation bar's count share it."""
    summary = getattr(request, "approvals_summary", None)
    if summary is None:
        summary = selectors_inbox.inbox_summary(principal)
        request.approvals_summary = summary  # type: ignore[attr-defined]
    return summary


class InboxBadge:
    def __init__(self, request: HttpRequest):
        self.request = request

    @cached_property
    def count(self) -> int:
        membership = self.request.membership  # type: ignore[attr-defined]
        principal = Principal(organization=membership.organization, role=membership.role, user=self.request.user)
        return request_inbox_summary(self.request, principal).total


def inbox(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    membership = getattr(request, "membership", None)
    if user is None or not user.is_authenticated or not membership:
        return {"approvals_inbox": None}
    if "actions.decide" not in CAPABILITIES.get(membership.role, frozenset()):
        return {"approvals_inbox": None}
    return {"approvals_inbox": InboxBadge(request)}
