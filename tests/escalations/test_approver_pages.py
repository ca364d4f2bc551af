"""The approver's browser pages: the inbox (filters, counts, countdowns, claims), an action's
page (everything a decision needs, read-only with a reason when the person cannot decide),
the decision and claim forms going through the services (errors as messages or inline, never
500s), the role matrix and tenant isolation, and the query counts of both pages."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from escalations import services
from escalations.models import Action, ActionEvent, ActionStatus, Vote
from reviewapp import services as core_services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.principal import Principal
from tests.escalations import factories as requests
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier
from tests.factories import ConversationFactory, conversation_payload


@pytest.fixture
def ladder(project):
    """approvers (15 min) -> lead and cfo, both (1 h) -> admins (2 h)."""
    return make_ladder(
        project,
        tier(role="approver", timeout_seconds=900),
        tier(users=("lead", "cfo"), timeout_seconds=3600, approvals_required=2),
        tier(role="admin", timeout_seconds=7200),
        name="finance",
    )


def _url(action: Action, suffix: str = "") -> str:
    return f"/escalations/actions/{action.pk}/{suffix}"


def _principal(client: Client, role: str = "approver") -> Principal:
    from reviewapp.models import Membership

    membership = Membership.objects.get(user=client.user)
    return Principal(organization=membership.organization, role=membership.role, user=client.user)


def _seen_digest(client: Client, action: Action) -> str:
    """The args digest the page's approve form sends back (the args on the table when loaded)."""
    html = client.get(_url(action)).content.decode()
    digests = re.findall(r'<input type="hidden" name="expected_digest" value="([0-9a-f]{64})">', html)
    assert len(digests) == 2 and digests[0] == digests[1]  # the approve form and the edit form
    return digests[0]


def _row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-href="[^"]*" data-id="(\d+)"', html)]


def _unchanged(action: Action) -> None:
    fresh = Action.objects.get(pk=action.pk)
    assert fresh.status == ActionStatus.PENDING
    assert fresh.final_args is None
    assert fresh.claimed_by_id is None
    assert not Vote.objects.filter(action=action).exists()


# --- the inbox -----------------------------------------------------------------------------------


def test_the_inbox_lists_what_the_person_may_decide_soonest_due_first(project, ladder, browser_for):
    alice = browser_for("approver", username="alice")
    bob = browser_for("approver", username="bob")
    now = timezone.now()
    late = make_pending_action(project, ladder, external_id="late", now=now)
    overdue = make_pending_action(project, ladder, external_id="overdue", now=now - dt.timedelta(hours=1))
    soon = make_pending_action(project, ladder, external_id="soon", now=now - dt.timedelta(minutes=10))
    make_pending_action(project, ladder, external_id="leads-only", tier_index=1, now=now)
    services.action_claim(principal=_principal(bob), action_id=soon.pk)

    response = alice.get("/escalations/")

    assert response.status_code == 200
    html = response.content.decode()
    assert _row_ids(html) == [overdue.pk, soon.pk, late.pk]
    # Countdowns tick from data-due; the one past its due time is styled overdue.
    assert f'data-due="{overdue.due_at.isoformat()}"' in html
    assert re.search(r'class="countdown overdue" data-due="[^"]+"[^>]*>overdue 45m', html)
    assert re.search(r'class="countdown" data-due="[^"]+"[^>]*>in 14m', html)
    # Bob's claim shows on his action's row, for Alice and (as "you") for Bob.
    assert 'title="claimed by bob">bob</span>' in html
    assert '<span class="badge good">you</span>' in bob.get("/escalations/").content.decode()
    # Counts: the total and per tier; the navigation bar carries the same count.
    assert response.context["summary"].total == 3
    assert response.context["tier_counts"] == [(0, 1, 3)]
    assert '<span class="count" aria-label="3 waiting">3</span>' in html
    # Links to each action carry no filter when none is set.
    assert f'href="/escalations/actions/{overdue.pk}/"' in html


