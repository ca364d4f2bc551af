"""The dry run (`POST /api/v1/policy/simulate`), the envelopes (`GET /api/v1/actions/envelopes`)
and the human decisions store, over actions with known histories."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalations import selectors_insight, simulation
from escalations.models import Action, PolicyVersion
from escalations.policies import VelocityWindow
from tests.escalations.factories_insight import ladder_for, past_action

pytestmark = pytest.mark.django_db

SIMULATE = "/api/v1/policy/simulate"
ENVELOPES = "/api/v1/actions/envelopes"
NOW = timezone.now().replace(microsecond=0)

APPROVE_CONFIDENT = {
    "name": "confident refunds",
    "if": {"action": "refund", "confidence_at_least": 0.9},
    "then": "approve",
}
BUSY_CUSTOMERS = {
    "name": "busy customers",
    "if": {
        "action": "refund",
        "velocity": [
            {"window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400}, "op": ">", "value": 1000}
        ],
    },
    "then": "escalate",
}


def simulate(client, policy, **body):
    return client.post(SIMULATE, {"project": "support", "policy": policy, **body}, format="json")


# --- roles and tenants ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"), [("engineer", True), ("admin", True), ("approver", False), ("annotator", False)]
)
def test_simulate_and_envelopes_need_escalations_manage(api_client_for, project, role, allowed):
    client = api_client_for(role)
    answer = simulate(client, {"rules": []})
    assert answer.status_code == (200 if allowed else 403), answer.content
    answer = client.get(ENVELOPES, {"project": "support"})
    assert answer.status_code == (200 if allowed else 403)


def test_an_agent_key_may_not_simulate(agent_client, project):
    assert agent_client.post(SIMULATE, {"policy": {"rules": []}}, format="json").status_code == 403
    assert agent_client.get(ENVELOPES).status_code == 403


def test_another_tenants_actions_and_projects_stay_out(api_client_for, project, other_project):
    past_action(other_project, at=NOW - dt.timedelta(hours=1), human="reject")
    past_action(project, at=NOW - dt.timedelta(hours=1), human="reject")
    client = api_client_for("engineer")
    report = simulate(client, {"rules": [APPROVE_CONFIDENT]}).json()
    assert report["replayed"] == 1
    answer = client.post(SIMULATE, {"project": "shop", "policy": {"rules": []}}, format="json")
    assert answer.status_code == 400
    assert "project" in answer.json()["errors"]
    assert client.get(ENVELOPES, {"project": "shop"}).status_code == 400


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"policy": {"rules": [{"then": "maybe"}]}}, "policy.rules[0].then"),
        ({"policy": {"rules": [{"if": {"args": [{"path": "a", "op": "~", "value": 1}]}, "then": "approve"}]}},
         "policy.rules[0].if.args[0].op"),
        ({"policy": {"rules": [{"then": "escalate", "ladder": "finance"}]}}, "policy.rules[0].ladder"),
        ({"policy": {"rules": [], "default_ladder": "nowhere"}}, "policy.default_ladder"),
        ({"policy": {"rules": [], "extra": 1}}, "policy.extra"),
        ({"policy": "rules"}, "policy"),
        ({}, "policy"),
        ({"policy": {"rules": []}, "last": 10_001}, "last"),
        ({"policy": {"rules": []}, "last": 0}, "last"),
        ({"policy": {"rules": []}, "since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "until"),
        ({"policy": {"rules": []}, "since": "yesterday"}, "since"),
    ],
)  # fmt: skip
def test_bad_input_is_400_naming_the_field(api_client_for, project, body, field):
    answer = api_client_for("engineer").post(SIMULATE, {"project": "support", **body}, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["errors"], answer.json()


def test_a_named_ladder_that_exists_is_accepted(api_client_for, project):
    ladder_for(project, "finance")
    answer = simulate(api_client_for("engineer"), {"rules": [{"then": "escalate", "ladder": "finance"}]})
    assert answer.status_code == 200
    assert answer.json()["policy"]["rules"][0]["ladder"] == "finance"


# --- the report ------------------------------------------------------------------------------------


def test_the_report_against_what_happened(api_client_for, project, member):
    alice = member("approver", username="alice")
    start = NOW - dt.timedelta(days=2)
    rejected = past_action(project, at=start, confidence=0.95, human="reject", by=alice, end_user_id="a")
    edited = past_action(
        project, at=start + dt.timedelta(minutes=1), confidence=0.91, human="edited", by=alice, end_user_id="b"
    )
    fine = past_action(
        project, at=start + dt.timedelta(minutes=2), confidence=0.97, human="approve", by=alice, end_user_id="c"
    )
    low = past_action(project, at=start + dt.timedelta(minutes=3), confidence=0.4, outcome="approve", end_user_id="d")
    expired = past_action(
        project, at=start + dt.timedelta(minutes=4), confidence=0.99, human="expired", end_user_id="e"
    )
    pending = past_action(project, at=start + dt.timedelta(minutes=5), action="delete_account", human=None)

    report = simulate(api_client_for("engineer"), {"rules": [APPROVE_CONFIDENT]}).json()

    assert report["replayed"] == 6
    assert report["draft"] == {"approve": 4, "reject": 0, "escalate": 2}
    assert report["actual"] == {"approve": 1, "reject": 0, "escalate": 5}
    assert report["humans"] == {"approved": 1, "edited": 1, "rejected": 1, "expired": 1, "pending": 1}
    assert report["human_overrides_auto_approved"] == {
        "count": 2,
        "ids": [rejected.pk, edited.pk],
        "ids_truncated": False,
    }
    assert report["human_rejected_auto_approved"]["ids"] == [rejected.pk]
    assert report["human_edited_auto_approved"]["ids"] == [edited.pk]
    by_rule = {row["rule"]: row for row in report["by_rule"]}
    assert by_rule["confident refunds"]["n"] == 4  # rejected, edited, fine, expired
    assert by_rule["(no rule matched: default ladder)"]["n"] == 2  # low confidence, the delete
    by_action = {row["action"]: row for row in report["by_action"]}
    assert by_action["delete_account"]["humans"]["pending"] == 1
    assert report["selection"]["more_in_range"] is False
    assert {fine.pk, low.pk, expired.pk, pending.pk}.isdisjoint(report["human_overrides_auto_approved"]["ids"])


def test_last_and_the_range_choose_the_actions(api_client_for, project):
    rows = [past_action(project, at=NOW - dt.timedelta(hours=10 - i), outcome="approve") for i in range(6)]
    client = api_client_for("engineer")
    report = simulate(client, {"rules": []}, last=2).json()
    assert report["replayed"] == 2
    assert report["selection"]["more_in_range"] is True
    assert report["selection"]["first_created_at"] == rows[4].created_at.isoformat()
    ranged = simulate(
        client,
        {"rules": []},
        since=(NOW - dt.timedelta(hours=9, minutes=30)).isoformat(),
        until=(NOW - dt.timedelta(hours=6, minutes=30)).isoformat(),
    ).json()
    assert ranged["replayed"] == 3  # the actions of hours -9, -8 and -7


def test_velocity_is_replayed_as_of_each_action(api_client_for, project):
    """Two $400 refunds to cust-1 earlier that day, then a third: the draft escalates the third
    (sum 1200 > 1000); cust-2's refund stays approved; the same refund a day later is approved."""
    day = NOW - dt.timedelta(days=3)
    for i, user in enumerate(["cust-1", "cust-1", "cust-1", "cust-2"]):
        past_action(project, at=day + dt.timedelta(hours=i), args={"amount": 400}, outcome="approve", end_user_id=user)
    late = past_action(project, at=day + dt.timedelta(days=1, hours=3), args={"amount": 400}, outcome="approve")
    report = simulate(api_client_for("engineer"), {"rules": [BUSY_CUSTOMERS, APPROVE_CONFIDENT]}).json()
    by_rule = {row["rule"]: row for row in report["by_rule"]}
    assert by_rule["busy customers"]["n"] == 1
    assert by_rule["confident refunds"]["n"] == 4
    assert report["transitions"]["approve"] == {"approve": 4, "reject": 0, "escalate": 1}
    assert late.pk not in report["human_overrides_auto_approved"]["ids"]


