"""`POST /api/v1/actions` answers the same through its lean path (escalations/apis/actions.py,
`_post_lean`) as through DRF's view: every error of the body, the 409, the 200 repeat, the 201,
their headers; and the requests it does not take (no body, another media type, a token that
fails, a role that may not) still reach the view."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from escalations.apis import actions as actions_api
from escalations.models import Action
from tests.escalations.factories import policy_create, refund_policy, request_body
from tests.escalations.test_api_actions import BAD_FIELDS

pytestmark = pytest.mark.django_db

# Headers both paths must agree on (Date-like headers differ by nature; none are set here).
_HEADERS = ("Content-Type", "Allow", "Cache-Control", "WWW-Authenticate", "Content-Security-Policy", "Vary")


@pytest.fixture
def paths(monkeypatch):
    """post(client, body, lean=...) -> response, and how many requests took the lean path."""
    taken = []
    original = actions_api._post_lean

    def counting(request):
        response = original(request)
        taken.append(response is not None)
        return response

    monkeypatch.setattr(actions_api, "_post_lean", counting)

    def post(client: APIClient, body, *, lean: bool, content_type: str = "application/json", **extra):
        monkeypatch.setattr(actions_api, "_lean_applies", _lean_applies if lean else lambda request: False)
        return client.post("/api/v1/actions", json.dumps(body), content_type=content_type, **extra)

    post.taken = taken  # type: ignore[attr-defined]
    return post


_lean_applies = actions_api._lean_applies


def _same(lean, drf) -> None:
    assert lean.status_code == drf.status_code, (lean.content, drf.content)
    assert lean.json() == drf.json()
    assert lean.content == drf.content  # the same renderer: byte for byte
    for header in _HEADERS:
        assert lean.get(header) == drf.get(header), header


@pytest.mark.parametrize(("overrides", "field"), [(o, f) for _, o, f in BAD_FIELDS], ids=[n for n, _, _ in BAD_FIELDS])
def test_every_bad_field_answers_the_same_400(agent_client, project, paths, overrides, field):
    body = {k: v for k, v in {**request_body(), **overrides}.items() if v is not None}

    lean, drf = paths(agent_client, body, lean=True), paths(agent_client, body, lean=False)

    _same(lean, drf)
    assert list(lean.json()["errors"]) == [field]
    assert paths.taken == [True, False]


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2]", b'"text"', b"{", b'{"a": NaN}', b'{"a": "\\u0000"}', b'{"external_id": 1e400}', b"\xff"],
    ids=["list", "string", "truncated", "nan", "nul", "huge", "not utf-8"],
)
def test_a_body_that_is_not_a_good_object_answers_the_same(agent_client, project, monkeypatch, raw):
    answers = []
    for lean in (True, False):
        monkeypatch.setattr(actions_api, "_lean_applies", _lean_applies if lean else lambda request: False)
        answers.append(agent_client.post("/api/v1/actions", raw, content_type="application/json"))
    _same(*answers)
    assert answers[0].status_code == 400


def test_created_repeated_and_conflicting_answer_the_same(agent_client, project, paths):
    refund_policy(project)
    # The lean path creates, the view repeats (200, the same action); then the other way round.
    created_lean, repeat_drf = (
        paths(agent_client, request_body("a"), lean=True),
        paths(agent_client, request_body("a"), lean=False),
    )
    created_drf, repeat_lean = (
        paths(agent_client, request_body("b"), lean=False),
        paths(agent_client, request_body("b"), lean=True),
    )
    assert (created_lean.status_code, created_drf.status_code) == (201, 201)
    assert (repeat_lean.status_code, repeat_drf.status_code) == (200, 200)
    assert created_lean.json() == repeat_drf.json() and created_drf.json() == repeat_lean.json()
    for header in _HEADERS:
        assert created_lean.get(header) == created_drf.get(header) == repeat_lean.get(header), header
    assert created_lean["Allow"] == "GET, POST, HEAD, OPTIONS"

    conflict = request_body("a", reasoning="Something else.")
    _same(paths(agent_client, conflict, lean=True), paths(agent_client, conflict, lean=False))
    assert paths(agent_client, conflict, lean=True).status_code == 409
    assert Action.objects.count() == 2


def test_a_person_naming_a_project_answers_the_same(api_client_for, project, paths):
    policy_create(project, [{"if": {"action": "refund"}, "then": "approve"}])
    client = api_client_for("engineer")
    for body in (
        {**request_body("p1"), "project": project.slug},
        request_body("p2"),
        {**request_body(), "project": "nope"},
    ):
        lean, drf = paths(client, body, lean=True), paths(client, body, lean=False)
        if lean.status_code == 201:
            assert drf.status_code == 200 and lean.json() == drf.json()
        else:
            _same(lean, drf)
    assert all(paths.taken[::2])


@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        (None, 401),
        ("Bearer rk_not-a-key", 401),
        ("Bearer a b", 401),
        ("Basic dXNlcjpwdw==", 401),
    ],
)
def test_unauthenticated_requests_take_the_views_path(project, paths, credentials, status):
    client = APIClient()
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)
    lean, drf = paths(client, request_body(), lean=True), paths(client, request_body(), lean=False)
    _same(lean, drf)
    assert lean.status_code == status
    assert lean["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not any(paths.taken)


def test_a_role_that_may_not_ask_takes_the_views_path(api_client_for, paths):
    client = api_client_for("approver")
    lean = paths(client, request_body(), lean=True)
    assert lean.status_code == 403 and lean.json() == {"message": "Your role may not do this.", "errors": {}}
    assert paths.taken == [False]


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": "application/json; indent=4"},
        {"QUERY_STRING": "format=json"},
        {"content_type": "application/json; charset=utf-8"},
        {"content_type": "text/plain"},
    ],
    ids=["accept html", "accept indent", "format", "charset", "text"],
)
def test_unusual_requests_are_answered_by_the_view(agent_client, project, paths, extra):
    refund_policy(project)
    response = paths(agent_client, request_body(), lean=True, **extra)
    assert paths.taken == [False]
    assert response.status_code in (201, 406, 415)


def test_an_empty_body_is_answered_by_the_view(agent_client, project, paths):
    response = agent_client.post("/api/v1/actions", b"", content_type="application/json")
    assert response.status_code == 400 and "external_id" in response.json()["errors"]
    assert paths.taken == [False]


def test_the_route_still_documents_the_view():
    from django.urls import resolve

    view = resolve("/api/v1/actions").func
    assert view.cls is actions_api.ActionsApi
    assert view.csrf_exempt


def test_a_project_key_is_read_with_its_projects_context(agent_client, project, org, paths):
    """The lean path reads the key with its project's policy and whether the external_id is
    taken there (one statement): the same id taken in another project of the organization is
    not a repeat, a revoked key is refused as by the view, and the key is stamped as used."""
    from reviewapp import services as core_services
    from tests.factories import ProjectFactory

    refund_policy(project)
    sibling = ProjectFactory(organization=org, slug="sibling")
    other_agent = APIClient()
    other_agent.credentials(HTTP_AUTHORIZATION=f"Bearer {core_services.api_key_create(project=sibling, name='a').raw}")
    assert paths(other_agent, request_body("shared", args={"amount": 5}), lean=True).status_code == 201

    created = paths(agent_client, request_body("shared", args={"amount": 5}), lean=True)
    assert created.status_code == 201 and created.json()["status"] == "approved"
    assert Action.objects.filter(external_id="shared").count() == 2
    agent_client.api_key.refresh_from_db()
    assert agent_client.api_key.last_used_at is not None

    core_services.api_key_revoke(key=agent_client.api_key)
    lean, drf = (
        paths(agent_client, request_body("after"), lean=True),
        paths(agent_client, request_body("after"), lean=False),
    )
    _same(lean, drf)
    assert lean.status_code == 401
    assert paths.taken == [True, True, False, False]