def test_the_inbox_filters_by_action_tier_risk_tag_and_agent_version(project, ladder, browser_for):
    root = browser_for("admin", username="root")
    pii = make_pending_action(project, ladder, external_id="pii", risk_tags=["pii", "money"], agent_version="v2")
    v1 = make_pending_action(project, ladder, external_id="v1", risk_tags=["money"], agent_version="v1")
    cancel = make_pending_action(project, ladder, action="cancel", external_id="cancel")
    top = make_pending_action(project, ladder, external_id="top", tier_index=2, risk_tags=["pii"])

    def ids(query: str) -> list[int]:
        response = root.get(f"/escalations/?{query}")
        assert response.status_code == 200, query
        return sorted(_row_ids(response.content.decode()))

    assert ids("action=cancel") == [cancel.pk]
    assert ids("tier=2") == [top.pk]
    assert ids("risk_tag=pii") == sorted([pii.pk, top.pk])
    assert ids("agent_version=v1") == [v1.pk]
    assert ids("action=refund&risk_tag=money&agent_version=v2") == [pii.pk]
    assert ids("") == sorted([pii.pk, v1.pk, cancel.pk, top.pk])

    response = root.get("/escalations/?action=cancel")
    # The filter's options count what waits; the links keep the filter for j/k on the page.
    assert response.context["action_counts"] == [("refund", 3), ("cancel", 1)]
    assert response.context["tier_counts"] == [(0, 1, 3), (2, 3, 1)]
    assert f'href="/escalations/actions/{cancel.pk}/?action=cancel"' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "field"),
    [("tier=%C2%B2", "tier"), ("tier=10", "tier"), ("tier=-1", "tier"), ("action=" + "x" * 101, "action")],
)
def test_a_bad_filter_is_refused_by_name_and_the_rest_still_apply(project, ladder, browser_for, query, field):
    alice = browser_for("approver", username="alice")
    cancel = make_pending_action(project, ladder, action="cancel")
    make_pending_action(project, ladder, action="refund")

    # With a bad tier, the action filter beside it still applies.
    response = alice.get(f"/escalations/?{query}&action=cancel" if field == "tier" else f"/escalations/?{query}")

    assert response.status_code == 400
    assert field in response.context["form"].errors
    expected = [cancel.pk] if field == "tier" else sorted(a.pk for a in Action.objects.all())
    assert sorted(_row_ids(response.content.decode())) == expected


def test_an_empty_inbox_says_so(browser_for):
    response = browser_for("approver").get("/escalations/")

    assert response.status_code == 200
    assert "No actions are waiting for your decision." in response.content.decode()


def test_the_inbox_and_the_badge_cost_the_same_queries_for_2_and_20_actions(
    project, ladder, browser_for, django_assert_num_queries
):
    alice = browser_for("approver", username="alice")
    bob = browser_for("approver", username="bob")
    actions = [make_pending_action(project, ladder) for _ in range(2)]
    services.action_claim(principal=_principal(bob), action_id=actions[0].pk)
    alice.get("/escalations/")

    # Session, user, membership; the summary (one grouped query, shared with the navigation
    # bar's count), the action names for the filter, the rows with project, ladder and claimer;
    # the organization switcher's memberships and organization.
    with django_assert_num_queries(8):
        small = alice.get("/escalations/")
    for _ in range(18):
        make_pending_action(project, ladder, claimed_by=bob.user, claimed_at=timezone.now())
    with django_assert_num_queries(8):
        large = alice.get("/escalations/")

    assert len(_row_ids(small.content.decode())) == 2
    assert len(_row_ids(large.content.decode())) == 20


def test_the_navigation_bar_counts_for_deciders_only(project, ladder, browser_for, django_assert_num_queries):
    make_pending_action(project, ladder)
    approver = browser_for("approver", username="alice")
    engineer = browser_for("engineer", username="eve")
    approver.get("/settings/tokens/")
    engineer.get("/settings/tokens/")

    # Session, user, membership, the organization switcher (2), the person's tokens; and for
    # a person who decides, the count: one grouped query.
    with django_assert_num_queries(7):
        page = approver.get("/settings/tokens/").content.decode()
    assert '<a href="/escalations/" class="nav-approvals">Approvals <span class="count"' in page
    with django_assert_num_queries(6):
        page = engineer.get("/settings/tokens/").content.decode()
    assert "nav-approvals" not in page
    # An approver's home page says what waits, through the same count.
    assert "<strong>1</strong> action waits for your decision." in approver.get("/").content.decode()


