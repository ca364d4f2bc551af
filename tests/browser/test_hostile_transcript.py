"""A hostile transcript shown in a real browser runs no script and shows its text literally."""

from __future__ import annotations

import pytest

from reviewapp import services
from reviewapp.ingest_schemas import ConversationIn
from tests.browser.conftest import login
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<script>window.__xss = (window.__xss || 0) + 1</script>"
IMG = '<img src=x onerror="window.__xss = (window.__xss || 0) + 1">'
SVG = "<svg onload=\"window.__xss = (window.__xss || 0) + 1\"></svg>"
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
            {"judge": f"j{XSS}", "judge_version": f"{IMG}", "criterion": f"c{SVG}", "score": 0.1, "label": f"l{XSS}",
             "reasoning": f"because {XSS} {IMG}"}
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