def test_simulate_query_count_does_not_grow_with_actions(api_client_for, project):
    client = api_client_for("engineer")
    simulate(client, {"rules": []})  # the token's last use is written at most once a minute
    for i in range(3):
        past_action(project, at=NOW - dt.timedelta(minutes=30 - i), outcome="approve", end_user_id=f"u{i}")
    with CaptureQueriesContext(connection) as few:
        assert simulate(client, {"rules": [BUSY_CUSTOMERS, APPROVE_CONFIDENT]}).status_code == 200
    for i in range(40):
        past_action(project, at=NOW - dt.timedelta(minutes=20, seconds=i), human="approve", end_user_id=f"v{i}")
    with CaptureQueriesContext(connection) as many:
        assert simulate(client, {"rules": [BUSY_CUSTOMERS, APPROVE_CONFIDENT]}).status_code == 200
    assert len(many) == len(few)
    # token, ladders named, the actions (with their decided events), the velocity history, the
    # policy in force: the same whatever the number of actions.
    assert len(few) <= 6, [q["sql"] for q in few.captured_queries]


# --- envelopes ----------------------------------------------------------------------------------


def _decided(project, by, n, *, confidence, human, action="refund", at=None):
    at = at or NOW - dt.timedelta(days=1)
    return [past_action(project, at=at, action=action, confidence=confidence, human=human, by=by) for _ in range(n)]


