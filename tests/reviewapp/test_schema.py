"""The OpenAPI schema is valid and complete; the docs pages load everything from this server."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from drf_spectacular.validation import validate_schema

CORE_OPERATIONS = {
    ("/api/v1/auth/token", "post"),
    ("/api/v1/auth/token/current", "delete"),
    ("/api/v1/auth/tokens", "get"),
    ("/api/v1/auth/tokens/{token_id}", "delete"),
    ("/api/v1/me", "get"),
    ("/api/v1/projects", "get"),
    ("/api/v1/projects/{project_id}", "patch"),
    ("/api/v1/api-keys", "get"),
    ("/api/v1/api-keys", "post"),
    ("/api/v1/api-keys/{key_id}/revoke", "post"),
    ("/api/v1/conversations", "get"),
    ("/api/v1/conversations", "post"),
    ("/api/v1/conversations/{conversation_id}", "get"),
    ("/api/v1/judge-scores", "post"),
}


@pytest.fixture
def schema(db) -> dict:
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json"
    return response.json()


def _ref(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def _request_schema(schema: dict, path: str, method: str) -> dict:
    return _ref(schema, schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"])


def test_the_schema_is_valid_openapi(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_the_schema_lists_every_core_operation(schema):
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}

    assert operations >= CORE_OPERATIONS


def test_the_schema_is_served_as_yaml_by_default(db):
    response = Client().get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: ")


def test_each_operation_documents_its_own_request_body(schema):
    # Every view nests an `InputSerializer`; each must keep its own fields in the schema.
    assert set(_request_schema(schema, "/api/v1/auth/token", "post")["properties"]) == {
        "username",
        "password",
        "organization",
        "name",
    }
    assert set(_request_schema(schema, "/api/v1/api-keys", "post")["properties"]) == {"project", "name"}
    batch = _request_schema(schema, "/api/v1/conversations", "post")
    assert set(batch["properties"]) == {"project", "conversations"}
    assert set(_request_schema(schema, "/api/v1/judge-scores", "post")["properties"]) == {"project", "judge_scores"}


def test_each_operation_documents_its_own_response(schema):
    def response_fields(path: str, method: str, status: str) -> set[str]:
        content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        return set(_ref(schema, content["$ref"])["properties"])

    assert response_fields("/api/v1/me", "get", "200") == {"organization", "role", "username", "project"}
    assert response_fields("/api/v1/auth/token", "post", "201") == {"token", "organization", "role", "expires_at"}
    assert response_fields("/api/v1/conversations", "post", "201") == {"results"}
    assert response_fields("/api/v1/conversations/{conversation_id}", "get", "200") >= {"messages", "feedback"}


def test_the_schema_generates_without_warnings_or_errors(db):
    # drf-spectacular warns, and carries on, when two serializers would share a component name
    # (one view's body then documents another's) or an authenticator is unknown to it.
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    Client().get("/api/schema/?format=json")

    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}


def test_the_bearer_scheme_is_documented_and_the_token_endpoint_needs_none(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/conversations"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in schema["paths"]["/api/v1/auth/token"]["post"]


def test_the_token_endpoint_documents_its_throttle(schema):
    responses = schema["paths"]["/api/v1/auth/token"]["post"]["responses"]

    assert set(responses) == {"201", "400", "401", "403", "413", "415", "429"}


def test_the_ingest_errors_are_documented(schema):
    responses = schema["paths"]["/api/v1/conversations"]["post"]["responses"]

    assert set(responses) == {"201", "400", "401", "403", "413", "415"}


def test_the_conversation_list_is_documented_as_the_page_it_answers(schema):
    content = schema["paths"]["/api/v1/conversations"]["get"]["responses"]["200"]["content"]["application/json"]
    page = _ref(schema, content["schema"]["$ref"])

    assert set(page["required"]) == {"next", "previous", "results"}
    assert page["properties"]["results"]["items"]["$ref"].endswith("/ConversationSummary")


def test_every_operation_documents_its_errors_in_the_one_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"message", "errors"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            codes = set(responses)
            assert "401" in codes, f"{method} {path}"
            if path != "/api/v1/auth/token":
                assert "403" in codes, f"{method} {path}"
            if "{" in path:
                assert "404" in codes, f"{method} {path}"
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= codes, f"{method} {path}"
            for code in codes - {"200", "201", "202", "204"}:
                ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", f"{method} {path} {code}"
    assert "429" in schema["paths"]["/api/v1/auth/token"]["post"]["responses"]


def _external_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", html)


def _local_assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["'](/static/[^"']+)""", html)


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_nothing_from_a_cdn(db, path):
    response = Client().get(path)

    assert response.status_code == 200
    html = response.content.decode()
    assert _external_urls(html) == []
    assets = _local_assets(html)
    assert assets, "expected the docs UI to load local static files"
    for asset in assets:
        assert asset.startswith(("/static/drf_spectacular_sidecar/", "/static/reviewapp/docs.css"))
        assert finders.find(asset.removeprefix("/static/")) is not None, asset


def test_the_swagger_ui_points_at_the_local_schema(db):
    html = Client().get("/api/docs/").content.decode()
    # The start-up script is its own request, so the page runs under the site's strict policy.
    script = Client().get("/api/docs/?script=")

    assert "swagger-ui-bundle.js" in html
    assert '<script src="/api/docs/?script="></script>' in html
    assert script["Content-Type"].startswith("application/javascript")
    assert '"/api/schema/"' in script.content.decode()


def test_the_docs_assets_are_served_by_the_app(db):
    response = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")

    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:100]
