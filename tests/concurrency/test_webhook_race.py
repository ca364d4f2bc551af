"""Webhooks under concurrency on PostgreSQL: two workers on one delivery, two admins creating
or rotating one project's secret. Each test holds one side inside its transaction and asserts
the other really met it there."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from escalations import services
from escalations.models import DeliveryAttempt, WebhookDelivery, WebhookSecret
from escalations.services import webhooks as webhook_services
from reviewapp.errors import Conflict
from reviewapp.principal import Principal
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_until_blocked
from tests.escalations.factories_webhooks import make_decided_action
from tests.escalations.receiver import receiver
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin(project):
    user = get_user_model().objects.create(username="alice")
    return Principal(organization=project.organization, role="admin", user=user)


def test_two_workers_on_one_delivery_send_it_once(project, admin, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    services.webhook_secret_create(principal=admin, project=project)
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        delivery = WebhookDelivery.objects.create(
            organization_id=project.organization_id,
            action=action,
            kind="decision",
            delivery_id="d" * 32,
            url=r.url,
            body={"type": "action.decided"},
            next_attempt_at=action.created_at,
        )
        # The first worker stops inside its claim transaction, the delivery's row locked.
        hold = hold_call(monkeypatch, WebhookDelivery, "save", thread="first")
        results: dict = {}
        first = start_thread("first", lambda: services.delivery_send(delivery_id=delivery.delivery_id), results)
        try:
            hold.wait_inside()
            # The second passes over the locked row (SKIP LOCKED) at once instead of waiting.
            started = time.monotonic()
            second = services.delivery_send(delivery_id=delivery.delivery_id)
            assert time.monotonic() - started < 5
            assert "first" not in results
        finally:
            hold.release()
        join_all(first)
        # And once the first has claimed it, a late duplicate finds it leased, then delivered.
        third = services.delivery_send(delivery_id=delivery.delivery_id)

    assert second is None and third is None
    assert (results["first"].attempt, results["first"].status) == (1, "delivered")
    assert len(r.requests) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_two_first_secrets_at_once_one_wins_the_other_is_told_to_rotate(project, admin, monkeypatch):
    hold = hold_call(monkeypatch, webhook_services, "_secret_insert", thread="first")
    results: dict = {}
    first = start_thread("first", lambda: services.webhook_secret_create(principal=admin, project=project), results)
    try:
        hold.wait_inside()
        second = start_thread(
            "second", lambda: services.webhook_secret_create(principal=admin, project=project), results
        )
        # The second insert waits on the first's uncommitted row in the unique index.
        wait_until_blocked(count=1)
        assert "second" not in results
    finally:
        hold.release()
    join_all(first, second)

    assert isinstance(results["second"], Conflict)
    assert list(WebhookSecret.objects.values_list("secret", flat=True)) == [results["first"].raw]


def test_two_rotations_at_once_chain_one_after_the_other(project, admin, monkeypatch):
    original = services.webhook_secret_create(principal=admin, project=project)
    hold = hold_call(monkeypatch, webhook_services, "_secret_insert", thread="first")
    results: dict = {}

    def rotate():
        return services.webhook_secret_rotate(principal=admin, project=project, grace_seconds=600)

    first = start_thread("first", rotate, results)
    try:
        hold.wait_inside()
        second = start_thread("second", rotate, results)
        # The second waits on the current secret's row, which the first is rotating out.
        wait_until_blocked(count=1)
        assert "second" not in results
    finally:
        hold.release()
    join_all(first, second)

    # The second found the row no longer current once it got the lock, looked again, and
    # rotated the first's secret: one current secret, the two older ones in their grace.
    current = WebhookSecret.objects.get(expires_at__isnull=True, revoked_at__isnull=True)
    assert current.secret == results["second"].raw
    expiring = set(WebhookSecret.objects.filter(expires_at__isnull=False).values_list("secret", flat=True))
    assert expiring == {original.raw, results["first"].raw}
