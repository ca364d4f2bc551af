"""GET/POST /api/v1/policy and /api/v1/ladders: versions, validation naming the field, ladders
that must exist, the default ladder made on first need, who may read and write."""

from __future__ import annotations

import pytest

from escalations.models import LadderVersion, PolicyVersion
from reviewapp.models import AuditEvent
from tests.escalations.factories import FINANCE_LADDER, REFUND_RULES, ladder_create, policy_create, request


@pytest.fixture
def engineer(api_client_for):
    return api_client_for("engineer")


def _post_policy(client, body, project="support"):
    return client.post("/api/v1/policy", {"project": project, **body}, format="json")


def _post_ladder(client, body, project="support"):
    return client.post("/api/v1/ladders", {"project": project, **body}, format="json")


# --- policy ------------------------------------------------------------------------------------


def test_each_saved_policy_is_the_next_version_and_get_answers_the_latest(engineer, project):
    assert _post_ladder(engineer, FINANCE_LADDER).status_code == 201

    first = _post_policy(engineer, {"rules": REFUND_RULES, "note": "first cut"})
    second = _post_policy(engineer, {"rules": REFUND_RULES[:1], "default_ladder": "finance"})
    current = engineer.get("/api/v1/policy?project=support")

    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert first.json()["note"] == "first cut"
    assert current.json() == second.json()
    assert current.json()["default_ladder"] == "finance"
    assert [r["name"] for r in current.json()["rules"]] == ["refund velocity"]
    assert current.json()["created_by"] == engineer.user.username
    assert list(PolicyVersion.objects.order_by("version").values_list("version", flat=True)) == [1, 2]
    audited = AuditEvent.objects.filter(kind="policy_version.created").order_by("id")
    assert [(e.actor_user, e.data["version"]) for e in audited] == [(engineer.user, 1), (engineer.user, 2)]


def test_without_a_policy_get_answers_what_is_in_force(engineer, project):
    body = engineer.get("/api/v1/policy?project=support").json()

    assert body == {
        "project": "support",
        "version": None,
        "rules": [],
        "default_ladder": "default",
        "note": "",
        "created_by": None,
        "created_at": None,
    }


def test_an_invalid_rule_is_a_400_naming_it_exactly(engineer, project):
    rules = [
        {"if": {"action": "cancel"}, "then": "approve"},
        {"if": {"args": [{"path": "amount", "op": "~=", "value": 5}]}, "then": "reject"},
    ]

    response = _post_policy(engineer, {"rules": rules})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["rules[1].if.args[0].op"]
    assert PolicyVersion.objects.count() == 0


def test_every_ladder_named_must_exist(engineer, project):
    rules = [{"if": {"action": "cancel"}, "then": "approve"}, {"then": "escalate", "ladder": "finance"}]

    by_rule = _post_policy(engineer, {"rules": rules})
    by_default = _post_policy(engineer, {"rules": rules[:1], "default_ladder": "legal"})

    assert (by_rule.status_code, list(by_rule.json()["errors"])) == (400, ["rules[1].ladder"])
    assert (by_default.status_code, list(by_default.json()["errors"])) == (400, ["default_ladder"])
    assert PolicyVersion.objects.count() == 0
    assert LadderVersion.objects.count() == 0


def test_a_policy_naming_the_default_ladder_creates_it(engineer, project):
    response = _post_policy(engineer, {"rules": [{"then": "escalate", "ladder": "default"}]})

    assert response.status_code == 201
    assert list(LadderVersion.objects.values_list("name", "version")) == [("default", 1)]


def test_a_ladder_of_another_project_does_not_count(engineer, project, org):
    from tests.factories import ProjectFactory

    ladder_create(ProjectFactory(organization=org, slug="sales"))

    response = _post_policy(engineer, {"rules": [{"then": "escalate", "ladder": "finance"}]})

    assert list(response.json()["errors"]) == ["rules[0].ladder"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rules": [], "note": "n" * 501}, "note"),
        ({"rules": [], "note": 5}, "note"),
        ({"rules": "all"}, "rules"),
        ({"rules": [], "surprise": 1}, "surprise"),
    ],
)
def test_other_bad_policy_bodies_are_400s_naming_the_field(engineer, project, body, field):
    response = _post_policy(engineer, body)

    assert (response.status_code, list(response.json()["errors"])) == (400, [field])
    assert PolicyVersion.objects.count() == 0


def test_an_agent_reads_its_projects_policy_but_may_not_write_it(agent_client, project):
    policy_create(project, [{"if": {"action": "cancel"}, "then": "approve"}])

    read = agent_client.get("/api/v1/policy")
    write = agent_client.post("/api/v1/policy", {"rules": []}, format="json")

    assert (read.status_code, read.json()["version"]) == (200, 1)
    assert write.status_code == 403
    assert PolicyVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("role", "read", "write"), [("annotator", 403, 403), ("approver", 200, 403), ("admin", 200, 201)]
)
def test_who_may_read_and_write_the_policy(api_client_for, project, role, read, write):
    client = api_client_for(role)

    assert client.get("/api/v1/policy?project=support").status_code == read
    assert _post_policy(client, {"rules": []}).status_code == write


def test_a_person_names_the_project(engineer, project):
    response = engineer.get("/api/v1/policy")

    assert (response.status_code, list(response.json()["errors"])) == (400, ["project"])


