"""Webhook signing secrets: created, rotated with a grace period, shown once; the API and the
settings page (admins only)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from escalations import services
from escalations.models import WebhookSecret
from reviewapp.errors import Conflict
from reviewapp.models import AuditEvent
from reviewapp.principal import Principal
from reviewapp.validation import InputError

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_principal(org, member):
    return Principal(organization=org, role="admin", user=member("admin", username="alice"))


def test_create_then_create_again_is_a_conflict(project, admin_principal):
    issued = services.webhook_secret_create(principal=admin_principal, project=project)
    assert issued.raw.startswith("whsec_") and len(issued.raw) > 40
    assert issued.record.prefix == issued.raw[:12]
    assert services.signing_secrets(project_id=project.pk) == [issued.raw]
    with pytest.raises(Conflict) as caught:
        services.webhook_secret_create(principal=admin_principal, project=project)
    assert "project" in caught.value.errors
    assert WebhookSecret.objects.filter(project=project).count() == 1
    event = AuditEvent.objects.get(kind="webhook_secret.created")
    assert event.actor_user == admin_principal.user
    assert event.data == {"project": "support", "prefix": issued.record.prefix}
    assert issued.raw not in str(event.data)


def test_rotation_keeps_the_old_secret_signing_through_the_grace(project, admin_principal):
    t0 = timezone.now()
    first = services.webhook_secret_create(principal=admin_principal, project=project, now=t0)
    second = services.webhook_secret_rotate(principal=admin_principal, project=project, grace_seconds=3600, now=t0)
    old = WebhookSecret.objects.get(pk=first.record.pk)
    assert old.expires_at == t0 + dt.timedelta(hours=1) and old.revoked_at is None
    # Newest first: both sign during the grace, the new one alone after it.
    assert services.signing_secrets(project_id=project.pk, now=t0 + dt.timedelta(minutes=59)) == [
        second.raw,
        first.raw,
    ]
    assert services.signing_secrets(project_id=project.pk, now=t0 + dt.timedelta(hours=1)) == [second.raw]
    event = AuditEvent.objects.get(kind="webhook_secret.rotated")
    assert event.data == {
        "project": "support",
        "prefix": second.record.prefix,
        "previous": [first.record.prefix],
        "grace_seconds": 3600,
    }


def test_rotation_without_grace_revokes_at_once_with_older_ones_still_in_grace(project, admin_principal):
    t0 = timezone.now()
    first = services.webhook_secret_create(principal=admin_principal, project=project, now=t0)
    second = services.webhook_secret_rotate(principal=admin_principal, project=project, now=t0)
    third = services.webhook_secret_rotate(principal=admin_principal, project=project, grace_seconds=0, now=t0)
    assert services.signing_secrets(project_id=project.pk, now=t0) == [third.raw]
    for earlier in (first, second):
        row = WebhookSecret.objects.get(pk=earlier.record.pk)
        assert row.revoked_at == t0


def test_rotating_twice_within_the_grace_keeps_both_older_secrets_until_they_expire(project, admin_principal):
    t0 = timezone.now()
    first = services.webhook_secret_create(principal=admin_principal, project=project, now=t0)
    second = services.webhook_secret_rotate(principal=admin_principal, project=project, grace_seconds=7200, now=t0)
    t1 = t0 + dt.timedelta(minutes=10)
    third = services.webhook_secret_rotate(principal=admin_principal, project=project, grace_seconds=600, now=t1)
    assert services.signing_secrets(project_id=project.pk, now=t1) == [third.raw, second.raw, first.raw]
    assert services.signing_secrets(project_id=project.pk, now=t1 + dt.timedelta(minutes=11)) == [
        third.raw,
        first.raw,
    ]


def test_rotating_without_a_secret_is_a_conflict(project, admin_principal):
    with pytest.raises(Conflict):
        services.webhook_secret_rotate(principal=admin_principal, project=project)
    assert not WebhookSecret.objects.exists()


@pytest.mark.parametrize("grace", [-1, 7 * 86_400 + 1, 1.5, True])
def test_grace_is_bounded(project, admin_principal, grace):
    services.webhook_secret_create(principal=admin_principal, project=project)
    with pytest.raises(InputError) as caught:
        services.webhook_secret_rotate(principal=admin_principal, project=project, grace_seconds=grace)
    assert "grace_seconds" in caught.value.errors
    assert WebhookSecret.objects.count() == 1


# --- API -------------------------------------------------------------------------------------


def test_api_creates_then_rotates_and_lists_without_the_secret(api_client_for, project):
    admin = api_client_for("admin")
    created = admin.post("/api/v1/webhook-secrets", {"project": "support"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["rotated"] is False and body["state"] == "current" and body["project"] == "support"
    assert body["secret"].startswith(body["prefix"])

    rotated = admin.post("/api/v1/webhook-secrets", {"project": "support", "grace_seconds": 60}, format="json")
    assert rotated.status_code == 201
    assert rotated.json()["rotated"] is True and rotated.json()["secret"] != body["secret"]

    listed = admin.get("/api/v1/webhook-secrets")
    assert listed.status_code == 200
    rows = listed.json()
    assert [(r["prefix"], r["state"]) for r in rows] == [
        (rotated.json()["prefix"], "current"),
        (body["prefix"], "expiring"),
    ]
    assert "secret" not in rows[0] and body["secret"] not in listed.content.decode()
    assert rows[1]["expires_at"] is not None


def test_api_lists_only_the_organizations_secrets(api_client_for, project, other_project, member, other_org):
    services.webhook_secret_create(
        principal=Principal(organization=other_org, role="admin", user=member("admin", organization=other_org)),
        project=other_project,
    )
    admin = api_client_for("admin")
    assert admin.get("/api/v1/webhook-secrets").json() == []
    # Another tenant's project slug is unknown here: nothing created there.
    response = admin.post("/api/v1/webhook-secrets", {"project": "shop"}, format="json")
    assert response.status_code == 400 and "project" in response.json()["errors"]
    assert WebhookSecret.objects.filter(project=other_project).count() == 1
    unknown = admin.get("/api/v1/webhook-secrets?project=shop")
    assert unknown.status_code == 400 and "project" in unknown.json()["errors"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"project": "support", "grace_seconds": -1}, "grace_seconds"),
        ({"project": "support", "grace_seconds": 10**12}, "grace_seconds"),
        ({"project": "support", "grace_seconds": "soon"}, "grace_seconds"),
        ({}, "project"),
        ({"project": "no such project!"}, "project"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(api_client_for, project, payload, field):
    response = api_client_for("admin").post("/api/v1/webhook-secrets", payload, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert not WebhookSecret.objects.exists()


@pytest.mark.parametrize("role", ["annotator", "approver", "engineer"])
def test_api_is_for_admins(api_client_for, project, role):
    client = api_client_for(role)
    assert client.get("/api/v1/webhook-secrets").status_code == 403
    assert client.post("/api/v1/webhook-secrets", {"project": "support"}, format="json").status_code == 403
    assert not WebhookSecret.objects.exists()


def test_api_refuses_agents(agent_client):
    assert agent_client.get("/api/v1/webhook-secrets").status_code == 403
    assert agent_client.post("/api/v1/webhook-secrets", {"project": "support"}, format="json").status_code == 403


# --- the settings page -------------------------------------------------------------------------


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_page_creates_shows_the_secret_once_then_lists_it_by_prefix(project, member):
    client = _browser(member("admin"))
    assert client.get("/settings/webhooks/").url == "/escalations/settings/webhooks/"
    page = client.get("/escalations/settings/webhooks/")
    assert page.status_code == 200
    assert b"Create secret" in page.content and b"No secret yet" in page.content

    created = client.post("/escalations/settings/webhooks/", {"project": "support", "grace_seconds": "86400"})
    assert created.status_code == 200
    secret = WebhookSecret.objects.get(project=project)
    assert secret.secret.encode() in created.content
    assert b"shown only once" in created.content

    again = client.get("/escalations/settings/webhooks/")
    assert secret.secret.encode() not in again.content
    assert secret.prefix.encode() in again.content and b"Rotate" in again.content


def test_page_rotates_with_the_chosen_grace(project, member):
    user = member("admin")
    client = _browser(user)
    first = services.webhook_secret_create(
        principal=Principal(organization=project.organization, role="admin", user=user), project=project
    )
    before = timezone.now()
    response = client.post("/escalations/settings/webhooks/", {"project": "support", "grace_seconds": "3600"})
    assert response.status_code == 200
    old = WebhookSecret.objects.get(pk=first.record.pk)
    assert before + dt.timedelta(minutes=59) < old.expires_at <= timezone.now() + dt.timedelta(hours=1)
    new = WebhookSecret.objects.get(project=project, expires_at__isnull=True)
    assert new.secret.encode() in response.content and first.raw.encode() not in response.content
    assert b"signing until expiry" in response.content


def test_page_refuses_a_grace_it_does_not_offer_and_another_tenants_project(project, other_project, member):
    client = _browser(member("admin"))
    assert (
        client.post("/escalations/settings/webhooks/", {"project": "support", "grace_seconds": "5"}).status_code == 400
    )
    assert client.post("/escalations/settings/webhooks/", {"project": "shop", "grace_seconds": "0"}).status_code == 400
    assert not WebhookSecret.objects.exists()


@pytest.mark.parametrize("role", ["annotator", "approver", "engineer"])
def test_page_is_for_admins(project, member, role):
    client = _browser(member(role))
    assert client.get("/escalations/settings/webhooks/").status_code == 403
    assert (
        client.post("/escalations/settings/webhooks/", {"project": "support", "grace_seconds": "0"}).status_code == 403
    )
    assert not WebhookSecret.objects.exists()


def test_page_needs_a_sign_in(project):
    response = Client().get("/escalations/settings/webhooks/")
    assert response.status_code == 302 and "/login/" in response.url
