"""Telling approvers an action entered their tier: inbox, e-mail, the ladder's webhook.

- The inbox count is read live by the inbox's selector: nothing to record here.
- E-mail, one message per person who may decide at the tier, through Django's e-mail backend
  (the console by default), sent by a task enqueued after commit. It is best effort: the
  inbox is the record of what waits, so a message lost with the broker is not re-sent, and a
  task that runs after the action moved on (decided, or climbed a tier) sends nothing.
- The ladder's `notify_webhook_url`, if set: a delivery (outbox row, retried like decisions)
  whose body, `{"text": ...}`, a Slack or Microsoft Teams incoming webhook accepts as is.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from escalations import policies, selectors_webhooks
from escalations.models import Action, ActionEvent, ActionStatus
from escalations.services import webhooks
from reviewapp import enqueue

if TYPE_CHECKING:
    from escalations.models import LadderVersion

logger = logging.getLogger(__name__)

# Agent-supplied text in a subject line or chat message is cut short: a notification points to
# the action page, where everything is shown in full (and escaped).
_NAME_LIMIT = 100


def action_url(action_id: int) -> str:
    """The approver's page of an action (escalations' action page), absolute: e-mails and chat
    messages are read away from the app."""
    return f"{settings.SITE_URL}/escalations/actions/{int(action_id)}/"


def _tiers(ladder: LadderVersion | None) -> tuple[policies.Tier, ...]:
    if ladder is None:
        return ()
    return policies.ladder_from_json({"name": ladder.name, "tiers": ladder.tiers}).tiers


def _tier_of(ladder: LadderVersion | None, tier: int | None) -> policies.Tier | None:
    tiers = _tiers(ladder)
    return tiers[tier] if tier is not None and 0 <= tier < len(tiers) else None


def _one_line(text: str, limit: int = _NAME_LIMIT) -> str:
    """Control characters (line breaks: header injection, fake lines in a message) become
    spaces; long text is cut with an ellipsis."""
    flat = "".join(" " if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029") else c for c in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _due_text(due_at: dt.datetime | None, time_zone: str) -> str:
    if due_at is None:
        return "no due time"
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    local = due_at.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {zone.key}"


def slack_escape(text: str) -> str:
    """Slack's three control characters in message text. Unescaped, `<!channel>` pings a whole
    channel and `<https://evil|Approve here>` is a disguised link (Slack's documented rule)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_text(action: Action) -> str:
    """The tier notification for a chat webhook: who the action is, where it waits, by when,
    and the link. Agent and admin text is one line, shortened and escaped."""
    ladder = action.ladder
    tiers = _tiers(ladder)
    name = slack_escape(_one_line(action.action))
    project = slack_escape(_one_line(action.project.name))
    ladder_name = slack_escape(_one_line(ladder.name if ladder is not None else ""))
    tier_no = (action.tier or 0) + 1
    due = _due_text(action.due_at, action.project.timezone)
    return (
        f"Approval needed: {name} in {project} (ladder {ladder_name}, tier {tier_no} of {len(tiers)}), "
        f"due {due}. {action_url(action.pk)}"
    )


def tier_entered_notify(*, action: Action) -> None:
    """`action` entered `action.tier` in this transaction: e-mail that tier's people after
    commit, and record the ladder's chat notification (sent after commit)."""
    if action.tier is None:
        return
    from escalations import tasks_webhooks

    enqueue.delay_on_commit(tasks_webhooks.tier_emails_send, action.pk, action.tier)
    ladder = action.ladder
    if ladder is not None and ladder.notify_webhook_url:
        webhooks.tier_notification_delivery_record(action=action, url=ladder.notify_webhook_url, text=chat_text(action))


def _email_for(action: Action, tier: policies.Tier, user: Any) -> EmailMessage:
    project = action.project
    ladder = action.ladder
    tiers = _tiers(ladder)
    due = _due_text(action.due_at, project.timezone)
    name = _one_line(action.action)
    who = f"role {tier.role}" if tier.role else "named approvers"
    where = f"{_one_line(ladder.name if ladder else '')}, tier {(action.tier or 0) + 1} of {len(tiers)} ({who})"
    lines = [
        f"Hello {user.get_username()},",
        "",
        "An agent's action is waiting for a decision you may make.",
        "",
        f"Action:      {name}",
        f"Project:     {_one_line(project.name)}",
        f"Ladder:      {where}",
        f"Confidence:  {action.confidence:.2f}" if action.confidence is not None else "Confidence:  not given",
        f"Due:         {due}",
        "",
        f"Open it: {action_url(action.pk)}",
        "",
        "If nobody decides by then, it moves to the next tier (or is rejected after the last).",
    ]
    return EmailMessage(
        subject=f"[{_one_line(project.name, 60)}] Approval needed: {name}, due {due}",
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )


def tier_emails_send(*, action_id: int, tier: int) -> int:
    """Send one e-mail per person who may decide at `tier` of the action, if it still waits
    there; returns how many were sent (0 when it moved on)."""
    action = (
        Action.objects.select_related("ladder", "project")
        .filter(pk=action_id, status=ActionStatus.PENDING, tier=tier)
        .first()
    )
    spec = _tier_of(action.ladder, tier) if action is not None else None
    if action is None or spec is None:
        return 0
    people = selectors_webhooks.tier_recipients(organization=action.organization_id, tier=spec)
    if not people:
        return 0
    messages = [_email_for(action, spec, user) for user in people]
    # One connection for the batch; one message per person, so nobody sees who else was told.
    sent = get_connection().send_messages(messages) or 0
    ActionEvent.objects.create(
        organization_id=action.organization_id,
        action=action,
        kind="tier_notified",
        data={"tier": tier, "channel": "email", "recipients": sent},
    )
    return sent
