"""POST/GET /api/v1/actions: an agent asks before acting, and the current policy approves,
rejects or escalates. Bounds of every field, idempotent repeats and the 409, the policy's
outcomes (velocity included), the fail-safe paths, the trail, tenant isolation, hostile text,
and the query counts of the hot paths."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

import pytest
from django.db import connection
from rest_framework.test import APIClient

from escalations import action_input, policies, selectors, serializers, services
from escalations.models import Action, ActionEvent, LadderVersion, PolicyVersion
from reviewapp import services as core_services
from tests.escalations.factories import (
    NOW,
    REFUND_RULES,
    ladder_create,
    policy_create,
    refund_policy,
    request,
    request_body,
)
from tests.factories import ConversationFactory, ProjectFactory


def _post(client, body):
    return client.post("/api/v1/actions", body, format="json")


def _digest(action: str, args: dict) -> str:
    canonical = json.dumps({"action": action, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- bounds ----------------------------------------------------------------------------------


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


BAD_FIELDS = [
    ("external_id", {"external_id": None}, "external_id"),
    ("external_id blank", {"external_id": "  "}, "external_id"),
    ("external_id long", {"external_id": "x" * 256}, "external_id"),
    ("external_id number", {"external_id": 5}, "external_id"),
    ("action missing", {"action": None}, "action"),
    ("action long", {"action": "a" * 101}, "action"),
    ("action space", {"action": "refund now"}, "action"),
    ("action glob", {"action": "refund*"}, "action"),
    ("action leading dash", {"action": "-refund"}, "action"),
    ("action number", {"action": 7}, "action"),
    ("args list", {"args": [1, 2]}, "args"),
    ("args text", {"args": "amount=400"}, "args"),
    ("args deep", {"args": _deep(33)}, "args" + ".a" * 32),
    ("args big", {"args": {"note": "x" * 70_000}}, "args"),
    ("confidence high", {"confidence": 1.5}, "confidence"),
    ("confidence negative", {"confidence": -0.1}, "confidence"),
    ("confidence text", {"confidence": "high"}, "confidence"),
    ("confidence bool", {"confidence": True}, "confidence"),
    ("confidence int", {"confidence": 2}, "confidence"),
    ("confidence huge int", {"confidence": 10**400}, "confidence"),
    ("risk_tags text", {"risk_tags": "money"}, "risk_tags"),
    ("risk_tags many", {"risk_tags": [f"t{i}" for i in range(21)]}, "risk_tags"),
    ("risk_tag empty", {"risk_tags": ["money", ""]}, "risk_tags[1]"),
    ("risk_tag long", {"risk_tags": ["x" * 65]}, "risk_tags[0]"),
    ("risk_tag number", {"risk_tags": [1]}, "risk_tags[0]"),
    ("reasoning long", {"reasoning": "x" * 20_001}, "reasoning"),
    ("reasoning number", {"reasoning": 5}, "reasoning"),
    ("reasoning NUL", {"reasoning": "a\x00b"}, "reasoning"),
    ("end_user_id long", {"end_user_id": "u" * 256}, "end_user_id"),
    ("conversation_external_id long", {"conversation_external_id": "c" * 256}, "conversation_external_id"),
    ("agent_version long", {"agent_version": "v" * 101}, "agent_version"),
    ("callback ftp", {"callback_url": "ftp://agent.example.com/x"}, "callback_url"),
    ("callback javascript", {"callback_url": "javascript:alert(1)"}, "callback_url"),
    ("callback userinfo", {"callback_url": "https://user:pw@agent.example.com/"}, "callback_url"),
    ("callback user only", {"callback_url": "https://user@agent.example.com/"}, "callback_url"),
    ("callback no host", {"callback_url": "https:///path"}, "callback_url"),
    ("callback space", {"callback_url": "https://agent.example.com/a b"}, "callback_url"),
    ("callback newline", {"callback_url": "https://agent.example.com/\nX-Injected: 1"}, "callback_url"),
    ("callback bad port", {"callback_url": "https://agent.example.com:99999/"}, "callback_url"),
    ("callback long", {"callback_url": "https://agent.example.com/" + "a" * 2000}, "callback_url"),
    ("callback relative", {"callback_url": "/hooks"}, "callback_url"),
    ("callback localhost", {"callback_url": "http://localhost:8080/hooks"}, "callback_url"),
    ("callback loopback", {"callback_url": "http://127.0.0.1/hooks"}, "callback_url"),
    ("callback metadata", {"callback_url": "http://169.254.169.254/latest/meta-data/"}, "callback_url"),
    ("callback private v6", {"callback_url": "http://[fd00::1]/hooks"}, "callback_url"),
    ("unknown field", {"confidense": 0.9}, "confidense"),
    ("project of another key", {"project": "elsewhere"}, "project"),
]


@pytest.mark.parametrize(("overrides", "field"), [(o, f) for _, o, f in BAD_FIELDS], ids=[n for n, _, _ in BAD_FIELDS])
def test_a_bad_field_is_a_400_naming_it_and_stores_nothing(agent_client, project, overrides, field):
    body = {k: v for k, v in {**request_body(), **overrides}.items() if v is not None}

    response = _post(agent_client, body)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert list(response.json()["errors"]) == [field]
    assert Action.objects.count() == 0
    assert ActionEvent.objects.count() == 0


def test_a_private_callback_is_accepted_when_private_hosts_are_allowed(agent_client, project, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True

    response = _post(agent_client, request_body(callback_url="http://127.0.0.1:9000/hooks"))

    assert response.status_code == 201
    assert response.json()["callback_url"] == "http://127.0.0.1:9000/hooks"


def test_a_body_that_is_not_an_object_is_a_400(agent_client):
    response = agent_client.post("/api/v1/actions", [request_body()], format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["body"]


def test_the_largest_values_allowed_are_stored(agent_client, project):
    body = request_body(
        external_id="e" * 255,
        action="a" * 100,
        confidence=1,
        risk_tags=["t" * 64] * 20,
        reasoning="r" * 20_000,
        end_user_id="u" * 255,
        conversation_external_id="c" * 255,
        agent_version="v" * 100,
        callback_url="https://agent.example.com/" + "p" * (2000 - 26),
        args=_deep(32),
    )

    response = _post(agent_client, body)

    assert response.status_code == 201, response.content
    action = Action.objects.get()
    assert (action.external_id, action.action, action.confidence) == ("e" * 255, "a" * 100, 1.0)
    assert (len(action.reasoning), len(action.callback_url), action.args) == (20_000, 2000, _deep(32))


def test_a_person_names_the_project_and_an_agent_may_name_its_own(api_client_for, agent_client, project):
    engineer = api_client_for("engineer")

    missing = _post(engineer, request_body())
    named = _post(engineer, {**request_body(), "project": project.slug})
    own = _post(agent_client, {**request_body("act-2"), "project": project.slug})

    assert (missing.status_code, list(missing.json()["errors"])) == (400, ["project"])
    assert named.status_code == 201
    assert own.status_code == 201
    assert Action.objects.get(external_id="act-1").created_by_user == engineer.user
    assert Action.objects.get(external_id="act-2").created_by_key == agent_client.api_key


# --- idempotency -------------------------------------------------------------------------------


def test_the_same_request_again_answers_200_with_the_same_action(agent_client, project):
    refund_policy(project)
    first = _post(agent_client, request_body())
    # The same args in another key order are the same args.
    again = _post(agent_client, request_body(args={"booking": "ABC123", "currency": "USD", "amount": 400}))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Action.objects.count() == 1
    assert ActionEvent.objects.count() == 2  # created, policy_decided: the repeat adds nothing


def test_an_absent_optional_field_equals_its_default():
    sent = action_input.action_input_parse({"external_id": "a", "action": "refund"})
    spelled = action_input.action_input_parse(
        {"external_id": "a", "action": "refund", "args": {}, "risk_tags": [], "reasoning": "", "callback_url": ""}
    )

    assert action_input.first_difference(sent, spelled) is None


CHANGES = [
    ("action", "cancel_booking"),
    ("args", {"amount": 401, "currency": "USD", "booking": "ABC123"}),
    ("confidence", 0.5),
    ("risk_tags", ["money", "pii"]),
    ("reasoning", "Changed my mind."),
    ("end_user_id", "customer-999"),
    ("conversation_external_id", "conv-999"),
    ("agent_version", "v3"),
    ("callback_url", "https://agent.example.com/other"),
]


def test_every_field_of_the_request_is_compared():
    assert [name for name, _ in CHANGES] == list(action_input.FIELDS)


@pytest.mark.parametrize(("field", "value"), CHANGES, ids=[c[0] for c in CHANGES])
def test_the_same_external_id_with_a_different_field_is_a_409_naming_it(agent_client, project, field, value):
    first = _post(agent_client, request_body())

    response = _post(agent_client, request_body(**{field: value}))

    assert response.status_code == 409
    body = response.json()
    assert list(body["errors"]) == [field]
    assert str(first.json()["id"]) in body["errors"][field][0]
    assert Action.objects.count() == 1
    assert Action.objects.get().external_id == "act-1"


@pytest.mark.parametrize(
    ("stored", "sent"),
    [(400, 400.0), (1, True), (0, False), (None, 0), ("400", 400)],
    ids=["int-float", "one-true", "zero-false", "null-zero", "text-number"],
)
def test_args_compare_as_json_not_as_python_equality(agent_client, project, stored, sent):
    _post(agent_client, request_body(args={"amount": stored}))

    response = _post(agent_client, request_body(args={"amount": sent}))

    assert (response.status_code, list(response.json()["errors"])) == (409, ["args"])


def test_a_409_names_the_first_field_that_differs(agent_client, project):
    _post(agent_client, request_body())

    response = _post(agent_client, request_body(callback_url="https://x.example.com/", reasoning="Other"))

    assert list(response.json()["errors"]) == ["reasoning"]


def test_external_ids_are_per_project(agent_client, project, org):
    other = ProjectFactory(organization=org, slug="sales")

    request(project)
    request(other)

    assert Action.objects.filter(external_id="act-1").count() == 2


# --- the policy's outcomes ----------------------------------------------------------------------


def test_a_small_confident_refund_is_approved_by_the_policy(agent_client, project):
    refund_policy(project)

    response = _post(agent_client, request_body(args={"amount": 40, "currency": "USD"}))

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("status", "decided_by", "matched_rule", "matched_rule_index", "policy_version")} == {
        "status": "approved",
        "decided_by": "policy",
        "matched_rule": "confident refund",
        "matched_rule_index": 2,
        "policy_version": 1,
    }
    assert body["reason"] == "Small refund, confident agent"
    assert body["final_args"] == {"amount": 40, "currency": "USD"}
    assert body["args_digest"] == _digest("refund", {"amount": 40, "currency": "USD"})
    assert body["args_digest"] == policies.args_digest("refund", {"currency": "USD", "amount": 40})
    assert (body["tier"], body["due_at"], body["ladder"], body["decided_at"] is not None) == (None, None, None, True)


def test_a_forbidden_action_is_rejected_by_the_policy(agent_client, project):
    refund_policy(project)

    body = _post(agent_client, request_body(action="delete_account", args={"account": "c-812"})).json()

    assert (body["status"], body["decided_by"], body["matched_rule"]) == ("rejected", "policy", "no deleting accounts")
    assert body["reason"] == "Agents may not delete accounts"
    assert (body["final_args"], body["args_digest"]) == (None, None)  # nothing to run
    assert body["args"] == {"account": "c-812"}


def test_a_big_refund_escalates_to_the_first_tier_of_its_ladder(agent_client, project):
    refund_policy(project)
    action = request(project, request_body(args={"amount": 600}))

    body = agent_client.get(f"/api/v1/actions/{action.pk}").json()

    assert {k: body[k] for k in ("status", "decided_by", "decided_at", "ladder", "ladder_version", "tier")} == {
        "status": "pending",
        "decided_by": None,
        "decided_at": None,
        "ladder": "finance",
        "ladder_version": 1,
        "tier": 0,
    }
    assert body["due_at"] == "2026-11-20T10:15:00Z"  # the finance ladder's first tier: 900 s
    assert (body["matched_rule"], body["reason"]) == ("big refund", "Refund over $500")
    assert (body["final_args"], body["args_digest"]) == (None, None)
    action.refresh_from_db()
    assert (action.tier_entered_at, action.policy_outcome) == (NOW, "escalate")


def test_an_escalation_pins_the_ladder_version_it_entered(project):
    refund_policy(project)
    before = request(project, request_body("a-1", args={"amount": 600}))
    ladder_create(project, tiers=[{"role": "admin", "timeout_seconds": 120}])

    after = request(project, request_body("a-2", args={"amount": 600}))

    before.refresh_from_db()
    assert (before.ladder.version, after.ladder.version) == (1, 2)
    assert (before.due_at - NOW, after.due_at - NOW) == (dt.timedelta(seconds=900), dt.timedelta(seconds=120))


def test_the_third_400_dollar_refund_to_one_customer_in_a_day_escalates(agent_client, project):
    refund_policy(project)

    answers = [_post(agent_client, request_body(f"r-{i}", end_user_id="customer-812")).json() for i in range(3)]
    other = _post(agent_client, request_body("r-other", end_user_id="customer-9")).json()

    assert [a["status"] for a in answers] == ["approved", "approved", "pending"]
    assert (answers[2]["matched_rule"], answers[2]["ladder"]) == ("refund velocity", "finance")
    assert other["status"] == "approved"


def test_velocity_counts_the_window_of_one_customer_only(project):
    refund_policy(project)
    day = dt.timedelta(days=1)
    request(project, request_body("old", end_user_id="c"), now=NOW - day - dt.timedelta(seconds=1))
    rejected = request(project, request_body("rejected", end_user_id="c", action="delete_account"), now=NOW - day)
    request(project, request_body("in-1", end_user_id="c"), now=NOW - day)  # the window's first second
    request(project, request_body("in-2", end_user_id="c"), now=NOW - dt.timedelta(hours=1))

    window = policies.VelocityWindow(of="sum", path="amount", by="end_user_id", seconds=86400, action=None)
    facts = policies.ActionFacts(
        action="refund", args={"amount": 400}, confidence=0.95, risk_tags=(), agent_version="v2", end_user_id="c"
    )
    total = selectors.velocity_total(project_id=project.pk, window=window, facts=facts, now=NOW)
    count = selectors.velocity_total(
        project_id=project.pk,
        window=policies.VelocityWindow("count", None, "end_user_id", 86400, None),
        facts=facts,
        now=NOW,
    )

    assert rejected.status == "rejected"
    # "old" is a second too early and "rejected" another action (and rejected); "in-1" on the
    # window's first second counts, and so does "in-2", which escalated: pending counts too.
    assert (total, count) == (800.0, 2.0)


def test_velocity_by_project_and_agent_version_and_a_glob_of_action_names(project, org):
    other = ProjectFactory(organization=org, slug="other")
    request(project, request_body("a", action="refund", args={"amount": 100}, agent_version="v1", end_user_id="x"))
    request(project, request_body("b", action="refund_partial", args={"amount": 50}, agent_version="v2"))
    request(project, request_body("c", action="cancel", args={"amount": 1000}, agent_version="v1"))
    request(other, request_body("d", action="refund", args={"amount": 7}, agent_version="v1"))
    facts = policies.ActionFacts("refund", {"amount": 1}, 0.5, (), "v1", "y")

    def total(by: str, action: str | None) -> float:
        window = policies.VelocityWindow("sum", "amount", by, 3600, action)
        return selectors.velocity_total(project_id=project.pk, window=window, facts=facts, now=NOW)

    assert total("project", "refund*") == 150.0
    assert total("project", None) == 100.0
    assert total("agent_version", "*") == 1100.0
    assert total("agent_version", "re[f]und") == 100.0
    assert total("project", "[!r]*") == 1000.0


def test_velocity_sums_only_numbers_at_the_path(project):
    for i, amount in enumerate([10, 2.5, "30", True, None, [1], {"v": 1}, 10**30]):
        request(project, request_body(f"a-{i}", args={"refund": {"amount": amount}}, action="pay"))
    request(project, request_body("missing", args={}, action="pay"))
    facts = policies.ActionFacts("pay", {}, None, (), "v2", "customer-812")
    window = policies.VelocityWindow("sum", "refund.amount", "end_user_id", 3600, None)

    assert selectors.velocity_total(project_id=project.pk, window=window, facts=facts, now=NOW) == float(10**30 + 12.5)


def test_no_policy_escalates_everything_to_a_default_ladder_made_on_first_need(agent_client, project):
    body = _post(agent_client, request_body(args={"amount": 1})).json()

    assert {k: body[k] for k in ("status", "ladder", "ladder_version", "tier", "policy_version", "matched_rule")} == {
        "status": "pending",
        "ladder": "default",
        "ladder_version": 1,
        "tier": 0,
        "policy_version": None,
        "matched_rule": None,
    }
    assert body["reason"] == services.NO_POLICY
    ladder = LadderVersion.objects.get()
    assert (ladder.name, ladder.tiers, ladder.timeout_outcome) == (
        "default",
        [{"role": "approver", "timeout_seconds": 3600, "approvals_required": 1}],
        "reject",
    )
    _post(agent_client, request_body("act-2"))
    assert LadderVersion.objects.count() == 1


def test_no_rule_matched_escalates_to_the_policys_default_ladder(project):
    ladder_create(project)
    policy_create(project, [{"if": {"action": "cancel"}, "then": "approve"}], default_ladder="finance")

    action = request(project)

    assert (action.status, action.ladder.name, action.policy_version, action.matched_rule_index) == (
        "pending",
        "finance",
        1,
        None,
    )
    assert action.reason == "No rule matched; escalated to the default ladder"


def test_an_error_while_evaluating_escalates_and_never_approves(agent_client, project, monkeypatch, caplog):
    refund_policy(project)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(policies, "policy_evaluate", broken)
    with caplog.at_level(logging.ERROR):
        body = _post(agent_client, request_body(args={"amount": 1})).json()

    assert (body["status"], body["ladder"], body["reason"], body["decided_by"]) == (
        "pending",
        "default",
        services.EVALUATION_FAILED,
        None,
    )
    assert (body["policy_version"], body["matched_rule"]) == (1, None)
    assert "could not be evaluated" in caplog.text


def test_a_velocity_query_that_fails_in_the_database_escalates_and_the_request_still_commits(
    agent_client, project, monkeypatch
):
    refund_policy(project)

    def failing_query(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM escalations_action")
        return 0.0

    monkeypatch.setattr(selectors, "velocity_total", failing_query)
    response = _post(agent_client, request_body())

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["reason"]) == ("pending", services.EVALUATION_FAILED)
    assert Action.objects.get().status == "pending"
    # The failed attempt was rolled back whole: one action, one trail.
    assert list(ActionEvent.objects.order_by("id").values_list("kind", flat=True)) == [
        "created",
        "escalated",
        "tier_entered",
    ]


def test_a_stored_policy_that_no_longer_loads_escalates(project):
    refund_policy(project)
    PolicyVersion.objects.update(rules=[{"then": "approve", "if": {"args": [{"path": "a", "op": "~", "value": 1}]}}])

    action = request(project)

    assert (action.status, action.reason, action.ladder.name) == ("pending", services.EVALUATION_FAILED, "default")


def test_a_rule_naming_a_ladder_that_is_gone_escalates_to_the_default_ladder(project):
    refund_policy(project)
    LadderVersion.objects.filter(name="finance").update(name="renamed-by-hand")

    action = request(project, request_body(args={"amount": 900}))

    assert (action.status, action.ladder.name, action.matched_rule) == ("pending", "default", "big refund")


# --- the trail ---------------------------------------------------------------------------------


def test_the_trail_of_an_escalated_action(agent_client, project):
    refund_policy(project)
    action = request(project, request_body(args={"amount": 600}))

    events = agent_client.get(f"/api/v1/actions/{action.pk}/events").json()["results"]

    assert [(e["kind"], e["actor"]) for e in events] == [("created", None), ("escalated", None), ("tier_entered", None)]
    assert events[1]["data"] == {
        "policy_version": 1,
        "rule": "big refund",
        "rule_index": 1,
        "reason": "Refund over $500",
        "ladder": "finance",
        "ladder_version": 1,
    }
    assert events[2]["data"] == {"tier": 0, "due_at": "2026-11-20T10:15:00+00:00"}
    assert {e["created_at"] for e in events} == {"2026-11-20T10:00:00Z"}


def test_the_trail_names_the_agent_key_that_asked(agent_client, project):
    refund_policy(project)
    created = _post(agent_client, request_body()).json()

    events = agent_client.get(f"/api/v1/actions/{created['id']}/events").json()["results"]

    assert [(e["kind"], e["actor"]) for e in events] == [
        ("created", f"key:{agent_client.api_key.prefix}"),
        ("policy_decided", None),
    ]
    assert events[1]["data"]["outcome"] == "approve"


# --- reading ---------------------------------------------------------------------------------


def test_the_list_is_newest_first_filtered_and_cursor_paginated(agent_client, project):
    refund_policy(project)
    request(project, request_body("a", args={"amount": 10}, end_user_id="u1"), now=NOW - dt.timedelta(hours=2))
    request(project, request_body("b", args={"amount": 900}, agent_version="v9"), now=NOW - dt.timedelta(hours=1))
    request(project, request_body("c", action="delete_account"), now=NOW)

    def ids(query: str) -> list[str]:
        response = agent_client.get(f"/api/v1/actions{query}")
        assert response.status_code == 200, response.content
        return [a["external_id"] for a in response.json()["results"]]

    assert ids("") == ["c", "b", "a"]
    assert ids("?status=pending") == ["b"]
    assert ids("?action=delete_account") == ["c"]
    assert ids("?since=2026-11-20T09:00:00Z") == ["c", "b"]
    assert ids("?agent_version=v9") == ["b"]
    assert ids("?end_user_id=u1") == ["a"]
    first = agent_client.get("/api/v1/actions?limit=2").json()
    second = agent_client.get(first["next"]).json()
    assert [a["external_id"] for a in first["results"] + second["results"]] == ["c", "b", "a"]
    assert second["next"] is None


@pytest.mark.parametrize("query", ["?status=maybe", "?since=yesterday", "?cursor=cD1hYmM%3D", "?project=nope"])
def test_bad_list_parameters_are_400s(api_client_for, query):
    response = api_client_for("engineer").get(f"/api/v1/actions{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_people_see_their_organization_and_filter_by_project(api_client_for, project, org):
    sales = ProjectFactory(organization=org, slug="sales")
    request(project, request_body("support-1"))
    request(sales, request_body("sales-1"))
    approver = api_client_for("approver")

    everything = approver.get("/api/v1/actions").json()["results"]
    one = approver.get("/api/v1/actions?project=sales").json()["results"]

    assert sorted(a["external_id"] for a in everything) == ["sales-1", "support-1"]
    assert [(a["external_id"], a["project"]) for a in one] == [("sales-1", "sales")]


def test_another_tenants_action_is_a_404(api_client_for, agent_client, other_agent_client, project, org, other_project):
    mine = request(project)
    theirs = request(other_project)
    sales = ProjectFactory(organization=org, slug="sales")
    sales_client = APIClient()
    sales_client.credentials(HTTP_AUTHORIZATION=f"Bearer {core_services.api_key_create(project=sales, name='s').raw}")
    engineer = api_client_for("engineer")

    assert engineer.get(f"/api/v1/actions/{theirs.pk}").status_code == 404
    assert engineer.get(f"/api/v1/actions/{theirs.pk}/events").status_code == 404
    assert other_agent_client.get(f"/api/v1/actions/{mine.pk}").status_code == 404
    # An agent key reads its own project only, even within its organization.
    assert sales_client.get(f"/api/v1/actions/{mine.pk}").status_code == 404
    assert sales_client.get(f"/api/v1/actions/{mine.pk}/events").status_code == 404
    assert sales_client.get("/api/v1/actions").json()["results"] == []
    assert [a["id"] for a in other_agent_client.get("/api/v1/actions").json()["results"]] == [theirs.pk]
    assert engineer.get(f"/api/v1/actions/{mine.pk}").status_code == 200


def test_hostile_strings_are_stored_exactly_and_answered_as_json(agent_client, project):
    hostile = "<script>alert('x')</script>\u202e\"; DROP TABLE escalations_action; --\u2028😈\\u0000"
    body = request_body(
        external_id=hostile[:200],
        reasoning=hostile * 10,
        end_user_id=hostile,
        agent_version=hostile[:100],
        conversation_external_id=hostile,
        risk_tags=[hostile[:64]],
        args={hostile: [hostile, {"</script>": hostile}], "amount": 1},
    )

    created = _post(agent_client, body)
    read = agent_client.get(f"/api/v1/actions/{created.json()['id']}")

    assert created.status_code == 201
    assert read["Content-Type"] == "application/json"
    for response in (created, read):
        answer = response.json()
        for field in ("external_id", "reasoning", "end_user_id", "agent_version", "conversation_external_id", "args"):
            assert answer[field] == body[field], field
        assert answer["risk_tags"] == body["risk_tags"]
    stored = Action.objects.get()
    assert (stored.reasoning, stored.args) == (body["reasoning"], body["args"])


# --- query counts ------------------------------------------------------------------------------


def _warm(client) -> None:
    """A first request stamps the key's last use (at most once a minute): not the path measured."""
    assert client.get("/api/v1/me").status_code == 200