# --- roles and tenants ---------------------------------------------------------------------------


def test_annotators_may_not_open_the_pages_nor_post(project, ladder, browser_for):
    action = make_pending_action(project, ladder)
    annotator = browser_for("annotator")

    assert annotator.get("/escalations/").status_code == 403
    assert annotator.get(_url(action)).status_code == 403
    assert annotator.post(_url(action, "decide"), {"decision": "approve"}).status_code == 403
    assert annotator.post(_url(action, "claim")).status_code == 403
    _unchanged(action)


def test_an_engineer_reads_an_action_but_may_not_decide_it(project, ladder, browser_for):
    action = make_pending_action(project, ladder)
    engineer = browser_for("engineer")

    assert engineer.get("/escalations/").status_code == 403
    page = engineer.get(_url(action))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Your role (engineer) may see actions but not decide them." in html
    assert 'id="approve-form"' not in html
    assert engineer.post(_url(action, "decide"), {"decision": "approve"}).status_code == 403
    _unchanged(action)


def test_another_organizations_action_is_not_found(project, other_project, browser_for, other_org):
    theirs = make_pending_action(other_project, make_ladder(other_project))
    alice = browser_for("approver", username="alice")

    assert alice.get(_url(theirs)).status_code == 404
    assert alice.post(_url(theirs, "decide"), {"decision": "approve"}).status_code == 404
    assert alice.post(_url(theirs, "decide"), {"decision": "approve", "args": "{not json"}).status_code == 404
    assert alice.post(_url(theirs, "decide"), {"decision": "reject", "comment": ""}).status_code == 404
    assert alice.post(_url(theirs, "claim")).status_code == 404
    assert alice.get("/escalations/actions/99999999999999999999/").status_code == 404
    _unchanged(theirs)


def test_an_approver_not_at_the_tier_sees_the_page_read_only_with_the_reason(project, ladder, browser_for):
    action = make_pending_action(project, ladder, tier_index=1)
    alice = browser_for("approver", username="alice")

    page = alice.get(_url(action))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Tier 2 is for lead, cfo; you may not decide at it." in html
    for form in ("approve-form", "edit-form", "reject-form", "claim-form"):
        assert f'id="{form}"' not in html
    # Posting anyway: a 403 with the service's words on the page, nothing changed.
    refused = alice.post(_url(action, "decide"), {"decision": "approve"})
    assert refused.status_code == 403
    assert "You may not decide this action at its current tier." in refused.content.decode()
    claim = alice.post(_url(action, "claim"))
    assert claim.status_code == 403
    _unchanged(action)


# --- deciding ----------------------------------------------------------------------------------


def test_approving_from_the_page_decides_through_the_service_and_shows_who_and_when(project, ladder, browser_for):
    action = make_pending_action(project, ladder, args={"amount": 450, "currency": "EUR"})
    alice = browser_for("approver", username="alice")

    response = alice.post(
        _url(action, "decide") + "?action=refund",
        {"decision": "approve", "comment": "ok", "expected_digest": _seen_digest(alice, action)},
    )

    assert response.status_code == 303
    assert response["Location"] == _url(action) + "?action=refund"
    action.refresh_from_db()
    assert (action.status, action.decided_by_user, action.final_args) == ("approved", alice.user, action.args)
    assert action.comment == "ok"
    html = alice.get(response["Location"]).content.decode()
    assert "Decided: approved" in html
    assert "Approved." in html  # the message
    assert "As the agent asked, unedited." in html
    assert 'id="approve-form"' not in html
    assert ActionEvent.objects.filter(action=action, kind="decided").count() == 1