def test_envelope_threshold_share_and_rule(api_client_for, project, member):
    alice = member("approver", username="alice")
    _decided(project, alice, 10, confidence=0.5, human="reject")
    _decided(project, alice, 400, confidence=0.95, human="approve")
    # Traffic the policy decided itself counts in the share: 190 more refunds, 90 of them at 0.97.
    for _ in range(100):
        past_action(project, at=NOW - dt.timedelta(hours=2), confidence=0.3, outcome="reject")
    for _ in range(90):
        past_action(project, at=NOW - dt.timedelta(hours=2), confidence=0.97, outcome="approve")
    answer = api_client_for("admin").get(ENVELOPES, {"project": "support", "action": "refund"})
    assert answer.status_code == 200
    (env,) = answer.json()["envelopes"]
    assert env["decisions"] == 410
    assert env["threshold"]["confidence_at_least"] == 0.51
    assert (env["threshold"]["n"], env["threshold"]["approved"]) == (400, 400)
    assert env["traffic"] == 600
    assert env["traffic_share"] == pytest.approx(490 / 600)
    assert env["escalations_spared"] == 400
    assert env["suggested_rule"]["if"] == {"action": "refund", "confidence_at_least": 0.51}
    assert not PolicyVersion.objects.filter(project=project).exists()  # suggested, never applied


def test_envelope_edits_are_not_approvals_and_too_little_data_says_so(api_client_for, project, member):
    alice = member("approver", username="alice")
    _decided(project, alice, 380, confidence=0.99, human="approve")
    _decided(project, alice, 5, confidence=0.99, human="edited")
    _decided(project, alice, 3, confidence=0.9, human="approve", action="lookup")
    answer = api_client_for("engineer").get(ENVELOPES, {"project": "support"}).json()
    envs = {e["action"]: e for e in answer["envelopes"]}
    assert envs["refund"]["not_enough_data"] is True
    assert envs["refund"]["threshold"] is None and envs["refund"]["suggested_rule"] is None
    top = envs["refund"]["reliability"][9]
    assert (top["n"], top["approved"]) == (385, 380)
    assert envs["lookup"]["decisions"] == 3
    lenient = api_client_for("engineer").get(ENVELOPES, {"project": "support", "target": "0.95"}).json()
    assert {e["action"]: e["threshold"] is not None for e in lenient["envelopes"]} == {"refund": True, "lookup": False}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"target": "1.5"}, "target"), ({"target": "nan"}, "target"), ({"action": "x" * 101}, "action"),
     ({"since": "soon"}, "since")],
)  # fmt: skip
def test_envelope_params_are_bounded(api_client_for, project, params, field):
    answer = api_client_for("engineer").get(ENVELOPES, {"project": "support", **params})
    assert answer.status_code == 400
    assert field in answer.json()["errors"]


# --- human decisions ---------------------------------------------------------------------------


def test_human_decisions_rows_and_filters(project, other_project, member):
    alice = member("approver", username="alice")
    base = NOW - dt.timedelta(days=1)
    a = past_action(project, at=base, human="approve", by=alice, rule="big refunds", agent_version="v2", confidence=0.8)
    r = past_action(project, at=base, human="reject", by=alice, decided_after=120)
    e = past_action(project, at=base, human="edited", by=alice, action="lookup", decided_after=180)
    past_action(project, at=base, outcome="approve")  # the policy decided: no label
    past_action(project, at=base, human="expired")  # nobody decided: no label
    past_action(project, at=base, human=None)
    past_action(other_project, at=base, human="approve", by=alice)
    rows = list(selectors_insight.human_decisions(organization=project.organization, project=project))
    assert [(row["id"], row["decision"]) for row in rows] == [(e.pk, "edited"), (r.pk, "reject"), (a.pk, "approve")]
    assert rows[2] == {
        "id": a.pk,
        "action": "refund",
        "confidence": 0.8,
        "matched_rule": "big refunds",
        "agent_version": "v2",
        "decision": "approve",
        "decided_at": a.decided_at,
    }

    def ids(**filters):
        return {
            row["id"]
            for row in selectors_insight.human_decisions(organization=project.organization, project=project, **filters)
        }

    assert ids(action="lookup") == {e.pk}
    assert ids(rule="big refunds") == {a.pk}
    assert ids(agent_version="v2") == {a.pk}
    assert ids(since=base + dt.timedelta(seconds=100)) == {r.pk, e.pk}
    assert ids(action="refund", rule="") == {r.pk}


