"""Hostile input to the core: every odd value answers a 4xx JSON error naming the field, on
SQLite and PostgreSQL alike, and stores nothing; under /api/ even a 404 or a crash is JSON."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

from reviewapp import rawsql, validation
from reviewapp.models import ApiKey, Conversation
from tests.factories import ConversationFactory, conversation_payload

URL = "/api/v1/conversations"


def _raw_post(client: APIClient, url: str, body: bytes | str):
    return client.generic("POST", url, body, content_type="application/json")


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "errors"}
    return body


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


# --- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["²", "١٢", "1.0", "0x10", " ", "", "9" * 30, "1e3", "+-1"])
def test_parse_int_takes_ascii_digits_only(text):
    with pytest.raises(validation.InputError) as caught:
        validation.parse_int(text, field="limit", min=0, max=10**20)
    assert list(caught.value.errors) == ["limit"]


def test_parse_int_bounds_and_signs():
    assert validation.parse_int(" 42 ", field="n", min=0, max=42) == 42
    assert validation.parse_int("-7", field="n", min=-10, max=0) == -7
    with pytest.raises(validation.InputError):
        validation.parse_int("43", field="n", min=0, max=42)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": {"b": [1, "x\x00"]}}, "a.b[1]"),
        ({"a\x00": 1}, ""),
        ({"k": [0.5, float("inf")]}, "k[1]"),
        ({"k": float("nan")}, "k"),
        (json.loads(_nested(200)), ""),
    ],
)
def test_json_problem_names_the_first_offence(value, path):
    problem = validation.json_problem(value)
    assert problem is not None
    assert problem.path.startswith(path)


def test_json_problem_checks_a_huge_depth_without_recursing():
    value: list = []
    node = value
    for _ in range(100_000):
        child: list = []
        node.append(child)
        node = child
    problem = validation.json_problem(value)
    assert problem is not None and "deeply" in problem.message


def test_json_loads_keeps_big_integers_exact_and_the_literal_backslash_u0000():
    value = validation.json_loads(b'{"big": 123456789012345678901234567890, "text": "a\\\\u0000b"}')
    assert value == {"big": 123456789012345678901234567890, "text": "a\\u0000b"}


@pytest.fixture
def stdlib_decodes(monkeypatch) -> list[bytes]:
    """The bodies that went through the second, exact (stdlib) decode."""
    calls: list[bytes] = []
    real = validation._stdlib_loads

    def counting(raw, max_depth):
        calls.append(raw)
        return real(raw, max_depth)

    monkeypatch.setattr(validation, "_stdlib_loads", counting)
    return calls


def test_long_digit_runs_inside_strings_are_decoded_once(stdlib_decodes):
    # Trace ids, card-like numbers and timestamps in text: before, any run of 19+ digits sent
    # the whole body through the stdlib decode a second time.
    digits = "123456789012345678901234567890"
    body = json.dumps(
        {"conversations": [conversation_payload(external_id=f"trace-{digits}", metadata={"ts": digits, digits: 1})]}
    ).encode()

    value = validation.json_loads(body)

    assert value == json.loads(body)
    assert stdlib_decodes == []


@pytest.mark.parametrize(
    "number",
    [2**64, 2**64 + 5, -(2**63) - 1, -(2**80), 123456789012345678901234567890],
    ids=["2^64", "2^64+5", "-2^63-1", "-2^80", "30 digits"],
)
def test_integers_beyond_64_bits_stay_exact_anywhere(stdlib_decodes, number):
    for document in [number, [1, [2, number]], {"a": {"b": number}, "s": "x"}]:
        body = json.dumps(document).encode()
        assert validation.json_loads(body) == document
    assert len(stdlib_decodes) == 3


@pytest.mark.parametrize("number", [2**64 - 1, -(2**63), 2**63, 10**18])
def test_integers_orjson_holds_exactly_are_decoded_once(stdlib_decodes, number):
    value = validation.json_loads(json.dumps({"n": [number]}).encode())

    assert value == {"n": [number]}
    assert type(value["n"][0]) is int
    assert stdlib_decodes == []


def test_a_huge_float_literal_is_still_a_float(stdlib_decodes):
    # At the integer bounds a float might have been an integer literal: decoded again exactly,
    # which for a float literal gives the same float.
    assert validation.json_loads(b'{"x": 1e30, "y": -1.5e19}') == {"x": 1e30, "y": -1.5e19}
    assert len(stdlib_decodes) == 1


# --- ingest -------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [65, 100, 1_000, 1_020])
def test_ingest_refuses_deep_metadata_naming_the_field(agent_client, depth):
    body = json.dumps({"conversations": [conversation_payload()]})
    body = body.replace('"metadata": {"channel": "web"}', f'"metadata": {{"deep": {_nested(depth)}}}')

    response = _raw_post(agent_client, URL, body)

    errors = _error(response, 400)["errors"]
    assert [key.startswith("conversations[0].metadata.deep[0]") for key in errors] == [True]
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize("depth", [1_100, 10_000, 100_000])
def test_ingest_refuses_a_body_nested_past_the_parser_limit(agent_client, depth):
    body = json.dumps(conversation_payload()).replace('{"channel": "web"}', _nested(depth))

    errors = _error(_raw_post(agent_client, URL, body), 400)["errors"]

    assert list(errors) == ["body"]
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize(
    ("needle", "replacement", "field"),
    [
        ('"channel": "web"', '"channel": "w\\u0000b"', "conversations[0].metadata.channel"),
        ('"channel": "web"', '"ch\\u0000": "web"', "conversations[0].metadata"),
        ('"content": "I want', '"content": "\\u0000 I want', "conversations[0].messages[1].content"),
        ('"agent_version": "v2"', '"agent_version": "v\\u00002"', "conversations[0].agent_version"),
        ('"content": "I want', '"content": "\\ud800 I want', "conversations[0].messages[1].content"),
        ('"channel": "web"', '"ch\\udfff": "web"', "conversations[0].metadata"),
        ('"channel": "web"', '"channel": 1e400', "conversations[0].metadata.channel"),
        ('"channel": "web"', '"channel": NaN', "conversations[0].metadata.channel"),
        ('"channel": "web"', '"channel": -Infinity', "conversations[0].metadata.channel"),
    ],
)
def test_ingest_refuses_nul_and_non_finite_numbers_naming_the_field(agent_client, needle, replacement, field):
    body = json.dumps({"conversations": [conversation_payload()]})
    assert needle in body
    body = body.replace(needle, replacement, 1)

    errors = _error(_raw_post(agent_client, URL, body), 400)["errors"]

    assert list(errors) == [field]
    assert Conversation.objects.count() == 0


def test_ingest_accepts_the_literal_text_backslash_u0000(agent_client):
    payload = conversation_payload(metadata={"note": "\\u0000 is how JSON writes NUL"})

    response = agent_client.post(URL, payload, format="json")

    assert response.status_code == 201, response.content
    assert Conversation.objects.get().metadata == {"note": "\\u0000 is how JSON writes NUL"}


def test_ingest_keeps_integers_beyond_64_bits_exact(agent_client):
    big = 2**70 + 1
    body = json.dumps(conversation_payload(metadata={"trace": big, "list": [-(2**80), 1.5]}))

    response = _raw_post(agent_client, URL, body)

    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get()
    assert conversation.metadata == {"trace": big, "list": [-(2**80), 1.5]}
    detail = agent_client.get(f"{URL}/{conversation.pk}")
    assert json.loads(detail.content)["metadata"]["trace"] == big


# --- DRF endpoints ------------------------------------------------------------------------------


@pytest.fixture
def admin_client(api_client_for):
    return api_client_for("admin")


@pytest.mark.parametrize("depth", [100, 10_000])
def test_drf_endpoints_refuse_deep_json_with_a_400(admin_client, project, depth):
    body = '{"project": "support", "name": "k", "extra": ' + _nested(depth) + "}"

    errors = _error(_raw_post(admin_client, "/api/v1/api-keys", body), 400)["errors"]

    assert [key.startswith("extra") or key == "body" for key in errors] == [True]
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"project": "support", "name": "a\\u0000b"}', "name"),
        ('{"project": "support", "name": "a\\ud800b"}', "name"),
        ('{"project": "support", "name": "k", "x": NaN}', "x"),
        ('{"project": "support", "name": "k", "x": [1e400]}', "x[0]"),
    ],
)
def test_drf_endpoints_refuse_nul_and_non_finite_numbers(admin_client, project, body, field):
    errors = _error(_raw_post(admin_client, "/api/v1/api-keys", body), 400)["errors"]

    assert list(errors) == [field]
    assert ApiKey.objects.count() == 0


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize(
    "cursor", [_cursor("p=abc"), _cursor("p=²"), _cursor("p=" + "9" * 30), "bm9wZQ", _cursor("o=x")]
)
def test_a_tampered_cursor_is_a_400_naming_cursor(agent_client, project, cursor):
    ConversationFactory(project=project)

    errors = _error(agent_client.get(URL, {"cursor": cursor}), 400)["errors"]

    assert list(errors) == ["cursor"]


@pytest.mark.parametrize("limit", ["²", "-1", "9" * 40])
def test_an_odd_page_size_falls_back_to_the_default(agent_client, project, limit):
    ConversationFactory(project=project)

    response = agent_client.get(URL, {"limit": limit})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("conversation_id", [str(2**63), "99999999999999999999999", str(2**64 + 5)])
def test_ids_beyond_64_bits_are_not_found(agent_client, project, conversation_id):
    ConversationFactory(project=project)

    _error(agent_client.get(f"{URL}/{conversation_id}"), 404)


def test_rawsql_refuses_an_integer_beyond_64_bits():
    with pytest.raises(ValueError, match="64 bits"):
        rawsql.fetchone("SELECT 1 WHERE 1 = %s", [2**64])


# --- JSON everywhere under /api/ ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/conversations", "/api/v1/conversations/abc", "/api/x"])
def test_unknown_api_routes_answer_json_404(agent_client, path):
    body = _error(agent_client.get(path), 404)
    assert body["errors"] == {}


def test_non_api_paths_keep_html_404(client, db):
    response = client.get("/definitely-not-here/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_not_allowed_answers_json_405(agent_client):
    body = _error(agent_client.delete(URL), 405)
    assert body["errors"] == {}


def test_a_body_over_the_upload_limit_answers_json_413(admin_client, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"project": "support", "name": "k", "pad": "x" * 2_000})

    _error(_raw_post(admin_client, "/api/v1/api-keys", body), 413)

    assert ApiKey.objects.count() == 0


def test_an_unhandled_error_answers_json_500(project, monkeypatch, api_client_for):
    client = api_client_for("admin")
    client.raise_request_exception = False

    def boom(**kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr("reviewapp.selectors.project_list", boom)

    body = _error(client.get("/api/v1/projects"), 500)

    assert body == {"message": "Internal server error.", "errors": {}}
