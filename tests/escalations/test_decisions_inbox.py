"""The approver's inbox: pending actions the person may decide now, soonest due first, in a
fixed number of queries whatever the number of actions and ladders."""

from __future__ import annotations

import datetime as dt

import pytest

from escalations import services
from escalations.models import Action, ActionStatus
from escalations.selectors_inbox import InboxFilters, inbox_count, inbox_for
from reviewapp.principal import Principal
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier

NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def person(org, member):
    def make(username: str, role: str = "approver", organization=None) -> Principal:
        organization = organization or org
        return Principal(
            organization=organization, role=role, user=member(role, organization=organization, username=username)
        )

    return make


@pytest.fixture
def ladders(project):
    """approvers -> lead (named) -> admins."""
    return {
        "finance": make_ladder(
            project,
            tier(role="approver", timeout_seconds=900),
            tier(users=("lead", "cfo"), timeout_seconds=3600, approvals_required=2),
            tier(role="admin", timeout_seconds=7200),
            name="finance",
        ),
        "leads": make_ladder(project, tier(users=("lead", "alice"), timeout_seconds=600), name="leads"),
    }


def _ids(actions) -> list[str]:
    return [a.external_id for a in actions]


def test_the_inbox_holds_what_the_person_may_decide_soonest_due_first(project, ladders, person):
    finance, leads = ladders["finance"], ladders["leads"]
    make_pending_action(project, finance, external_id="f0-late", now=NOW + dt.timedelta(minutes=10))
    make_pending_action(project, finance, external_id="f0-early", now=NOW)
    make_pending_action(project, finance, external_id="f1", tier_index=1, now=NOW)
    make_pending_action(project, finance, external_id="f2", tier_index=2, now=NOW)
    make_pending_action(project, leads, external_id="l0", now=NOW)
    decided = make_pending_action(project, finance, external_id="decided", now=NOW)
    Action.objects.filter(pk=decided.pk).update(status=ActionStatus.APPROVED)

    alice, bob, lead = person("alice"), person("bob"), person("lead")
    root, eve = person("root", "admin"), person("eve", "engineer")

    # l0 is due at 09:10, f0-early at 09:15, f0-late at 09:25.
    assert _ids(inbox_for(alice)) == ["l0", "f0-early", "f0-late"]
    assert _ids(inbox_for(bob)) == ["f0-early", "f0-late"]
    assert _ids(inbox_for(lead)) == ["l0", "f0-early", "f0-late", "f1"]
    # Admins at every role tier, not at the tiers that name people.
    assert _ids(inbox_for(root)) == ["f0-early", "f0-late", "f2"]
    assert _ids(inbox_for(eve)) == []  # engineers may not decide
    assert [inbox_count(p) for p in (alice, bob, lead, root, eve)] == [3, 2, 4, 3, 0]


def test_what_the_person_voted_on_leaves_their_inbox_only(project, ladders, person):
    action = make_pending_action(project, ladders["finance"], external_id="f1", tier_index=1, now=NOW)
    lead, cfo = person("lead"), person("cfo", "admin")
    services.action_decide(principal=lead, action_id=action.pk, decision="approve", now=NOW)

    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING
    assert _ids(inbox_for(lead)) == []
    assert _ids(inbox_for(cfo)) == ["f1"]  # the second pair of eyes still has it
    assert inbox_count(lead) == 0


def test_a_vote_at_an_earlier_tier_does_not_hide_the_action_at_the_next(project, person):
    ladder = make_ladder(
        project,
        tier(role="approver", timeout_seconds=900, approvals_required=2),
        tier(users=("a",), timeout_seconds=3600),
        name="named",
    )
    action = make_pending_action(project, ladder, external_id="n1", now=NOW)
    a = person("a")
    services.action_decide(principal=a, action_id=action.pk, decision="approve", now=NOW)
    assert _ids(inbox_for(a)) == []
    services.actions_timeout_sweep(now=NOW + dt.timedelta(seconds=900))

    assert _ids(inbox_for(a)) == ["n1"]  # tier 1 names a; their tier-0 vote does not count there
    assert inbox_count(a) == 1


def test_other_organizations_actions_never_show(project, other_project, person, other_org):
    make_pending_action(other_project, make_ladder(other_project), external_id="theirs", now=NOW)
    make_pending_action(project, make_ladder(project), external_id="ours", now=NOW)

    assert _ids(inbox_for(person("alice"))) == ["ours"]
    assert _ids(inbox_for(person("zed", organization=other_org))) == ["theirs"]


def test_agents_have_no_inbox(project, agent_client):
    make_pending_action(project, make_ladder(project), now=NOW)
    agent = Principal(organization=project.organization, role="agent", api_key=agent_client.api_key, project=project)

    assert inbox_for(agent) == []
    assert inbox_count(agent) == 0


def test_filters(project, ladders, person):
    finance = ladders["finance"]
    make_pending_action(project, finance, external_id="refund-pii", risk_tags=["pii", "money"], agent_version="v2")
    make_pending_action(project, finance, external_id="refund-v1", risk_tags=["money"], agent_version="v1")
    make_pending_action(project, finance, action="cancel", external_id="cancel", risk_tags=['"pii"', "pii-x"])
    make_pending_action(project, finance, external_id="admin-tier", tier_index=2, risk_tags=["pii"])
    root = person("root", "admin")

    assert _ids(inbox_for(root, InboxFilters(action="cancel"))) == ["cancel"]
    assert sorted(_ids(inbox_for(root, InboxFilters(risk_tag="pii")))) == ["admin-tier", "refund-pii"]
    assert _ids(inbox_for(root, InboxFilters(risk_tag='"pii"'))) == ["cancel"]
    assert _ids(inbox_for(root, InboxFilters(risk_tag="pi"))) == []
    assert _ids(inbox_for(root, InboxFilters(agent_version="v1"))) == ["refund-v1"]
    assert _ids(inbox_for(root, InboxFilters(tier=2))) == ["admin-tier"]
    assert _ids(inbox_for(root, InboxFilters(action="refund", risk_tag="money", agent_version="v2"))) == ["refund-pii"]
    assert inbox_count(root, InboxFilters(risk_tag="pii")) == 2


def test_the_inbox_costs_two_queries_and_its_count_one_whatever_its_size(project, person, django_assert_num_queries):
    alice, lead = person("alice"), person("lead")
    for n in range(6):
        ladder = make_ladder(
            project,
            tier(role="approver"),
            tier(users=("lead",), timeout_seconds=3600),
            name=f"ladder-{n}",
        )
        for index in (0, 1, 0):
            make_pending_action(project, ladder, tier_index=index, now=NOW + dt.timedelta(minutes=n))

    with django_assert_num_queries(2):
        mine = inbox_for(alice)
        # The page shows project, ladder and claimer: loaded with the actions.
        [(a.project.slug, a.ladder.name, a.claimed_by) for a in mine]
    with django_assert_num_queries(2):
        theirs = inbox_for(lead)
    # The count (every page's badge) is one grouped query.
    with django_assert_num_queries(1):
        assert inbox_count(lead) == 18
    assert len(mine) == 12
    assert len(theirs) == 18  # an approver named at tier 1: both tiers
    assert [a.due_at for a in mine] == sorted(a.due_at for a in mine)


def test_the_inbox_is_bounded(project, person):
    ladder = make_ladder(project)
    for _ in range(5):
        make_pending_action(project, ladder)

    assert len(inbox_for(person("alice"), limit=3)) == 3
    assert inbox_count(person("bob")) == 5