def test_another_organizations_project_is_unknown(engineer, other_project):
    policy_create(other_project, [])

    assert engineer.get("/api/v1/policy?project=shop").status_code == 400
    assert _post_policy(engineer, {"rules": []}, project="shop").status_code == 400
    assert PolicyVersion.objects.count() == 1


# --- ladders -------------------------------------------------------------------------------------


def test_each_saved_ladder_is_the_next_version_of_its_name(engineer, project):
    first = _post_ladder(engineer, FINANCE_LADDER)
    second = _post_ladder(engineer, {**FINANCE_LADDER, "tiers": [{"role": "admin", "timeout_seconds": 600}]})
    legal = _post_ladder(engineer, {**FINANCE_LADDER, "name": "legal"})

    assert [r.status_code for r in (first, second, legal)] == [201, 201, 201]
    assert [(r.json()["name"], r.json()["version"]) for r in (first, second, legal)] == [
        ("finance", 1),
        ("finance", 2),
        ("legal", 1),
    ]
    listed = engineer.get("/api/v1/ladders?project=support").json()
    assert [(ladder["name"], ladder["version"]) for ladder in listed] == [("finance", 2), ("legal", 1)]
    assert listed[0]["tiers"] == second.json()["tiers"]
    detail = engineer.get("/api/v1/ladders/finance?project=support").json()
    assert detail["ladder"] == second.json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert AuditEvent.objects.filter(kind="ladder_version.created").count() == 3


SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


@pytest.mark.parametrize(("role", "whole"), [("engineer", True), ("admin", True), ("approver", False)])
def test_the_notification_webhook_url_is_shown_whole_only_to_who_manages_ladders(
    api_client_for, engineer, agent_client, project, role, whole
):
    created = _post_ladder(engineer, {**FINANCE_LADDER, "notify_webhook_url": SLACK})
    assert created.json()["notify_webhook_url"] == SLACK  # the writer sees what they saved
    reader = api_client_for(role)

    listed = reader.get("/api/v1/ladders?project=support").json()
    detail = reader.get("/api/v1/ladders/finance?project=support").json()

    expected = SLACK if whole else "https://hooks.slack.com"
    assert [ladder["notify_webhook_url"] for ladder in listed] == [expected]
    assert [v["notify_webhook_url"] for v in (detail["ladder"], *detail["versions"])] == [expected, expected]
    # An agent key reads ladders but never the secret part of the URL.
    for body in (
        agent_client.get("/api/v1/ladders").json(),
        [agent_client.get("/api/v1/ladders/finance").json()["ladder"]],
    ):
        assert [ladder["notify_webhook_url"] for ladder in body] == ["https://hooks.slack.com"]
        assert "secret" not in str(body)


def test_an_invalid_ladder_is_a_400_naming_the_field(engineer, project):
    tiers = [{"role": "approver", "timeout_seconds": 900}, {"role": "admin", "timeout_seconds": 5}]

    response = _post_ladder(engineer, {**FINANCE_LADDER, "tiers": tiers})

    assert (response.status_code, list(response.json()["errors"])) == (400, ["tiers[1].timeout_seconds"])
    assert LadderVersion.objects.count() == 0


def test_a_ladder_may_not_approve_on_timeout(engineer, project):
    response = _post_ladder(engineer, {**FINANCE_LADDER, "timeout_outcome": "approve"})

    assert (response.status_code, list(response.json()["errors"])) == (400, ["timeout_outcome"])


def test_a_ladder_detail_without_a_project_finds_the_one_project_having_it(engineer, project, org):
    from tests.factories import ProjectFactory

    ladder_create(project)
    alone = engineer.get("/api/v1/ladders/finance")
    ladder_create(ProjectFactory(organization=org, slug="sales"))
    ambiguous = engineer.get("/api/v1/ladders/finance")
    named = engineer.get("/api/v1/ladders/finance?project=sales")

    assert (alone.status_code, alone.json()["ladder"]["project"]) == (200, "support")
    assert (ambiguous.status_code, list(ambiguous.json()["errors"])) == (400, ["project"])
    assert (named.status_code, named.json()["ladder"]["project"]) == (200, "sales")
    assert engineer.get("/api/v1/ladders/nope").status_code == 404


def test_another_tenants_ladder_is_not_found(engineer, agent_client, other_project, project):
    ladder_create(other_project)

    assert engineer.get("/api/v1/ladders/finance").status_code == 404
    assert agent_client.get("/api/v1/ladders/finance").status_code == 404
    assert agent_client.get("/api/v1/ladders").json() == []


@pytest.mark.parametrize("name", ["fin%00ance", "finance%00", "%00"])
def test_a_ladder_name_holding_nul_is_a_json_404_on_either_database(engineer, agent_client, project, name):
    # A NUL in a name reached PostgreSQL, which refuses it in a text parameter: a 500.
    ladder_create(project)

    for client in (engineer, agent_client):
        response = client.get(f"/api/v1/ladders/{name}?project=support")
        assert (response.status_code, response["Content-Type"]) == (404, "application/json"), name
        assert response.json() == {"message": "Not found.", "errors": {}}
    assert engineer.get(f"/api/v1/ladders/{name}").status_code == 404


def test_the_default_ladder_appears_once_an_action_needed_it(agent_client, project):
    assert agent_client.get("/api/v1/ladders").json() == []

    request(project)

    assert [(ladder["name"], ladder["version"]) for ladder in agent_client.get("/api/v1/ladders").json()] == [
        ("default", 1)
    ]
