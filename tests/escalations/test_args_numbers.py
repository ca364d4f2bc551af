"""Numbers in args round-trip to one value on SQLite and PostgreSQL: jsonb stores numbers as
numeric, so `1e16` comes back 10000000000000000 and `-0.0` comes back 0.0. The args are
normalised to that when parsed, so what is stored, digested (the SDK's digest included),
compared for idempotency and answered is the same value. Runs on either database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from escalations import action_input
from escalations.models import Action
from tests.escalations.factories import ladder_create, policy_create
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))

from reviewapp_client import args_digest as sdk_digest

# As an agent's JSON library writes them: Python's json writes 1e16 as "1e+16".
RAW_ARGS = '{"amount": 1e16, "refund": -0.0, "cap": 1.7976931348623157e308, "n": [-1.5e16, 5.0, 1e-7, -0.0]}'
AS_STORED = {
    "amount": 10_000_000_000_000_000,
    "refund": 0.0,
    "cap": 17976931348623157 * 10**292,
    "n": [-15_000_000_000_000_000, 5.0, 1e-7, 0.0],
}


def _body(external_id: str = "n-1") -> str:
    return '{"external_id": "' + external_id + '", "action": "lookup", "args": ' + RAW_ARGS + "}"


def _post_raw(client, body: str):
    return client.post("/api/v1/actions", body, content_type="application/json")


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_the_normal_form_is_what_jsonb_gives_back():
    normal = action_input.json_numbers_normalise(json.loads(RAW_ARGS))
    assert _canonical(normal) == _canonical(AS_STORED)
    assert type(normal["amount"]) is int and type(normal["n"][1]) is float
    # Integral floats below 1e16 keep their ".0" in jsonb too: left alone.
    assert action_input.json_numbers_normalise({"a": 9007199254740992.0}) == {"a": 9007199254740992.0}
    assert type(action_input.json_numbers_normalise({"a": 9007199254740992.0})["a"]) is float


def test_an_auto_approved_action_digests_and_repeats_the_same_on_either_database(agent_client, project):
    ladder_create(project)
    policy_create(project, [{"name": "lookups", "if": {"action": "lookup"}, "then": "approve"}])

    first = _post_raw(agent_client, _body())
    assert first.status_code == 201, first.content
    answered = first.json()
    # What the agent gets back digests, with the SDK's own function, to the digest it is given.
    assert sdk_digest("lookup", answered["final_args"]) == answered["args_digest"]
    assert _canonical(answered["final_args"]) == _canonical(AS_STORED)

    # Read back from the database: the same value, the same digest.
    stored = Action.objects.get(pk=answered["id"])
    assert _canonical(stored.args) == _canonical(AS_STORED)
    assert _canonical(stored.final_args) == _canonical(AS_STORED)
    fetched = agent_client.get(f"/api/v1/actions/{answered['id']}").json()
    assert sdk_digest("lookup", fetched["final_args"]) == fetched["args_digest"] == answered["args_digest"]

    # An identical retry (the SDK's, after a lost answer) is the same action, not a 409.
    again = _post_raw(agent_client, _body())
    assert again.status_code == 200, again.content
    assert again.json()["id"] == answered["id"]
    assert Action.objects.count() == 1


def test_edited_args_approved_by_a_person_digest_the_same_once_stored(api_client_for, project):
    action = make_pending_action(project, make_ladder(project, tier(role="approver")), action="lookup")
    approver = api_client_for("approver")

    response = approver.post(
        f"/api/v1/actions/{action.pk}/decision",
        '{"decision": "approve", "args": ' + RAW_ARGS + "}",
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert sdk_digest("lookup", response.json()["final_args"]) == response.json()["args_digest"]
    fetched = approver.get(f"/api/v1/actions/{action.pk}").json()
    assert _canonical(fetched["final_args"]) == _canonical(AS_STORED)
    assert sdk_digest("lookup", fetched["final_args"]) == fetched["args_digest"] == response.json()["args_digest"]


@pytest.mark.parametrize("raw", ["1e16", "-0.0"])
def test_the_same_number_written_either_way_is_the_same_request(agent_client, project, raw):
    ladder_create(project)
    policy_create(project, [{"name": "lookups", "if": {"action": "lookup"}, "then": "approve"}])
    plain = "10000000000000000" if raw == "1e16" else "0.0"
    body = '{"external_id": "same", "action": "lookup", "args": {"x": '

    assert _post_raw(agent_client, body + raw + "}}").status_code == 201
    assert _post_raw(agent_client, body + plain + "}}").status_code == 200
