"""GET/PUT /api/v1/projects/{id}/budget and /api/v1/queues/{id}/budget-controller; the budget
and rate on the queue payload and the queue list page."""

from __future__ import annotations

import pytest
from django.test import Client

from labeling import services
from labeling.models import ProjectBudget, Queue, RateChange
from reviewapp.models import AuditEvent
from reviewapp.principal import Principal
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(project) -> Queue:
    return make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)


def test_admin_sets_the_budget_and_engineers_read_it(api_client_for, project, queue):
    admin, engineer = api_client_for("admin"), api_client_for("engineer")
    body = {"daily_items": 100, "shares": {str(queue.pk): 0.4}}
    response = admin.put(f"/api/v1/projects/{project.pk}/budget", body, format="json")
    assert response.status_code == 200, response.content
    ConversationFactory(project=project, external_id="one")
    services.conversations_sample(
        project_id=project.pk, conversation_ids=list(project.conversations.values_list("pk", flat=True))
    )

    got = engineer.get(f"/api/v1/projects/{project.pk}/budget").json()
    assert got == {
        "project": project.slug,
        "timezone": "UTC",
        "daily_items": 100,
        "shares": {str(queue.pk): 0.4},
        "used": 1,
        "left": 99,
        "queues": [{"queue": queue.pk, "name": queue.name, "limit": 40, "used": 1, "left": 39, "share": 0.4}],
    }
    detail = engineer.get(f"/api/v1/queues/{queue.pk}").json()
    assert detail["budget"] == {
        "limit": 40,
        "used": 1,
        "left": 39,
        "share": 0.4,
        "project_used": 1,
        "project_left": 99,
    }
    assert engineer.get("/api/v1/queues").json()[0]["budget"]["left"] == 39


def test_engineers_cannot_write_and_annotators_cannot_read(api_client_for, project, queue):
    engineer, annotator = api_client_for("engineer"), api_client_for("annotator")
    assert engineer.put(f"/api/v1/projects/{project.pk}/budget", {"daily_items": 5}, format="json").status_code == 403
    assert annotator.get(f"/api/v1/projects/{project.pk}/budget").status_code == 403
    assert not ProjectBudget.objects.exists()
    assert not AuditEvent.objects.filter(kind="project.budget_set").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"daily_items": 0}, "daily_items"),
        ({"daily_items": 10**12}, "daily_items"),
        ({"daily_items": "many"}, "daily_items"),
        ({}, "daily_items"),
        ({"daily_items": 10, "shares": {"999999": 0.5}}, "shares.999999"),
        ({"daily_items": 10, "shares": "half"}, "shares"),
    ],
)
def test_bad_budgets_are_a_400_naming_the_field(api_client_for, project, queue, body, field):
    response = api_client_for("admin").put(f"/api/v1/projects/{project.pk}/budget", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not ProjectBudget.objects.exists()


def test_shares_over_one_are_refused(api_client_for, project, queue):
    other = make_queue(project, name="other", sampling=({"rate": 1.0},), backfill_days=0)
    body = {"daily_items": 10, "shares": {str(queue.pk): 0.6, str(other.pk): 0.5}}
    response = api_client_for("admin").put(f"/api/v1/projects/{project.pk}/budget", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"shares": ["The shares add up to more than 1."]}


def test_another_tenants_project_and_queue_are_404(api_client_for, other_project, project, queue):
    admin = api_client_for("admin")
    foreign = make_queue(other_project, sampling=({"rate": 1.0},), backfill_days=0)
    assert admin.get(f"/api/v1/projects/{other_project.pk}/budget").status_code == 404
    assert (
        admin.put(f"/api/v1/projects/{other_project.pk}/budget", {"daily_items": 5}, format="json").status_code == 404
    )
    body = {"enabled": True, "judge": "j"}
    assert admin.put(f"/api/v1/queues/{foreign.pk}/budget-controller", body, format="json").status_code == 404
    # A share naming another tenant's queue is no queue of this project.
    body = {"daily_items": 5, "shares": {str(foreign.pk): 0.5}}
    response = admin.put(f"/api/v1/projects/{project.pk}/budget", body, format="json")
    assert response.status_code == 400
    assert not ProjectBudget.objects.exists()


def test_admin_configures_and_pins_the_controller(api_client_for, queue):
    admin, engineer = api_client_for("admin"), api_client_for("engineer")
    url = f"/api/v1/queues/{queue.pk}/budget-controller"
    response = admin.put(url, {"enabled": True, "judge": "gpt-judge", "base_rate": 0.5}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["rate"] == 0.5
    response = admin.put(
        url, {"enabled": True, "judge": "gpt-judge", "base_rate": 0.5, "pinned_rate": 0.1}, format="json"
    )
    body = engineer.get(url).json()
    assert body["rate"] == 0.1
    assert [(c["old_rate"], c["new_rate"], c["reason"]) for c in body["changes"]] == [
        (0.5, 0.1, "pinned by an admin"),
        (None, 0.5, "controller settings changed"),
    ]
    assert engineer.get(f"/api/v1/queues/{queue.pk}").json()["sampling_rate"] == 0.1
    assert engineer.put(url, {"enabled": False}, format="json").status_code == 403
    bad = admin.put(url, {"enabled": True, "judge": "j", "step": 2}, format="json")
    assert bad.status_code == 400
    assert "step" in bad.json()["errors"]
    assert RateChange.objects.count() == 2


def test_the_queue_list_shows_budget_and_rate_to_managers_only(project, member, queue, api_client_for):
    services.project_budget_set(
        principal=_admin_principal(project), project=project, daily_items=50, shares={str(queue.pk): 0.5}
    )
    services.queue_budget_controller_set(
        principal=_admin_principal(project), queue=queue, data={"enabled": True, "judge": "j", "base_rate": 0.25}
    )
    engineer, annotator = Client(), Client()
    engineer.force_login(member("engineer"))
    annotator.force_login(member("annotator"))
    html = engineer.get("/labeling/").content.decode()
    assert "Budget today: 0 used · 25 left of 25 (50% of the project) · project 0 used, 50 left" in html
    assert "Sampling rate 0.25" in html
    assert "Sampling rate 0.25; last change" in html
    assert "0.25, controller settings changed" in html
    assert "Budget today" not in annotator.get("/labeling/").content.decode()


def _admin_principal(project):
    return Principal(organization=project.organization, role="admin")
