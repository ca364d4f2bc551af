"""A hostile transcript shown in a real browser runs no script and shows its text literally; a
2 MB message is a preview with "show all"; the system prompt on the labeling page starts
collapsed and stays as the annotator left it."""

from __future__ import annotations

import pytest

from labeling import services as labeling_services
from reviewapp import services
from reviewapp.ingest_schemas import ConversationIn
from tests.browser.conftest import login
from tests.factories import DEFAULT_PASSWORD, ConversationFactory
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]

XSS = "<script>window.__xss = (window.__xss || 0) + 1</script>"
IMG = '<img src=x onerror="window.__xss = (window.__xss || 0) + 1">'
SVG = '<svg onload="window.__xss = (window.__xss || 0) + 1"></svg>'
LINK = "[click me](javascript:window.__xss=1)"


def hostile_conversation() -> dict:
    return {
        "external_id": f"evil-{XSS}",
        "messages": [
            {"role": "system", "content": f"system {XSS}"},
            {"role": "user", "content": f"user {IMG} {SVG} {LINK}"},
            {"role": "user", "content": [{"type": "text", "text": f"part {XSS}"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call-{IMG}",
                        "type": "function",
                        "function": {"name": f"tool{XSS}", "arguments": '{"q": "' + IMG.replace('"', "'") + '"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": f"call-{IMG}", "name": f"n{XSS}", "content": f"result {XSS}"},
            {"role": "assistant", "content": f"**bold** {XSS} {IMG}", "name": f"bot{SVG}"},
        ],
        "agent_version": f"v{XSS}",
        "end_user_id": f"user{IMG}",
        "tags": [f"t{XSS}"],
        "metadata": {f"k{XSS}": f"v{IMG}"},
        "judge_scores": [
            {
                "judge": f"j{XSS}",
                "judge_version": f"{IMG}",
                "criterion": f"c{SVG}",
                "score": 0.1,
                "label": f"l{XSS}",
                "reasoning": f"because {XSS} {IMG}",
            }
        ],
        "feedback": {"rating": "down", "comment": f"angry {XSS} {IMG}", "user_rephrased": True},
    }


def test_hostile_transcript_runs_no_script_in_chromium(page, live_server, project, member):
    member("engineer", username="eve")
    [result] = services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(hostile_conversation())]
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, live_server, "eve", DEFAULT_PASSWORD)

    for path in ["/", "/conversations/", f"/conversations/{result.id}/"]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None, path
        # The hostile markup is on the page as text, where a person can read it.
        assert "<script>" in page.inner_text("body"), path

    assert page.evaluate("[...document.scripts].filter(s => s.textContent.includes('__xss')).length") == 0
    assert page.locator("img").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.locator("svg").count() == 0
    assert dialogs == []
    # The transcript shows every turn with its role.
    assert page.locator("article.turn").count() == 6


def test_labeling_page_shows_a_huge_message_and_remembers_the_system_prompt(page, live_server, project, member):
    member("annotator", username="ann")
    huge = "[" * (2 * 1024 * 1024)
    conversation = ConversationFactory(
        project=project,
        messages=[
            {"role": "system", "content": "You are the agent.\nPolicies:\n- Refunds within 30 days.\n- Be concise."},
            {"role": "user", "content": huge},
            {
                "role": "assistant",
                "content": "Here's what I found:\n- DA1887 at 07:35\n- DA1089 at 12:10\nWhich one works for you?",
            },
        ],
    )
    queue = make_queue(project)
    labeling_services.queue_items_add(queue=queue, conversation_ids=[conversation.pk], user=None)
    login(page, live_server, "ann", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/labeling/queues/{queue.pk}/work")
    panel = page.locator(".item-panel.active")
    panel.wait_for()

    # The agent's list is a list, each option on its own line; the line after it continues the
    # last item (CommonMark's lazy continuation) but keeps its line break.
    assert panel.locator(".role-assistant li").all_inner_texts() == [
        "DA1887 at 07:35",
        "DA1089 at 12:10\nWhich one works for you?",
    ]
    # 2 MB of "[": a preview; "show all" swaps it for the whole text.
    capped = panel.locator(".role-user .capped")
    assert len(capped.locator(".preview").inner_text()) == 4_001
    capped.locator("summary").click()
    assert capped.locator(".preview").is_hidden()
    assert capped.locator("details .as-sent").evaluate("el => el.textContent.length") == len(huge)

    # The system prompt starts collapsed; opened once, it opens on the next page load too.
    system = panel.locator("details.system-prompt")
    assert system.evaluate("el => el.open") is False
    assert panel.get_by_text("Refunds within 30 days.").is_hidden()
    with page.expect_response(lambda r: r.url.endswith("/preferences/system-prompt")) as sent:
        system.locator("summary").click()
    assert sent.value.status == 204
    assert panel.get_by_text("Refunds within 30 days.").is_visible()
    page.reload()
    page.locator(".item-panel.active details.system-prompt[open]").wait_for()