def test_a_reject_needs_a_comment_on_the_page_too(project, ladder, browser_for):
    action = make_pending_action(project, ladder)
    alice = browser_for("approver", username="alice")

    html = alice.get(_url(action)).content.decode()
    assert re.search(r'<textarea name="comment" id="reject-comment"[^>]* required', html)

    refused = alice.post(_url(action, "decide"), {"decision": "reject", "comment": "   "})
    assert refused.status_code == 400
    assert "Say why; the agent gets it back." in refused.content.decode()
    _unchanged(action)

    done = alice.post(_url(action, "decide"), {"decision": "reject", "comment": "Over the <b>limit</b>"})
    assert done.status_code == 303
    action.refresh_from_db()
    assert (action.status, action.comment) == ("rejected", "Over the <b>limit</b>")
    page = alice.get(_url(action)).content.decode()
    assert "Over the &lt;b&gt;limit&lt;/b&gt;" in page
    assert "Rejected; the agent gets your comment." in page


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"amount": 400,}', "Not valid JSON"),
        ('{"amount": 4', "Not valid JSON"),
        ("[1, 2]", "Must be a JSON object."),
        ('{"amount": NaN}', "Not valid JSON"),
        ('{"a": "\\u0000"}', "Not valid JSON"),
        ("[" * 40 + "]" * 40, "Not valid JSON"),
    ],
)
def test_edited_args_that_do_not_parse_come_back_inline_and_nothing_is_saved(project, ladder, browser_for, text, error):
    action = make_pending_action(project, ladder)
    alice = browser_for("approver", username="alice")

    response = alice.post(_url(action, "decide"), {"decision": "approve", "args": text, "comment": "c"})

    assert response.status_code == 400
    html = response.content.decode()
    assert error in html
    assert "Nothing was saved." in html
    # The editor stays open with what was typed.
    assert '<details class="edit-panel" id="edit-panel" open>' in html
    assert response.context["args_text"] == text
    _unchanged(action)


def test_editing_the_args_approves_the_edit_and_keeps_the_diff_on_the_page(project, ladder, browser_for):
    action = make_pending_action(project, ladder, args={"amount": 450, "currency": "EUR", "note": "x"})
    alice = browser_for("approver", username="alice")
    page = alice.get(_url(action))
    # The editor starts with the args on the table, pretty-printed (in the database's key order).
    assert json.loads(page.context["args_text"]) == action.args
    assert '\n  "amount": 450' in page.context["args_text"]

    response = alice.post(
        _url(action, "decide"),
        {
            "decision": "approve",
            "args": '{"amount": 400, "currency": "EUR", "reason": "cap"}',
            "expected_digest": _seen_digest(alice, action),
        },
    )

    assert response.status_code == 303
    action.refresh_from_db()
    assert action.status == ActionStatus.APPROVED
    assert action.final_args == {"amount": 400, "currency": "EUR", "reason": "cap"}
    assert action.args == {"amount": 450, "currency": "EUR", "note": "x"}
    html = alice.get(_url(action)).content.decode()
    assert "Approved with your edited args." in html
    assert "Edited by the approvers" in html
    changes = re.findall(
        r'<tr><td class="mono">([^<]*)</td><td class="mono from">(.*?)</td><td class="mono to">(.*?)</td></tr>', html
    )
    assert changes == [
        ("amount", "450", "400"),
        ("note", "&quot;x&quot;", '<span class="muted">(removed)</span>'),
        ("reason", '<span class="muted">(absent)</span>', "&quot;cap&quot;"),
    ]


def test_a_decision_after_someone_else_decided_is_a_409_message_naming_them(project, ladder, browser_for):
    action = make_pending_action(project, ladder)
    alice = browser_for("approver", username="alice")
    bob = browser_for("approver", username="bob")
    alice.get(_url(action))  # Bob's page was open too
    services.action_decide(principal=_principal(alice), action_id=action.pk, decision="approve")

    response = bob.post(_url(action, "decide"), {"decision": "reject", "comment": "no"})

    assert response.status_code == 409
    html = response.content.decode()
    assert re.search(r'<li class="message error">Already approved by alice at [0-9: -]+UTC\.</li>', html)
    assert "Decided: approved" in html
    action.refresh_from_db()
    assert (action.status, action.decided_by_user) == ("approved", alice.user)