def test_queries_to_create_an_action_decided_by_a_policy(agent_client, project, django_assert_num_queries):
    policy_create(project, [{"if": {"action": "refund", "confidence_at_least": 0.9}, "then": "approve"}])
    ConversationFactory(project=project, external_id="conv-812")
    _warm(agent_client)

    # the key with the request's context (external_id taken? the policy in force: one
    # statement, was three), savepoint, conversation, insert, events (on PostgreSQL one
    # statement with the insert), the decision's webhook delivery (the outbox row for
    # callback_url), release
    with django_assert_num_queries(7 - (connection.vendor == "postgresql")):
        response = _post(agent_client, request_body(args={"amount": 40}))
    assert (response.json()["status"], response.json()["conversation_id"] is not None) == ("approved", True)


def test_an_action_decided_on_arrival_schedules_only_its_webhook(
    agent_client, project, django_capture_on_commit_callbacks
):
    """Nobody can wait on an id not yet answered, and a policy's decision makes no calibration
    pair: the hot path publishes nothing to Redis and enqueues no task, only the webhook."""
    policy_create(project, [{"if": {"action": "refund"}, "then": "approve"}])
    with django_capture_on_commit_callbacks() as callbacks:
        assert _post(agent_client, request_body("quiet", callback_url="")).json()["status"] == "approved"
    assert callbacks == []

    with django_capture_on_commit_callbacks() as callbacks:
        assert _post(agent_client, request_body("told")).json()["status"] == "approved"
    assert [cb.__qualname__.split(".")[0] for cb in callbacks] == ["_delivery_insert"]


