"""A decision's webhook through the real broker and a real Celery worker: sent after commit,
retried by the due sweeper, every attempt recorded."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from django.db import transaction
from django.utils import timezone

from escalations import services, signing, tasks_webhooks
from escalations.models import WebhookDelivery
from escalations.services import notify
from reviewapp.principal import Principal
from tests.celery_worker import webhook_queue, worker_start, worker_stop
from tests.escalations.factories_webhooks import make_decided_action
from tests.escalations.receiver import receiver, wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webhook_worker(django_db_blocker, settings, monkeypatch) -> Iterator[str]:
    """A worker of this test's own that may post to the local receiver."""
    from reviewapp.celery import app

    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_HOSTS", "1")
    queue = f"webhooks-{os.getpid()}"
    with django_db_blocker.unblock():
        proc, log = worker_start(queue=queue)
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.WEBHOOK_CELERY_QUEUE = webhook_queue(queue)
    try:
        yield queue
    finally:
        app.conf.task_always_eager = True
        app.conf.task_default_queue = previous
        worker_stop(proc, log)


def test_a_decision_reaches_its_receiver_through_the_worker_and_is_retried(webhook_worker, project, org, member):
    secret = services.webhook_secret_create(
        principal=Principal(organization=org, role="admin", user=member("admin")), project=project
    ).raw
    with receiver([500, 200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        started = time.monotonic()
        with transaction.atomic():
            notify.action_decided(action=action)
        # The decision's request is done at once; the worker sends after commit.
        assert time.monotonic() - started < 2
        assert wait_for(lambda: len(r.requests) == 1, timeout=60), "the worker never sent it"
        delivery = WebhookDelivery.objects.get(action=action)
        assert wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).last_status_code == 500, timeout=30)

        # Its retry time comes (moved forward here instead of waiting 10 s); beat's sweep sends it.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert tasks_webhooks.deliveries_due_sweep.apply().get(disable_sync_subtasks=False) == 1
        assert wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered", timeout=60)

    assert len(r.requests) == 2
    for sent in r.requests:
        assert signing.verify(secret, sent.headers["x-reviewapp-signature"], sent.body)
    assert list(delivery.attempt_rows.order_by("number").values_list("number", "status_code")) == [(1, 500), (2, 200)]


def test_a_send_waits_in_the_webhooks_queue_not_the_default_one(settings):
    """Through the real broker: a send message lands in the webhooks queue, so a worker of the
    default queue alone (the tier timeout sweep's) never takes it."""
    import redis

    from reviewapp.celery import app

    settings.WEBHOOK_CELERY_QUEUE = f"unconsumed-webhooks-{os.getpid()}"
    default = f"unconsumed-default-{os.getpid()}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = default
    app.conf.task_always_eager = False
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        tasks_webhooks.delivery_send.apply_async(("no-such-delivery",), ignore_result=True)
        tasks_webhooks.deliveries_due_sweep.apply_async((), ignore_result=True)
        assert client.llen(settings.WEBHOOK_CELERY_QUEUE) == 1
        assert client.llen(default) == 1
    finally:
        app.conf.task_always_eager = True
        app.conf.task_default_queue = previous
        client.delete(settings.WEBHOOK_CELERY_QUEUE, default)