def test_four_eyes_from_the_page_the_first_approval_waits_for_the_second(project, ladder, browser_for):
    action = make_pending_action(project, ladder, tier_index=1, args={"amount": 900})
    lead = browser_for("approver", username="lead")
    cfo = browser_for("approver", username="cfo")

    first = lead.post(
        _url(action, "decide"),
        {"decision": "approve", "args": '{"amount": 800}', "expected_digest": _seen_digest(lead, action)},
    )
    assert first.status_code == 303
    page = lead.get(_url(action)).content.decode()
    assert "Your approval is recorded; this tier needs 2 approvals of the same args." in page
    assert "You already approved this action (at tier 2); each person decides once per tier." in page
    assert "1 of 2 approvals" in page
    assert "2 approvals · 1 of 2" not in page  # the count once, with its progress

    # The second pair of eyes gets the edit on the table, and approving it decides.
    second_page = cfo.get(_url(action))
    assert second_page.context["args_text"] == '{\n  "amount": 800\n}'
    assert "approved an edit" in second_page.content.decode()
    seen = _seen_digest(cfo, action)
    assert cfo.post(_url(action, "decide"), {"decision": "approve", "expected_digest": seen}).status_code == 303
    action.refresh_from_db()
    assert (action.status, action.final_args) == ("approved", {"amount": 800})
    assert action.reason == "Approved by lead, cfo"


def test_claiming_and_giving_back_from_the_page(project, ladder, browser_for):
    action = make_pending_action(project, ladder)
    alice = browser_for("approver", username="alice")
    bob = browser_for("approver", username="bob")

    assert alice.post(_url(action, "claim")).status_code == 303
    action.refresh_from_db()
    assert action.claimed_by == alice.user
    mine = alice.get(_url(action)).content.decode()
    assert "Claimed by you" in mine
    assert 'name="release" value="1"' in mine
    theirs = bob.get(_url(action)).content.decode()
    assert "Claimed by alice" in theirs
    assert 'id="claim-form"' not in theirs  # a live claim is not taken over from the page

    refused = bob.post(_url(action, "claim"))
    assert refused.status_code == 409
    assert "Already claimed by alice" in refused.content.decode()
    assert alice.post(_url(action, "claim"), {"release": "1"}).status_code == 303
    action.refresh_from_db()
    assert action.claimed_by is None


# --- what the action page shows ------------------------------------------------------------------


def test_the_action_page_shows_what_a_decision_needs(project, ladder, browser_for):
    conversation = ConversationFactory(
        project=project, external_id="conv-1", messages=[{"role": "user", "content": "Refund my **flight**"}]
    )
    now = timezone.now()
    earlier = [
        make_pending_action(project, ladder, end_user_id="cust-9", now=now - dt.timedelta(days=n + 1))
        for n in range(22)
    ]
    Action.objects.filter(pk=earlier[0].pk).update(status=ActionStatus.REJECTED, decided_by="person")
    make_pending_action(project, ladder, end_user_id="cust-other", now=now - dt.timedelta(days=1))
    action = make_pending_action(
        project,
        ladder,
        now=now,
        end_user_id="cust-9",
        confidence=0.42,
        risk_tags=["money"],
        agent_version="v7",
        reasoning="Customer *asked* twice",
        conversation=conversation,
        conversation_external_id="conv-1",
        policy_version=3,
        matched_rule_index=1,
        matched_rule="big refunds",
        policy_explanation=[
            {"condition": "args.amount > 200", "observed": 450},
            {"condition": "confidence < 0.9", "observed": None, "note": "no confidence given"},
        ],
    )
    ActionEvent.objects.create(organization=project.organization, action=action, kind="tier_entered", data={"tier": 0})
    alice = browser_for("approver", username="alice")

    response = alice.get(_url(action))

    assert response.status_code == 200
    html = response.content.decode()
    for text in [
        "0.420",
        '<span class="tag">money</span>',
        "v7",
        "cust-9",
        "version 3",
        "#2 <strong>big refunds</strong>",
        '<td class="mono small">args.amount &gt; 200</td><td class="mono small">450</td>',
        "no confidence given",
        "to ladder <strong>finance</strong> v1",
        "Tier 1/3 · any approver (and admins)",
        '<div class="reasoning-box"><div class="md"><p>Customer <em>asked</em> twice</p>',
        '<article class="turn role-user"',
        "Refund my <strong>flight</strong>",
        "tier_entered",
    ]:
        assert text in html, text
    pretty_args = "{\n  &quot;amount&quot;: 450,\n  &quot;currency&quot;: &quot;EUR&quot;\n}"
    assert f'<div class="args" id="args"><pre class="as-sent">{pretty_args}</pre></div>' in html
    # The last 20 of the same end user's earlier actions, newest first, with outcomes and links.
    shown = [row.action.pk for row in response.context["earlier"]]
    assert shown == [a.pk for a in earlier[:20]]
    assert f'href="/escalations/actions/{earlier[0].pk}/"' in html
    assert '<span class="badge status-rejected">rejected</span>' in html
    assert re.search(r'class="countdown" data-due="[^"]+"[^>]*>in 1[45]m', html)


