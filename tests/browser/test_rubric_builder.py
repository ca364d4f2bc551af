"""The rubric builder in Chromium: an engineer builds a rubric with two questions by keyboard
and mouse, the live preview shows the labeling form as annotators will see it, and saving
makes version 1; all under the Content-Security-Policy."""

from __future__ import annotations

import pytest

from labeling.models import LabelSchema
from tests.browser.conftest import login
from tests.browser.test_content_security_policy import _violations, _watch
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]


def test_build_a_rubric_with_two_questions_and_see_the_preview(page, live_server, project, member):
    member("engineer", username="eve")
    console = _watch(page)
    login(page, live_server, "eve", DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/labeling/build/")
    page.click("text=New rubric")
    page.wait_for_url("**/labeling/rubrics/new")
    page.fill("#f-name", "Refund QA")
    page.fill("#f-instructions", "Check the **refund** amount.")
    page.fill("#q-0-key", "correct")
    page.fill("#q-0-label", "Was the refund right?")
    page.fill("#q-0-options", "yes\nno")
    # Fields that do not apply to the type are hidden (builder.js).
    assert page.locator("#q-0-min").is_hidden()

    page.click("button[value=add]")
    page.wait_for_selector("#q-1-key")
    page.select_option("#q-1-type", "rating")
    assert page.locator("#q-1-options").is_hidden() and page.locator("#q-1-min").is_visible()
    page.fill("#q-1-key", "tone")
    page.fill("#q-1-label", "How polite was the agent?")
    page.fill("#q-1-min", "1")
    page.fill("#q-1-max", "5")
    page.locator("#q-1-max").blur()

    preview = page.locator("#rubric-preview")
    preview.locator("legend", has_text="How polite was the agent?").wait_for()
    assert preview.locator("legend", has_text="Was the refund right?").count() == 1
    assert preview.locator("input[name=a-correct]").count() == 2
    assert preview.locator("input[name=a-tone]").count() == 5
    assert preview.locator(".instructions strong").inner_text() == "refund"

    page.click("button[value=save]")
    page.wait_for_url("**/labeling/rubrics/*/")
    assert "Saved Refund QA as version 1" in page.locator(".messages").inner_text()
    schema = LabelSchema.objects.get()
    assert [q["key"] for q in schema.latest_version.questions] == ["correct", "tone"]
    assert _violations(page, console) == []
