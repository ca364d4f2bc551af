"""The seams from the decision services: an approver's decision reaches the agent's callback,
signed; a timeout climb e-mails the next tier and tells the ladder's chat webhook."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail

from escalations import services, signing
from escalations.models import WebhookDelivery
from reviewapp.principal import Principal
from tests.escalations.factories_webhooks import make_ladder, make_pending_action
from tests.escalations.receiver import receiver
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _person(org, username, role):
    user = UserFactory(username=username, email=f"{username}@example.com")
    MembershipFactory(user=user, organization=org, role=role)
    return user


def test_an_approvers_decision_is_posted_to_the_callback(project, org, django_capture_on_commit_callbacks):
    admin = _person(org, "adam", "admin")
    secret = services.webhook_secret_create(
        principal=Principal(organization=org, role="admin", user=admin), project=project
    ).raw
    ann = _person(org, "ann", "approver")
    with receiver([200]) as r:
        action = make_pending_action(project, callback_url=r.url)
        with django_capture_on_commit_callbacks(execute=True):
            services.action_decide(
                principal=Principal(organization=org, role="approver", user=ann),
                action_id=action.pk,
                decision="reject",
                comment="Not <b>this</b> customer",
            )
        assert len(r.requests) == 1
    sent = r.requests[0]
    assert signing.verify(secret, sent.headers["x-reviewapp-signature"], sent.body)
    body = json.loads(sent.body)["action"]
    assert (body["id"], body["status"], body["decided_by"], body["comment"]) == (
        action.pk,
        "rejected",
        "ann",
        "Not <b>this</b> customer",
    )
    assert WebhookDelivery.objects.get(action=action).status == "delivered"


def test_a_timeout_climb_mails_the_next_tier_and_posts_to_the_chat(project, org, django_capture_on_commit_callbacks):
    _person(org, "ann", "approver")
    _person(org, "lead", "approver")
    with receiver([200]) as r:
        ladder = make_ladder(
            project,
            name="finance",
            notify_webhook_url=r.url,
            tiers=[
                {"role": "approver", "timeout_seconds": 900, "approvals_required": 1},
                {"users": ["lead"], "timeout_seconds": 3600, "approvals_required": 1},
            ],
        )
        action = make_pending_action(project, ladder=ladder)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.actions_timeout_sweep(now=action.due_at + dt.timedelta(seconds=1)) == 1
        assert len(r.requests) == 1
    assert [m.to for m in mail.outbox] == [["lead@example.com"]]
    text = json.loads(r.requests[0].body)["text"]
    assert "(ladder finance, tier 2 of 2)" in text and f"/escalations/actions/{action.pk}/" in text