def test_a_conversation_not_received_yet_says_so(project, ladder, browser_for):
    action = make_pending_action(project, ladder, conversation_external_id="conv-later")

    html = browser_for("approver").get(_url(action)).content.decode()

    assert 'Conversation <span class="mono">conv-later</span> not received yet' in html


def test_j_and_k_walk_the_inbox_order_with_its_filters(project, ladder, browser_for):
    alice = browser_for("approver", username="alice")
    now = timezone.now()
    a, b, c = (make_pending_action(project, ladder, now=now + dt.timedelta(minutes=n)) for n in range(3))
    other = make_pending_action(project, ladder, action="cancel", now=now + dt.timedelta(seconds=30))

    middle = alice.get(_url(b)).context
    assert (middle["previous_url"], middle["next_url"]) == (_url(other), _url(c))
    filtered = alice.get(_url(b) + "?action=refund").context
    assert (filtered["previous_url"], filtered["next_url"]) == (_url(a) + "?action=refund", _url(c) + "?action=refund")
    first = alice.get(_url(a) + "?action=refund").context
    assert (first["previous_url"], first["next_url"]) == (None, _url(b) + "?action=refund")
    # Decided, it still knows its place.
    services.action_decide(principal=_principal(alice), action_id=b.pk, decision="approve")
    after = alice.get(_url(b)).context
    assert (after["previous_url"], after["next_url"]) == (_url(other), _url(c))


def test_the_action_page_costs_the_same_queries_whatever_its_history(
    project, ladder, browser_for, django_assert_num_queries
):
    conversation = ConversationFactory(project=project, external_id="c")
    alice = browser_for("approver", username="alice")
    action = make_pending_action(project, ladder, end_user_id="u", conversation=conversation, tier_index=1)
    neighbour = make_pending_action(project, ladder, end_user_id="u")
    alice.get(_url(action))

    # Session, user, membership; the action with project, ladder, decider, claimer and
    # conversation; votes; the trail; earlier actions; the summary (shared with the navigation
    # bar's count) and the previous and next actions; the organization switcher (2).
    with django_assert_num_queries(12):
        alice.get(_url(action))
    for n in range(10):
        make_pending_action(project, ladder, end_user_id="u", now=timezone.now() - dt.timedelta(days=n + 1))
        ActionEvent.objects.create(organization=project.organization, action=action, kind="note", data={"n": n})
    lead = browser_for("approver", username="lead")
    seen = _seen_digest(lead, action)
    assert lead.post(_url(action, "decide"), {"decision": "approve", "expected_digest": seen}).status_code == 303
    with django_assert_num_queries(12):
        page = alice.get(_url(action))
    assert len(page.context["earlier"]) == 10
    assert len(page.context["votes"]) == 1
    assert [e.kind for e in page.context["trail"]] == ["note"] * 10 + ["voted"]
    # Alice may not decide at tier 2; her inbox order still places the action after the
    # neighbour (due in 15 min; this one in an hour).
    assert (page.context["previous_url"], page.context["next_url"]) == (_url(neighbour), None)


