"""The approver's pages on a phone (390 px) in Chromium: the inbox's args preview and the action
page's trail details stay readable rather than squeezed beside the other columns."""

from __future__ import annotations

import pytest

from escalations.models import ActionEvent
from tests.browser.conftest import login
from tests.escalations.factories_decisions import make_ladder, make_pending_action
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]


def test_the_trail_details_are_readable_on_a_phone(page, live_server, project, member):
    member("approver", username="alice")
    action = make_pending_action(project, make_ladder(project))
    ActionEvent.objects.create(
        organization=project.organization,
        action=action,
        kind="escalated",
        data={
            "policy_version": 2,
            "rule": None,
            "rule_index": None,
            "reason": "No rule matched; escalated to the default ladder",
            "ladder": "default",
            "ladder_version": 1,
        },
    )
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, "alice", DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/escalations/actions/{action.pk}/")
    detail = page.locator("table.trail td.detail").first.bounding_box()
    # Squeezed beside the date, the kind and the actor, the cell was 75 px wide and its one
    # line of JSON 540 px tall; the table scrolls sideways instead.
    assert detail["width"] >= 220
    assert detail["height"] <= 200


def test_the_inbox_args_preview_is_readable_on_a_phone(page, live_server, project, member):
    member("approver", username="alice")
    make_pending_action(project, make_ladder(project), args={"amount": 160.0, "currency": "USD", "booking_ref": "AX"})
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, "alice", DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/escalations/")
    # The table scrolls sideways on a phone; the preview was squeezed to 40 px ('{"am oun…').
    assert page.locator("table.inbox .args-preview").first.bounding_box()["width"] >= 140


def test_with_the_editor_open_the_bottom_bar_offers_no_approval_of_the_unedited_args(
    page, live_server, project, member
):
    member("approver", username="alice")
    action = make_pending_action(project, make_ladder(project), args={"amount": 450, "currency": "EUR"})
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, "alice", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/escalations/actions/{action.pk}/")
    assert page.locator("#approve-form").is_visible()

    page.keyboard.press("e")
    # The bar's Approve would send the agent's args under the edit form's own button.
    assert page.locator("#edit-form button[type=submit]").is_visible()
    assert not page.locator("#approve-form").is_visible()
    page.keyboard.press("Escape")
    page.locator("#edit-panel summary").click()
    assert page.locator("#approve-form").is_visible()