def test_queries_to_create_an_action_with_a_velocity_rule_that_escalates(
    agent_client, project, django_assert_num_queries
):
    refund_policy(project)
    _post(agent_client, request_body("r-0"))
    _post(agent_client, request_body("r-1"))

    # the key with the request's context (external_id taken? the policy in force: one
    # statement, was three), savepoint, velocity sum (no savepoint of its own any more: a
    # database error there starts the request over, see the test above), ladder,
    # conversation, insert, events, release; on PostgreSQL the velocity lock is one more
    # statement and the events one less (inserted with the action).
    with django_assert_num_queries(8):
        response = _post(agent_client, request_body("r-2"))
    assert response.json()["status"] == "pending"


def test_queries_to_repeat_a_request(agent_client, project, django_assert_num_queries):
    refund_policy(project)
    _post(agent_client, request_body())

    # the key with the request's context (the external_id is taken), savepoint, the existing
    # action (with its project, ladder and people), release.
    with django_assert_num_queries(4):
        assert _post(agent_client, request_body()).status_code == 200


def test_queries_to_read_an_action(agent_client, project, django_assert_num_queries):
    refund_policy(project)
    action = request(project, request_body(args={"amount": 900}))
    _warm(agent_client)

    with django_assert_num_queries(2):  # key, the action with its project, ladder and people
        assert agent_client.get(f"/api/v1/actions/{action.pk}").status_code == 200


