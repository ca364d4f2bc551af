"""Helpers the labeling services share: users, item events, the other leases of an item,
the roles of a conversation's messages (for `turn` answers)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser

from labeling import rubric
from labeling.models import Assignment, AssignmentStatus, ItemEvent, QueueItem
from reviewapp.models import Conversation

if TYPE_CHECKING:
    from labeling.services.gold import GoldItemIn


def _release_other_leases(item: QueueItem, now: dt.datetime) -> None:
    # leased_count counts the item's active leases (kept under the item lock), so with none
    # left there is nothing to release and no statement to send.
    if item.leased_count > 0:
        Assignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).update(
            status=AssignmentStatus.EXPIRED, finished_at=now
        )
    item.leased_count = 0


def _turn_roles(questions: list[rubric.Question], item: QueueItem | GoldItemIn) -> list[str] | None:
    """The role of each message of the item's conversation, for checking `turn` answers; None
    (nothing to check, no query) when the rubric has no turn question."""
    if not _has_turns(questions):
        return None
    if isinstance(item, QueueItem) and QueueItem.conversation.is_cached(item):
        messages = item.conversation.messages
    else:
        messages = Conversation.objects.filter(pk=item.conversation_id).values_list("messages", flat=True).first()
    return _roles_of(messages)


def _has_turns(questions: list[rubric.Question]) -> bool:
    return any(q.type == "turn" for q in questions)


def _roles_of(messages: Any) -> list[str]:
    return [str(m.get("role", "")) if isinstance(m, dict) else "" for m in messages or []]


def _event(
    item: QueueItem,
    user: AbstractBaseUser | None,
    kind: str,
    data: dict[str, Any],
    *,
    into: list[ItemEvent] | None = None,
) -> None:
    """Record an event now, or add it to `into` for the caller to write in one statement."""
    event = ItemEvent(organization_id=item.organization_id, item=item, user=_user(user), kind=kind, data=data)
    if into is None:
        event.save()
    else:
        into.append(event)


def _event_row(event: ItemEvent, now: dt.datetime) -> dict[str, Any]:
    return {
        "organization_id": event.organization_id,
        "item_id": event.item_id,
        "user_id": event.user_id,
        "kind": event.kind,
        "data": event.data,
        "created_at": now,
    }


def _user(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return user if user is not None and getattr(user, "pk", None) else None
