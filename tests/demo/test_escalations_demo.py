"""The demo's approval loop: `seed_demo` plays a week of agent actions through the escalations
services, so a fresh `make run` has an inbox. Every action ends where its scenario says
(played through the real policy, ladders, sweeps and decisions, so a change there that breaks
the story fails here), the pages show it, and a second run adds nothing."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from demo.action_scenarios import (
    ACTION_PREFIX,
    BIG_REFUND,
    SMALL_REFUND,
    LinkableConversation,
    action_scenarios,
    refund_facts,
)
from demo.banner import demo_logins
from demo.escalations import escalations_demo_seed
from demo.scenarios import airline_conversations
from demo.seed import demo_seed
from escalations.models import Action, ActionEvent, ActionStatus, LadderVersion, PolicyVersion, Vote
from reviewapp.models import ApiKey, AuditEvent, Project

User = get_user_model()


@pytest.fixture(autouse=True)
def _demo_mode(settings) -> None:
    settings.DEBUG = True


@pytest.fixture
def seeded(db):
    """The demo tenants with 400 conversations (enough refunds and delayed bags to link to),
    then the approval loop, as seed_demo does it."""
    reference = timezone.now()
    demo_seed(conversations=400, retail_conversations_count=0, now=reference)
    project = Project.objects.get(organization__slug="demo", slug="support")
    result = escalations_demo_seed(project=project, seed=7, reference=reference)
    return project, reference, result


def _browser(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def _row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-href="[^"]*" data-id="(\d+)"', html)]


# --- what the seeding leaves -------------------------------------------------------------------


def test_every_demo_action_ends_where_its_scenario_says(seeded):
    project, reference, result = seeded

    actions = {a.external_id: a for a in Action.objects.filter(project=project).select_related("ladder")}
    assert len(actions) == len(result.scenarios) == result.created == 61
    for scenario in result.scenarios:
        action = actions[scenario.external_id]
        got = (action.status, action.decided_by, action.ladder.name if action.ladder else "", action.tier)
        ladder = scenario.expect_ladder if scenario.expect_status == ActionStatus.PENDING else got[2]
        tier = scenario.expect_tier if scenario.expect_status == ActionStatus.PENDING else got[3]
        assert got == (scenario.expect_status, scenario.expect_decided_by, ladder, tier), scenario.external_id
        assert action.created_at == reference - dt.timedelta(minutes=scenario.minutes_ago)


def test_the_demo_has_mostly_policy_approvals_a_full_inbox_and_every_human_path(seeded):
    project, reference, result = seeded
    actions = Action.objects.filter(project=project)

    assert result.by_status == {"approved": 42, "expired": 1, "pending": 11, "rejected": 7}
    assert actions.filter(status="approved", decided_by="policy").count() == 32
    assert actions.filter(status="rejected", decided_by="policy", matched_rule="blocked country").count() == 4
    assert actions.filter(decided_by="person").count() == 13
    assert actions.get(status="expired").decided_by == "timeout"
    # The trail of the expired one: two tiers timed out, at 15 minutes and 75 minutes.
    expired = actions.get(status="expired")
    kinds = list(ActionEvent.objects.filter(action=expired).values_list("kind", "created_at"))
    assert [k for k, _ in kinds] == [
        "created",
        "escalated",
        "tier_entered",
        "timed_out",
        "tier_entered",
        "timed_out",
        "decided",
    ]
    assert kinds[3][1] - expired.created_at == dt.timedelta(minutes=15)
    assert kinds[5][1] - expired.created_at == dt.timedelta(minutes=75)

    # One edited approval: the agent asked for 180, the approver approved 150.
    edited = Vote.objects.get(action__project=project, edited=True)
    assert (edited.action.args["amount"], edited.action.final_args["amount"]) == (180.0, 150.0)
    assert edited.action.status == "approved"
    # Four-eyes: decided once both named leads approved at tier 2; another waits for the lead.
    four_eyes = actions.get(status="approved", tier=1, ladder__name="finance")
    assert sorted(four_eyes.votes.values_list("user__username", flat=True)) == ["cfo", "lead"]
    assert four_eyes.args["amount"] > 1000
    half = actions.get(status="pending", tier=1, votes__user__username="cfo")
    assert half.ladder.name == "finance" and half.votes.count() == 1

    # Timestamps spread over the past week; the inbox is due from now on.
    created = sorted(actions.values_list("created_at", flat=True))
    assert reference - dt.timedelta(days=8) < created[0] < reference - dt.timedelta(days=4)
    assert created[-1] < reference
    pending = actions.filter(status="pending")
    assert all(reference < a.due_at for a in pending)
    assert sorted({(a.ladder.name, a.tier) for a in pending}) == [
        ("default", 0),
        ("default", 1),
        ("finance", 0),
        ("finance", 1),
    ]
    assert all(a.due_at <= reference + dt.timedelta(minutes=15) for a in pending.filter(tier=0))


def test_the_demo_policy_has_two_versions_and_the_velocity_rule_catches_a_third_refund(seeded):
    project, _reference, _result = seeded

    assert list(
        PolicyVersion.objects.filter(project=project).order_by("version").values_list("version", flat=True)
    ) == [1, 2]
    v1, v2 = PolicyVersion.objects.filter(project=project).order_by("version")
    assert [r["name"] for r in v1.rules] == ["blocked country", "big refund", "small refund"]
    assert [r["name"] for r in v2.rules] == ["blocked country", "big refund", "refund velocity", "small refund"]
    assert {(ladder.name, ladder.version) for ladder in LadderVersion.objects.filter(project=project)} == {
        ("default", 1),
        ("finance", 1),
    }
    actions = Action.objects.filter(project=project)
    # Older actions were decided under v1, the rest under v2.
    assert actions.filter(policy_version=1).exists() and actions.filter(policy_version=2).exists()
    caught = actions.filter(matched_rule="refund velocity").order_by("created_at")
    assert caught.count() == 2
    for action in caught:
        assert action.args["amount"] <= BIG_REFUND
        # What the window counts: the customer's earlier approved or pending refunds of the
        # day, and this one.
        earlier = actions.filter(
            end_user_id=action.end_user_id,
            created_at__gte=action.created_at - dt.timedelta(days=1),
            created_at__lt=action.created_at,
            status__in=["approved", "pending"],
        )
        assert len(earlier) == 2
        assert (
            sum(a.args["amount"] for a in earlier)
            <= 300
            < sum(a.args["amount"] for a in earlier) + action.args["amount"]
        )
    assert [a.status for a in caught] == ["rejected", "pending"]


def test_linked_actions_take_their_conversation_and_keep_their_policy_band(seeded):
    project, _reference, result = seeded

    linked = Action.objects.filter(project=project).exclude(conversation_external_id="").select_related("conversation")
    assert linked.count() == result.linked >= 8
    for action in linked:
        conversation = action.conversation
        assert conversation is not None and conversation.external_id == action.conversation_external_id
        assert action.end_user_id == conversation.end_user_id
        assert action.args["booking_ref"] == conversation.metadata["booking_ref"]
        if "refund" in conversation.tags:
            # The refund the transcript shows: its amount and reason.
            facts = refund_facts(conversation.messages)
            assert action.args["amount"] == conversation.metadata["refund_amount"] == facts["refund_amount"]
            assert action.args["reason"] == facts["refund_reason"]
    assert len({a.conversation_id for a in linked}) == linked.count()


def test_the_escaping_demo_action_is_stored_exactly_as_the_agent_sent_it(seeded):
    project, _reference, _result = seeded

    hostile = Action.objects.get(project=project, reasoning__contains="<script>")
    assert "<b>URGENT</b>" in hostile.reasoning
    assert "<i>vip</i>" in hostile.risk_tags
    assert hostile.status == "pending"


# --- the pages ---------------------------------------------------------------------------------


def test_the_approver_inbox_shows_the_demo_pending_actions(seeded):
    project, _reference, _result = seeded
    tier0 = set(Action.objects.filter(project=project, status="pending", tier=0).values_list("pk", flat=True))
    assert len(tier0) == 7

    response = _browser("approver").get("/escalations/")

    assert response.status_code == 200
    html = response.content.decode()
    assert set(_row_ids(html)) == tier0
    # Agent text is escaped, never markup: the hostile action's risk tag and args.
    assert "&lt;i&gt;vip&lt;/i&gt;" in html and "<i>vip</i>" not in html
    assert "&lt;img src=x onerror=" in html and "<img src=x" not in html


def test_each_demo_decider_sees_their_tiers(seeded):
    project, _reference, _result = seeded
    pending = Action.objects.filter(project=project, status="pending")

    lead = _row_ids(_browser("lead").get("/escalations/").content.decode())
    cfo = _row_ids(_browser("cfo").get("/escalations/").content.decode())
    admin = _row_ids(_browser("admin").get("/escalations/").content.decode())

    tier0 = set(pending.filter(tier=0).values_list("pk", flat=True))
    finance2 = set(pending.filter(ladder__name="finance", tier=1).values_list("pk", flat=True))
    assert len(finance2) == 2
    # The leads are approvers too, and the finance ladder's tier 2 names them.
    assert set(lead) == tier0 | finance2
    # cfo approved one of the tier 2 ones already: one vote per person.
    half = pending.get(votes__user__username="cfo")
    assert set(cfo) == tier0 | finance2 - {half.pk}
    assert set(admin) == set(pending.exclude(ladder__name="finance", tier=1).values_list("pk", flat=True))
    assert len(admin) == 9


def test_the_demo_action_page_shows_the_transcript_and_escapes_the_agent(seeded):
    project, _reference, _result = seeded
    hostile = Action.objects.get(project=project, reasoning__contains="<script>")
    linked = Action.objects.filter(project=project, status="pending").exclude(conversation=None).first()
    assert linked is not None
    approver = _browser("approver")

    html = approver.get(f"/escalations/actions/{hostile.pk}/").content.decode()
    assert "Customer wrote: &lt;b&gt;URGENT&lt;/b&gt; refund NOW" in html
    assert "&lt;script&gt;alert(" in html
    assert "&lt;img src=x onerror=" in html
    assert "<b>URGENT" not in html and "<script>alert" not in html and "<img src=x" not in html

    page = approver.get(f"/escalations/actions/{linked.pk}/")
    assert page.status_code == 200
    opening = next(m["content"] for m in linked.conversation.messages if m["role"] == "user")
    assert f'<div class="content"><div class="md"><p>{escape(opening)}</p>' in page.content.decode()


# --- idempotency and the banner -------------------------------------------------------------


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Action, ActionEvent, Vote, PolicyVersion, LadderVersion, ApiKey, AuditEvent, User)
    }


def test_seed_demo_seeds_the_approval_loop_once(db):
    out = StringIO()
    call_command("seed_demo", conversations=40, retail_conversations=0, stdout=out)
    first = _counts()
    assert first["Action"] == 61
    assert "Approvals: 61 agent actions (42 approved, 1 expired, 11 pending, 7 rejected;" in out.getvalue()

    again = StringIO()
    call_command("seed_demo", conversations=40, retail_conversations=0, stdout=again)

    assert _counts() == first
    assert "Approvals: the project has a policy already; no demo actions added" in again.getvalue()


def test_the_approval_loop_needs_no_conversations(db):
    reference = timezone.now()
    demo_seed(conversations=0, retail_conversations_count=0, now=reference)
    project = Project.objects.get(organization__slug="demo", slug="support")

    result = escalations_demo_seed(project=project, seed=7, reference=reference)

    assert result.linked == 0
    assert result.by_status == {"approved": 42, "expired": 1, "pending": 11, "rejected": 7}


def test_the_banner_points_approvers_to_the_inbox(db):
    call_command("seed_demo", conversations=0, retail_conversations=0, no_logins=True, stdout=StringIO())

    lines = demo_logins()

    assert "Approvals: /escalations/ (agent actions waiting for a decision; the navigation bar counts them)" in lines
    assert any(line.startswith("  as lead or cfo: also tier 2 of the finance ladder") for line in lines)


def test_no_approvals_line_before_the_demo_actions_exist(db):
    demo_seed(conversations=0, retail_conversations_count=0)

    assert not any(line.startswith("Approvals") for line in demo_logins())


# --- the scenarios, pure -----------------------------------------------------------------------


def _conversation(
    n: int, intent: str, minutes_ago: float, amount: float | None = None, reason: str = "schedule_change"
) -> LinkableConversation:
    return LinkableConversation(
        external_id=f"demo-7-{n:05d}",
        intent=intent,
        minutes_ago=minutes_ago,
        end_user_id=f"cus_{n:010x}",
        agent_version="support-v2.0",
        booking_ref=f"REF{n:03d}",
        refund_amount=amount,
        refund_reason=reason if intent == "refund" else "",
        fare_class="Economy Flex" if intent == "refund" else "",
        passengers=2 if n % 2 else 1,
        flight=f"DA{n:04d}",
    )


def test_refund_facts_read_what_the_demo_agent_refunded():
    reference = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    refunds = [c.payload for c in airline_conversations(seed=7, count=300, reference=reference)]
    refunds = [p for p in refunds if p["tags"][0] == "refund"]
    read = [(p, refund_facts(p["messages"])) for p in refunds]

    assert sum(1 for _p, facts in read if facts is not None) >= 30
    for payload, facts in read:
        if facts is None:
            continue
        assert facts["refund_amount"] == payload["metadata"]["refund_amount"]
        assert facts["booking_ref"] == payload["metadata"]["booking_ref"]
        assert facts["fare_class"] == payload["metadata"]["fare_class"]
        assert facts["refund_reason"] in {"airline_cancelled", "schedule_change", "voluntary"}
        assert re.fullmatch(r"DA\d+", facts["flight"])
    assert refund_facts([{"role": "user", "content": "hi"}]) is None
    assert refund_facts("not a list") is None


def test_scenarios_are_deterministic_and_numbered_oldest_first():
    first = action_scenarios(seed=7)
    assert action_scenarios(seed=7) == first
    assert action_scenarios(seed=8) != first
    assert [s.external_id for s in first] == [f"{ACTION_PREFIX}{n:03d}" for n in range(1, 62)]
    assert [s.minutes_ago for s in first] == sorted((s.minutes_ago for s in first), reverse=True)


def test_a_linked_refund_takes_an_amount_in_its_band_and_each_conversation_once():
    conversations = [
        _conversation(1, "refund", 3 * 1440, 150.0),  # the default ladder's band
        _conversation(2, "refund", 3 * 1440, 150.0),
        _conversation(3, "refund", 2 * 1440, 640.0),  # finance, under the four-eyes size
        _conversation(4, "refund", 2 * 1440, 30.0),  # fits no linked band
        _conversation(7, "refund", 2 * 1440, 150.0, reason="customer_request"),  # broke policy: never linked
        _conversation(5, "baggage-claim", 1440),
        _conversation(6, "refund", 30, 180.0),  # recent: for a waiting action
    ]

    scenarios = action_scenarios(seed=7, linkable=conversations)

    linked = [s for s in scenarios if s.conversation_external_id]
    assert sorted(s.conversation_external_id for s in linked) == [
        "demo-7-00001",
        "demo-7-00002",
        "demo-7-00003",
        "demo-7-00005",
        "demo-7-00006",
    ]
    by_id = {c.external_id: c for c in conversations}
    for scenario in linked:
        conversation = by_id[scenario.conversation_external_id]
        assert scenario.end_user_id == conversation.end_user_id
        assert scenario.args["booking_ref"] == conversation.booking_ref
        if conversation.refund_amount is not None:
            assert scenario.args["amount"] == conversation.refund_amount
            assert scenario.args["amount"] > SMALL_REFUND
            assert scenario.args["reason"] == "schedule_change"
            assert scenario.args.get("passengers", 1) == conversation.passengers
            assert scenario.reasoning.startswith(f"The schedule change on {conversation.flight} does not work")
        if scenario.expect_status == "pending":
            assert scenario.minutes_ago <= conversation.minutes_ago
        else:
            assert scenario.minutes_ago == conversation.minutes_ago - 3
    # The outcomes do not depend on the links.
    plain = {s.external_id: (s.expect_status, s.expect_ladder, s.expect_tier) for s in action_scenarios(seed=7)}
    assert sorted(plain.values()) == sorted((s.expect_status, s.expect_ladder, s.expect_tier) for s in scenarios)


def test_every_step_happens_after_its_request_and_before_now():
    steps = [(s, step) for s in action_scenarios(seed=7) for step in s.steps]
    assert len(steps) == 20
    for scenario, step in steps:
        assert 0 < step.after_minutes < scenario.minutes_ago, scenario.external_id