def test_an_action_escalated_by_the_real_policy_shows_why_and_its_conversation_once_it_arrives(project, browser_for):
    requests.refund_policy(project)
    first, second = (
        requests.request(project, requests.request_body(f"r-{n}"), now=requests.NOW + dt.timedelta(minutes=n))
        for n in range(2)
    )
    third = requests.request(project, requests.request_body("r-3"), now=requests.NOW + dt.timedelta(minutes=5))
    assert (first.status, second.status, third.status) == ("approved", "approved", "pending")
    alice = browser_for("approver", username="alice")

    html = alice.get(_url(third)).content.decode()
    assert "#1 <strong>refund velocity</strong>" in html
    assert (
        '<td class="mono small">sum of args.amount by end_user_id over 86400 s &gt; 1000</td>'
        '<td class="mono small">1200</td>'
    ) in html
    assert 'Conversation <span class="mono">conv-812</span> not received yet' in html
    earlier = alice.get(_url(third)).context["earlier"]
    assert [(row.action.pk, row.action.status, row.action.decided_by) for row in earlier] == [
        (second.pk, "approved", "policy"),
        (first.pk, "approved", "policy"),
    ]

    core_services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(conversation_payload("conv-812"))]
    )
    page = alice.get(_url(third))
    assert page.context["turns"]
    assert "not received yet" not in page.content.decode()


def test_an_approval_of_args_that_changed_since_the_page_loaded_is_refused(project, browser_for):
    # Four-eyes: A approves 450, B opens the page (450 on the table), C edits to 45000; B's
    # approve must not approve 45000, which B never saw.
    ladder = make_ladder(project, tier(role="approver", approvals_required=2))
    action = make_pending_action(project, ladder, args={"amount": 450})
    a, b, c = (browser_for("approver", username=name) for name in ("a", "b", "c"))
    services.action_decide(principal=_principal(a), action_id=action.pk, decision="approve")
    seen = _seen_digest(b, action)
    services.action_decide(principal=_principal(c), action_id=action.pk, decision="approve", args={"amount": 45000})

    refused = b.post(_url(action, "decide"), {"decision": "approve", "expected_digest": seen})

    assert refused.status_code == 409
    assert "The args changed since you loaded them; review them again." in refused.content.decode()
    action.refresh_from_db()
    assert (action.status, action.final_args) == (ActionStatus.PENDING, None)
    assert not Vote.objects.filter(action=action, user=b.user).exists()
    # Without the digest the browser's post is refused too, never counted.
    assert b.post(_url(action, "decide"), {"decision": "approve"}).status_code == 400
    assert not Vote.objects.filter(action=action, user=b.user).exists()
    # Reloaded, B sees 45000 and may approve it knowingly.
    assert (
        b.post(_url(action, "decide"), {"decision": "approve", "expected_digest": _seen_digest(b, action)}).status_code
        == 303
    )
    action.refresh_from_db()
    assert (action.status, action.final_args) == (ActionStatus.APPROVED, {"amount": 45000})


def test_the_conversation_link_shows_only_to_those_who_may_open_it(project, ladder, browser_for):
    conversation = ConversationFactory(project=project, external_id="conv-812")
    action = make_pending_action(project, ladder)
    Action.objects.filter(pk=action.pk).update(conversation=conversation)
    link = f'href="/conversations/{conversation.pk}/"'

    approver = browser_for("approver", username="alice")
    page = approver.get(_url(action))
    # The transcript is on the page; its own page is a 403 for an approver, so no link to it.
    assert page.context["turns"]
    assert link not in page.content.decode()
    assert approver.get(f"/conversations/{conversation.pk}/").status_code == 403

    engineer = browser_for("engineer", username="eve")
    assert link in engineer.get(_url(action)).content.decode()
    assert engineer.get(f"/conversations/{conversation.pk}/").status_code == 200
