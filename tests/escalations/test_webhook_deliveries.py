"""Decision webhooks: recorded in the decision's transaction, sent after commit, signed,
retried with backoff until delivered or given up, every attempt visible on the action; against
a local receiver."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.db import transaction
from django.utils import timezone

from escalations import services, signing, tasks_webhooks
from escalations.models import ActionEvent, DeliveryAttempt, DeliveryStatus, WebhookDelivery
from escalations.services import notify
from escalations.services import webhooks as webhook_services
from reviewapp import outbound
from reviewapp.principal import Principal
from tests.escalations.factories_webhooks import make_decided_action, make_ladder, make_pending_action
from tests.escalations.receiver import receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def secret(project, org, member) -> str:
    admin = Principal(organization=org, role="admin", user=member("admin"))
    return services.webhook_secret_create(principal=admin, project=project).raw


def _decide(action, django_capture_on_commit_callbacks):
    """What a decision service does: in its transaction, call the seam; sends run on commit."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        notify.action_decided(action=action)
    return callbacks


def test_no_callback_url_records_nothing(project, secret, django_capture_on_commit_callbacks):
    action = make_decided_action(project, callback_url="")
    _decide(action, django_capture_on_commit_callbacks)
    assert not WebhookDelivery.objects.exists()


def test_the_decision_is_posted_after_commit_signed_with_the_projects_secret(
    project, secret, django_capture_on_commit_callbacks
):
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url, comment="fine", reason="Small refunds")
        with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
            notify.action_decided(action=action)
            delivery = WebhookDelivery.objects.get(action=action)
            assert delivery.status == DeliveryStatus.PENDING
        # Recorded in the transaction, nothing sent before commit.
        assert r.requests == []
        for callback in callbacks:
            callback()
        assert len(r.requests) == 1

    sent = r.requests[0]
    body = json.loads(sent.body)
    delivery.refresh_from_db()
    assert sent.headers["x-reviewapp-delivery"] == delivery.delivery_id == body["delivery_id"]
    assert sent.headers["x-reviewapp-event"] == "action.decided"
    # A receiver's check: the raw body, the secret, within the window.
    assert signing.verify(secret, sent.headers["x-reviewapp-signature"], sent.body) > 0
    assert body["type"] == "action.decided"
    # The body carries the action as the API answers it (serializers.action_payload).
    assert {"args", "confidence", "risk_tags", "ladder", "due_at", "claimed_by"} <= body["action"].keys()
    assert {
        "id": action.pk,
        "external_id": action.external_id,
        "action": "refund",
        "status": "approved",
        "decided_by": "policy",
        "reason": "Small refunds",
        "comment": "fine",
        "final_args": {"amount": 40, "currency": "EUR"},
        "args_digest": "d" * 64,
        "policy_version": 3,
        "matched_rule": "small refunds",
        "decided_at": action.decided_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }.items() <= body["action"].items()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.next_attempt_at is None and delivery.delivered_at is not None
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, "")
    event = ActionEvent.objects.get(action=action, kind="webhook_attempt")
    assert event.data["delivery_id"] == delivery.delivery_id
    assert (event.data["status_code"], event.data["error"], event.data["delivery_status"]) == (200, "", "delivered")


def test_a_person_decision_names_the_person(project, secret, member, django_capture_on_commit_callbacks):
    bob = member("approver", username="bob")
    with receiver([200]) as r:
        action = make_decided_action(
            project, callback_url=r.url, status="rejected", decided_by="person", decided_by_user=bob, comment="No."
        )
        _decide(action, django_capture_on_commit_callbacks)
    body = json.loads(r.requests[0].body)["action"]
    assert (body["status"], body["decided_by"], body["comment"]) == ("rejected", "bob", "No.")


