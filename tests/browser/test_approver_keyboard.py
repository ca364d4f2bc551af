"""An approver works the inbox by keyboard in Chromium: j/k through the inbox, Enter opens an
action, `e` opens the args editor, the amount is edited, and the edit is approved by keyboard;
the action is approved with the edited args, in the database and on the page. The countdowns
tick, `?` shows the help, a reject needs its comment, and hostile content runs no script and
breaks no Content-Security-Policy rule on either page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from escalations.models import Action, ActionStatus
from tests.browser.conftest import login
from tests.browser.test_content_security_policy import _violations, _watch
from tests.escalations.factories_decisions import make_ladder, make_pending_action
from tests.factories import DEFAULT_PASSWORD, ConversationFactory

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]

XSS = "<script>window.__xss = (window.__xss || 0) + 1</script>"
IMG = '<img src=x onerror="window.__xss = (window.__xss || 0) + 1">'


def _selected(page) -> str:
    return page.locator("table.inbox tr.selected").get_attribute("data-id")


def test_an_approver_edits_and_approves_an_action_by_keyboard(page, live_server, project, member):
    alice = member("approver", username="alice")
    ladder = make_ladder(project)
    now = timezone.now()
    first = make_pending_action(project, ladder, external_id="first", now=now - dt.timedelta(minutes=5))
    target = make_pending_action(
        project, ladder, external_id="target", args={"amount": 450, "currency": "EUR"}, now=now
    )
    make_pending_action(project, ladder, external_id="third", now=now + dt.timedelta(minutes=5))
    console = _watch(page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_server, "alice", DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/escalations/")
    assert _selected(page) == str(first.pk)
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert _selected(page) == str(target.pk)
    # The countdown ticks from data-due: "in 14m 59s", a second later "in 14m 58s".
    countdown = page.locator(f'tr[data-id="{target.pk}"] .countdown')
    before = countdown.inner_text()
    page.wait_for_function(
        "([el, text]) => el.textContent !== text", arg=[countdown.element_handle(), before], timeout=3000
    )
    assert countdown.inner_text().startswith("in 14m")
    # ? shows the shortcuts; Esc hides them.
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#shortcuts").is_hidden()

    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{live_server.url}/escalations/actions/{target.pk}/"
    editor = page.locator("#edit-args")
    assert editor.is_hidden()

    page.keyboard.press("e")
    assert editor.is_visible()
    assert page.evaluate("document.activeElement.id") == "edit-args"
    # The key that opened the editor was not typed into it.
    assert editor.input_value() == '{\n  "amount": 450,\n  "currency": "EUR"\n}'
    # Edit the amount in place: to the end of the amount's line, back over "450", type "400".
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("End")
    for _ in range(4):
        page.keyboard.press("Backspace")
    page.keyboard.type("400,")
    assert editor.input_value() == '{\n  "amount": 400,\n  "currency": "EUR"\n}'

    # Leave the box, then approve: with the editor open, `a` approves what it holds.
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("a")

    target.refresh_from_db()
    assert target.status == ActionStatus.APPROVED
    assert target.final_args == {"amount": 400, "currency": "EUR"}
    assert target.args == {"amount": 450, "currency": "EUR"}
    assert target.decided_by_user == alice
    assert page.locator(".message.success").inner_text() == "Approved with your edited args."
    assert page.locator("#decision h2").inner_text() == "Decided: approved"
    assert page.locator("#final-args").inner_text() == '{\n  "amount": 400,\n  "currency": "EUR"\n}'
    assert page.locator("#decision table.changes tbody tr").all_inner_texts() == ["amount\t450\t400"]
    # j and k still walk the inbox from here.
    with page.expect_navigation():
        page.keyboard.press("k")
    assert page.url == f"{live_server.url}/escalations/actions/{first.pk}/"
    assert _violations(page, console) == []
    assert errors == []


def test_r_goes_to_the_comment_and_an_empty_reject_is_refused_in_the_browser(page, live_server, project, member):
    member("approver", username="alice")
    action = make_pending_action(project, make_ladder(project))
    login(page, live_server, "alice", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/escalations/actions/{action.pk}/")

    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reject-comment"
    assert page.locator("#reject-comment").input_value() == ""
    # Ctrl+Enter sends the form being typed in; an empty comment does not leave the browser.
    page.keyboard.press("Control+Enter")
    assert page.evaluate("document.getElementById('reject-comment').validity.valueMissing") is True
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING

    page.keyboard.type("Over the refund limit")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    action.refresh_from_db()
    assert (action.status, action.comment) == (ActionStatus.REJECTED, "Over the refund limit")
    assert page.locator("#decision h2").inner_text() == "Decided: rejected"


def test_c_claims_and_gives_the_claim_back(page, live_server, project, member):
    alice = member("approver", username="alice")
    action = make_pending_action(project, make_ladder(project))
    login(page, live_server, "alice", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/escalations/actions/{action.pk}/")

    with page.expect_navigation():
        page.keyboard.press("c")
    assert Action.objects.get(pk=action.pk).claimed_by == alice
    assert page.locator(".claim .badge").inner_text() == "Claimed by you"
    with page.expect_navigation():
        page.keyboard.press("c")
    assert Action.objects.get(pk=action.pk).claimed_by is None


def test_hostile_content_runs_no_script_and_breaks_no_policy_rule(page, live_server, project, member):
    member("approver", username="alice")
    ladder = make_ladder(project)
    conversation = ConversationFactory(
        project=project,
        messages=[{"role": "user", "content": f"user {XSS} {IMG}"}, {"role": "assistant", "content": f"**ok** {XSS}"}],
    )
    action = make_pending_action(
        project,
        ladder,
        action=f"refund{XSS}"[:100],
        args={f"k{IMG}": f"v{XSS}"},
        reasoning=f"because {XSS} {IMG} [x](javascript:window.__xss=1)",
        risk_tags=[f"t{XSS}"],
        end_user_id=f"u{IMG}",
        agent_version=f"v{XSS}"[:100],
        conversation=conversation,
        matched_rule=f"rule{XSS}",
        matched_rule_index=0,
        policy_explanation=[{"condition": f"c{XSS}", "observed": f"o{IMG}"}],
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    console = _watch(page)
    login(page, live_server, "alice", DEFAULT_PASSWORD)

    for path in ["/escalations/", f"/escalations/actions/{action.pk}/"]:
        console.clear()
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss") is None, path
        assert "<script>" in page.inner_text("body"), path
        assert page.locator("img").count() == 0, path
        assert page.locator("a[href^='javascript']").count() == 0, path
        assert _violations(page, console) == [], path
    assert page.locator("article.turn").count() == 2
    assert dialogs == []
