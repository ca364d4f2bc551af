"""Telling approvers an action entered their tier: inbox, e-mail, the ladder's webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from escalations.models import Action


def tier_entered_notify(*, action: Action) -> None:
    """Placeholder until the notification work lands: notifies nobody yet."""
