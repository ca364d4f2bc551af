"""Entering a tier: one e-mail per person who may decide there (after commit), and the
ladder's chat webhook, whose body Slack and Teams accept as is."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import transaction

from escalations import services
from escalations.models import ActionEvent, WebhookDelivery
from escalations.services import notify
from escalations.services.notifications import chat_text, slack_escape
from tests.escalations.factories_webhooks import make_ladder, make_pending_action
from tests.escalations.receiver import receiver
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.SITE_URL = "https://review.example.com"


def _person(org, username, role, *, email=True, active=True):
    user = UserFactory(username=username, email=f"{username}@example.com" if email else "", is_active=active)
    MembershipFactory(user=user, organization=org, role=role)
    return user


def _enter(action, django_capture_on_commit_callbacks, *, run=True):
    with django_capture_on_commit_callbacks(execute=run) as callbacks, transaction.atomic():
        notify.action_tier_entered(action=action)
    return callbacks


@pytest.fixture
def people(org, other_org):
    return {
        "ann": _person(org, "ann", "approver"),
        "adam": _person(org, "adam", "admin"),
        "eve": _person(org, "eve", "engineer"),  # may not decide at all
        "noemail": _person(org, "noemail", "approver", email=False),
        "gone": _person(org, "gone", "approver", active=False),
        "lead": _person(org, "lead", "approver"),
        "outsider": _person(other_org, "outsider", "approver"),
        "annotator": _person(org, "tom", "annotator"),
    }


def test_a_role_tier_mails_its_role_and_admins_once_each_after_commit(
    project, people, django_capture_on_commit_callbacks
):
    project.timezone = "Europe/Paris"
    project.save()
    action = make_pending_action(project, action="refund")
    callbacks = _enter(action, django_capture_on_commit_callbacks, run=False)
    assert mail.outbox == [] and len(callbacks) == 1  # nothing before commit
    callbacks[0]()
    assert sorted(m.to[0] for m in mail.outbox) == ["adam@example.com", "ann@example.com", "lead@example.com"]
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in mail.outbox)
    message = mail.outbox[0]
    due = action.due_at.astimezone(ZoneInfo("Europe/Paris"))
    assert message.subject == f"[Support agent] Approval needed: refund, due {due:%Y-%m-%d %H:%M} Europe/Paris"
    assert f"https://review.example.com/escalations/actions/{action.pk}/" in message.body
    assert "tier 1 of 1 (role approver)" in message.body and "Confidence:  0.62" in message.body
    event = ActionEvent.objects.get(action=action, kind="tier_notified")
    assert event.data == {"tier": 0, "channel": "email", "recipients": 3}


def test_a_users_tier_mails_only_the_named_deciders(project, people, django_capture_on_commit_callbacks):
    ladder = make_ladder(
        project,
        tiers=[
            {"role": "approver", "timeout_seconds": 900, "approvals_required": 1},
            {
                "users": ["lead", "eve", "outsider", "nobody"],
                "timeout_seconds": 3600,
                "approvals_required": 1,
            },
        ],
    )
    action = make_pending_action(project, ladder=ladder, tier=1)
    _enter(action, django_capture_on_commit_callbacks)
    # eve is an engineer (cannot decide), outsider is in another organization, nobody is nobody.
    assert [m.to for m in mail.outbox] == [["lead@example.com"]]
    assert "tier 2 of 2 (named approvers)" in mail.outbox[0].body


def test_no_mail_when_the_action_moved_on_before_the_task_ran(project, people, django_capture_on_commit_callbacks):
    action = make_pending_action(project)
    callbacks = _enter(action, django_capture_on_commit_callbacks, run=False)
    action.status = "approved"
    action.due_at = action.tier = None
    action.save()
    callbacks[0]()
    assert mail.outbox == []
    assert services.tier_emails_send(action_id=action.pk, tier=0) == 0


def test_hostile_action_names_cannot_inject_headers_or_lines(project, people, django_capture_on_commit_callbacks):
    project.name = "P" * 200
    project.save()
    action = make_pending_action(project, action="refund\r\nBcc: victim@example.com\nX: " + "y" * 50)
    _enter(action, django_capture_on_commit_callbacks)
    message = mail.outbox[0]
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.bcc == [] and len(mail.outbox) == 3
    rendered = message.message().as_string()
    assert "\nBcc:" not in rendered
    assert "Action:      refund Bcc: victim@example.com X: " + "y" * 50 in message.body
    # Long names are cut short in the subject; the action page shows everything.
    assert message.subject.startswith("[" + "P" * 59 + "…] Approval needed: refund Bcc:")


def test_the_ladder_webhook_gets_a_chat_message_with_the_link(project, people, django_capture_on_commit_callbacks):
    with receiver([200]) as r:
        ladder = make_ladder(project, name="finance", notify_webhook_url=r.url)
        action = make_pending_action(project, ladder=ladder, action="refund")
        _enter(action, django_capture_on_commit_callbacks)
        assert len(r.requests) == 1
    sent = r.requests[0]
    body = json.loads(sent.body)
    assert list(body) == ["text"]  # Slack and Teams refuse what they do not know
    assert body["text"].startswith("Approval needed: refund in Support agent (ladder finance, tier 1 of 1), due ")
    assert body["text"].endswith(f" https://review.example.com/escalations/actions/{action.pk}/")
    assert sent.headers["x-reviewapp-event"] == "action.tier_entered"
    # No project secret yet: a chat webhook checks none, so it goes unsigned.
    assert "x-reviewapp-signature" not in sent.headers
    delivery = WebhookDelivery.objects.get(action=action)
    assert (delivery.kind, delivery.status) == ("tier_notification", "delivered")


def test_a_chat_notification_is_never_signed_even_when_the_project_has_a_secret(
    project, org, people, django_capture_on_commit_callbacks
):
    """A chat service checks no signature, and its URL is shared with whoever runs the
    channel: signing with the decision-signing secret would hand them signatures made with it."""
    from reviewapp.principal import Principal

    admin = Principal(organization=org, role="admin", user=_person(org, "secret-admin", "admin"))
    services.webhook_secret_create(principal=admin, project=project)
    with receiver([200]) as r:
        ladder = make_ladder(project, name="finance", notify_webhook_url=r.url)
        _enter(make_pending_action(project, ladder=ladder), django_capture_on_commit_callbacks)
        assert len(r.requests) == 1
    sent = r.requests[0]
    assert "x-reviewapp-signature" not in sent.headers
    assert sent.headers["x-reviewapp-event"] == "action.tier_entered" and sent.headers["x-reviewapp-delivery"]


def test_chat_text_escapes_slacks_control_characters(project):
    ladder = make_ladder(project, name="a<b>&c", notify_webhook_url="https://hooks.slack.com/services/x")
    action = make_pending_action(project, ladder=ladder, action="<!channel> <https://evil.example|Approve> & co")
    text = chat_text(action)
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|Approve&gt; &amp; co" in text
    assert "ladder a&lt;b&gt;&amp;c" in text
    assert slack_escape("&lt;") == "&amp;lt;"  # already-escaped text stays literal


def test_no_ladder_webhook_no_delivery(project, people, django_capture_on_commit_callbacks):
    action = make_pending_action(project)
    _enter(action, django_capture_on_commit_callbacks)
    assert not WebhookDelivery.objects.exists()
    assert len(mail.outbox) == 3
