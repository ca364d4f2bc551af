"""POST /api/v1/conversations: the public ingestion contract."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from reviewapp import services
from reviewapp.models import AuditEvent, Conversation, ConversationTag, Feedback, JudgeScore
from tests.factories import ProjectFactory, conversation_payload

URL = "/api/v1/conversations"


def _post(client: APIClient, body: object):
    return client.post(URL, body, format="json")


def _stored_counts() -> dict[str, int]:
    return {
        "conversations": Conversation.objects.count(),
        "tags": ConversationTag.objects.count(),
        "judge_scores": JudgeScore.objects.count(),
        "feedback": Feedback.objects.count(),
        "ingest_events": AuditEvent.objects.filter(kind="conversations.ingested").count(),
    }


NOTHING = {"conversations": 0, "tags": 0, "judge_scores": 0, "feedback": 0, "ingest_events": 0}


def _minimal(external_id: str) -> dict:
    return {"external_id": external_id, "messages": [{"role": "user", "content": "hi"}]}


# --- success ---------------------------------------------------------------------------------


def test_single_conversation_is_stored_with_every_field(agent_client, project):
    payload = conversation_payload("ext-1")

    response = _post(agent_client, payload)

    assert response.status_code == 201
    conversation = Conversation.objects.get()
    assert response.json() == {"results": [{"external_id": "ext-1", "id": conversation.pk, "status": "created"}]}
    assert conversation.organization_id == project.organization_id
    assert conversation.project_id == project.pk
    assert conversation.messages == payload["messages"]
    assert conversation.occurred_at == dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    assert conversation.agent_version == "v2"
    assert conversation.end_user_id == "customer-812"
    assert conversation.tags == ["refund"]
    assert conversation.metadata == {"channel": "web"}
    assert conversation.feedback_rating == "up"
    assert conversation.user_rephrased is False
    assert conversation.escalated_by_user is False
    assert conversation.ingested_by_key_id == agent_client.api_key.pk
    assert conversation.ingested_by_user_id is None
    assert list(ConversationTag.objects.values_list("conversation_id", "project_id", "tag")) == [
        (conversation.pk, project.pk, "refund")
    ]
    assert list(
        JudgeScore.objects.values_list(
            "conversation_id", "judge", "judge_version", "criterion", "score", "label", "confidence", "reasoning"
        )
    ) == [(conversation.pk, "gpt-judge", "1", "correctness", 0.9, "", 0.8, "")]
    assert list(
        Feedback.objects.values_list("conversation_id", "rating", "comment", "user_rephrased", "escalated_by_user")
    ) == [(conversation.pk, "up", "", False, False)]
    event = AuditEvent.objects.get(kind="conversations.ingested")
    assert event.actor_api_key_id == agent_client.api_key.pk
    assert event.data == {"created": 1, "duplicate": 0}


def test_batch_answers_one_result_per_item_in_request_order(agent_client, project):
    [existing] = _post(agent_client, conversation_payload("b")).json()["results"]

    response = _post(
        agent_client,
        {"conversations": [conversation_payload("c"), conversation_payload("b"), conversation_payload("a")]},
    )

    assert response.status_code == 201
    ids = dict(Conversation.objects.values_list("external_id", "id"))
    assert response.json() == {
        "results": [
            {"external_id": "c", "id": ids["c"], "status": "created"},
            {"external_id": "b", "id": existing["id"], "status": "duplicate"},
            {"external_id": "a", "id": ids["a"], "status": "created"},
        ]
    }
    assert Conversation.objects.count() == 3
    assert AuditEvent.objects.filter(kind="conversations.ingested").first().data == {"created": 2, "duplicate": 1}


def test_batch_of_exactly_1000_is_accepted(agent_client):
    response = _post(agent_client, {"conversations": [_minimal(f"c{i}") for i in range(1000)]})

    assert response.status_code == 201
    assert len(response.json()["results"]) == 1000
    assert Conversation.objects.count() == 1000


def test_content_parts_and_unknown_openai_message_keys_are_kept_verbatim(agent_client):
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "u"}}],
        },
        {"role": "assistant", "content": "No.", "refusal": None, "annotations": []},
    ]

    response = _post(agent_client, {"external_id": "parts", "messages": messages})

    assert response.status_code == 201
    assert Conversation.objects.get().messages == messages


def test_occurred_at_without_a_zone_is_taken_as_utc(agent_client):
    _post(agent_client, conversation_payload("naive", occurred_at="2026-03-01T08:30:00"))

    assert Conversation.objects.get().occurred_at == dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)


def test_missing_occurred_at_defaults_to_the_time_received(agent_client):
    payload = conversation_payload("now")
    del payload["occurred_at"]

    _post(agent_client, payload)

    conversation = Conversation.objects.get()
    assert conversation.occurred_at == conversation.received_at


def test_repeated_tags_are_stored_once(agent_client):
    _post(agent_client, conversation_payload("tags", tags=["refund", " refund ", "vip"]))

    assert Conversation.objects.get().tags == ["refund", "vip"]
    assert sorted(ConversationTag.objects.values_list("tag", flat=True)) == ["refund", "vip"]


# --- idempotency -------------------------------------------------------------------------------


def test_resending_an_external_id_is_a_duplicate_not_a_second_row(agent_client):
    first = _post(agent_client, conversation_payload("same")).json()["results"][0]

    response = _post(agent_client, conversation_payload("same", agent_version="v9"))

    assert response.status_code == 201
    assert response.json() == {"results": [{"external_id": "same", "id": first["id"], "status": "duplicate"}]}
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().agent_version == "v2"


def test_an_external_id_repeated_inside_one_batch_is_stored_once_and_the_first_copy_wins(agent_client):
    response = _post(
        agent_client,
        {"conversations": [conversation_payload("twice"), conversation_payload("twice", agent_version="v9")]},
    )

    conversation = Conversation.objects.get()
    assert response.json() == {
        "results": [
            {"external_id": "twice", "id": conversation.pk, "status": "created"},
            {"external_id": "twice", "id": conversation.pk, "status": "duplicate"},
        ]
    }
    assert conversation.agent_version == "v2"
    # The copies carried the same judge score and feedback: each is stored once.
    assert JudgeScore.objects.count() == 1
    assert Feedback.objects.count() == 1
    assert ConversationTag.objects.count() == 1


def test_the_same_external_id_in_another_project_is_another_conversation(agent_client, project):
    other = ProjectFactory(organization=project.organization, slug="sales")
    other_key = services.api_key_create(project=other, name="sales").raw
    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")

    first = _post(agent_client, conversation_payload("shared")).json()["results"][0]
    second = _post(other_client, conversation_payload("shared")).json()["results"][0]

    assert first["status"] == second["status"] == "created"
    assert first["id"] != second["id"]
    assert sorted(Conversation.objects.values_list("project__slug", flat=True)) == ["sales", "support"]


def test_a_resend_with_new_judge_scores_and_feedback_adds_them(agent_client):
    conversation_id = _post(agent_client, conversation_payload("grow")).json()["results"][0]["id"]
    resend = conversation_payload(
        "grow",
        judge_scores=[
            {"judge": "gpt-judge", "judge_version": "1", "criterion": "correctness", "score": 0.9, "confidence": 0.8},
            {"judge": "gpt-judge", "judge_version": "2", "criterion": "correctness", "score": 0.2},
            {"judge": "tone-judge", "criterion": "politeness", "label": "rude", "reasoning": "Curt reply."},
        ],
        feedback={"rating": "down", "comment": "Wrong fare."},
    )

    response = _post(agent_client, resend)

    assert response.json()["results"] == [{"external_id": "grow", "id": conversation_id, "status": "duplicate"}]
    assert list(
        JudgeScore.objects.order_by("id").values_list("judge", "judge_version", "criterion", "score", "label")
    ) == [
        ("gpt-judge", "1", "correctness", 0.9, ""),
        ("gpt-judge", "2", "correctness", 0.2, ""),
        ("tone-judge", "", "politeness", None, "rude"),
    ]
    assert list(Feedback.objects.order_by("id").values_list("rating", "comment")) == [
        ("up", ""),
        ("down", "Wrong fare."),
    ]
    assert set(JudgeScore.objects.values_list("conversation_id", flat=True)) == {conversation_id}


def test_an_identical_resend_adds_nothing(agent_client):
    _post(agent_client, conversation_payload("same"))
    conversation = Conversation.objects.values().get()
    before = _stored_counts()

    response = _post(agent_client, conversation_payload("same"))

    assert response.json()["results"][0]["status"] == "duplicate"
    after = _stored_counts()
    assert after == {**before, "ingest_events": before["ingest_events"] + 1}
    assert Conversation.objects.values().get() == conversation


def test_feedback_on_a_stored_conversation_updates_the_summary_columns(agent_client):
    _post(agent_client, conversation_payload("fb", feedback={"rating": "up"}))

    _post(agent_client, conversation_payload("fb", feedback={"rating": "down", "user_rephrased": True}))
    conversation = Conversation.objects.get()
    assert (conversation.feedback_rating, conversation.user_rephrased, conversation.escalated_by_user) == (
        "down",
        True,
        False,
    )

    # A signal without a rating keeps the latest rating; the flags only ever turn on.
    _post(agent_client, conversation_payload("fb", feedback={"escalated_by_user": True}))
    conversation.refresh_from_db()
    assert (conversation.feedback_rating, conversation.user_rephrased, conversation.escalated_by_user) == (
        "down",
        True,
        True,
    )
    assert Feedback.objects.count() == 3


def test_feedback_on_a_repeat_inside_one_batch_updates_the_summary_columns(agent_client):
    _post(
        agent_client,
        {
            "conversations": [
                conversation_payload("fb", feedback={"rating": "up"}),
                conversation_payload("fb", feedback={"rating": "down", "escalated_by_user": True}),
            ]
        },
    )

    conversation = Conversation.objects.get()
    assert (conversation.feedback_rating, conversation.user_rephrased, conversation.escalated_by_user) == (
        "down",
        False,
        True,
    )
    assert list(Feedback.objects.order_by("id").values_list("rating", flat=True)) == ["up", "down"]


def test_new_conversation_without_feedback_has_no_rating(agent_client):
    payload = conversation_payload("quiet")
    del payload["feedback"]

    _post(agent_client, payload)

    conversation = Conversation.objects.get()
    assert (conversation.feedback_rating, conversation.user_rephrased, conversation.escalated_by_user) == (
        None,
        False,
        False,
    )
    assert Feedback.objects.count() == 0


# --- validation: 400 naming the item and field, nothing stored ----------------------------------


def _drop(*path):
    def mutate(item: dict) -> None:
        target = item
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _set(*path, value):
    def mutate(item: dict) -> None:
        target = item
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


INVALID_ITEMS = [
    pytest.param(_drop("external_id"), {"conversations[1].external_id": ["Field required"]}, id="no-external-id"),
    pytest.param(
        _set("external_id", value="   "),
        {"conversations[1].external_id": ["String should have at least 1 character"]},
        id="blank-external-id",
    ),
    pytest.param(
        _set("external_id", value="x" * 256),
        {"conversations[1].external_id": ["String should have at most 255 characters"]},
        id="long-external-id",
    ),
    pytest.param(
        _set("external_id", value=5),
        {"conversations[1].external_id": ["Input should be a valid string"]},
        id="numeric-external-id",
    ),
    pytest.param(_drop("messages"), {"conversations[1].messages": ["Field required"]}, id="no-messages"),
    pytest.param(
        _set("messages", value=[]),
        {"conversations[1].messages": ["List should have at least 1 item after validation, not 0"]},
        id="empty-messages",
    ),
    pytest.param(
        _set("messages", 1, "role", value="robot"),
        {"conversations[1].messages[1].role": ["Input should be 'system', 'developer', 'user', 'assistant' or 'tool'"]},
        id="bad-role",
    ),
    pytest.param(
        _set("messages", 1, value={"role": "user"}),
        {"conversations[1].messages[1]": ["a message needs content or tool_calls"]},
        id="message-without-content",
    ),
    pytest.param(
        _set("messages", 1, "content", value=5),
        {"conversations[1].messages[1].content": ["Input should be a valid string", "Input should be a valid list"]},
        id="numeric-content",
    ),
    pytest.param(
        _drop("messages", 2, "tool_calls", 0, "function", "name"),
        {"conversations[1].messages[2].tool_calls[0].function.name": ["Field required"]},
        id="tool-call-without-name",
    ),
    pytest.param(
        _set("occurred_at", value="yesterday"),
        {"conversations[1].occurred_at": ["Input should be a valid datetime or date, input is too short"]},
        id="bad-occurred-at",
    ),
    pytest.param(
        _set("agent_version", value="v" * 101),
        {"conversations[1].agent_version": ["String should have at most 100 characters"]},
        id="long-agent-version",
    ),
    pytest.param(
        _set("end_user_id", value="u" * 256),
        {"conversations[1].end_user_id": ["String should have at most 255 characters"]},
        id="long-end-user-id",
    ),
    pytest.param(
        _set("tags", value="refund"), {"conversations[1].tags": ["Input should be a valid list"]}, id="tags-not-list"
    ),
    pytest.param(
        _set("tags", value=["x" * 101]),
        {"conversations[1].tags[0]": ["String should have at most 100 characters"]},
        id="long-tag",
    ),
    pytest.param(
        _set("tags", value=[f"t{i}" for i in range(51)]),
        {"conversations[1].tags": ["List should have at most 50 items after validation, not 51"]},
        id="too-many-tags",
    ),
    pytest.param(
        _set("metadata", value=["a"]),
        {"conversations[1].metadata": ["Input should be a valid dictionary"]},
        id="metadata-not-object",
    ),
    pytest.param(
        _drop("judge_scores", 0, "judge"),
        {"conversations[1].judge_scores[0].judge": ["Field required"]},
        id="judge-score-without-judge",
    ),
    pytest.param(
        _drop("judge_scores", 0, "score"),
        {"conversations[1].judge_scores[0]": ["a judge score needs a score or a label"]},
        id="judge-score-without-score-or-label",
    ),
    pytest.param(
        _set("judge_scores", 0, "confidence", value=1.5),
        {"conversations[1].judge_scores[0].confidence": ["Input should be less than or equal to 1"]},
        id="confidence-above-1",
    ),
    pytest.param(
        _set("judge_scores", 0, "score", value="high"),
        {
            "conversations[1].judge_scores[0].score": [
                "Input should be a valid number, unable to parse string as a number"
            ]
        },
        id="score-not-a-number",
    ),
    pytest.param(
        _set("feedback", "rating", value="meh"),
        {"conversations[1].feedback.rating": ["Input should be 'up' or 'down'"]},
        id="bad-rating",
    ),
    pytest.param(
        _set("feedback", "user_rephrased", value="maybe"),
        {"conversations[1].feedback.user_rephrased": ["Input should be a valid boolean, unable to interpret input"]},
        id="rephrased-not-bool",
    ),
    pytest.param(
        _set("judge_score", value=[]),
        {"conversations[1].judge_score": ["Extra inputs are not permitted"]},
        id="misspelt-key",
    ),
]


@pytest.mark.parametrize(("mutate", "errors"), INVALID_ITEMS)
def test_an_invalid_item_fails_the_whole_batch_naming_index_and_field(agent_client, mutate, errors):
    bad = conversation_payload("bad")
    mutate(bad)

    response = _post(agent_client, {"conversations": [conversation_payload("good"), bad]})

    assert response.status_code == 400
    assert response.json() == {"message": "Invalid conversations.", "errors": errors}
    assert _stored_counts() == NOTHING


def test_an_invalid_single_conversation_names_its_fields(agent_client):
    bad = conversation_payload("bad")
    bad["messages"][0]["role"] = "robot"
    del bad["external_id"]

    response = _post(agent_client, bad)

    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid conversation.",
        "errors": {
            "external_id": ["Field required"],
            "messages[0].role": ["Input should be 'system', 'developer', 'user', 'assistant' or 'tool'"],
        },
    }
    assert _stored_counts() == NOTHING


def test_a_bad_item_stores_nothing_not_even_scores_for_a_known_conversation(agent_client):
    _post(agent_client, conversation_payload("known"))
    before = _stored_counts()
    resend = conversation_payload(
        "known",
        judge_scores=[{"judge": "late-judge", "criterion": "safety", "score": 1}],
        feedback={"rating": "down"},
    )

    response = _post(agent_client, {"conversations": [conversation_payload("new"), resend, {"external_id": "x"}]})

    assert response.status_code == 400
    assert response.json()["errors"] == {"conversations[2].messages": ["Field required"]}
    assert _stored_counts() == before
    assert Conversation.objects.get().feedback_rating == "up"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"conversations": []}, {"conversations": ["List should have at least 1 item after validation, not 0"]}),
        ({"conversations": "x"}, {"conversations": ["Input should be a valid list"]}),
        ({"conversations": [_minimal("a")], "extra": 1}, {"extra": ["Extra inputs are not permitted"]}),
    ],
    ids=["empty-batch", "batch-not-a-list", "unknown-envelope-key"],
)
def test_a_malformed_envelope_is_400(agent_client, body, errors):
    response = _post(agent_client, body)

    assert response.status_code == 400
    assert response.json() == {"message": "Invalid conversations.", "errors": errors}
    assert _stored_counts() == NOTHING


@pytest.mark.parametrize("body", [[_minimal("a")], "text", 3], ids=["array", "string", "number"])
def test_a_body_that_is_not_an_object_is_400(agent_client, body):
    response = _post(agent_client, body)

    assert response.status_code == 400
    assert response.json() == {"message": "Send a JSON object.", "errors": {"body": ["Expected an object."]}}
    assert _stored_counts() == NOTHING


def test_a_batch_of_1001_is_400_and_stores_nothing(agent_client):
    response = _post(agent_client, {"conversations": [_minimal(f"c{i}") for i in range(1001)]})

    assert response.status_code == 400
    assert response.json() == {
        "message": "Batch too large.",
        "errors": {"conversations": ["At most 1000 per request; got 1001."]},
    }
    assert _stored_counts() == NOTHING


def test_a_body_over_the_limit_is_413_and_stores_nothing(agent_client, settings):
    body = orjson.dumps({"conversations": [_minimal("a"), _minimal("b")]})
    settings.INGEST_MAX_BODY_BYTES = len(body) - 1

    response = agent_client.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "message": f"Request body is over the {len(body) - 1}-byte limit; send smaller batches.",
        "errors": {},
    }
    assert _stored_counts() == NOTHING


def test_a_body_exactly_at_the_limit_is_accepted(agent_client, settings):
    body = orjson.dumps({"conversations": [_minimal("a"), _minimal("b")]})
    settings.INGEST_MAX_BODY_BYTES = len(body)

    response = agent_client.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 201
    assert Conversation.objects.count() == 2


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_declared_json_is_415(agent_client, content_type):
    response = agent_client.generic("POST", URL, orjson.dumps(_minimal("a")), content_type=content_type)

    assert response.status_code == 415
    assert response.json() == {"message": "Send JSON with 'Content-Type: application/json'.", "errors": {}}
    assert _stored_counts() == NOTHING


def test_json_with_a_charset_parameter_is_accepted(agent_client):
    response = agent_client.generic(
        "POST", URL, orjson.dumps(_minimal("a")), content_type="application/json; charset=utf-8"
    )

    assert response.status_code == 201


def test_malformed_json_is_400(agent_client):
    response = agent_client.generic("POST", URL, b'{"external_id": "a", ', content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Malformed JSON."
    assert list(body["errors"]) == ["body"]
    assert len(body["errors"]["body"]) == 1
    assert _stored_counts() == NOTHING


def test_a_nul_character_anywhere_is_400(agent_client):
    payload = conversation_payload("nul")
    payload["messages"][1]["content"] = "refund\u0000please"

    response = _post(agent_client, payload)

    assert response.status_code == 400
    assert response.json() == {
        "message": "Text may not contain NUL (U+0000) characters.",
        "errors": {"messages[1].content": ["Text may not contain NUL (U+0000) characters."]},
    }
    assert _stored_counts() == NOTHING


# --- who may ingest ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer rak_not-a-real-key", "Bearer rat_not-a-real-token", "Bearer garbage", "Token abc"],
)
def test_a_missing_or_wrong_credential_is_401_with_a_challenge(db, project, authorization):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    response = _post(client, conversation_payload())

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert set(response.json()) == {"message", "errors"}
    assert _stored_counts() == NOTHING


def test_a_revoked_key_is_refused_on_the_next_request(agent_client):
    assert _post(agent_client, conversation_payload("before")).status_code == 201

    services.api_key_revoke(key=agent_client.api_key)
    response = _post(agent_client, conversation_payload("after"))

    assert response.status_code == 401
    assert response.json() == {"message": "Invalid, expired or revoked token.", "errors": {}}
    assert list(Conversation.objects.values_list("external_id", flat=True)) == ["before"]


@pytest.mark.parametrize("role", ["annotator", "approver"])
def test_a_role_that_may_not_ingest_is_403_and_stores_nothing(api_client_for, project, role):
    client = api_client_for(role)

    response = _post(client, {"project": "support", "conversations": [conversation_payload()]})

    assert response.status_code == 403
    assert response.json() == {"message": "Your role may not do this.", "errors": {}}
    assert _stored_counts() == NOTHING


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_a_person_who_may_ingest_names_the_project(api_client_for, project, role):
    client = api_client_for(role)

    response = _post(client, {"project": "support", "conversations": [conversation_payload("by-person")]})

    assert response.status_code == 201
    conversation = Conversation.objects.get()
    assert conversation.project_id == project.pk
    assert conversation.ingested_by_user_id == client.user.pk
    assert conversation.ingested_by_key_id is None
    assert AuditEvent.objects.get(kind="conversations.ingested").actor_user_id == client.user.pk


def test_a_single_conversation_from_a_person_carries_the_project_beside_it(api_client_for, project):
    client = api_client_for("engineer")

    response = _post(client, {"project": "support", **conversation_payload("single")})

    assert response.status_code == 201
    assert Conversation.objects.get().project_id == project.pk


def test_a_personal_token_without_a_project_is_400_naming_project(api_client_for, project):
    response = _post(api_client_for("engineer"), {"conversations": [conversation_payload()]})

    assert response.status_code == 400
    assert response.json() == {
        "message": "Name the project.",
        "errors": {"project": ["This field is required with a personal token."]},
    }
    assert _stored_counts() == NOTHING


def test_a_personal_token_with_an_unknown_project_is_400(api_client_for, project):
    response = _post(api_client_for("engineer"), {"project": "nope", "conversations": [conversation_payload()]})

    assert response.status_code == 400
    assert response.json() == {
        "message": "Unknown project.",
        "errors": {"project": ["No project 'nope' in this organization."]},
    }
    assert _stored_counts() == NOTHING


def test_a_key_naming_another_project_is_400(agent_client, project):
    ProjectFactory(organization=project.organization, slug="sales")

    response = _post(agent_client, {"project": "sales", "conversations": [conversation_payload()]})

    assert response.status_code == 400
    assert response.json() == {
        "message": "This API key belongs to another project.",
        "errors": {"project": ["This key writes to project 'support' only."]},
    }
    assert _stored_counts() == NOTHING


def test_a_key_naming_its_own_project_is_accepted(agent_client, project):
    response = _post(agent_client, {"project": "support", "conversations": [conversation_payload()]})

    assert response.status_code == 201
    assert Conversation.objects.get().project_id == project.pk


# --- cost per batch ------------------------------------------------------------------------------


def _count_queries(client: APIClient, body: dict) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, body)
    assert response.status_code == 201, response.content
    return len(queries.captured_queries)


def test_batch_ingest_runs_the_same_queries_for_10_and_100_conversations(agent_client, django_assert_num_queries):
    # Warm-up: the first request stamps the key's last_used_at, later ones within a minute do not.
    _post(agent_client, _minimal("warm-up"))

    def batch(prefix: str, n: int) -> dict:
        return {"conversations": [conversation_payload(f"{prefix}-{i}", tags=["refund", "vip"]) for i in range(n)]}

    ten = _count_queries(agent_client, batch("ten", 10))

    # Nothing is issued per row or per batch of rows, on any backend (SQLite inserts with one
    # executemany, PostgreSQL with COPY).
    with django_assert_num_queries(ten):
        assert _post(agent_client, batch("hundred", 100)).status_code == 201
    assert Conversation.objects.count() == 111
    assert JudgeScore.objects.count() == 110
    assert ConversationTag.objects.count() == 220


def test_resending_known_conversations_with_new_scores_and_feedback_costs_the_same_for_10_and_100(
    agent_client, django_assert_num_queries
):
    _post(agent_client, {"conversations": [_minimal(f"c{i}") for i in range(100)]})

    def resend(n: int, round_: int) -> dict:
        return {
            "conversations": [
                {
                    **_minimal(f"c{i}"),
                    "judge_scores": [
                        {"judge": "late-judge", "judge_version": str(round_), "criterion": "c", "score": 1}
                    ],
                    "feedback": {"rating": "down", "comment": f"round {round_}", "user_rephrased": i % 2 == 0},
                }
                for i in range(n)
            ]
        }

    ten = _count_queries(agent_client, resend(10, 1))

    with django_assert_num_queries(ten):
        assert _post(agent_client, resend(100, 2)).status_code == 201
    assert Feedback.objects.count() == 110
    assert JudgeScore.objects.count() == 110
    # The summary columns moved for every conversation, in the same few statements.
    assert Conversation.objects.filter(feedback_rating="down").count() == 100
    assert Conversation.objects.filter(user_rephrased=True).count() == 50