def test_the_human_decisions_index_exists():
    names = {index.name: index for index in Action._meta.indexes}
    index = names["action_human_decided"]
    assert index.fields == ["project", "action", "decided_at"]
    assert Action.objects.filter(index.condition).query is not None


# --- the dry run's history: only the summed paths are read -----------------------------------

TRICKY_ARGS = {
    "amount": 2**70 + 1,  # beyond 64 bits
    "items": [{"price": 5}, {"price": 7.5}],
    "0": {"x": 7},  # a numeric key, not a list index
    'we"ird': {"v": 2},  # a key SQLite's JSON path cannot quote
    "neg": {"-1": 3},  # PostgreSQL would read "-1" as an index of a list
    "list": [1, 2],
    "flag": True,  # a boolean adds nothing
    "text": "12",  # a text adds nothing
    "notes": "n" * 60_000,  # never read
}
TRICKY_PATHS = ("amount", "items.1.price", "0.x", 'we"ird.v', "neg.-1", "list.-1", "list.1", "flag", "text", "missing")


def _replayed_now(project):
    return simulation.PastAction(
        id=10**9,
        action="refund",
        args={},
        confidence=0.5,
        risk_tags=(),
        agent_version="v1",
        end_user_id="cust-1",
        created_at=NOW.timestamp(),
        status="pending",
        policy_outcome="",
        matched_rule="",
        human="",
    )


def test_the_history_reads_each_summed_path_as_the_policy_looks_it_up(project):
    past_action(project, at=NOW - dt.timedelta(hours=1), args=TRICKY_ARGS, outcome="approve")
    windows = tuple(VelocityWindow(of="sum", path=p, by="project", seconds=86400, action=None) for p in TRICKY_PATHS)
    history = selectors_insight._history(project, [_replayed_now(project)], windows)
    [row] = history._rows
    assert row.args is None  # whole args never loaded
    assert row.numbers == {p: simulation._number_at(TRICKY_ARGS, p) for p in TRICKY_PATHS}
    assert row.numbers["items.1.price"] == 7.5 and row.numbers["0.x"] == 7 and row.numbers['we"ird.v'] == 2
    assert row.numbers["neg.-1"] == 3 and row.numbers["list.-1"] == 0 and row.numbers["amount"] == float(2**70 + 1)


def test_the_history_is_bounded_in_bytes_not_only_rows(api_client_for, project, monkeypatch):
    """Big args outside the summed path cost nothing; a summed path naming a big value is
    counted and refused past the bound, like too many rows."""
    for hours in (3, 2):
        past_action(project, at=NOW - dt.timedelta(hours=hours), args=TRICKY_ARGS, outcome="approve")
    monkeypatch.setattr(selectors_insight, "MAX_HISTORY_BYTES", 50_000)
    client = api_client_for("engineer")

    def summing(path):
        window = {"of": "sum", "path": path, "by": "project", "seconds": 86400}
        return {
            "rules": [{"name": "v", "if": {"velocity": [{"window": window, "op": ">", "value": 10}]}, "then": "reject"}]
        }

    answer = simulate(client, summing("items.1.price"))
    assert answer.status_code == 200, answer.content
    # The first is escalated (7.5 of its own), the second rejected (7.5 before it, 15 in all).
    assert answer.json()["transitions"]["approve"] == {"approve": 0, "reject": 1, "escalate": 1}
    # A segment the database's path syntax reads differently from the policy's lookup: the
    # parent ("notes", 60 KB) is read and the rest looked up here.
    odd = "notes.-1" if connection.vendor == "postgresql" else "notes.0"
    answer = simulate(client, summing(odd))
    assert answer.status_code == 400, answer.content
    assert "MB of their summed args" in answer.json()["errors"]["last"][0]
