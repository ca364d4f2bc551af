"""GET /api/v1/conversations (filters, cursor pagination) and GET /api/v1/conversations/{id}."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from reviewapp import services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import Conversation
from tests.factories import ProjectFactory

URL = "/api/v1/conversations"


def _ingest(project, external_id: str, **fields: object) -> int:
    item = {"external_id": external_id, "messages": [{"role": "user", "content": f"question {external_id}"}], **fields}
    [result] = services.conversations_ingest(project=project, conversations=[ConversationIn.model_validate(item)])
    return result.id


def _get(client: APIClient, **params: object):
    return client.get(f"{URL}?{urlencode(params)}" if params else URL)


def _external_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["external_id"] for row in response.json()["results"]]


@pytest.fixture
def catalogue(project):
    """Five conversations with distinct versions, tags, times, feedback and judge scores."""
    _ingest(
        project,
        "a",
        agent_version="v1",
        tags=["refund"],
        occurred_at="2026-01-01T00:00:00Z",
        feedback={"rating": "down", "user_rephrased": True},
        judge_scores=[{"judge": "gpt-judge", "criterion": "correctness", "score": 0.2}],
    )
    _ingest(
        project,
        "b",
        agent_version="v2",
        tags=["refund", "vip"],
        occurred_at="2026-01-02T00:00:00Z",
        feedback={"rating": "up"},
        judge_scores=[
            {"judge": "gpt-judge", "criterion": "correctness", "score": 0.9},
            {"judge": "tone-judge", "criterion": "politeness", "score": 0.3},
        ],
    )
    _ingest(
        project,
        "c",
        agent_version="v2",
        tags=["booking"],
        occurred_at="2026-01-03T00:00:00Z",
        judge_scores=[{"judge": "gpt-judge", "criterion": "correctness", "score": 0.5}],
    )
    _ingest(project, "d", agent_version="v3", occurred_at="2026-01-04T00:00:00Z", feedback={"rating": "down"})
    _ingest(
        project,
        "e",
        agent_version="v3",
        occurred_at="2026-01-05T00:00:00Z",
        judge_scores=[{"judge": "tone-judge", "criterion": "correctness", "label": "unsure"}],
    )


def test_list_without_filters_returns_newest_first(agent_client, catalogue):
    assert _external_ids(_get(agent_client)) == ["e", "d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"agent_version": "v2"}, ["c", "b"]),
        ({"agent_version": "v9"}, []),
        ({"tag": "refund"}, ["b", "a"]),
        ({"tag": "vip"}, ["b"]),
        ({"occurred_after": "2026-01-02T00:00:00Z"}, ["e", "d", "c", "b"]),
        ({"occurred_before": "2026-01-02T00:00:00Z"}, ["a"]),
        ({"occurred_after": "2026-01-02T00:00:00Z", "occurred_before": "2026-01-04T00:00:00Z"}, ["c", "b"]),
        ({"feedback_rating": "down"}, ["d", "a"]),
        ({"feedback_rating": "up"}, ["b"]),
        ({"user_rephrased": "true"}, ["a"]),
        ({"user_rephrased": "false"}, ["e", "d", "c", "b"]),
        ({"external_id": "c"}, ["c"]),
        ({"judge": "tone-judge"}, ["e", "b"]),
        ({"criterion": "politeness"}, ["b"]),
        ({"judge": "gpt-judge", "criterion": "correctness", "score_max": 0.5}, ["c", "a"]),
        ({"judge": "gpt-judge", "score_min": 0.5}, ["c", "b"]),
        ({"criterion": "correctness", "score_min": 0.4, "score_max": 0.6}, ["c"]),
        # Score bounds and judge apply to the same score: b's low score is tone-judge's, not gpt-judge's.
        ({"judge": "gpt-judge", "score_max": 0.3}, ["a"]),
        ({"agent_version": "v2", "tag": "refund", "feedback_rating": "up"}, ["b"]),
    ],
)
def test_list_filters(agent_client, catalogue, params, expected):
    assert _external_ids(_get(agent_client, **params)) == expected


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"feedback_rating": "meh"}, {"feedback_rating": ['"meh" is not a valid choice.']}),
        ({"score_min": "high"}, {"score_min": ["A valid number is required."]}),
        ({"score_min": 0.8, "score_max": 0.2}, {"score_min": ["Must not be above score_max."]}),
        (
            {"occurred_after": "last week"},
            {
                "occurred_after": [
                    "Datetime has wrong format. Use one of these formats instead: "
                    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                ]
            },
        ),
    ],
)
def test_invalid_filters_are_400(agent_client, catalogue, params, errors):
    response = _get(agent_client, **params)

    assert response.status_code == 400
    assert response.json() == {"message": "Validation failed.", "errors": errors}


def test_list_row_shape(agent_client, project):
    conversation_id = _ingest(
        project,
        "shape",
        occurred_at="2026-01-01T12:00:00Z",
        agent_version="v1",
        end_user_id="u-1",
        tags=["refund"],
        metadata={"channel": "web"},
        judge_scores=[{"judge": "j", "judge_version": "1", "criterion": "c", "score": 0.5, "confidence": 0.9}],
        feedback={"rating": "down", "escalated_by_user": True},
    )
    conversation = Conversation.objects.get()

    [row] = _get(agent_client).json()["results"]

    received = conversation.received_at.isoformat().replace("+00:00", "Z")
    assert row == {
        "id": conversation_id,
        "project": "support",
        "external_id": "shape",
        "occurred_at": "2026-01-01T12:00:00Z",
        "received_at": received,
        "agent_version": "v1",
        "end_user_id": "u-1",
        "tags": ["refund"],
        "metadata": {"channel": "web"},
        "feedback_rating": "down",
        "user_rephrased": False,
        "escalated_by_user": True,
        "judge_scores": [
            {
                "judge": "j",
                "judge_version": "1",
                "criterion": "c",
                "score": 0.5,
                "label": "",
                "confidence": 0.9,
                "reasoning": "",
                "created_at": received,
            }
        ],
    }


def test_cursor_pagination_walks_every_row_exactly_once(agent_client, project):
    ids = [_ingest(project, f"c{i:02d}") for i in range(11)]

    seen: list[int] = []
    page_sizes: list[int] = []
    url = f"{URL}?limit=4"
    while url:
        response = agent_client.get(url)
        assert response.status_code == 200
        body = response.json()
        page_sizes.append(len(body["results"]))
        seen.extend(row["id"] for row in body["results"])
        url = body["next"]

    assert page_sizes == [4, 4, 3]
    assert seen == sorted(ids, reverse=True)


def test_cursor_pagination_is_stable_when_new_rows_arrive_between_pages(agent_client, project):
    ids = [_ingest(project, f"c{i}") for i in range(4)]
    first = agent_client.get(f"{URL}?limit=2").json()

    _ingest(project, "late")
    second = agent_client.get(first["next"]).json()

    assert [r["id"] for r in first["results"] + second["results"]] == sorted(ids, reverse=True)


def test_the_page_size_is_capped_at_500(agent_client, project):
    services.conversations_ingest(
        project=project,
        conversations=[
            ConversationIn.model_validate({"external_id": f"c{i}", "messages": [{"role": "user", "content": "hi"}]})
            for i in range(501)
        ],
    )

    body = _get(agent_client, limit=1000).json()

    assert len(body["results"]) == 500
    assert body["next"] is not None


def test_listing_costs_the_same_queries_for_2_and_20_rows(agent_client, project, django_assert_num_queries):
    for i in range(2):
        _ingest(project, f"few{i}", judge_scores=[{"judge": "j", "criterion": "c", "score": 0.1}])
    _get(agent_client)  # stamps last_used_at once

    # Key lookup, the page, the judge scores of the page.
    with django_assert_num_queries(3):
        assert len(_get(agent_client).json()["results"]) == 2
    for i in range(18):
        _ingest(project, f"many{i}", judge_scores=[{"judge": "j", "criterion": "c", "score": 0.1}])
    with django_assert_num_queries(3):
        assert len(_get(agent_client).json()["results"]) == 20


def test_a_key_lists_only_its_own_project(agent_client, project):
    sales = ProjectFactory(organization=project.organization, slug="sales")
    _ingest(project, "mine")
    _ingest(sales, "theirs")

    assert _external_ids(_get(agent_client)) == ["mine"]
    # Naming another project does not widen a key's view.
    assert _external_ids(_get(agent_client, project="sales")) == ["mine"]


def test_a_person_lists_every_project_of_the_organization_or_one_by_slug(api_client_for, project):
    sales = ProjectFactory(organization=project.organization, slug="sales")
    _ingest(project, "support-1")
    _ingest(sales, "sales-1")
    client = api_client_for("engineer")

    assert _external_ids(_get(client)) == ["sales-1", "support-1"]
    assert _external_ids(_get(client, project="support")) == ["support-1"]
    response = _get(client, project="nope")
    assert response.status_code == 400
    assert response.json() == {"message": "Unknown project.", "errors": {"project": ["No project 'nope' here."]}}


@pytest.mark.parametrize("role", ["annotator", "approver"])
def test_roles_without_conversation_access_may_not_read(api_client_for, project, role):
    conversation_id = _ingest(project, "secret")
    client = api_client_for(role)

    assert _get(client).status_code == 403
    response = client.get(f"{URL}/{conversation_id}")
    assert response.status_code == 403
    assert response.json() == {"message": "Your role may not do this.", "errors": {}}


def test_reading_without_a_credential_is_401(db, project):
    conversation_id = _ingest(project, "secret")

    for url in [URL, f"{URL}/{conversation_id}"]:
        response = APIClient().get(url)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_detail_returns_messages_scores_and_every_feedback(agent_client, project):
    messages = [
        {"role": "user", "content": "Refund please"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "refund", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
    ]
    conversation_id = _ingest(project, "detail", messages=messages, feedback={"rating": "up", "comment": "great"})
    services.conversations_ingest(
        project=project,
        conversations=[
            ConversationIn.model_validate(
                {"external_id": "detail", "messages": messages, "feedback": {"rating": "down", "user_rephrased": True}}
            )
        ],
    )

    response = agent_client.get(f"{URL}/{conversation_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == conversation_id
    assert body["external_id"] == "detail"
    assert body["messages"] == [
        {"role": "user", "content": "Refund please"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "refund", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
    ]
    assert [(f["rating"], f["comment"], f["user_rephrased"], f["escalated_by_user"]) for f in body["feedback"]] == [
        ("up", "great", False, False),
        ("down", "", True, False),
    ]
    assert (body["feedback_rating"], body["user_rephrased"]) == ("down", True)
    assert body["judge_scores"] == []


def test_detail_of_an_unknown_id_is_404(agent_client, project):
    response = agent_client.get(f"{URL}/999999")

    assert response.status_code == 404
    assert response.json() == {"message": "Conversation not found.", "errors": {}}


def test_a_key_may_not_read_another_projects_conversation(agent_client, project):
    sales = ProjectFactory(organization=project.organization, slug="sales")
    conversation_id = _ingest(sales, "theirs")

    response = agent_client.get(f"{URL}/{conversation_id}")

    assert response.status_code == 404
    assert response.json() == {"message": "Conversation not found.", "errors": {}}


def test_a_person_reads_any_project_of_the_organization(api_client_for, project):
    sales = ProjectFactory(organization=project.organization, slug="sales")
    conversation_id = _ingest(sales, "theirs", occurred_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat())

    response = api_client_for("engineer").get(f"{URL}/{conversation_id}")

    assert response.status_code == 200
    assert (response.json()["project"], response.json()["occurred_at"]) == ("sales", "2026-01-01T00:00:00Z")
