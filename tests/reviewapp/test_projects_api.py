"""A project's settings over the API: everyone in the organization lists projects with their
time zone; only admins change it (audited); another organization's project is a 404."""

from __future__ import annotations

import pytest
from django.test import Client

from reviewapp.models import AuditEvent, Project


def _url(project) -> str:
    return f"/api/v1/projects/{project.pk}"


def _unchanged(project) -> None:
    assert Project.objects.get(pk=project.pk).timezone == "UTC"
    assert not AuditEvent.objects.filter(kind="project.timezone_set").exists()


def test_the_list_shows_each_project_with_its_id_and_time_zone(api_client_for, project, other_project):
    Project.objects.filter(pk=project.pk).update(timezone="Asia/Tokyo")

    response = api_client_for("annotator").get("/api/v1/projects")

    assert response.status_code == 200
    assert [(p["id"], p["slug"], p["timezone"]) for p in response.json()] == [(project.pk, "support", "Asia/Tokyo")]


def test_an_admin_sets_the_time_zone_and_it_is_audited(api_client_for, project):
    admin = api_client_for("admin")

    response = admin.patch(_url(project), {"timezone": "Europe/Paris"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["timezone"] == "Europe/Paris"
    assert response.json()["id"] == project.pk
    assert Project.objects.get(pk=project.pk).timezone == "Europe/Paris"
    event = AuditEvent.objects.get(kind="project.timezone_set")
    assert (event.actor_user_id, event.organization_id, event.data) == (
        admin.user.pk,
        project.organization_id,
        {"from": "UTC", "to": "Europe/Paris"},
    )
    # The same zone again changes nothing and records nothing.
    assert admin.patch(_url(project), {"timezone": "Europe/Paris"}, format="json").status_code == 200
    assert AuditEvent.objects.filter(kind="project.timezone_set").count() == 1


@pytest.mark.parametrize(
    "value",
    ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/Paris\x00", "", "x" * 65, 3, None, ["UTC"]],
    ids=["unknown", "path", "nul", "empty", "too-long", "number", "null", "list"],
)
def test_a_bad_time_zone_is_a_400_naming_the_field(api_client_for, project, value):
    response = api_client_for("admin").patch(_url(project), {"timezone": value}, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"message", "errors"}
    assert list(body["errors"]) == ["timezone"]
    _unchanged(project)


def test_an_unknown_field_is_a_400_naming_it(api_client_for, project):
    response = api_client_for("admin").patch(_url(project), {"time_zone": "Europe/Paris"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"time_zone": ["Unknown field."]}
    _unchanged(project)


@pytest.mark.parametrize("role", ["annotator", "approver", "engineer"])
def test_only_admins_change_a_project(api_client_for, project, role):
    response = api_client_for(role).patch(_url(project), {"timezone": "Europe/Paris"}, format="json")

    assert response.status_code == 403
    _unchanged(project)


def test_an_agent_key_cannot_change_its_project(agent_client, project):
    assert agent_client.patch(_url(project), {"timezone": "Europe/Paris"}, format="json").status_code == 403
    _unchanged(project)


def test_another_organizations_project_is_a_404(api_client_for, project, other_project):
    response = api_client_for("admin").patch(_url(other_project), {"timezone": "Europe/Paris"}, format="json")

    assert response.status_code == 404
    assert Project.objects.get(pk=other_project.pk).timezone == "UTC"
    _unchanged(project)


@pytest.mark.parametrize("project_id", ["999999", str(2**63), "0", "abc"])
def test_a_missing_or_malformed_id_is_a_404(api_client_for, project, project_id):
    response = api_client_for("admin").patch(f"/api/v1/projects/{project_id}", {"timezone": "UTC"}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_anonymous_is_a_401(project):
    response = Client().patch(_url(project), {"timezone": "Europe/Paris"}, content_type="application/json")

    assert response.status_code == 401
    _unchanged(project)
