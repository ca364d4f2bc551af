"""The escalations dashboard and the policy page in Chromium: they render under the
Content-Security-Policy without a violation, the charts are drawn, and the dry run works from
the form. Screenshots go to $SHOTS_DIR when it is set (for looking at the pages)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone

from tests.browser.conftest import login
from tests.browser.test_content_security_policy import _violations, _watch
from tests.escalations.factories_insight import past_action
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]


def _shot(page, name: str) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _history(project, member) -> None:
    """Two weeks of refunds and lookups: most auto-approved, some escalated and decided, one
    approver who approves everything in seconds, one who reads."""
    quick = member("approver", username="quick")
    careful = member("approver", username="careful")
    now = timezone.now()
    for day in range(14):
        at = now - dt.timedelta(days=day, hours=1)
        for i in range(6 + day % 4):
            past_action(project, at=at + dt.timedelta(minutes=i), outcome="approve", rule="small refunds",
                        confidence=0.97, end_user_id=f"c{i}")  # fmt: skip
        for i in range(3):
            past_action(project, at=at + dt.timedelta(minutes=20 + i), human="approve", by=quick, decided_after=64,
                        tier_entered_after=60, confidence=0.9, rule="big refunds", args={"amount": 450})  # fmt: skip
        human = "reject" if day % 3 == 0 else ("edited" if day % 3 == 1 else "approve")
        past_action(project, at=at + dt.timedelta(minutes=30), human=human, by=careful, decided_after=600 + 60 * day,
                    confidence=0.6, action="lookup_order", agent_version="v2")  # fmt: skip
        past_action(project, at=at + dt.timedelta(minutes=40), outcome="reject", action="delete_account")


def test_dashboard_and_policy_page_under_the_policy(page, live_server, project, member):
    member("engineer", username="eve")
    _history(project, member)
    console = _watch(page)
    login(page, live_server, "eve", DEFAULT_PASSWORD)

    response = page.goto(f"{live_server.url}/escalations/dashboard/")
    assert response.status == 200
    page.wait_for_load_state("networkidle")
    assert page.locator("figure.chart-box svg").count() == 3
    assert page.locator("#rubber-stamps").inner_text().count("quick") == 1
    _shot(page, "dashboard")
    assert _violations(page, console) == []

    console.clear()
    page.goto(f"{live_server.url}/escalations/policy/")
    page.fill(
        "#draft", '{"rules": [{"name": "trust the agent", "if": {"confidence_at_least": 0.5}, "then": "approve"}]}'
    )
    page.click("button[value=simulate]")
    page.wait_for_selector("#report")
    key = page.locator(".key-figure .num").inner_text()
    # The careful approver's rejected and edited lookups (confidence 0.6) would be auto-approved.
    assert int(key) == 10
    _shot(page, "policy-simulated")
    assert _violations(page, console) == []

    page.fill("#draft", '{"rules": [{"then": "sometimes"}]}')
    page.click("button[value=save]")
    page.wait_for_selector("#draft-errors")
    assert "rules[0].then" in page.locator("#draft-errors").inner_text()
    _shot(page, "policy-error")


@pytest.mark.parametrize("size", [(1366, 768), (390, 844)])
def test_a_dry_run_opens_at_its_report_and_an_error_at_the_draft(page, live_server, project, member, size):
    member("engineer", username="eve")
    _history(project, member)
    page.set_viewport_size({"width": size[0], "height": size[1]})
    login(page, live_server, "eve", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/escalations/policy/")

    page.click("button[value=simulate]")
    page.wait_for_selector("#report")
    # The report sits below the draft and the version in force: it used to render off screen,
    # the page seemingly unchanged by the click.
    top = page.locator("#report").bounding_box()["y"]
    assert 0 <= top < size[1] / 2

    page.fill("#draft", '{"rules": [{"then": "sometimes"}]}')
    page.click("button[value=simulate]")
    page.wait_for_selector("#draft-errors")
    assert page.locator("#draft-errors").is_visible()
    assert page.evaluate("window.scrollY") == 0
