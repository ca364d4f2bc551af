"""action_decide: who may decide, what a decision writes, four-eyes tiers, edits and their diff."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from django.utils import timezone

from escalations import policies, services
from escalations.models import Action, ActionEvent, ActionStatus, DecidedBy, Vote
from escalations.services import decisions, notify
from reviewapp.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from reviewapp.principal import Principal
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier

NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def person(org, member):
    """person("alice", "approver") -> the Principal of a new member with that role."""

    def make(username: str, role: str = "approver", organization=None) -> Principal:
        organization = organization or org
        user = member(role, organization=organization, username=username)
        return Principal(organization=organization, role=role, user=user)

    return make


@pytest.fixture
def decided(monkeypatch):
    """The ids notify.action_decided / action_tier_entered were called with, in order."""
    calls: dict[str, list[int]] = {"decided": [], "tier_entered": []}
    monkeypatch.setattr(notify, "action_decided", lambda *, action: calls["decided"].append(action.pk))
    monkeypatch.setattr(notify, "action_tier_entered", lambda *, action: calls["tier_entered"].append(action.pk))
    return calls


def _digest(action: str, args: dict) -> str:
    canonical = json.dumps({"action": action, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _events(action) -> list[tuple[str, str | None]]:
    return [
        (e.kind, e.actor_user.username if e.actor_user else None)
        for e in ActionEvent.objects.filter(action=action).select_related("actor_user")
    ]


def _unchanged(action) -> None:
    """A refused decision left the action as it was: pending, no vote, no event."""
    fresh = Action.objects.get(pk=action.pk)
    assert (fresh.status, fresh.decided_by, fresh.final_args, fresh.comment) == (ActionStatus.PENDING, "", None, "")
    assert not Vote.objects.filter(action=action).exists()
    assert not ActionEvent.objects.filter(action=action).exists()


def test_an_approval_decides_a_one_approval_tier(project, person, decided):
    action = make_pending_action(project, make_ladder(project), now=NOW)
    alice = person("alice")

    result = services.action_decide(
        principal=alice, action_id=action.pk, decision="approve", comment="fine", now=NOW + dt.timedelta(minutes=3)
    )

    action.refresh_from_db()
    assert result.pk == action.pk
    assert action.status == ActionStatus.APPROVED
    assert (action.decided_by, action.decided_by_user, action.decided_at) == (
        DecidedBy.PERSON,
        alice.user,
        NOW + dt.timedelta(minutes=3),
    )
    assert action.final_args == {"amount": 450, "currency": "EUR"}
    assert action.args_digest == _digest("refund", {"amount": 450, "currency": "EUR"})
    assert (action.reason, action.comment) == ("Approved by alice", "fine")
    assert _events(action) == [("voted", "alice"), ("decided", "alice")]
    decided_event = ActionEvent.objects.get(action=action, kind="decided")
    assert decided_event.data == {
        "status": "approved",
        "decided_by": "alice",
        "approvers": ["alice"],
        "tier": 0,
        "edited": False,
        "changes": [],
        "args_digest": action.args_digest,
    }
    assert decided == {"decided": [action.pk], "tier_entered": []}


def test_a_reject_decides_at_once_with_its_comment(project, person, decided):
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))
    bob = person("bob")

    services.action_decide(principal=bob, action_id=action.pk, decision="reject", comment="  Wrong customer.  ")

    action.refresh_from_db()
    assert (action.status, action.decided_by, action.decided_by_user) == (ActionStatus.REJECTED, "person", bob.user)
    assert (action.comment, action.reason, action.final_args) == ("Wrong customer.", "Rejected by bob", None)
    assert list(Vote.objects.filter(action=action).values_list("decision", "comment")) == [
        ("reject", "Wrong customer.")
    ]
    assert _events(action) == [("voted", "bob"), ("decided", "bob")]
    assert decided["decided"] == [action.pk]


@pytest.mark.parametrize("comment", ["", "   ", None])
def test_a_reject_without_a_comment_is_refused(project, person, decided, comment):
    action = make_pending_action(project, make_ladder(project))

    with pytest.raises(ValidationFailed) as refused:
        services.action_decide(principal=person("bob"), action_id=action.pk, decision="reject", comment=comment)

    assert refused.value.status_code == 400
    assert list(refused.value.errors) == ["comment"]
    _unchanged(action)
    assert decided["decided"] == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"decision": None}, "decision"),
        ({"decision": "reject", "comment": "no", "args": {"amount": 1}}, "args"),
        ({"decision": "approve", "args": [1, 2]}, "args"),
        ({"decision": "approve", "args": "amount=400"}, "args"),
        ({"decision": "approve", "args": {"note": "a\x00b"}}, "args.note"),
        ({"decision": "approve", "args": {"amount": float("nan")}}, "args.amount"),
        ({"decision": "approve", "args": {"blob": "x" * (64 * 1024)}}, "args"),
        ({"decision": "approve", "comment": "x" * 10_001}, "comment"),
        ({"decision": "approve", "comment": 5}, "comment"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(project, person, kwargs, field):
    action = make_pending_action(project, make_ladder(project))

    with pytest.raises(ValidationFailed) as refused:
        services.action_decide(principal=person("alice"), action_id=action.pk, **kwargs)

    assert list(refused.value.errors) == [field]
    _unchanged(action)


def test_too_deep_args_are_refused(project, person):
    action = make_pending_action(project, make_ladder(project))
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["k"] = {}
        node = node["k"]

    with pytest.raises(ValidationFailed) as refused:
        services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve", args=deep)

    assert next(iter(refused.value.errors)).startswith("args.k.k")
    _unchanged(action)


def test_a_person_not_at_the_tier_is_refused(project, person):
    ladder = make_ladder(project, tier(users=("lead",)))
    action = make_pending_action(project, ladder)

    for who in [person("alice"), person("root", "admin")]:  # an admin is not named either
        with pytest.raises(ApplicationError) as refused:
            services.action_decide(principal=who, action_id=action.pk, decision="approve")
        assert refused.value.status_code == 403
    _unchanged(action)


def test_roles_without_actions_decide_are_refused_even_when_named(project, person, agent_client):
    ladder = make_ladder(project, tier(users=("eve", "ann")))
    action = make_pending_action(project, ladder)
    agent = Principal(organization=project.organization, role="agent", api_key=agent_client.api_key, project=project)

    for who in [person("eve", "engineer"), person("ann", "annotator"), agent]:
        with pytest.raises(ApplicationError) as refused:
            services.action_decide(principal=who, action_id=action.pk, decision="approve")
        assert refused.value.status_code == 403
    _unchanged(action)


def test_an_admin_may_decide_at_a_role_tier(project, person):
    action = make_pending_action(project, make_ladder(project, tier(role="approver")))

    services.action_decide(principal=person("root", "admin"), action_id=action.pk, decision="approve")

    assert Action.objects.get(pk=action.pk).status == ActionStatus.APPROVED


def test_another_organizations_action_is_not_found(project, other_project, person, other_org):
    theirs = make_pending_action(other_project, make_ladder(other_project))

    with pytest.raises(NotFound):
        services.action_decide(principal=person("alice"), action_id=theirs.pk, decision="approve")
    # Whatever the body: their id is not found before anything is checked.
    with pytest.raises(NotFound):
        services.action_decide(principal=person("bob"), action_id=theirs.pk, decision="maybe")
    _unchanged(theirs)


def test_a_decided_action_answers_409_naming_who_decided(project, person):
    action = make_pending_action(project, make_ladder(project))
    services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve", now=NOW)

    with pytest.raises(Conflict) as late:
        services.action_decide(principal=person("bob"), action_id=action.pk, decision="reject", comment="no")

    assert late.value.status_code == 409
    assert late.value.message == "Already approved by alice at 2025-03-03 09:00:00 UTC."
    assert Vote.objects.filter(action=action).count() == 1


def test_a_policy_decision_is_named_with_its_rule(project, person):
    action = make_pending_action(project, make_ladder(project))
    Action.objects.filter(pk=action.pk).update(
        status=ActionStatus.APPROVED, decided_by=DecidedBy.POLICY, matched_rule="small refunds", decided_at=NOW
    )

    with pytest.raises(Conflict) as late:
        services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")

    assert late.value.message == "Already approved by policy rule 'small refunds' at 2025-03-03 09:00:00 UTC."


def test_four_eyes_one_person_cannot_count_twice(project, person, decided):
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))
    alice, bob = person("alice"), person("bob")

    first = services.action_decide(principal=alice, action_id=action.pk, decision="approve")
    assert first.status == ActionStatus.PENDING
    with pytest.raises(Conflict) as twice:
        services.action_decide(principal=alice, action_id=action.pk, decision="approve")
    assert twice.value.message == "You already approved this action."
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING
    assert decided["decided"] == []

    services.action_decide(principal=bob, action_id=action.pk, decision="approve", comment="second pair of eyes")

    action.refresh_from_db()
    assert (action.status, action.decided_by_user, action.reason) == (
        ActionStatus.APPROVED,
        bob.user,
        "Approved by alice, bob",
    )
    voted = [e.data["approvals"] for e in ActionEvent.objects.filter(action=action, kind="voted")]
    assert voted == [1, 2]
    assert decided["decided"] == [action.pk]


def test_an_edit_starts_a_new_count_and_keeps_its_diff(project, person, decided):
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))
    alice, bob, carol = person("alice"), person("bob"), person("carol")

    services.action_decide(principal=alice, action_id=action.pk, decision="approve")
    edited = services.action_decide(
        principal=bob, action_id=action.pk, decision="approve", args={"amount": 400, "currency": "EUR"}
    )
    # Alice approved 450; Bob's 400 is other args: one approval each, nothing decided.
    assert edited.status == ActionStatus.PENDING
    # Carol approves what is on the table now: Bob's edit. Two people approved 400.
    services.action_decide(principal=carol, action_id=action.pk, decision="approve")

    action.refresh_from_db()
    assert action.status == ActionStatus.APPROVED
    assert action.args == {"amount": 450, "currency": "EUR"}  # as the agent asked, kept
    assert action.final_args == {"amount": 400, "currency": "EUR"}
    assert action.args_digest == _digest("refund", {"amount": 400, "currency": "EUR"})
    assert action.reason == "Approved by bob, carol"
    votes = list(Vote.objects.filter(action=action).values_list("user__username", "edited", "args"))
    assert votes == [
        ("alice", False, {"amount": 450, "currency": "EUR"}),
        ("bob", True, {"amount": 400, "currency": "EUR"}),
        ("carol", False, {"amount": 400, "currency": "EUR"}),
    ]
    voted = [(e.data["edited"], e.data["changes"], e.data["approvals"]) for e in action.events.filter(kind="voted")]
    assert voted == [
        (False, [], 1),
        (True, [{"path": "amount", "from": 450, "to": 400}], 1),
        (False, [], 2),
    ]
    final = action.events.get(kind="decided").data
    assert (final["edited"], final["changes"], final["approvers"]) == (
        True,
        [{"path": "amount", "from": 450, "to": 400}],
        ["bob", "carol"],
    )
    assert decided["decided"] == [action.pk]


def test_four_eyes_an_approval_of_args_the_approver_never_saw_is_refused(project, person, decided):
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))
    a, b, c = person("a"), person("b"), person("c")
    seen_by_b = _digest("refund", {"amount": 450, "currency": "EUR"})
    services.action_decide(principal=a, action_id=action.pk, decision="approve", expected_digest=seen_by_b)
    services.action_decide(
        principal=c, action_id=action.pk, decision="approve", args={"amount": 45000, "currency": "EUR"}
    )

    with pytest.raises(Conflict) as refused:
        services.action_decide(principal=b, action_id=action.pk, decision="approve", expected_digest=seen_by_b)

    assert refused.value.message == "The args changed since you loaded them; review them again."
    assert refused.value.errors == {"expected_digest": ["The args on the table are now different."]}
    action.refresh_from_db()
    assert (action.status, action.final_args) == (ActionStatus.PENDING, None)
    assert list(Vote.objects.filter(action=action).values_list("user__username", flat=True)) == ["a", "c"]
    assert decided["decided"] == []
    # Naming what is on the table now approves it, knowingly.
    seen_now = _digest("refund", {"amount": 45000, "currency": "EUR"})
    services.action_decide(principal=b, action_id=action.pk, decision="approve", expected_digest=seen_now)
    action.refresh_from_db()
    assert (action.status, action.final_args) == (ActionStatus.APPROVED, {"amount": 45000, "currency": "EUR"})


@pytest.mark.parametrize("value", ["", "ABC", "0" * 63, "G" * 64, 12, ["x"]])
def test_a_malformed_expected_digest_is_a_400(project, person, value):
    action = make_pending_action(project, make_ladder(project))
    with pytest.raises(ValidationFailed) as refused:
        services.action_decide(principal=person("a"), action_id=action.pk, decision="approve", expected_digest=value)
    assert list(refused.value.errors) == ["expected_digest"]
    _unchanged(action)


def test_an_edit_on_a_one_approval_tier_decides_the_edited_args(project, person):
    action = make_pending_action(project, make_ladder(project))

    services.action_decide(
        principal=person("alice"),
        action_id=action.pk,
        decision="approve",
        args={"amount": 400, "currency": "EUR", "note": "partial"},
    )

    action.refresh_from_db()
    assert action.final_args == {"amount": 400, "currency": "EUR", "note": "partial"}
    assert action.events.get(kind="voted").data["changes"] == [
        {"path": "amount", "from": 450, "to": 400},
        {"path": "note", "to": "partial"},
    ]


def test_sending_the_same_args_is_not_an_edit(project, person):
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))

    services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")
    services.action_decide(
        principal=person("bob"), action_id=action.pk, decision="approve", args={"currency": "EUR", "amount": 450}
    )

    action.refresh_from_db()
    assert action.status == ActionStatus.APPROVED
    assert not Vote.objects.filter(action=action, edited=True).exists()


def test_approvals_at_an_earlier_tier_do_not_count_at_the_next(project, person):
    ladder = make_ladder(
        project,
        tier(role="approver", approvals_required=2),
        tier(role="approver", approvals_required=2, timeout_seconds=3600),
    )
    action = make_pending_action(project, ladder, now=NOW)
    services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve", now=NOW)
    services.actions_timeout_sweep(now=NOW + dt.timedelta(seconds=900))
    assert Action.objects.get(pk=action.pk).tier == 1

    later = NOW + dt.timedelta(seconds=901)  # within tier 1's hour
    services.action_decide(principal=person("bob"), action_id=action.pk, decision="approve", now=later)
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING  # alice's vote was at tier 0
    # Alice may vote again at this tier (once per tier): her vote here is the second.
    alice = Principal(
        organization=project.organization, role="approver", user=Vote.objects.get(action=action, tier=0).user
    )
    services.action_decide(principal=alice, action_id=action.pk, decision="approve", now=later)
    action.refresh_from_db()
    assert (action.status, action.reason) == (ActionStatus.APPROVED, "Approved by bob, alice")


def test_the_digest_matches_the_canonical_form_whatever_the_key_order(project, person):
    action = make_pending_action(project, make_ladder(project), args={"b": "é", "a": [1, {"y": 2, "x": 1}]})

    services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")

    canonical = '{"action":"refund","args":{"a":[1,{"x":1,"y":2}],"b":"é"}}'
    assert Action.objects.get(pk=action.pk).args_digest == hashlib.sha256(canonical.encode()).hexdigest()
    assert (
        policies.args_digest("refund", {"a": [1, {"x": 1, "y": 2}], "b": "é"})
        == hashlib.sha256(canonical.encode()).hexdigest()
    )


def test_an_action_whose_ladder_has_no_such_tier_cannot_be_decided(project, person):
    action = make_pending_action(project, make_ladder(project))
    Action.objects.filter(pk=action.pk).update(tier=3)

    with pytest.raises(ApplicationError) as refused:
        services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")
    assert refused.value.status_code == 403


def test_decided_at_defaults_to_the_clock(project, person, monkeypatch):
    fixed = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)
    monkeypatch.setattr(decisions, "clock", lambda: fixed)
    action = make_pending_action(project, make_ladder(project))

    services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")

    assert Action.objects.get(pk=action.pk).decided_at == fixed
