"""The ladder editor in Chromium: an engineer opens a ladder from the list, adds a tier of named
users (ladders.js shows the usernames box only for such a tier), is told beside the field what
is wrong, fixes it and saves the next version; all under the Content-Security-Policy. The page
with the error is kept as a screenshot (var/screenshots/) for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from escalations.models import LadderVersion
from tests.browser.conftest import login
from tests.browser.test_content_security_policy import _violations, _watch
from tests.escalations.factories_decisions import make_ladder, tier
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def test_edit_a_ladder_fix_an_error_beside_its_field_and_save(page, live_server, project, member):
    member("engineer", username="eve")
    make_ladder(project, tier(role="approver", timeout_seconds=900), name="finance")
    console = _watch(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "eve", DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/escalations/dashboard/?project=support")
    page.click("text=Ladders")
    page.click("#ladders >> text=finance")
    page.wait_for_url("**/escalations/ladders/finance/?project=support")
    assert page.locator("#t-0-users").is_hidden()

    page.click("button[value=add]")
    page.wait_for_selector("#t-1-who")
    assert page.locator("#t-1-users").is_hidden()
    page.select_option("#t-1-who", "users")
    assert page.locator("#t-1-users").is_visible()
    page.fill("#t-1-users", "lead\ncfo")
    page.fill("#t-1-approvals", "3")
    page.fill("#t-1-timeout", "2")
    page.select_option("#t-1-unit", "seconds")
    page.click("form#ladder-form button[value=save]")

    error = page.locator("fieldset[data-row='1'] .field-error")
    error.first.wait_for()
    assert "Must be from 1 minute to 30 days" in error.first.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "ladder-editor-error-1366.png"), full_page=True)
    assert LadderVersion.objects.filter(name="finance").count() == 1

    page.select_option("#t-1-unit", "minutes")
    page.click("form#ladder-form button[value=save]")
    page.locator("fieldset[data-row='1'] .field-error").first.wait_for()
    assert "Needs 3 distinct approvals" in page.locator("fieldset[data-row='1'] .field-error").first.inner_text()

    page.fill("#t-1-approvals", "2")
    page.click("form#ladder-form button[value=save]")
    page.locator(".messages").wait_for()
    assert "Saved ladder finance as version 2" in page.locator(".messages").inner_text()
    assert "Tier 2 added: lead, cfo; 2 approvals within 2 min." in page.locator("#history").inner_text()
    latest = LadderVersion.objects.filter(name="finance").order_by("-version").first()
    assert latest.tiers[1] == {"users": ["lead", "cfo"], "timeout_seconds": 120, "approvals_required": 2}
    assert _violations(page, console) == []
