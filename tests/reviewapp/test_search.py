"""Conversation search: GET /api/v1/conversations?q= and its new filters, the browser's search
page, and the conversation page's panels. Run on SQLite (FTS5) and PostgreSQL (GIN)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.db import connection

from labeling.models import ItemStatus, Label, QueueItem
from reviewapp import services, textsearch
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import Conversation
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue

URL = "/api/v1/conversations"


def _ingest(project, external_id: str, *turns: str, system: str = "", **fields: object) -> int:
    messages = [{"role": "system", "content": system}] if system else []
    roles = ["user", "assistant"]
    messages += [{"role": roles[i % 2], "content": text} for i, text in enumerate(turns)]
    item = {"external_id": external_id, "messages": messages, **fields}
    [result] = services.conversations_ingest(project=project, conversations=[ConversationIn.model_validate(item)])
    return result.id


def _search(client, **params: object):
    return client.get(f"{URL}?{urlencode(params)}")


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["external_id"] for row in response.json()["results"]]


@pytest.fixture
def corpus(project, other_project):
    _ingest(project, "refund-1", "Where is my refund?", "Your refund was issued on Monday.")
    _ingest(project, "refunds-2", "Two REFUNDS please", "Both refunds are on their way.")
    _ingest(project, "baggage-3", "My baggage is lost at the airport", "We will find your bag.")
    _ingest(project, "prompt-4", "Hello there", "Hi!", system="Never talk about refund policy secrets.")
    ConversationFactory(
        project=project,
        external_id="parts-5",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "voucher for my lost luggage"}]},
            {"role": "assistant", "content": "I issued a voucher."},
        ],
    )
    # Another tenant says the same words: never found from `org`.
    _ingest(other_project, "other-refund", "Where is my refund?", "Issued.")


def test_search_finds_whole_words_case_insensitively_newest_first(corpus, api_client_for):
    client = api_client_for("engineer")

    assert _ids(_search(client, q="refund")) == ["refund-1"]
    assert _ids(_search(client, q="REFUNDS")) == ["refunds-2"]
    assert _ids(_search(client, q="voucher")) == ["parts-5"]
    assert _ids(_search(client, q="refund Monday")) == ["refund-1"]
    assert _ids(_search(client, q="refund baggage")) == []


def test_search_matches_quoted_phrases_in_order(corpus, api_client_for):
    client = api_client_for("engineer")

    assert _ids(_search(client, q='"baggage is lost"')) == ["baggage-3"]
    assert _ids(_search(client, q='"lost is baggage"')) == []


def test_system_prompts_are_not_searched(corpus, api_client_for):
    client = api_client_for("engineer")

    assert _ids(_search(client, q="secrets")) == []


def test_search_is_tenant_and_project_scoped(corpus, project, api_client_for, org, other_org):
    other = ConversationFactory(project__organization=org, project__slug="sales", external_id="sales-refund")
    other.messages = [{"role": "user", "content": "refund for sales"}]
    other.save(update_fields=["messages"])
    client = api_client_for("engineer")

    assert _ids(_search(client, q="refund")) == ["sales-refund", "refund-1"]
    assert _ids(_search(client, q="refund", project="support")) == ["refund-1"]
    assert _ids(_search(api_client_for("engineer", organization=other_org), q="refund")) == ["other-refund"]


def test_an_agent_key_searches_its_own_project_only(corpus, agent_client):
    assert _ids(_search(agent_client, q="refund")) == ["refund-1"]


def test_edited_and_deleted_conversations_leave_the_index(corpus, project, api_client_for):
    client = api_client_for("engineer")
    conversation = Conversation.objects.get(project=project, external_id="baggage-3")
    conversation.messages = [{"role": "user", "content": "a stroller instead"}]
    conversation.save(update_fields=["messages"])

    assert _ids(_search(client, q="baggage")) == []
    assert _ids(_search(client, q="stroller")) == ["baggage-3"]
    conversation.delete()
    assert _ids(_search(client, q="stroller")) == []


def test_a_huge_conversation_is_stored_and_searchable_by_its_beginning(project, api_client_for):
    """Many short distinct words make a text index bigger than the text: over PostgreSQL's 1 MB
    tsvector limit the insert itself would fail. A 2 MB conversation is stored whole and found by
    a word near its start (and, across a JSON escape, by the word after a newline)."""
    words = " ".join(f"w{i}" for i in range(400_000))  # ~2.7 MB, 400k distinct lexemes
    conversation_id = _ingest(project, "huge-1", "first line\nzeppelin " + words, "ok")
    assert len(Conversation.objects.get(pk=conversation_id).messages[0]["content"]) > 2_000_000
    client = api_client_for("engineer")
    assert _ids(_search(client, q="zeppelin")) == ["huge-1"]
    assert _ids(_search(client, q="w12")) == ["huge-1"]


def test_search_pages_with_the_cursor(project, api_client_for):
    for n in range(5):
        _ingest(project, f"c{n}", f"refund number {n}")
    client = api_client_for("engineer")

    first = _search(client, q="refund", limit=2).json()
    second = client.get(first["next"]).json()

    assert [r["external_id"] for r in first["results"]] == ["c4", "c3"]
    assert [r["external_id"] for r in second["results"]] == ["c2", "c1"]


HOSTILE_QUERIES = [
    '"',
    '""',
    '"unbalanced phrase',
    "refund AND",
    "OR",
    "NOT refund",
    "refund NEAR(baggage, 2)",
    "NEAR(",
    "*",
    "refund*",
    "^refund",
    "(refund",
    "refund)",
    "col:refund",
    "body:refund",
    "-refund",
    "+refund",
    "refund & baggage | !x",
    "a <-> b",
    "'quote' \"dq\" `tick`",
    "\\",
    "%",
    "_",
    "%s %(name)s",
    "'; DROP TABLE reviewapp_conversation; --",
    "émoji 🎉 中文 العربية",
    "\u200b\u0301",
    "x" * 200,
    " ".join(["w"] * 16),
]


@pytest.mark.parametrize("q", HOSTILE_QUERIES)
def test_hostile_queries_never_fail(corpus, api_client_for, q):
    response = _search(api_client_for("engineer"), q=q)

    assert response.status_code == 200, response.content
    assert all(row["external_id"] != "other-refund" for row in response.json()["results"])


def test_fts_syntax_is_plain_text(corpus, api_client_for):
    client = api_client_for("engineer")

    assert _ids(_search(client, q="refund*")) == ["refund-1"]
    assert _ids(_search(client, q="NOT refund")) == []  # "not" is a word to find, not an operator
    assert _ids(_search(client, q='"refund')) == ["refund-1"]


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("refund\x00", "Null characters are not allowed."),
        ("x" * 201, "Ensure this field has no more than 200 characters."),
        (" ".join(f"w{n}" for n in range(17)), "At most 16 words or phrases."),
    ],
)
def test_bad_queries_are_400_naming_q(corpus, api_client_for, q, message):
    response = _search(api_client_for("engineer"), q=q)

    assert response.status_code == 400
    assert response.json()["errors"]["q"] == [message]


def test_a_query_of_punctuation_only_finds_nothing(corpus, api_client_for):
    assert _ids(_search(api_client_for("engineer"), q="*** ^ ( )")) == []


def test_a_blank_query_lists_everything(corpus, api_client_for):
    assert len(_ids(_search(api_client_for("engineer"), q="  "))) == 5


def test_asked_for_human_covers_agent_sent_and_derived_signals(project, api_client_for):
    _ingest(project, "derived", "I want to talk to a human now", "Connecting you.")
    _ingest(project, "sent", "Hello", "Hi", feedback={"escalated_by_user": True})
    _ingest(project, "neither", "Hello again", "Hi")
    client = api_client_for("engineer")

    assert _ids(_search(client, asked_for_human="true")) == ["sent", "derived"]
    assert _ids(_search(client, asked_for_human="false")) == ["neither"]
    assert _ids(_search(client, asked_for_human="true", q="human")) == ["derived"]


def test_labeled_and_queued_filters(project, member, api_client_for):
    queue = make_queue(project)
    labeled = ConversationFactory(project=project, external_id="labeled")
    queued = ConversationFactory(project=project, external_id="queued")
    dropped = ConversationFactory(project=project, external_id="dropped")
    ConversationFactory(project=project, external_id="alone")
    items = {
        c.external_id: QueueItem.objects.create(organization=project.organization, queue=queue, conversation=c)
        for c in (labeled, queued, dropped)
    }
    QueueItem.objects.filter(pk=items["dropped"].pk).update(status=ItemStatus.DROPPED)
    Label.objects.create(
        organization=project.organization,
        queue=queue,
        item=items["labeled"],
        user=member("annotator"),
        schema_version=queue.schema.latest_version,
        answers={"quality": "good"},
    )
    client = api_client_for("engineer")

    assert _ids(_search(client, labeled="true")) == ["labeled"]
    assert _ids(_search(client, labeled="false")) == ["alone", "dropped", "queued"]
    assert _ids(_search(client, queued="true")) == ["queued", "labeled"]
    assert _ids(_search(client, queued="false")) == ["alone", "dropped"]
    assert _ids(_search(client, queued="true", labeled="false", q="refund")) == ["queued"]
    assert _ids(_search(client, external_id="alone", queued="false")) == ["alone"]


@pytest.mark.postgres
def test_postgresql_search_condition_is_the_indexed_expression(corpus):
    """Spelled differently from the index's expression, the condition would still be right but
    every search would read the whole table."""
    from reviewapp import sql

    query = f"SELECT external_id FROM reviewapp_conversation WHERE {sql.conversation_search_condition('postgresql', 2)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {query}", ["refund", "monday"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(query, ["refund", "monday"])
        found = [row[0] for row in cursor.fetchall()]

    assert "Bitmap Index Scan on conv_search_document" in plan
    assert found == ["refund-1"]


# --- pure parts -----------------------------------------------------------------------------


def test_parse_reads_words_and_phrases_and_drops_punctuation():
    assert textsearch.parse('refund "lost  bag" * ^ REFUND x\x00y') == ["refund", "lost bag", "x", "y"]
    assert textsearch.parse('"') == []
    assert len(textsearch.parse(" ".join(f"w{n}" for n in range(30)))) == textsearch.MAX_CLAUSES
    assert len(textsearch.parse(" ".join(f"w{n}" for n in range(30)), limit=None)) == 30


def test_fts5_match_quotes_every_clause():
    assert textsearch.fts5_match(["refund", 'a "b" c', "NEAR(x", "^y*"]) == '"refund" AND "a b c" AND "NEAR x" AND "y"'


def test_snippet_marks_words_and_keeps_text_raw():
    messages = [
        {"role": "system", "content": "refund policy"},
        {"role": "user", "content": "<b>Where</b> is my Refund? " + "blah " * 100},
    ]
    found = textsearch.snippet(messages, ["refund"])

    assert found is not None
    assert (found.role, found.turn, found.clipped_start, found.clipped_end) == ("user", 1, False, True)
    assert found.segments[:2] == [("<b>Where</b> is my ", False), ("Refund", True)]
    assert found.segments[2][0].startswith("? blah") and not found.segments[2][1]
    assert textsearch.snippet(messages, ["absent"]) is None


# --- browser --------------------------------------------------------------------------------


def test_search_page_highlights_escaped_snippets(project, browser_for):
    _ingest(project, "xss", "<script>alert(1)</script> my refund <img src=x onerror=alert(2)>", "ok")
    _ingest(project, "plain", "nothing here", "ok")
    page = browser_for("engineer").get("/conversations/?" + urlencode({"q": "refund"}))

    body = page.content.decode()
    assert page.status_code == 200
    assert "xss" in body and ">plain<" not in body
    assert "<mark>refund</mark>" in body
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body


@pytest.mark.parametrize("q", ['"', "NEAR(", "*", "refund\x00", "x" * 300])
def test_search_page_survives_hostile_queries(project, browser_for, q):
    _ingest(project, "one", "my refund", "ok")

    page = browser_for("engineer").get("/conversations/?" + urlencode({"q": q}))

    assert page.status_code == 200


def test_search_page_filters_by_asked_for_human(project, browser_for):
    _ingest(project, "asked", "let me speak to a human about my refund", "ok")
    _ingest(project, "calm", "my refund please", "ok")

    body = browser_for("engineer").get("/conversations/?q=refund&asked_for_human=yes").content.decode()

    assert ">asked<" in body and ">calm<" not in body


def test_conversation_page_shows_labels_queues_and_actions(project, member, browser_for):
    queue = make_queue(project, name="Daily <QA>")
    conversation = ConversationFactory(project=project, external_id="with-everything")
    item = QueueItem.objects.create(
        organization=project.organization,
        queue=queue,
        conversation=conversation,
        status=ItemStatus.COMPLETED,
        final_answers={"quality": "bad"},
        final_source="review",
    )
    Label.objects.create(
        organization=project.organization,
        queue=queue,
        item=item,
        user=member("annotator", username="ana"),
        schema_version=queue.schema.latest_version,
        answers={"quality": "<b>good</b>", "items": "shadow"},
    )
    action = _action(project, conversation)

    body = browser_for("admin").get(f"/conversations/{conversation.pk}/").content.decode()

    assert "Human labels" in body and "Daily &lt;QA&gt;" in body
    assert f"/labeling/items/{item.pk}/review" in body and f"/labeling/queues/{queue.pk}/review" in body
    assert "ana" in body and "&lt;b&gt;good&lt;/b&gt;" in body and "shadow" in body
    assert "Final" in body and ">bad<" in body
    assert "Actions" in body and f"/escalations/actions/{action.pk}/" in body


def test_conversation_page_without_labels_or_actions_says_so(project, browser_for):
    conversation = ConversationFactory(project=project)

    body = browser_for("engineer").get(f"/conversations/{conversation.pk}/").content.decode()

    assert "In no labeling queue." in body
    assert "The agent asked for no action in this conversation." in body


def _action(project, conversation):
    from escalations.models import Action, ActionStatus

    return Action.objects.create(
        organization=project.organization,
        project=project,
        external_id="act-search",
        action="refund",
        args={"amount": 10},
        status=ActionStatus.APPROVED,
        decided_by="policy",
        conversation=conversation,
    )