def test_during_a_rotation_both_secrets_sign(project, secret, org, member, django_capture_on_commit_callbacks):
    admin = Principal(organization=org, role="admin", user=member("admin"))
    new = services.webhook_secret_rotate(principal=admin, project=project, grace_seconds=3600).raw
    with receiver([200]) as r:
        _decide(make_decided_action(project, callback_url=r.url), django_capture_on_commit_callbacks)
    header = r.requests[0].headers["x-reviewapp-signature"]
    assert header.count("v1=") == 2
    assert signing.verify(secret, header, r.requests[0].body)
    assert signing.verify(new, header, r.requests[0].body)


def test_retries_on_500_then_succeeds(project, secret, django_capture_on_commit_callbacks):
    with receiver([500, 503, 200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        _decide(action, django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get(action=action)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
        # First retry: 10 s after the attempt finished plus up to 25% jitter (counted from its end,
        # which the attempt's event records, so a slow receiver does not shorten the pause).
        first_done = ActionEvent.objects.get(action=action, kind="webhook_attempt").created_at
        assert dt.timedelta(seconds=10) <= delivery.next_attempt_at - first_done <= dt.timedelta(seconds=12.5)

        # Not due yet: neither the sweeper's query nor a stray message sends it.
        early = delivery.next_attempt_at - dt.timedelta(seconds=1)
        assert services.deliveries_due(now=early) == []
        assert services.delivery_send(delivery_id=delivery.delivery_id, now=early) is None
        assert len(r.requests) == 1

        t2 = delivery.next_attempt_at
        assert services.deliveries_due(now=t2) == [delivery.delivery_id]
        second = services.delivery_send(delivery_id=delivery.delivery_id, now=t2)
        assert (second.attempt, second.status, second.status_code) == (2, "pending", 503)
        assert dt.timedelta(seconds=30) <= second.next_attempt_at - t2 <= dt.timedelta(seconds=38)

        third = services.delivery_send(delivery_id=delivery.delivery_id, now=second.next_attempt_at)
        assert (third.attempt, third.status, third.status_code) == (3, "delivered", 200)

    assert len(r.requests) == 3
    # Every retry is the same delivery: same id and body, a fresh signature each time.
    assert len({q.headers["x-reviewapp-delivery"] for q in r.requests}) == 1
    assert len({q.body for q in r.requests}) == 1
    for q in r.requests:
        assert signing.verify(secret, q.headers["x-reviewapp-signature"], q.body)
    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "status_code")) == [
        (1, 500),
        (2, 503),
        (3, 200),
    ]
    events = ActionEvent.objects.filter(action=action, kind="webhook_attempt").order_by("id")
    assert [(e.data["attempt"], e.data["status_code"], e.data["delivery_status"]) for e in events] == [
        (1, 500, "pending"),
        (2, 503, "pending"),
        (3, 200, "delivered"),
    ]


def test_gives_up_after_the_last_attempt(project, secret, django_capture_on_commit_callbacks):
    with receiver([500]) as r:
        action = make_decided_action(project, callback_url=r.url)
        _decide(action, django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get(action=action)
        gaps = []
        while True:
            delivery.refresh_from_db()
            if delivery.status != "pending":
                break
            due = delivery.next_attempt_at
            outcome = services.delivery_send(delivery_id=delivery.delivery_id, now=due)
            if outcome.next_attempt_at:
                gaps.append((outcome.next_attempt_at - due).total_seconds())
        assert len(r.requests) == webhook_services.MAX_ATTEMPTS == 8
        # The documented schedule, each gap within its jitter.
        for gap, base in zip(gaps, webhook_services.RETRY_DELAYS_SECONDS[1:], strict=True):
            assert base <= gap <= base * 1.25 + 1
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 8, None)
        assert services.deliveries_due(now=timezone.now() + dt.timedelta(days=2)) == []
        assert (
            services.delivery_send(delivery_id=delivery.delivery_id, now=timezone.now() + dt.timedelta(days=2)) is None
        )
        assert len(r.requests) == 8
    last = ActionEvent.objects.filter(action=action, kind="webhook_attempt").order_by("-id").first()
    assert (last.data["attempt"], last.data["delivery_status"], last.data["next_attempt_at"]) == (8, "failed", None)


def test_a_duplicate_message_does_nothing(project, secret, django_capture_on_commit_callbacks):
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        _decide(action, django_capture_on_commit_callbacks)
        delivery_id = WebhookDelivery.objects.get(action=action).delivery_id
        assert tasks_webhooks.delivery_send.delay(delivery_id).get() is None
        assert len(r.requests) == 1


def test_a_delivery_being_sent_is_not_sent_twice_and_a_dead_sender_is_retried_after_its_lease(
    project, secret, django_capture_on_commit_callbacks
):
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
            notify.action_decided(action=action)  # the message is lost: callbacks not run
        delivery = WebhookDelivery.objects.get(action=action)
        now = timezone.now()
        # A worker claims it and dies mid-send.
        claimed = webhook_services._delivery_claim(delivery_id=delivery.delivery_id, now=now)
        assert claimed.attempts == 1
        assert services.delivery_send(delivery_id=delivery.delivery_id, now=now + dt.timedelta(seconds=5)) is None
        assert services.deliveries_due(now=now + dt.timedelta(seconds=59)) == []
        later = now + dt.timedelta(seconds=webhook_services.SEND_LEASE_SECONDS)
        assert services.deliveries_due(now=later) == [delivery.delivery_id]
        outcome = services.delivery_send(delivery_id=delivery.delivery_id, now=later)
        assert (outcome.attempt, outcome.status) == (2, "delivered")
        assert len(r.requests) == 1


def test_the_sweeper_sends_what_a_lost_message_left_behind(project, secret, django_capture_on_commit_callbacks):
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
            notify.action_decided(action=action)
        assert r.requests == []
        # Its message is trusted for the enqueue lease; once that runs out, the sweep takes it.
        assert tasks_webhooks.deliveries_due_sweep.delay().get() == 0
        WebhookDelivery.objects.update(enqueued_until=timezone.now() - dt.timedelta(seconds=1))
        assert tasks_webhooks.deliveries_due_sweep.delay().get() == 1
        assert len(r.requests) == 1
        assert WebhookDelivery.objects.get(action=action).status == "delivered"
        assert tasks_webhooks.deliveries_due_sweep.delay().get() == 0


def test_a_dead_receiver_never_fails_the_decision(project, secret, django_capture_on_commit_callbacks):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    action = make_decided_action(project, callback_url=f"http://127.0.0.1:{port}/gone")
    _decide(action, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get(action=action)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "ConnectError" in delivery.last_error and delivery.last_status_code is None


def test_a_hanging_receiver_is_cut_off_at_the_time_limit(
    project, secret, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(outbound, "TOTAL_TIMEOUT_SECONDS", 1.0)
    with receiver([("hang",)]) as r:
        action = make_decided_action(project, callback_url=r.url)
        started = time.monotonic()
        _decide(action, django_capture_on_commit_callbacks)
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    delivery = WebhookDelivery.objects.get(action=action)
    assert delivery.status == "pending" and "timed out" in delivery.last_error
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and 900 <= attempt.duration_ms < 3000


def test_a_redirect_is_not_followed_and_counts_as_a_failure(project, secret, django_capture_on_commit_callbacks):
    with receiver([("redirect", "http://169.254.169.254/latest/meta-data/"), 200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        _decide(action, django_capture_on_commit_callbacks)
        assert len(r.requests) == 1
    delivery = WebhookDelivery.objects.get(action=action)
    assert delivery.status == "pending" and delivery.last_status_code == 302
    assert "not followed" in delivery.last_error


def test_private_destinations_are_refused_unless_allowed(project, secret, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        _decide(action, django_capture_on_commit_callbacks)
        assert r.requests == []
    delivery = WebhookDelivery.objects.get(action=action)
    assert delivery.last_error.startswith("refused:") and delivery.status == "pending"


def test_without_a_secret_a_decision_is_not_sent_unsigned(project, org, member, django_capture_on_commit_callbacks):
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        _decide(action, django_capture_on_commit_callbacks)
        assert r.requests == []
        delivery = WebhookDelivery.objects.get(action=action)
        assert "no webhook secret" in delivery.last_error and delivery.status == "pending"
        # An admin creates the secret in time: the next attempt goes out, signed.
        secret = services.webhook_secret_create(
            principal=Principal(organization=org, role="admin", user=member("admin")), project=project
        ).raw
        services.delivery_send(delivery_id=delivery.delivery_id, now=delivery.next_attempt_at)
        assert len(r.requests) == 1
        assert signing.verify(secret, r.requests[0].headers["x-reviewapp-signature"], r.requests[0].body)


# --- GET /api/v1/actions/{id}/deliveries ----------------------------------------------------------


def _failed_then_delivered(project, r, django_capture_on_commit_callbacks):
    action = make_decided_action(project, callback_url=r.url)
    _decide(action, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get(action=action)
    services.delivery_send(delivery_id=delivery.delivery_id, now=delivery.next_attempt_at)
    return action, delivery


def test_the_attempts_are_visible_on_the_action(project, secret, api_client_for, django_capture_on_commit_callbacks):
    with receiver([500, 200]) as r:
        action, delivery = _failed_then_delivered(project, r, django_capture_on_commit_callbacks)
    response = api_client_for("approver").get(f"/api/v1/actions/{action.pk}/deliveries")
    assert response.status_code == 200, response.content
    [row] = response.json()
    assert row["delivery_id"] == delivery.delivery_id and row["kind"] == "decision"
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 2, 200)
    assert row["url"] == r.url and row["body"]["action"]["id"] == action.pk
    assert [(a["number"], a["status_code"], a["error"]) for a in row["attempt_log"]] == [
        (1, 500, "HTTP 500"),
        (2, 200, ""),
    ]
    assert row["attempt_log"][1]["response_excerpt"] == '{"ok": true}'


def test_deliveries_are_read_by_the_actions_own_project_and_organization(
    project, other_project, secret, agent_client, other_agent_client, api_client_for, org
):
    from tests.factories import ProjectFactory

    action = make_decided_action(project, callback_url="")
    sibling = ProjectFactory(organization=org, slug="sales")
    sibling_action = make_decided_action(sibling, callback_url="")
    foreign = make_decided_action(other_project, callback_url="")
    assert agent_client.get(f"/api/v1/actions/{action.pk}/deliveries").json() == []
    # An agent's key reads its own project only; people read their organization's.
    assert agent_client.get(f"/api/v1/actions/{sibling_action.pk}/deliveries").status_code == 404
    assert api_client_for("engineer").get(f"/api/v1/actions/{sibling_action.pk}/deliveries").status_code == 200
    assert other_agent_client.get(f"/api/v1/actions/{action.pk}/deliveries").status_code == 404
    assert api_client_for("admin").get(f"/api/v1/actions/{foreign.pk}/deliveries").status_code == 404
    assert api_client_for("annotator").get(f"/api/v1/actions/{action.pk}/deliveries").status_code == 403
    assert api_client_for("approver").get("/api/v1/actions/999999999/deliveries").status_code == 404


def test_a_chat_webhook_url_is_shown_as_its_host_only(project, api_client_for, django_capture_on_commit_callbacks):
    ladder = make_ladder(project, notify_webhook_url="https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    action = make_pending_action(project, ladder=ladder)
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        notify.action_tier_entered(action=action)
    [row] = api_client_for("approver").get(f"/api/v1/actions/{action.pk}/deliveries").json()
    assert row["kind"] == "tier_notification"
    assert row["url"] == "https://hooks.slack.com/…"
    assert "XXXXSECRET" not in json.dumps(row)


def test_an_action_deleted_while_its_webhook_is_in_flight_ends_quietly(
    project, secret, monkeypatch, django_capture_on_commit_callbacks
):
    action = make_decided_action(project)
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        notify.action_decided(action=action)
    delivery = WebhookDelivery.objects.get(action=action)

    def post_then_delete(url, **kwargs):
        action.delete()  # a tenant erased on request, mid-send
        return outbound.PostResult(200, "", "", 5)

    monkeypatch.setattr(outbound, "post", post_then_delete)
    assert services.delivery_send(delivery_id=delivery.delivery_id) is None
    assert not WebhookDelivery.objects.exists() and not DeliveryAttempt.objects.exists()


def test_a_decision_with_an_integer_beyond_64_bits_is_sent_with_the_exact_number(
    project, secret, django_capture_on_commit_callbacks
):
    """args may hold integers orjson refuses (action_input keeps them exact): the webhook still
    goes out, signed over the bytes sent, carrying the exact number."""
    big = 2**70 + 1
    with receiver([200]) as r:
        action = make_decided_action(project, callback_url=r.url, args={"amount": big}, final_args={"amount": big})
        _decide(action, django_capture_on_commit_callbacks)
        assert len(r.requests) == 1
    sent = r.requests[0]
    assert json.loads(sent.body)["action"]["final_args"]["amount"] == big
    assert signing.verify(secret, sent.headers["x-reviewapp-signature"], sent.body) > 0
    delivery = WebhookDelivery.objects.get(action=action)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_an_attempt_that_fails_before_sending_is_recorded_and_ends_failed(
    project, secret, monkeypatch, django_capture_on_commit_callbacks
):
    """The claim counted the attempt, so a failure while building or sending it is a failed
    attempt like any other: visible, backed off, and FAILED after the last one (not claimed
    again every lease, unseen, for ever)."""

    def broken(*args, **kwargs):
        raise RuntimeError("internal detail that stays in the log")

    monkeypatch.setattr(signing, "headers", broken)
    action = make_decided_action(project)
    _decide(action, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get(action=action)
    first = DeliveryAttempt.objects.get(delivery=delivery)
    assert (first.number, first.status_code) == (1, None)
    assert "internal error" in first.error and "internal detail" not in first.error
    assert delivery.next_attempt_at - first.started_at >= dt.timedelta(seconds=10)
    while delivery.status == "pending":
        services.delivery_send(delivery_id=delivery.delivery_id, now=delivery.next_attempt_at)
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", webhook_services.MAX_ATTEMPTS)
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == webhook_services.MAX_ATTEMPTS
    assert ActionEvent.objects.filter(action=action, kind="webhook_attempt").count() == webhook_services.MAX_ATTEMPTS


def test_a_refused_resolution_shows_agents_no_internal_address(
    project, secret, settings, monkeypatch, api_client_for, agent_client, caplog, django_capture_on_commit_callbacks
):
    """A callback host resolving inside the network is refused, and what the API shows (the
    deliveries and the action's events) does not name the address it resolved to."""
    import socket

    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.agent.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)
    action = make_decided_action(project, callback_url="https://hooks.agent.example/in")
    _decide(action, django_capture_on_commit_callbacks)
    [row] = api_client_for("approver").get(f"/api/v1/actions/{action.pk}/deliveries").json()
    events = agent_client.get(f"/api/v1/actions/{action.pk}/events").json()["results"]
    shown = json.dumps([row, events])
    assert row["last_error"] == row["attempt_log"][0]["error"] == outbound.REFUSED_RESOLUTION
    assert any(e.get("data", {}).get("error") == outbound.REFUSED_RESOLUTION for e in events), events
    assert "10.20" not in shown
    assert "10.20.30.40" in caplog.text  # the operator still sees why


def test_the_sweeper_skips_deliveries_already_queued(project, secret, django_capture_on_commit_callbacks):
    """A backlog in the webhooks queue is not re-enqueued every sweep: a queued delivery is
    skipped until its enqueue lease runs out (its message counts as lost then), and a claim
    ends the lease so a retry is taken as soon as it is due."""
    with receiver([500, 200]) as r:
        action = make_decided_action(project, callback_url=r.url)
        with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
            notify.action_decided(action=action)  # queued on commit; the message waits in the queue
        delivery = WebhookDelivery.objects.get(action=action)
        t0 = delivery.created_at
        lease = dt.timedelta(seconds=webhook_services.ENQUEUE_LEASE_SECONDS)
        for sweep in range(1, 4):  # sweeps every 30 s while the message waits
            assert webhook_services.deliveries_due_take(now=t0 + dt.timedelta(seconds=30 * sweep)) == []
        # The message was lost after all: the first sweep past the lease takes it, once.
        assert webhook_services.deliveries_due_take(now=t0 + lease) == [delivery.delivery_id]
        assert webhook_services.deliveries_due_take(now=t0 + lease + dt.timedelta(seconds=30)) == []
        first = services.delivery_send(delivery_id=delivery.delivery_id, now=t0 + lease + dt.timedelta(seconds=31))
        assert (first.attempt, first.status_code) == (1, 500)
        # The retry is due in ~10 s, well inside the lease the sweep stamped: the claim ended it.
        assert webhook_services.deliveries_due_take(now=first.next_attempt_at) == [delivery.delivery_id]
        second = services.delivery_send(delivery_id=delivery.delivery_id, now=first.next_attempt_at)
        assert (second.attempt, second.status) == (2, "delivered")
    assert len(r.requests) == 2


def test_a_sweep_that_cannot_reach_the_broker_leaves_the_rest_for_the_next(
    project, secret, monkeypatch, django_capture_on_commit_callbacks
):
    actions = [make_decided_action(project) for _ in range(3)]
    for action in actions:
        with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
            notify.action_decided(action=action)
    WebhookDelivery.objects.update(enqueued_until=None)  # as if their messages were lost
    sent = []

    def apply_async(args, **kwargs):
        if sent:
            raise ConnectionError("broker down")
        sent.append(args[0])

    monkeypatch.setattr(tasks_webhooks.delivery_send, "apply_async", apply_async)
    assert tasks_webhooks.deliveries_due_sweep() == 1
    queued = dict(WebhookDelivery.objects.values_list("delivery_id", "enqueued_until"))
    assert queued[sent[0]] is not None
    # The two not queued are taken by the next sweep, not left until the lease runs out.
    assert sorted(webhook_services.deliveries_due_take()) == sorted(d for d, until in queued.items() if until is None)
    assert len([d for d, until in queued.items() if until is None]) == 2


def test_webhook_sends_are_routed_to_their_own_queue(settings):
    """Sends wait on other people's servers: they have their own queue, and the beat sweeps
    (the tier timeouts among them) stay on the default one."""
    from escalations import tasks
    from reviewapp.celery import app

    def queue_of(name):
        return app.amqp.router.route({}, name)["queue"].name

    assert settings.WEBHOOK_CELERY_QUEUE == "webhooks"
    assert queue_of(tasks_webhooks.delivery_send.name) == "webhooks"
    assert queue_of(tasks_webhooks.deliveries_due_sweep.name) == settings.CELERY_TASK_DEFAULT_QUEUE
    timeouts = [t for t in vars(tasks).values() if getattr(t, "name", "").startswith("escalations.tasks.")]
    assert timeouts and {queue_of(t.name) for t in timeouts} == {settings.CELERY_TASK_DEFAULT_QUEUE}
    settings.WEBHOOK_CELERY_QUEUE = "test-webhooks"  # read at send time (the test workers' own)
    assert queue_of(tasks_webhooks.delivery_send.name) == "test-webhooks"
