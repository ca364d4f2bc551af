"""Everything an agent or end user sent is shown on the approver's pages as text: action names,
args, reasoning, risk tags, ids, versions, the explanation, comments and the transcript, with
markup and script payloads escaped. A 2 MB reasoning is a bounded preview with "show all",
as transcripts are."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone

from escalations import policies, services
from escalations.models import Action, ActionEvent
from reviewapp.principal import Principal
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier
from tests.factories import ConversationFactory

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = "[x](javascript:alert(1))"
HOSTILE = f"{SCRIPT}{IMG}{LINK}"


def _h(label: str) -> str:
    return f"{label}:{HOSTILE}"


class _Page(HTMLParser):
    """Every element, attribute and text node of a page, as a browser's parser sees them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _inert(html: str) -> str:
    """The page's text, after checking no hostile markup became markup."""
    assert SCRIPT not in html
    assert "<img" not in html.lower()
    page = _Page(html)
    for tag, attrs in page.elements:
        assert tag not in {"img", "svg", "iframe", "object", "embed"}, tag
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            if name == "href":
                assert not (value or "").lower().startswith("javascript"), (tag, value)
    return "".join(page.text)


@pytest.fixture
def hostile_action(project, member):
    ladder = make_ladder(project, tier(role="approver"), name="evil-ladder")
    conversation = ConversationFactory(
        project=project,
        external_id=_h("conv")[:255],
        messages=[
            {"role": "user", "content": _h("user-turn")},
            {"role": "assistant", "content": _h("agent-turn")},
        ],
    )
    earlier = make_pending_action(project, ladder, action=_h("earlier")[:100], end_user_id=_h("end-user"))
    action = make_pending_action(
        project,
        ladder,
        action=_h("name")[:100],
        external_id=_h("ext"),
        args={_h("key"): _h("value"), "nested": {"deep": [_h("item")]}},
        reasoning=_h("reasoning"),
        risk_tags=[_h("tag")],
        end_user_id=_h("end-user"),
        agent_version=_h("ver")[:100],
        conversation=conversation,
        conversation_external_id=conversation.external_id,
        matched_rule=_h("rule")[:200],
        matched_rule_index=0,
        policy_version=1,
        policy_explanation=[{"condition": _h("condition"), "observed": _h("observed"), "note": _h("note")}],
        now=earlier.created_at + timezone.timedelta(seconds=1),
    )
    evil = member("approver", username=_h("approver")[:150])
    services.action_claim(
        principal=Principal(organization=project.organization, role="approver", user=evil), action_id=action.pk
    )
    ActionEvent.objects.create(organization=project.organization, action=action, kind="note", data={"x": _h("event")})
    return action


def _client(member, role: str = "approver") -> Client:
    client = Client()
    client.force_login(member(role, username="alice"))
    return client


def test_the_inbox_shows_hostile_fields_as_text(hostile_action, member):
    response = _client(member).get("/escalations/")

    assert response.status_code == 200
    text = _inert(response.content.decode())
    # (The args are one line, cut at 160 characters: the key is in it, its value may not be.)
    for label in ["name", "ext", "tag", "end-user", "ver", "key", "approver"]:
        assert f"{label}:<script>" in text, label
    # The action filter offers the hostile name as an option's text, escaped.
    assert '<option value="name:&lt;script&gt;' in response.content.decode()


def test_the_action_page_shows_hostile_fields_as_text(hostile_action, member):
    response = _client(member).get(f"/escalations/actions/{hostile_action.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    text = _inert(html)
    for label in [
        "name",
        "ext",
        "tag",
        "end-user",
        "ver",
        "key",
        "value",
        "item",
        "rule",
        "condition",
        "observed",
        "note",
        "approver",
        "event",
        "earlier",
        "conv",
        "reasoning",
        "user-turn",
        "agent-turn",
    ]:
        assert f"{label}:<script>" in text, label
    # Markdown (reasoning, the transcript) made no javascript: link, not even one without a target.
    assert [attrs for tag, attrs in _Page(html).elements if tag == "a" and "href" not in attrs] == []
    # The editor holds the args as JSON text, escaped inside the textarea.
    assert json.loads(response.context["args_text"]) == hostile_action.args
    [editor] = re.findall(r'<textarea name="args" id="edit-args"[^>]*>(.*?)</textarea>', html, re.DOTALL)
    assert "  &quot;key:&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in editor


def test_a_hostile_comment_and_edit_show_as_text_once_decided(project, member):
    ladder = make_ladder(project)
    action = make_pending_action(project, ladder, args={"amount": 1})
    client = _client(member)

    response = client.post(
        f"/escalations/actions/{action.pk}/decide",
        {
            "decision": "approve",
            "args": '{"amount": "' + SCRIPT.replace("/", "\\/") + '"}',
            "comment": _h("comment"),
            "expected_digest": policies.args_digest("refund", {"amount": 1}),
        },
    )

    assert response.status_code == 303
    page = client.get(f"/escalations/actions/{action.pk}/")
    text = _inert(page.content.decode())
    assert "comment:<script>" in text
    assert '"<script>alert(1)</script>"' in text  # the approved args and the diff, as text
    assert Action.objects.get(pk=action.pk).final_args == {"amount": SCRIPT}


def test_an_edit_that_does_not_parse_comes_back_escaped_in_the_editor(project, member):
    action = make_pending_action(project, make_ladder(project))
    typed = "</textarea>" + SCRIPT

    response = _client(member).post(f"/escalations/actions/{action.pk}/decide", {"decision": "approve", "args": typed})

    assert response.status_code == 400
    _inert(response.content.decode())
    assert "&lt;/textarea&gt;&lt;script&gt;" in response.content.decode()


def test_a_2_mb_reasoning_is_a_bounded_preview_with_show_all(project, member):
    huge = "[" * (2 * 1024 * 1024)
    action = make_pending_action(project, make_ladder(project), reasoning=huge)

    response = _client(member).get(f"/escalations/actions/{action.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    # Never parsed as markdown (64 KB cap): a preview of 4,000 characters and the whole text,
    # escaped, behind "show all".
    assert '<div class="capped"><div class="as-sent preview">' + "[" * 4000 + "…</div>" in html
    assert "Show all 2,097,152 characters" in html
    show_all = '<details class="show-all"><summary>Show all 2,097,152 characters</summary><div class="as-sent">'
    assert show_all + huge + "</div></details>" in html
