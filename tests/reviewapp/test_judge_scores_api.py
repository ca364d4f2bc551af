"""POST /api/v1/judge-scores: judges that run after ingestion add scores by external_id."""

from __future__ import annotations

import orjson
import pytest
from rest_framework.test import APIClient

from reviewapp import services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import AuditEvent, JudgeScore
from tests.factories import ProjectFactory

URL = "/api/v1/judge-scores"


def _post(client: APIClient, body: object):
    return client.post(URL, body, format="json")


def _conversation(project, external_id: str) -> int:
    [result] = services.conversations_ingest(
        project=project,
        conversations=[
            ConversationIn.model_validate({"external_id": external_id, "messages": [{"role": "user", "content": "hi"}]})
        ],
    )
    return result.id


def _score(external_id: str, **overrides: object) -> dict:
    return {"external_id": external_id, "judge": "gpt-judge", "criterion": "correctness", "score": 0.5, **overrides}


def _scores() -> list[tuple]:
    return list(
        JudgeScore.objects.order_by("id").values_list(
            "conversation_id", "judge", "judge_version", "criterion", "score", "label", "confidence", "reasoning"
        )
    )


def test_scores_are_added_to_stored_conversations_in_request_order(agent_client, project):
    a = _conversation(project, "a")
    b = _conversation(project, "b")

    response = _post(
        agent_client,
        {
            "judge_scores": [
                _score("b", judge_version="3", confidence=0.7, reasoning="Cites the fare rules."),
                _score("a", criterion="tone", score=None, label="polite"),
            ]
        },
    )

    assert response.status_code == 201
    assert response.json() == {
        "results": [
            {
                "external_id": "b",
                "conversation_id": b,
                "judge": "gpt-judge",
                "criterion": "correctness",
                "status": "created",
            },
            {"external_id": "a", "conversation_id": a, "judge": "gpt-judge", "criterion": "tone", "status": "created"},
        ]
    }
    assert _scores() == [
        (b, "gpt-judge", "3", "correctness", 0.5, "", 0.7, "Cites the fare rules."),
        (a, "gpt-judge", "", "tone", None, "polite", None, ""),
    ]
    event = AuditEvent.objects.get(kind="judge_scores.added")
    assert event.data == {"created": 2, "duplicate": 0}
    assert event.actor_api_key_id == agent_client.api_key.pk


def test_one_score_may_be_sent_on_its_own(agent_client, project):
    a = _conversation(project, "a")

    response = _post(agent_client, _score("a"))

    assert response.status_code == 201
    assert response.json()["results"] == [
        {
            "external_id": "a",
            "conversation_id": a,
            "judge": "gpt-judge",
            "criterion": "correctness",
            "status": "created",
        }
    ]
    assert _scores() == [(a, "gpt-judge", "", "correctness", 0.5, "", None, "")]


def test_resending_a_score_is_a_duplicate_and_adds_no_row(agent_client, project):
    a = _conversation(project, "a")
    _post(agent_client, {"judge_scores": [_score("a")]})

    response = _post(agent_client, {"judge_scores": [_score("a", score=0.1)]})

    assert response.status_code == 201
    assert response.json()["results"][0]["status"] == "duplicate"
    # The first verdict of a (judge, version, criterion) stands.
    assert _scores() == [(a, "gpt-judge", "", "correctness", 0.5, "", None, "")]
    assert AuditEvent.objects.filter(kind="judge_scores.added").first().data == {"created": 0, "duplicate": 1}


def test_a_score_repeated_inside_one_request_is_stored_once(agent_client, project):
    a = _conversation(project, "a")

    response = _post(agent_client, {"judge_scores": [_score("a"), _score("a", score=0.9)]})

    assert [r["status"] for r in response.json()["results"]] == ["created", "duplicate"]
    assert _scores() == [(a, "gpt-judge", "", "correctness", 0.5, "", None, "")]


def test_a_new_judge_version_is_a_new_score(agent_client, project):
    a = _conversation(project, "a")
    _post(agent_client, {"judge_scores": [_score("a", judge_version="1")]})

    response = _post(agent_client, {"judge_scores": [_score("a", judge_version="2", score=0.2)]})

    assert response.json()["results"][0]["status"] == "created"
    assert [(s[0], s[2], s[4]) for s in _scores()] == [(a, "1", 0.5), (a, "2", 0.2)]


def test_unknown_external_ids_fail_the_whole_request_naming_each_index(agent_client, project):
    _conversation(project, "a")

    response = _post(
        agent_client, {"judge_scores": [_score("a"), _score("ghost"), _score("a", criterion="x"), _score("boo")]}
    )

    assert response.status_code == 400
    assert response.json() == {
        "message": "Some judge scores name unknown conversations.",
        "errors": {
            "judge_scores[1].external_id": ["No conversation with this external_id in project 'support'."],
            "judge_scores[3].external_id": ["No conversation with this external_id in project 'support'."],
        },
    }
    assert _scores() == []
    assert not AuditEvent.objects.filter(kind="judge_scores.added").exists()


