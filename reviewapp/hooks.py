"""Where the core tells later capabilities that something happened, or asks them for something.

The core imports no other app (docs/architecture.md, "Import rules"); they register a receiver
here at app start-up instead (explicit function calls, not Django signals, so the call graph stays greppable
and behaviour never depends on import order at request time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpRequest, HttpResponse

    from reviewapp.models import Conversation, Organization, Project

ConversationsCreated = Callable[..., None]
BannerLines = Callable[[], list[str]]
LongPollMatch = Callable[[str, str, bytes], bool]
LongPollServe = Callable[["HttpRequest"], Awaitable["HttpResponse"]]
_conversations_created: list[ConversationsCreated] = []
_conversations_changed: list[ConversationsCreated] = []
_serve_banner: list[BannerLines] = []
_long_poll: list[tuple[LongPollMatch, LongPollServe]] = []
ItemsFinalized = Callable[..., None]
ActionDecided = Callable[..., None]
ActionFacts = Callable[[list[int]], list[dict[str, Any]]]
_items_finalized: list[ItemsFinalized] = []
_action_decided: list[ActionDecided] = []
_action_facts: list[ActionFacts] = []


def on_conversations_created(receiver: ConversationsCreated) -> ConversationsCreated:
    if receiver not in _conversations_created:
        _conversations_created.append(receiver)
    return receiver


def on_conversations_changed(receiver: ConversationsCreated) -> ConversationsCreated:
    if receiver not in _conversations_changed:
        _conversations_changed.append(receiver)
    return receiver


def conversations_created(*, project: Project, conversation_ids: list[int]) -> None:
    """Called inside the ingest transaction. Receivers record the work they owe in that same
    transaction (an outbox row) and enqueue it with transaction.on_commit."""
    for receiver in _conversations_created:
        receiver(project=project, conversation_ids=conversation_ids)


def conversations_changed(*, project: Project, conversation_ids: list[int]) -> None:
    """Stored conversations gained signals (judge scores, feedback) after they arrived; called
    inside the transaction that stored the signals, like conversations_created."""
    for receiver in _conversations_changed:
        receiver(project=project, conversation_ids=conversation_ids)


def on_serve_banner(provider: BannerLines) -> BannerLines:
    """`provider()` returns lines for the banner `serve` and `devserver` print at start-up (the
    demo app's logins), or none."""
    if provider not in _serve_banner:
        _serve_banner.append(provider)
    return provider


def serve_banner_lines() -> list[str]:
    return [line for provider in _serve_banner for line in provider()]


def on_long_poll(matches: LongPollMatch, serve: LongPollServe) -> None:
    """Requests for which `matches(method, path, query_string)` is true wait a long time (an
    agent waiting for a decision): reviewapp/asgi.py hands them to `serve(request)`, an async
    function that answers them without Django's middleware chain (whose sync middleware would
    hold a thread for the whole wait) and without a per-request thread. `matches` runs on every
    ASGI request before Django builds it: keep it cheap."""
    if (matches, serve) not in _long_poll:
        _long_poll.append((matches, serve))


def long_poll_serve(method: str, path: str, query_string: bytes) -> LongPollServe | None:
    for matches, serve in _long_poll:
        if matches(method, path, query_string):
            return serve
    return None


def on_items_finalized(receiver: ItemsFinalized) -> ItemsFinalized:
    if receiver not in _items_finalized:
        _items_finalized.append(receiver)
    return receiver


def items_finalized(*, item_ids: list[int]) -> None:
    """Labeling items whose final answer was just set, changed or withdrawn (completed,
    reviewed, or reopened by an edit), called inside the transaction that changed them.
    Receivers enqueue their work with transaction.on_commit and must not query: the label
    path's statement count is pinned."""
    for receiver in _items_finalized:
        receiver(item_ids=item_ids)


def on_action_decided(receiver: ActionDecided) -> ActionDecided:
    if receiver not in _action_decided:
        _action_decided.append(receiver)
    return receiver


def action_decided(*, action_id: int) -> None:
    """An escalated action was decided (by whoever), inside the deciding transaction."""
    for receiver in _action_decided:
        receiver(action_id=action_id)


def on_action_facts(provider: ActionFacts) -> ActionFacts:
    """`provider(action_ids)` returns, for the decided actions among them, dicts with `id`,
    `organization_id`, `project_id`, `conversation_id`, `action`, `confidence`, `status`,
    `decided_by`, `decided_at`, `agent_version` (the escalations app owns that table; apps
    that may not import it read it through here)."""
    if provider not in _action_facts:
        _action_facts.append(provider)
    return provider


def action_facts(action_ids: list[int]) -> list[dict[str, Any]]:
    return [row for provider in _action_facts for row in provider(action_ids)]


# --- conversation search filters and conversation page panels ----------------------------------

ConversationCondition = Callable[[], "QuerySet[Any]"]
_conversation_conditions: dict[str, list[ConversationCondition]] = {}


def on_conversation_condition(name: str, provider: ConversationCondition) -> None:
    """`provider()` returns a queryset of rows related to a conversation through
    `OuterRef("pk")` (the outer query is over Conversation): the conversation list's filter
    `name` (`labeled`, `queued`) keeps conversations for which such a row exists. Apps the core
    may not import own the tables behind those filters."""
    providers = _conversation_conditions.setdefault(name, [])
    if provider not in providers:
        providers.append(provider)


def conversation_conditions(name: str) -> list[QuerySet[Any]]:
    return [provider() for provider in _conversation_conditions.get(name, [])]


@dataclass(frozen=True)
class Panel:
    """A section another app adds to the conversation page: `template` (that app's own) is
    rendered with `context` under the name `panel`. Lower `order` comes first."""

    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


ConversationPanels = Callable[..., list[Panel]]
_conversation_panels: list[ConversationPanels] = []


def on_conversation_panels(provider: ConversationPanels) -> ConversationPanels:
    """`provider(organization=..., conversation=..., role=...)` returns the panels it adds to
    the conversation page (none for a role that may not see them). Providers read through their
    own app's selectors, a bounded number of queries each."""
    if provider not in _conversation_panels:
        _conversation_panels.append(provider)
    return provider


def conversation_panels(*, organization: Organization, conversation: Conversation, role: str) -> list[Panel]:
    panels = [
        panel
        for provider in _conversation_panels
        for panel in provider(organization=organization, conversation=conversation, role=role)
    ]
    return sorted(panels, key=lambda panel: panel.order)