def test_the_policy_in_the_rules_fixture_is_the_issues_example():
    velocity = REFUND_RULES[0]["if"]["velocity"][0]
    assert velocity == {
        "window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400},
        "op": ">",
        "value": 1000,
    }


def test_the_payloads_are_the_documented_serializers(project):
    """The payloads are built directly for speed; the serializers document them in OpenAPI."""
    refund_policy(project)
    pending = selectors.action_get(
        organization=project.organization, action_id=request(project, request_body(args={"amount": 900})).pk
    )
    approved = selectors.action_get(
        organization=project.organization, action_id=request(project, request_body("a-2", args={"amount": 9})).pk
    )
    event = selectors.action_event_list(organization=project.organization, action=pending).first()

    for action in (pending, approved):
        payload = serializers.action_payload(action)
        assert list(payload) == list(serializers.ActionOutputSerializer().fields)
        documented = serializers.ActionOutputSerializer(data=payload)
        assert documented.is_valid(), documented.errors
    assert list(serializers.action_event_payload(event)) == list(serializers.ActionEventOutputSerializer().fields)
    version = PolicyVersion.objects.get()
    assert list(serializers.policy_version_payload(version, project_slug="support")) == list(
        serializers.PolicyVersionOutputSerializer().fields
    )
    ladder = LadderVersion.objects.get(name="finance")
    assert list(serializers.ladder_version_payload(ladder, project_slug="support", reveal_webhook=False)) == list(
        serializers.LadderVersionOutputSerializer().fields
    )
