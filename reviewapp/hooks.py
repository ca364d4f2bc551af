"""Where the core tells later capabilities that something happened, or asks them for something.

The core imports no other app (docs/architecture.md, "Import rules"); they register a receiver
here at app start-up instead (explicit function calls, not Django signals, so the call graph stays greppable
and behaviour never depends on import order at request time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from reviewapp.models import Project

ConversationsCreated = Callable[..., None]
BannerLines = Callable[[], list[str]]
LongPollMatch = Callable[[str, str, bytes], bool]
LongPollServe = Callable[["HttpRequest"], Awaitable["HttpResponse"]]
_conversations_created: list[ConversationsCreated] = []
_conversations_changed: list[ConversationsCreated] = []
_serve_banner: list[BannerLines] = []
_long_poll: list[tuple[LongPollMatch, LongPollServe]] = []


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
