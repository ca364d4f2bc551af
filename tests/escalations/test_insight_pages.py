"""The escalations dashboard and the policy page: who may open them, tenants, the figures they
show (exact), hostile names escaped, query counts pinned, and saving through the service."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from escalations import selectors_insight
from escalations.models import PolicyVersion
from reviewapp.models import AuditEvent
from tests.escalations.factories_insight import ladder_for, past_action
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

DASHBOARD = "/escalations/dashboard/"
POLICY = "/escalations/policy/"


@pytest.mark.parametrize("path", [DASHBOARD, POLICY])
@pytest.mark.parametrize(("role", "status"), [("engineer", 200), ("admin", 200), ("approver", 403), ("annotator", 403)])
def test_engineers_and_admins_only(browser_for, project, path, role, status):
    assert browser_for(role).get(path).status_code == status


@pytest.mark.parametrize("path", [DASHBOARD, POLICY])
def test_signed_out_goes_to_login_and_another_tenants_project_is_404(browser_for, project, other_project, path):
    answer = Client().get(path)
    assert answer.status_code == 302 and "/login/" in answer["Location"]
    assert browser_for("engineer").get(path, {"project": "shop"}).status_code == 404
    assert browser_for("engineer").get(path, {"project": "support"}).status_code == 200


def _no_inline_code(html: str) -> None:
    assert "style=" not in html
    assert "<style" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag, tag


def test_dashboard_figures_are_exact(browser_for, project, member, settings):
    alice = member("approver", username="alice")
    now = timezone.now()
    day = now - dt.timedelta(days=2)
    past_action(project, at=day, outcome="approve", rule="small refunds")
    past_action(project, at=day, outcome="approve", rule="small refunds")
    past_action(project, at=day, outcome="reject", rule="no deletes", action="delete")
    times = [30, 90, 600, 3600]
    past_action(project, at=day, human="approve", by=alice, decided_after=times[0], rule="big refunds")
    past_action(project, at=day, human="edited", by=alice, decided_after=times[1], rule="big refunds")
    past_action(project, at=day, human="reject", by=alice, decided_after=times[2], rule="big refunds")
    past_action(project, at=day, human="approve", by=alice, decided_after=times[3], agent_version="v2")
    past_action(project, at=day, human="expired")
    past_action(project, at=now - dt.timedelta(days=40), outcome="approve")  # outside the 30 days

    figures = selectors_insight.dashboard_figures(organization=project.organization, project=project)
    totals = figures["totals"]
    assert (totals["total"], totals["auto_approved"], totals["auto_rejected"], totals["escalated"]) == (8, 2, 1, 5)
    assert (totals["human_decided"], totals["human_rejected"], totals["human_edited"], totals["expired"]) == (
        4,
        1,
        1,
        1,
    )
    assert totals["auto_approval_rate"] == pytest.approx(2 / 8)
    assert totals["escalation_rate"] == pytest.approx(5 / 8)
    assert totals["override_rate"] == pytest.approx(2 / 4)
    assert len(figures["by_day"]) == 30
    (busy,) = [d for d in figures["by_day"] if d["total"]]
    assert busy["decision_p50"] == pytest.approx(np.percentile(times, 50))
    assert busy["decision_p90"] == pytest.approx(np.percentile(times, 90))
    rules = {row["key"]: row for row in figures["by_rule"]}
    assert rules["big refunds"]["human_decided"] == 3
    assert rules["big refunds"]["override_rate"] == pytest.approx(2 / 3)
    assert rules["big refunds"]["decision_p50"] == pytest.approx(90)
    assert rules[""]["total"] == 2  # the v2 one and the expired one: no rule matched
    versions = {row["key"]: row for row in figures["by_agent_version"]}
    assert versions["v2"]["decision_p90"] == pytest.approx(3600)
    actions = {row["key"]: row for row in figures["by_action"]}
    assert actions["delete"]["auto_rejected"] == 1

    page = browser_for("engineer").get(DASHBOARD)
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<svg") == 3
    assert "big refunds" in html and "(no rule matched: default ladder)" in html
    _no_inline_code(html)


def test_a_day_is_the_projects_day(project):
    project.timezone = "Pacific/Auckland"
    project.save()
    now = dt.datetime(2026, 5, 10, 12, 0, tzinfo=dt.UTC)  # 00:00 on the 11th in Auckland
    past_action(project, at=now - dt.timedelta(minutes=30), outcome="approve")  # the 10th there
    past_action(project, at=now, outcome="approve")  # the 11th there
    figures = selectors_insight.dashboard_figures(organization=project.organization, project=project, now=now)
    assert figures["by_day"][-1]["key"] == dt.date(2026, 5, 11)
    assert [d["total"] for d in figures["by_day"][-2:]] == [1, 1]


def test_hostile_names_are_escaped(browser_for, project, member):
    alice = member("approver", username="alice")
    hostile = '<img src=x onerror=alert(1)>"'
    past_action(project, at=timezone.now() - dt.timedelta(hours=1), action=hostile, rule=hostile, agent_version=hostile)
    past_action(project, at=timezone.now() - dt.timedelta(hours=1), action=hostile, human="approve", by=alice)
    html = browser_for("engineer").get(DASHBOARD).content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_rubber_stamps_are_flagged(browser_for, project, member):
    quick = member("approver", username="quick")
    careful = member("approver", username="careful")
    few = member("approver", username="few")
    start = timezone.now() - dt.timedelta(days=1)
    for i in range(25):  # 25 approvals, each 4 s after the action reached the tier
        past_action(project, at=start + dt.timedelta(minutes=i), human="approve", by=quick, decided_after=64,
                    tier_entered_after=60)  # fmt: skip
    for i in range(25):  # as many, but 2 rejections: 92% approved
        human = "reject" if i < 2 else "approve"
        past_action(project, at=start + dt.timedelta(minutes=i), human=human, by=careful, decided_after=3)
    for i in range(10):  # quick but too few to judge
        past_action(project, at=start + dt.timedelta(minutes=i), human="approve", by=few, decided_after=2)
    flagged = selectors_insight.rubber_stamp_approvers(organization=project.organization, project=project)
    assert flagged == [
        {"username": "quick", "decisions": 25, "approved": 25, "approval_rate": 1.0, "median_seconds": pytest.approx(4)}
    ]
    html = browser_for("engineer").get(DASHBOARD).content.decode()
    assert 'id="rubber-stamps"' in html and "quick" in html and "careful" not in html


def test_no_rubber_stamp_warning_for_slow_approvers(browser_for, project, member):
    slow = member("approver", username="slow")
    start = timezone.now() - dt.timedelta(days=1)
    for i in range(30):
        past_action(project, at=start + dt.timedelta(minutes=i), human="approve", by=slow, decided_after=45)
    assert selectors_insight.rubber_stamp_approvers(organization=project.organization, project=project) == []
    assert 'id="rubber-stamps"' not in browser_for("engineer").get(DASHBOARD).content.decode()


def test_dashboard_queries_are_pinned(browser_for, project, member, django_assert_num_queries, on_postgres):
    alice = member("approver", username="alice")
    client = browser_for("engineer")
    start = timezone.now() - dt.timedelta(days=3)
    for i in range(3):
        past_action(project, at=start + dt.timedelta(hours=i), human="approve", by=alice, action=f"a{i}")
    client.get(DASHBOARD)
    # session, user, membership, projects; 4 GROUP BYs (+1 for SQLite's decision times); the
    # rubber stamps; the envelopes' decisions and traffic; the organization switcher (2).
    expected = 13 if on_postgres else 14
    with django_assert_num_queries(expected):
        client.get(DASHBOARD)
    for i in range(20):
        past_action(project, at=start + dt.timedelta(hours=i), human="reject", by=alice, action=f"b{i}", rule=f"r{i}")
    with django_assert_num_queries(expected):
        client.get(DASHBOARD)


def test_envelopes_show_on_the_dashboard(browser_for, project, member):
    alice = member("approver", username="alice")
    at = timezone.now() - dt.timedelta(days=1)
    for _ in range(381):
        past_action(project, at=at, confidence=0.93, human="approve", by=alice)
    html = browser_for("admin").get(DASHBOARD).content.decode()
    assert "confidence ≥ 0.0" in html  # every decision approved: the envelope starts at 0
    assert "&quot;confidence_at_least&quot;: 0.0" in html


# --- the policy page -------------------------------------------------------------------------


def test_policy_page_shows_the_policy_in_force(browser_for, project):
    PolicyVersion.objects.create(
        organization=project.organization,
        project=project,
        version=3,
        rules=[{"if": {"action": "refund"}, "then": "approve"}],
        default_ladder="default",
    )
    html = browser_for("engineer").get(POLICY).content.decode()
    assert "version 3" in html
    assert "&quot;then&quot;: &quot;approve&quot;" in html
    _no_inline_code(html)


def test_simulate_shows_the_report(browser_for, project, member):
    alice = member("approver", username="alice")
    rejected = past_action(
        project, at=timezone.now() - dt.timedelta(hours=2), confidence=0.95, human="reject", by=alice
    )
    draft = '{"rules": [{"if": {"action": "refund"}, "then": "approve"}]}'
    answer = browser_for("engineer").post(
        POLICY, {"project": "support", "draft": draft, "last": "100", "do": "simulate"}
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert 'id="report"' in html
    assert re.search(r'key-figure bad"><span class="num">1</span>', html)
    assert f'<a href="/escalations/actions/{rejected.pk}/">{rejected.pk}</a>' in html
    assert not PolicyVersion.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("draft", "field"),
    [
        ('{"rules": [{"then": "maybe"}]}', "rules[0].then"),
        ('{"rules": [{"then": "escalate", "ladder": "finance"}]}', "rules[0].ladder"),
        ('{"rules": [', "draft"),
        ("", "draft"),
    ],
)
@pytest.mark.parametrize("do", ["simulate", "save"])
def test_bad_drafts_name_the_field_and_save_nothing(browser_for, project, draft, field, do):
    answer = browser_for("engineer").post(POLICY, {"project": "support", "draft": draft, "do": do})
    assert answer.status_code == 400
    assert f"<code>{field}</code>" in answer.content.decode()
    assert not PolicyVersion.objects.filter(project=project).exists()


def test_save_creates_the_next_version_through_the_service(browser_for, project):
    ladder_for(project, "finance")
    client = browser_for("admin", username="ada")
    draft = '{"rules": [{"name": "big", "if": {"args": [{"path": "amount", "op": ">", "value": 200}]}, "then": "escalate", "ladder": "finance"}]}'  # noqa: E501
    answer = client.post(POLICY, {"project": "support", "draft": draft, "do": "save"})
    assert answer.status_code == 302
    assert answer["Location"] == f"{POLICY}?project=support&saved=1"
    version = PolicyVersion.objects.get(project=project)
    assert version.version == 1 and version.rules[0]["name"] == "big"
    assert version.created_by.username == "ada"
    assert AuditEvent.objects.filter(kind="policy_version.created").count() == 1
    page = client.get(answer["Location"]).content.decode()
    assert "Saved as version 1." in page


def test_the_project_picker_lists_only_this_organizations_projects(browser_for, project, other_project):
    ProjectFactory(organization=project.organization, slug="billing", name="Billing agent")
    html = browser_for("engineer").get(DASHBOARD, {"project": "billing"}).content.decode()
    assert "Billing agent" in html and "Support agent" in html and "Shop agent" not in html
