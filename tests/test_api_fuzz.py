"""Fuzz the API against its own OpenAPI document (schemathesis, in-process over WSGI).

Every operation of `/api/schema/`, called as an engineer (personal token) and as an agent
(project key), with a few generated requests each (valid and invalid): no 5xx, every status
documented, every body shaped like its schema, every content type as documented. Seeded and
bounded, so a run is reproducible and takes about a minute; it runs with `make test`.
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis import checks

from reviewapp import services
from reviewapp.wsgi import application
from tests.escalations.waits import pending_action
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# Each operation, each caller: this many generated requests (the first ones are the schema's
# explicit examples and boundary values). 27 operations x 2 callers x 10 is about a minute here.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))

# Serving the schema reads no table, so it is loaded once, when the module is collected.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Schemathesis calls the WSGI app itself, and Django closes the database connection when a
    request starts and ends: on PostgreSQL that would end the test's transaction. Django's test
    client unhooks the same two receivers."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _waits_answer_at_once():
    """`GET /api/v1/actions/{id}` documents `wait` up to 60 s and the fuzzer sends boundary
    values: every case that named a pending action would hold the run for a minute. With no
    threaded wait allowed, as on production sync workers, a wait answers the pending state at
    once (with Retry-After), which is documented too."""
    with override_settings(ACTION_WAIT_THREADED_MAX=0):
        yield


@pytest.fixture
def bearer(request, org, project, member) -> str:
    queue = make_queue(project)
    conversation = ConversationFactory(project=project, external_id="conv-1")
    from labeling import services as labeling_services

    labeling_services.queue_items_add(queue=queue, conversation_ids=[conversation.pk], user=None)
    if request.param == "agent":  # indirect: the caller named by the test's parameter
        return services.api_key_create(project=project, name="fuzz").raw
    user = member("engineer")
    return services.personal_token_create(user=user, organization=org).raw


@pytest.mark.parametrize("bearer", ["engineer", "agent"], indirect=True)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, bearer):
    headers = {"Authorization": f"Bearer {bearer}"}
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


@pytest.mark.parametrize("bearer", ["agent"], indirect=True)
def test_a_fuzzed_wait_cannot_hold_the_run(bearer, project):
    """The longest wait the schema allows, on a pending action, as the fuzzer would send it."""
    action = pending_action(project)
    case = schema["/api/v1/actions/{action_id}"]["GET"].Case(
        path_parameters={"action_id": action.pk}, query={"wait": 60}
    )
    headers = {"Authorization": f"Bearer {bearer}"}
    start = time.monotonic()
    response = case.call(headers=headers)
    elapsed = time.monotonic() - start
    case.validate_response(response, checks=CHECKS, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.headers["retry-after"] == ["1"]  # answered at once: ask again in a second
    assert elapsed < 2.0
