"""POST /api/v1/actions/{id}/decision and POST/DELETE /api/v1/actions/{id}/claim over HTTP."""

from __future__ import annotations

import pytest

from escalations.models import Action, ActionEvent, ActionStatus, Vote
from escalations.policies import args_digest as action_digest
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier


@pytest.fixture
def action(project):
    return make_pending_action(project, make_ladder(project, tier(role="approver")))


def _url(action, what="decision") -> str:
    return f"/api/v1/actions/{action.pk}/{what}"


def test_an_approver_approves_with_edited_args(api_client_for, action):
    approver = api_client_for("approver")

    response = approver.post(
        _url(action),
        {"decision": "approve", "args": {"amount": 400, "currency": "EUR"}, "comment": "partial"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["status"], body["decided_by"]) == (action.pk, "approved", approver.user.username)
    assert (body["final_args"], body["args"]) == (
        {"amount": 400, "currency": "EUR"},
        {"amount": 450, "currency": "EUR"},
    )
    assert body["comment"] == "partial"
    assert len(body["args_digest"]) == 64
    assert ActionEvent.objects.get(action=action, kind="voted").data["changes"] == [
        {"path": "amount", "from": 450, "to": 400}
    ]


def test_expected_digest_is_optional_but_enforced_when_given(api_client_for, project):
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))
    a, b, c = api_client_for("approver"), api_client_for("approver"), api_client_for("approver")
    seen = action_digest("refund", {"amount": 450, "currency": "EUR"})  # the digest of what B saw
    assert a.post(_url(action), {"decision": "approve"}, format="json").status_code == 200  # older clients
    edit = {"decision": "approve", "args": {"amount": 45000, "currency": "EUR"}}
    assert c.post(_url(action), edit, format="json").status_code == 200

    response = b.post(_url(action), {"decision": "approve", "expected_digest": seen}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "message": "The args changed since you loaded them; review them again.",
        "errors": {"expected_digest": ["The args on the table are now different."]},
    }
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING
    assert not Vote.objects.filter(action=action, user=b.user).exists()
    bad = b.post(_url(action), {"decision": "approve", "expected_digest": "x" * 64}, format="json")
    assert (bad.status_code, list(bad.json()["errors"])) == (400, ["expected_digest"])


def test_a_reject_without_a_comment_is_a_400_naming_comment(api_client_for, action):
    response = api_client_for("approver").post(_url(action), {"decision": "reject"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"comment": ["Say why; the agent gets it back."]}
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING
    assert not Vote.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "decision"),
        ({"decision": "APPROVE"}, "decision"),
        ({"decision": "approve", "args": [1]}, "args"),
        ({"decision": "approve", "args": None}, None),  # null args: approve as they are
    ],
)
def test_bad_bodies(api_client_for, action, body, field):
    response = api_client_for("approver").post(_url(action), body, format="json")

    if field is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # A misspelt expected_digest approved without the check the approver asked for.
        ({"decision": "approve", "expected_digst": "0" * 64}, "expected_digst"),
        # A misspelt args approved the args as requested, not the edit.
        ({"decision": "approve", "arg": {"amount": 1}}, "arg"),
        ({"decision": "reject", "comment": "no", "project": "support"}, "project"),
        ({"decision": "approve", "a b": 1}, "body"),
    ],
)
def test_an_unknown_field_is_a_400_naming_it_and_decides_nothing(api_client_for, action, body, field):
    response = api_client_for("approver").post(_url(action), body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "message": "Unknown field.",
        "errors": {field: ["Unknown field; the fields are: args, comment, decision, expected_digest."]},
    }
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING
    assert not Vote.objects.exists()


def test_a_non_object_body_is_a_400(api_client_for, action):
    response = api_client_for("approver").post(_url(action), [1, 2], format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["decision"]


def test_a_second_decider_gets_409_naming_the_first(api_client_for, action):
    first, second = api_client_for("approver"), api_client_for("admin")
    assert first.post(_url(action), {"decision": "approve"}, format="json").status_code == 200

    response = second.post(_url(action), {"decision": "reject", "comment": "too late"}, format="json")

    assert response.status_code == 409
    assert response.json()["message"].startswith(f"Already approved by {first.user.username} at ")
    assert response["Content-Type"] == "application/json"


def test_a_person_not_at_the_tier_gets_403(api_client_for, project):
    action = make_pending_action(project, make_ladder(project, tier(users=("lead",))))

    response = api_client_for("approver").post(_url(action), {"decision": "approve"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"message": "You may not decide this action at its current tier.", "errors": {}}
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING


@pytest.mark.parametrize("role", ["engineer", "annotator"])
def test_roles_that_may_not_decide_get_403(api_client_for, action, role):
    client = api_client_for(role)
    assert client.post(_url(action), {"decision": "approve"}, format="json").status_code == 403
    assert client.post(_url(action, "claim")).status_code == 403


def test_agents_may_not_decide(agent_client, action):
    assert agent_client.post(_url(action), {"decision": "approve"}, format="json").status_code == 403


def test_another_tenants_action_is_404(api_client_for, other_project):
    theirs = make_pending_action(other_project, make_ladder(other_project))
    approver = api_client_for("approver")

    for response in (
        approver.post(_url(theirs), {"decision": "approve"}, format="json"),
        approver.post(_url(theirs), {"decision": "nonsense"}, format="json"),
        approver.post(_url(theirs), {"decision": "approve", "bogus": 1}, format="json"),
        approver.post(_url(theirs, "claim")),
        approver.delete(_url(theirs, "claim")),
    ):
        assert response.status_code == 404
        assert response.json()["message"] == "No such action."
    assert Action.objects.get(pk=theirs.pk).status == ActionStatus.PENDING
    assert not ActionEvent.objects.exists()


def test_claim_and_release(api_client_for, action):
    alice, bob = api_client_for("approver"), api_client_for("approver")

    claimed = alice.post(_url(action, "claim"))
    assert claimed.status_code == 200
    assert claimed.json()["claimed_by"] == alice.user.username

    taken = bob.post(_url(action, "claim"))
    assert taken.status_code == 409
    assert taken.json()["message"].startswith(f"Already claimed by {alice.user.username} at ")
    assert taken.json()["errors"] == {"claimed_by": [alice.user.username]}
    assert bob.delete(_url(action, "claim")).status_code == 409

    released = alice.delete(_url(action, "claim"))
    assert released.status_code == 200
    assert (released.json()["claimed_by"], released.json()["claimed_at"]) == (None, None)
    assert bob.post(_url(action, "claim")).json()["claimed_by"] == bob.user.username


def test_hostile_text_is_answered_as_json_exactly(api_client_for, action):
    comment = "<script>alert(1)</script> \u202e ' \" & ☃"
    args = {"amount": 400, "note": "<img src=x onerror=alert(1)>", "emoji": "🙂"}

    response = api_client_for("approver").post(
        _url(action), {"decision": "approve", "args": args, "comment": comment}, format="json"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert (response.json()["comment"], response.json()["final_args"]) == (comment.strip(), args)
