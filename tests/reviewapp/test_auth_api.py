"""Personal tokens: POST /api/v1/auth/token, acting in one organization, revocation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from reviewapp.models import Membership, PersonalToken
from reviewapp.tokens import token_hash
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory, conversation_payload

TOKEN_URL = "/api/v1/auth/token"


def _login(username: str, password: str = DEFAULT_PASSWORD, **extra: str):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password, **extra}, format="json")


def _client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_member_of_one_organization_gets_a_token_for_it(member, org):
    member("engineer", username="alice")

    response = _login("alice")

    assert response.status_code == 201
    body = response.json()
    token = PersonalToken.objects.get()
    assert set(body) == {"token", "organization", "role", "expires_at"}
    assert (body["organization"], body["role"]) == ("acme", "engineer")
    assert body["token"].startswith("rat_")
    # Only a hash is stored; the raw token exists in this response alone.
    assert token.token_hash == token_hash(body["token"])
    assert token.prefix == body["token"][:12]
    assert token.organization_id == org.pk
    assert dt.datetime.fromisoformat(body["expires_at"]) == token.expires_at
    assert abs(token.expires_at - (timezone.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)
    me = _client(body["token"]).get("/api/v1/me")
    assert me.json() == {"organization": "acme", "role": "engineer", "username": "alice", "project": None}


def test_a_member_of_several_organizations_must_name_one(member, org, other_org):
    user = member("engineer", username="alice")
    MembershipFactory(user=user, organization=other_org, role="annotator")

    response = _login("alice")

    assert response.status_code == 400
    assert response.json() == {
        "message": "Name the organization.",
        "errors": {"organization": ["You belong to several: acme, globex."]},
    }
    assert PersonalToken.objects.count() == 0


def test_a_token_acts_with_the_users_role_in_the_organization_named(member, org, other_org, project):
    user = member("engineer", username="alice")
    MembershipFactory(user=user, organization=other_org, role="annotator")

    response = _login("alice", organization="globex")

    assert response.status_code == 201
    assert (response.json()["organization"], response.json()["role"]) == ("globex", "annotator")
    client = _client(response.json()["token"])
    assert client.get("/api/v1/me").json()["role"] == "annotator"
    # An annotator in globex may not read conversations, whatever the user may do in acme.
    assert client.get("/api/v1/conversations").status_code == 403

    engineer = _client(_login("alice", organization="acme").json()["token"])
    assert engineer.get("/api/v1/me").json() == {
        "organization": "acme",
        "role": "engineer",
        "username": "alice",
        "project": None,
    }
    assert engineer.get("/api/v1/conversations").status_code == 200


def test_naming_an_organization_the_user_is_not_in_is_400(member, org, other_org):
    member("engineer", username="alice")

    response = _login("alice", organization="globex")

    assert response.status_code == 400
    assert response.json() == {
        "message": "Unknown organization.",
        "errors": {"organization": ["You are not a member of it."]},
    }
    assert PersonalToken.objects.count() == 0


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong-password"), ("nobody", DEFAULT_PASSWORD)])
def test_a_wrong_username_or_password_is_401(member, org, username, password):
    member("engineer", username="alice")

    response = _login(username, password)

    assert response.status_code == 401
    assert response.json() == {"message": "Invalid username or password.", "errors": {}}
    assert PersonalToken.objects.count() == 0


def test_an_inactive_user_gets_no_token(member, org):
    user = member("engineer", username="alice")
    user.is_active = False
    user.save(update_fields=["is_active"])

    response = _login("alice")

    assert response.status_code == 401
    assert PersonalToken.objects.count() == 0


def test_a_user_in_no_organization_is_403(db):
    UserFactory(username="loner")

    response = _login("loner")

    assert response.status_code == 403
    assert response.json() == {"message": "You belong to no organization.", "errors": {}}
    assert PersonalToken.objects.count() == 0


def test_missing_fields_are_400_naming_them(db):
    response = APIClient().post(TOKEN_URL, {}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "message": "Validation failed.",
        "errors": {"username": ["This field is required."], "password": ["This field is required."]},
    }


def test_removing_the_membership_kills_the_token_at_once(member, org):
    user = member("engineer", username="alice")
    client = _client(_login("alice").json()["token"])
    assert client.get("/api/v1/me").status_code == 200

    Membership.objects.filter(user=user, organization=org).delete()
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_role_change_applies_to_an_existing_token_at_once(member, org, project):
    user = member("engineer", username="alice")
    client = _client(_login("alice").json()["token"])

    Membership.objects.filter(user=user, organization=org).update(role="annotator")
    response = client.post("/api/v1/conversations", {"project": "support", **conversation_payload()}, format="json")

    assert response.status_code == 403
    assert client.get("/api/v1/me").json()["role"] == "annotator"


def test_deactivating_the_user_kills_the_token(member, org):
    user = member("engineer", username="alice")
    client = _client(_login("alice").json()["token"])

    user.is_active = False
    user.save(update_fields=["is_active"])

    assert client.get("/api/v1/me").status_code == 401


def test_an_expired_token_is_refused(member, org):
    member("engineer", username="alice")
    client = _client(_login("alice").json()["token"])

    PersonalToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert client.get("/api/v1/me").status_code == 401


def test_deleting_the_current_token_revokes_it_and_only_it(member, org):
    member("engineer", username="alice")
    first = _client(_login("alice").json()["token"])
    second = _client(_login("alice").json()["token"])

    response = first.delete("/api/v1/auth/token/current")

    assert response.status_code == 204
    assert first.get("/api/v1/me").status_code == 401
    assert second.get("/api/v1/me").status_code == 200
    assert PersonalToken.objects.filter(revoked_at__isnull=False).count() == 1


def test_a_project_key_cannot_revoke_itself(agent_client):
    response = agent_client.delete("/api/v1/auth/token/current")

    assert response.status_code == 400
    assert response.json() == {"message": "Project API keys are revoked by an admin, not by themselves.", "errors": {}}
    assert agent_client.get("/api/v1/me").status_code == 200


def test_a_token_records_when_it_was_last_used(member, org):
    member("engineer", username="alice")
    client = _client(_login("alice").json()["token"])
    assert PersonalToken.objects.get().last_used_at is None

    before = timezone.now()
    client.get("/api/v1/me")

    last_used = PersonalToken.objects.get().last_used_at
    assert before <= last_used <= timezone.now()


def test_me_describes_a_project_key(agent_client):
    response = agent_client.get("/api/v1/me")

    assert response.json() == {"organization": "acme", "role": "agent", "username": None, "project": "support"}
