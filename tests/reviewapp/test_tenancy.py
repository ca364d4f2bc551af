"""Two tenants, every endpoint: another organization's ids answer 404 (or "unknown"), never data."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from reviewapp import services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import ApiKey, Conversation, JudgeScore
from tests.factories import ProjectFactory, conversation_payload


def _ingest(project, external_id: str) -> int:
    [result] = services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(conversation_payload(external_id))]
    )
    return result.id


@pytest.fixture
def tenants(project, other_project):
    """acme/support and globex/shop, one conversation each (the same external_id in both)."""
    return {"acme": _ingest(project, "shared-id"), "globex": _ingest(other_project, "shared-id")}


@pytest.fixture(params=["key", "token"])
def acme_client(request, agent_client, api_client_for) -> APIClient:
    """An acme caller: the support project's key, or an acme admin's personal token."""
    return agent_client if request.param == "key" else api_client_for("admin")


def _with_project(client: APIClient, body: dict) -> dict:
    return body if getattr(client, "api_key", None) else {"project": "support", **body}


def test_listing_shows_only_the_callers_organization(acme_client, tenants):
    response = acme_client.get("/api/v1/conversations")

    assert [row["id"] for row in response.json()["results"]] == [tenants["acme"]]


def test_filtering_by_another_tenants_external_id_finds_only_our_own(acme_client, tenants):
    response = acme_client.get("/api/v1/conversations?external_id=shared-id")

    assert [row["id"] for row in response.json()["results"]] == [tenants["acme"]]


def test_another_tenants_conversation_is_404_like_a_missing_one(acme_client, tenants):
    foreign = acme_client.get(f"/api/v1/conversations/{tenants['globex']}")
    missing = acme_client.get("/api/v1/conversations/999999")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json() == {"message": "Conversation not found.", "errors": {}}


def test_the_other_tenant_still_reads_its_own(other_agent_client, tenants):
    response = other_agent_client.get(f"/api/v1/conversations/{tenants['globex']}")

    assert response.status_code == 200
    assert response.json()["project"] == "shop"


def test_a_person_cannot_filter_by_another_tenants_project(api_client_for, tenants):
    response = api_client_for("engineer").get("/api/v1/conversations?project=shop")

    assert response.status_code == 400
    assert response.json() == {"message": "Unknown project.", "errors": {"project": ["No project 'shop' here."]}}


def test_a_person_cannot_ingest_into_another_tenants_project(api_client_for, tenants):
    response = api_client_for("engineer").post(
        "/api/v1/conversations", {"project": "shop", **conversation_payload("sneaky")}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"project": ["No project 'shop' in this organization."]}
    assert not Conversation.objects.filter(external_id="sneaky").exists()


def test_a_project_slug_resolves_inside_the_callers_organization(api_client_for, project, other_org):
    globex_support = ProjectFactory(organization=other_org, slug="support")

    response = api_client_for("engineer").post(
        "/api/v1/conversations", {"project": "support", **conversation_payload("mine")}, format="json"
    )

    assert response.status_code == 201
    conversation = Conversation.objects.get(external_id="mine")
    assert conversation.project_id == project.pk
    assert conversation.organization_id == project.organization_id
    assert not Conversation.objects.filter(project=globex_support).exists()


def test_another_tenants_external_id_is_new_here_not_a_duplicate(acme_client, other_project):
    _ingest(other_project, "theirs")

    response = acme_client.post(
        "/api/v1/conversations", _with_project(acme_client, conversation_payload("theirs")), format="json"
    )

    assert response.json()["results"][0]["status"] == "created"
    assert Conversation.objects.filter(external_id="theirs").count() == 2


def test_judge_scores_cannot_reach_another_tenants_conversation(acme_client, other_project):
    foreign = _ingest(other_project, "theirs")
    scores_before = list(JudgeScore.objects.filter(conversation_id=foreign).values_list("pk", flat=True))

    response = acme_client.post(
        "/api/v1/judge-scores",
        _with_project(
            acme_client, {"judge_scores": [{"external_id": "theirs", "judge": "j", "criterion": "c", "score": 0}]}
        ),
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "judge_scores[0].external_id": ["No conversation with this external_id in project 'support'."]
    }
    assert list(JudgeScore.objects.filter(conversation_id=foreign).values_list("pk", flat=True)) == scores_before


def test_projects_lists_only_the_callers_organization(api_client_for, project, other_project):
    response = api_client_for("annotator").get("/api/v1/projects")

    assert [p["slug"] for p in response.json()] == ["support"]


def test_api_keys_list_and_revoke_stay_inside_the_organization(api_client_for, agent_client, other_agent_client):
    admin = api_client_for("admin")
    foreign = ApiKey.objects.get(project__slug="shop")

    listed = admin.get("/api/v1/api-keys").json()
    revoke = admin.post(f"/api/v1/api-keys/{foreign.pk}/revoke")

    assert [k["id"] for k in listed] == [agent_client.api_key.pk]
    assert revoke.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_me_names_the_callers_organization(acme_client, other_agent_client):
    assert acme_client.get("/api/v1/me").json()["organization"] == "acme"
    assert other_agent_client.get("/api/v1/me").json()["organization"] == "globex"