def test_a_conversation_of_another_project_is_unknown_to_this_key(agent_client, project):
    sales = ProjectFactory(organization=project.organization, slug="sales")
    _conversation(sales, "a")

    response = _post(agent_client, {"judge_scores": [_score("a")]})

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "judge_scores[0].external_id": ["No conversation with this external_id in project 'support'."]
    }
    assert _scores() == []


@pytest.mark.parametrize(
    ("score", "errors"),
    [
        (
            {"external_id": "a", "criterion": "c", "score": 1},
            {"judge_scores[1].judge": ["Field required"]},
        ),
        (
            {"external_id": "a", "judge": "j", "score": 1},
            {"judge_scores[1].criterion": ["Field required"]},
        ),
        (
            {"judge": "j", "criterion": "c", "score": 1},
            {"judge_scores[1].external_id": ["Field required"]},
        ),
        (
            {"external_id": "a", "judge": "j", "criterion": "c"},
            {"judge_scores[1]": ["a judge score needs a score or a label"]},
        ),
        (
            {"external_id": "a", "judge": "j", "criterion": "c", "score": 1, "confidence": -0.1},
            {"judge_scores[1].confidence": ["Input should be greater than or equal to 0"]},
        ),
        (
            {"external_id": "a", "judge": "j", "criterion": "c", "score": 1, "reasoning": "r" * 20_001},
            {"judge_scores[1].reasoning": ["String should have at most 20000 characters"]},
        ),
        (
            {"external_id": "a", "judge": "j", "criterion": "c", "score": 1, "weight": 2},
            {"judge_scores[1].weight": ["Extra inputs are not permitted"]},
        ),
    ],
    ids=[
        "no-judge",
        "no-criterion",
        "no-external-id",
        "no-score-or-label",
        "negative-confidence",
        "long-reasoning",
        "extra-key",
    ],
)
def test_an_invalid_score_fails_the_whole_request(agent_client, project, score, errors):
    _conversation(project, "a")

    response = _post(agent_client, {"judge_scores": [_score("a"), score]})

    assert response.status_code == 400
    assert response.json() == {"message": "Invalid judge scores.", "errors": errors}
    assert _scores() == []


def test_an_empty_list_is_400(agent_client):
    response = _post(agent_client, {"judge_scores": []})

    assert response.status_code == 400
    assert response.json()["errors"] == {"judge_scores": ["List should have at least 1 item after validation, not 0"]}


def test_more_than_10000_scores_is_400(agent_client, project):
    response = _post(agent_client, {"judge_scores": [_score("a")] * 10_001})

    assert response.status_code == 400
    assert response.json() == {
        "message": "Batch too large.",
        "errors": {"judge_scores": ["At most 10000 per request."]},
    }


def test_a_body_over_the_limit_is_413(agent_client, project, settings):
    _conversation(project, "a")
    body = orjson.dumps({"judge_scores": [_score("a")]})
    settings.INGEST_MAX_BODY_BYTES = len(body) - 1

    response = agent_client.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 413
    assert _scores() == []


def test_a_body_not_declared_json_is_415(agent_client, project):
    response = agent_client.generic("POST", URL, orjson.dumps(_score("a")), content_type="text/plain")

    assert response.status_code == 415


def test_a_person_names_the_project(api_client_for, project):
    a = _conversation(project, "a")
    client = api_client_for("engineer")

    response = _post(client, {"project": "support", "judge_scores": [_score("a")]})

    assert response.status_code == 201
    assert _scores() == [(a, "gpt-judge", "", "correctness", 0.5, "", None, "")]
    assert AuditEvent.objects.get(kind="judge_scores.added").actor_user_id == client.user.pk


def test_a_person_sending_one_score_names_the_project_beside_it(api_client_for, project):
    _conversation(project, "a")

    response = _post(api_client_for("admin"), {"project": "support", **_score("a")})

    assert response.status_code == 201
    assert len(_scores()) == 1


def test_a_person_without_a_project_is_400_naming_project(api_client_for, project):
    _conversation(project, "a")

    response = _post(api_client_for("engineer"), {"judge_scores": [_score("a")]})

    assert response.status_code == 400
    assert response.json() == {
        "message": "Name the project.",
        "errors": {"project": ["This field is required with a personal token."]},
    }
    assert _scores() == []


@pytest.mark.parametrize("role", ["annotator", "approver"])
def test_a_role_that_may_not_ingest_may_not_add_scores(api_client_for, project, role):
    _conversation(project, "a")

    response = _post(api_client_for(role), {"project": "support", "judge_scores": [_score("a")]})

    assert response.status_code == 403
    assert _scores() == []


def test_a_revoked_key_may_not_add_scores(agent_client, project):
    _conversation(project, "a")
    services.api_key_revoke(key=agent_client.api_key)

    response = _post(agent_client, {"judge_scores": [_score("a")]})

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert _scores() == []
