"""Every page that shows a transcript (the conversation page, and the labeling, edit and review
pages) survives hostile transcripts: 2 MB of `[` in one message, JSON nested 5,000 deep in a
tool call and its result, and many messages each as dense in markup as allowed. The system
prompt starts collapsed on labeling pages and stays as the person last left it."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from labeling import services
from reviewapp.rendering import MARKDOWN_MAX_MARKS, PAGE_MARKS_BUDGET
from tests.labeling.factories import add_items, make_queue

TWO_MB = 2 * 1024 * 1024
DEEP = '{"q": ' + "[" * 5_000 + "]" * 5_000 + "}"
SYSTEM = "You are the support agent.\nPolicies:\n- Refunds within 30 days.\n- Be concise."

BRACKETS = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "[" * TWO_MB},
    {"role": "assistant", "content": "Let me **check**."},
]
DEEP_JSON = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Look it up."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": DEEP}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": DEEP},
    {"role": "assistant", "content": "Done."},
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def pages(project, browser_for):
    """pages(messages) -> {page name: (client, url)} for one conversation with those messages,
    queued, labeled once by an annotator who may still edit it."""

    def make(messages: list[dict]) -> dict[str, tuple[Client, str]]:
        queue = make_queue(project, annotations_per_item=2)
        [item] = add_items(queue, 1, messages=messages)
        labeler, worker, engineer = browser_for("annotator"), browser_for("annotator"), browser_for("engineer")
        services.item_claim(queue=queue, user=labeler.user)
        services.label_submit(item=item, user=labeler.user, answers={"quality": "good"})
        services.item_claim(queue=queue, user=worker.user)  # the work page shows the lease held
        return {
            "conversation": (engineer, f"/conversations/{item.conversation_id}/"),
            "work": (worker, f"/labeling/queues/{queue.pk}/work"),
            "edit": (labeler, f"/labeling/items/{item.pk}/edit"),
            "review": (engineer, f"/labeling/items/{item.pk}/review"),
        }

    return make


PAGES = ["conversation", "work", "edit", "review"]


@pytest.mark.parametrize("page", PAGES)
def test_a_2_mb_message_is_shown_escaped_with_show_all(pages, page):
    client, url = pages(BRACKETS)[page]

    response = client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<div class="capped">') == 1
    assert "Show all 2,097,152 characters" in html
    assert html.count("[" * TWO_MB) == 1  # the whole text, once, behind "show all"
    assert "<strong>check</strong>" in html  # the other messages are still markdown


@pytest.mark.parametrize("page", PAGES)
def test_json_nested_5000_deep_is_shown_as_the_text_it_was(pages, page):
    client, url = pages(DEEP_JSON)[page]

    response = client.get(url)

    assert response.status_code == 200
    escaped = DEEP.replace('"', "&quot;")
    # The tool call's arguments and the tool's result, each as sent.
    assert response.content.decode().count(f'<pre class="as-sent">{escaped}</pre>') == 2


@pytest.mark.parametrize("messages", [BRACKETS, DEEP_JSON], ids=["2 MB of [", "5,000-deep JSON"])
def test_a_hostile_transcript_page_renders_in_under_a_second(pages, messages):
    # Timed on purpose: Python-Markdown took 25 s on 8 KB of "[" and recursed on deep JSON. A
    # super-linear renderer coming back would fail here; the rest of the file checks behaviour.
    client, url = pages(messages)["conversation"]
    client.get(url)  # warm the template cache and the session

    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def test_markdown_stops_at_the_page_budget_and_the_rest_is_shown_as_sent(pages):
    dense = "*" * MARKDOWN_MAX_MARKS  # each at the per-message limit: still parsed, on its own
    per_page = PAGE_MARKS_BUDGET // MARKDOWN_MAX_MARKS
    messages = [{"role": "user", "content": f"*{n}*{dense[2:]}"} for n in range(per_page + 2)]
    client, url = pages(messages)["conversation"]

    html = client.get(url).content.decode()

    assert html.count('<div class="md">') == per_page
    assert html.count('<div class="as-sent">') == 2
    assert f'<div class="as-sent">*{per_page}*' in html and f'<div class="as-sent">*{per_page + 1}*' in html


# --- the system prompt -----------------------------------------------------------------------

CLOSED = '<details class="system-prompt" data-preference-url="/preferences/system-prompt">'
OPENED = '<details class="system-prompt" data-preference-url="/preferences/system-prompt" open>'


@pytest.mark.parametrize("page", ["work", "edit", "review"])
def test_the_system_prompt_starts_collapsed_on_labeling_pages(pages, page):
    client, url = pages(BRACKETS)[page]

    html = client.get(url).content.decode()

    assert html.count(CLOSED) == 1
    assert OPENED not in html
    assert '<script src="/static/reviewapp/transcript.js" defer></script>' in html
    assert "<li>Refunds within 30 days.</li>" in html  # there, behind the summary


def test_the_conversation_page_shows_the_system_prompt_as_a_turn(pages):
    client, url = pages(BRACKETS)["conversation"]

    html = client.get(url).content.decode()

    assert 'class="system-prompt"' not in html
    assert "<li>Refunds within 30 days.</li>" in html


def test_the_system_prompt_stays_as_the_person_left_it(pages, browser_for):
    site = pages(BRACKETS)
    client, work = site["work"]
    edit_client, edit = site["edit"]

    opened = client.post("/preferences/system-prompt", {"open": "1"})

    assert opened.status_code == 204
    assert OPENED in client.get(work).content.decode()
    assert CLOSED in edit_client.get(edit).content.decode()  # someone else's choice is their own
    assert client.post("/preferences/system-prompt", {"open": "0"}).status_code == 204
    assert CLOSED in client.get(work).content.decode()


def test_the_preference_endpoint_takes_signed_in_posts_only(browser_for, member):
    user = member("annotator")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)

    anonymous = Client().post("/preferences/system-prompt", {"open": "1"})
    read = browser_for("annotator").get("/preferences/system-prompt")
    forged = strict.post("/preferences/system-prompt", {"open": "1"})

    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert read.status_code == 405
    assert forged.status_code == 403
    assert "system_prompt_open" not in strict.session
