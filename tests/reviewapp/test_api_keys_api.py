"""Project API keys over the API: admin-only, shown once, revocable, last use recorded."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from reviewapp import services
from reviewapp.models import ApiKey, AuditEvent, Conversation
from reviewapp.tokens import token_hash
from tests.factories import ProjectFactory, conversation_payload

URL = "/api/v1/api-keys"


def _client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def test_an_admin_creates_a_key_and_sees_the_raw_value_once(api_client_for, project):
    admin = api_client_for("admin")

    response = admin.post(URL, {"project": "support", "name": "prod agent"}, format="json")

    assert response.status_code == 201
    key = ApiKey.objects.get()
    body = response.json()
    assert body == {
        "id": key.pk,
        "name": "prod agent",
        "project": "support",
        "prefix": body["key"][:12],
        "created_at": _iso(key.created_at),
        "last_used_at": None,
        "revoked_at": None,
        "key": body["key"],
    }
    assert body["key"].startswith("rak_")
    assert len(body["key"]) > 40
    assert key.token_hash == token_hash(body["key"])
    assert (key.organization_id, key.project_id, key.created_by_id) == (
        project.organization_id,
        project.pk,
        admin.user.pk,
    )
    event = AuditEvent.objects.get(kind="api_key.created")
    assert (event.actor_user_id, event.subject_id) == (admin.user.pk, str(key.pk))
    assert body["key"] not in str(event.data)
    # The list never shows it again.
    listed = admin.get(URL).json()
    assert listed == [{k: v for k, v in body.items() if k != "key"}]


def test_the_new_key_ingests_into_its_project(api_client_for, project):
    raw = api_client_for("admin").post(URL, {"project": "support", "name": "k"}, format="json").json()["key"]

    response = _client(raw).post("/api/v1/conversations", conversation_payload(), format="json")

    assert response.status_code == 201
    assert Conversation.objects.get().project_id == project.pk


def test_the_list_shows_every_key_of_the_organization_newest_first(api_client_for, project):
    sales = ProjectFactory(organization=project.organization, slug="sales")
    old = services.api_key_create(project=project, name="old").record
    ApiKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    new = services.api_key_create(project=sales, name="new").record
    services.api_key_revoke(key=old)

    rows = api_client_for("admin").get(URL).json()

    assert [(r["id"], r["name"], r["project"], r["revoked_at"] is not None) for r in rows] == [
        (new.pk, "new", "sales", False),
        (old.pk, "old", "support", True),
    ]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"project": "nope", "name": "k"}, {"project": ["No project 'nope' in this organization."]}),
        ({"project": "support"}, {"name": ["This field is required."]}),
        ({"name": "k"}, {"project": ["This field is required."]}),
        ({"project": "support", "name": "k" * 101}, {"name": ["Ensure this field has no more than 100 characters."]}),
    ],
)
def test_an_invalid_create_is_400_and_creates_nothing(api_client_for, project, body, errors):
    response = api_client_for("admin").post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert ApiKey.objects.count() == 0


def test_an_admin_cannot_create_a_key_for_another_organizations_project(api_client_for, project, other_project):
    response = api_client_for("admin").post(URL, {"project": "shop", "name": "k"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"project": ["No project 'shop' in this organization."]}
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("role", ["annotator", "approver", "engineer"])
def test_only_admins_manage_keys(api_client_for, project, role):
    key = services.api_key_create(project=project, name="k").record
    client = api_client_for(role)

    listing = client.get(URL)
    creating = client.post(URL, {"project": "support", "name": "mine"}, format="json")
    revoking = client.post(f"{URL}/{key.pk}/revoke")

    assert [listing.status_code, creating.status_code, revoking.status_code] == [403, 403, 403]
    assert listing.json() == {"message": "Your role may not do this.", "errors": {}}
    assert list(ApiKey.objects.values_list("pk", "revoked_at")) == [(key.pk, None)]


def test_an_agent_key_cannot_manage_keys(agent_client):
    assert agent_client.get(URL).status_code == 403
    assert agent_client.post(URL, {"project": "support", "name": "k"}, format="json").status_code == 403
    assert agent_client.post(f"{URL}/{agent_client.api_key.pk}/revoke").status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_revoking_a_key_stops_it_at_once(api_client_for, agent_client):
    admin = api_client_for("admin")
    assert agent_client.get("/api/v1/conversations").status_code == 200

    response = admin.post(f"{URL}/{agent_client.api_key.pk}/revoke")

    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert key.revoked_at is not None
    assert response.json()["revoked_at"] == _iso(key.revoked_at)
    assert response.json()["id"] == key.pk
    refused = agent_client.post("/api/v1/conversations", conversation_payload(), format="json")
    assert refused.status_code == 401
    assert Conversation.objects.count() == 0
    event = AuditEvent.objects.get(kind="api_key.revoked")
    assert (event.actor_user_id, event.subject_id) == (admin.user.pk, str(key.pk))


def test_revoking_twice_keeps_the_first_time_and_records_one_event(api_client_for, agent_client):
    admin = api_client_for("admin")
    first = admin.post(f"{URL}/{agent_client.api_key.pk}/revoke").json()

    second = admin.post(f"{URL}/{agent_client.api_key.pk}/revoke")

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first["revoked_at"]
    assert AuditEvent.objects.filter(kind="api_key.revoked").count() == 1


def test_revoking_an_unknown_or_foreign_key_is_404(api_client_for, project, other_agent_client):
    foreign = ApiKey.objects.get(project__slug="shop")
    admin = api_client_for("admin")

    for key_id in [foreign.pk, 999999]:
        response = admin.post(f"{URL}/{key_id}/revoke")
        assert response.status_code == 404
        assert response.json() == {"message": "API key not found.", "errors": {}}

    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    assert other_agent_client.get("/api/v1/conversations").status_code == 200


def test_using_a_key_records_last_used_at_at_most_once_a_minute(agent_client):
    key = agent_client.api_key
    assert ApiKey.objects.get(pk=key.pk).last_used_at is None

    before = timezone.now()
    agent_client.get("/api/v1/conversations")
    stamped = ApiKey.objects.get(pk=key.pk).last_used_at
    assert before <= stamped <= timezone.now()

    # A fresh stamp is not rewritten (no row-lock contention for busy agents)...
    agent_client.get("/api/v1/conversations")
    assert ApiKey.objects.get(pk=key.pk).last_used_at == stamped

    # ...a stale one is.
    stale = timezone.now() - dt.timedelta(minutes=5)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=stale)
    agent_client.get("/api/v1/conversations")
    assert ApiKey.objects.get(pk=key.pk).last_used_at > stale + dt.timedelta(minutes=4)


def test_a_refused_request_does_not_touch_last_used_at(agent_client):
    services.api_key_revoke(key=agent_client.api_key)

    agent_client.get("/api/v1/conversations")

    assert ApiKey.objects.get().last_used_at is None
