"""The blocking client against the fake server: requests, retries, errors, waiting."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import httpx
import pytest
from sdk_fakes import API_KEY, decide_action

from reviewapp_client import (
    ActionResult,
    ApprovalTimeout,
    AuthenticationError,
    BadRequest,
    Client,
    Conflict,
    NetworkError,
    NotFound,
    RateLimited,
    ServerError,
    args_digest,
)


def test_request_action_sends_the_contract_and_parses_the_answer(client, server):
    server.decide = lambda body: {"status": "pending"}

    result = client.request_action(
        "refund",
        {"order": "A-1", "amount": 40},
        external_id="ext-1",
        confidence=0.42,
        risk_tags=["money"],
        reasoning="customer asked",
        end_user_id="cust-9",
        conversation_external_id="conv-1",
        agent_version="v7",
        callback_url="https://agent.test/hook",
    )

    (request,) = server.requests
    assert request.method == "POST"
    assert str(request.url) == "https://review.test/api/v1/actions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("reviewapp-client/")
    assert json.loads(request.content) == {
        "external_id": "ext-1",
        "action": "refund",
        "args": {"order": "A-1", "amount": 40},
        "confidence": 0.42,
        "risk_tags": ["money"],
        "reasoning": "customer asked",
        "end_user_id": "cust-9",
        "conversation_external_id": "conv-1",
        "agent_version": "v7",
        "callback_url": "https://agent.test/hook",
    }
    assert result == ActionResult(
        id=1,
        status="pending",
        action="refund",
        external_id="ext-1",
        reason="low confidence",
        matched_rule="review refunds",
        policy_version=3,
        due_at=dt.datetime(2026, 1, 1, 10, 15, tzinfo=dt.timezone.utc),
        tier=0,
    )
    assert result.pending and not result.approved
    assert result.raw["id"] == 1


def test_empty_optional_fields_are_left_out_and_a_fresh_external_id_is_made(client, server):
    first = client.request_action("refund", {"amount": 1})
    second = client.request_action("refund", {"amount": 1})

    bodies = server.action_bodies()
    assert set(bodies[0]) == {"external_id", "action", "args"}
    assert len(bodies[0]["external_id"]) == 36  # a UUID
    assert bodies[0]["external_id"] != bodies[1]["external_id"]
    assert first.id != second.id  # two calls, two actions


def test_personal_token_clients_name_their_project(server):
    c = Client("https://review.test/api/v1/", API_KEY, project="support", transport=httpx.MockTransport(server.handle))
    c.request_action("refund", {"amount": 1})
    c.log_conversations({"external_id": "c-1", "messages": [{"role": "user", "content": "hi"}]})
    assert str(server.requests[0].url) == "https://review.test/api/v1/actions"
    assert json.loads(server.requests[0].content)["project"] == "support"
    assert json.loads(server.requests[1].content)["project"] == "support"


@pytest.mark.parametrize(
    "fault",
    [
        ("before", httpx.ConnectError("connection refused")),
        ("before", httpx.ConnectTimeout("connect timed out")),
        ("after", httpx.ReadTimeout("read timed out")),  # the server made it; the answer was lost
        ("after", httpx.RemoteProtocolError("server disconnected")),
        ("status", 502),
        ("status", 503),
    ],
)
def test_retries_send_the_same_external_id_and_make_one_action(client, server, fault):
    server.faults = [fault, fault]

    result = client.request_action("refund", {"order": "A-1", "amount": 40})

    bodies = server.action_bodies()
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]  # same external_id, same payload
    assert len(server.actions) == 1  # never a second action
    assert result.id == 1 and result.status == "approved"
    # Exponential backoff with jitter: the second wait's ceiling is twice the first's.
    assert len(server.clock.slept) == 2
    assert 0.25 <= server.clock.slept[0] <= 0.5
    assert 0.5 <= server.clock.slept[1] <= 1.0


def test_a_lost_answer_then_a_repeat_gets_the_same_action_back(client, server):
    server.decide = lambda body: {"status": "pending"}
    server.faults = [("after", httpx.ReadTimeout("read timed out"))]

    result = client.request_action("refund", {"amount": 40}, external_id="ext-7")

    # Created (answer lost), then the retry is the idempotent repeat: 200, the same action.
    assert server.statuses == [201, 200]
    assert result.id == 1 and result.external_id == "ext-7"
    assert len(server.actions) == 1


def test_gives_up_after_max_retries_with_a_network_error(client, server):
    server.faults = [("before", httpx.ConnectError("refused"))] * 10

    with pytest.raises(NetworkError, match="after 4 attempts") as caught:
        client.request_action("refund", {"amount": 1})

    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(server.requests) == 4  # max_retries=3: one try and three retries
    assert len({r.content for r in server.requests}) == 1


def test_server_errors_past_the_retries_raise_server_error(client, server):
    server.faults = [("status", 500)] * 4

    with pytest.raises(ServerError) as caught:
        client.request_action("refund", {"amount": 1})

    assert caught.value.status_code == 500
    assert caught.value.message == "Service unavailable."
    assert len(server.requests) == 4
    assert server.actions == {}


def test_max_retries_zero_tries_once(server):
    c = Client("https://review.test", API_KEY, max_retries=0, transport=httpx.MockTransport(server.handle))
    server.faults = [("status", 503)]
    with pytest.raises(ServerError):
        c.request_action("refund", {"amount": 1})
    assert len(server.requests) == 1


def test_retry_after_is_honoured_within_a_cap(client, server):
    answers = iter(
        [httpx.Response(503, headers={"Retry-After": "3"}), httpx.Response(503, headers={"Retry-After": "99"})]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        server.requests.append(request)
        return next(answers, None) or server._route(request)

    client._http._transport = httpx.MockTransport(handler)
    client.request_action("refund", {"amount": 1})
    assert server.clock.slept == [3.0, 10.0]


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequest), (401, AuthenticationError), (404, NotFound), (409, Conflict), (429, RateLimited)],
)
def test_4xx_is_never_retried(client, server, status, error):
    def handler(request: httpx.Request) -> httpx.Response:
        server.requests.append(request)
        return httpx.Response(status, json={"message": "Nope.", "errors": {"args.amount": ["Too big."]}})

    client._http._transport = httpx.MockTransport(handler)
    with pytest.raises(error) as caught:
        client.request_action("refund", {"amount": 1})

    assert len(server.requests) == 1
    assert server.clock.slept == []
    assert caught.value.status_code == status
    assert caught.value.message == "Nope."
    assert caught.value.errors == {"args.amount": ["Too big."]}
    assert "args.amount: Too big." in str(caught.value)


def test_the_same_external_id_with_another_payload_is_a_conflict_naming_the_field(client, server):
    client.request_action("refund", {"amount": 40}, external_id="ext-1")
    with pytest.raises(Conflict) as caught:
        client.request_action("refund", {"amount": 400}, external_id="ext-1")
    assert caught.value.errors == {"args": ["Differs."]}
    assert len(server.actions) == 1


def test_an_error_page_that_is_not_json_still_raises_the_right_error(client, server):
    def handler(request: httpx.Request) -> httpx.Response:
        server.requests.append(request)
        return httpx.Response(403, text="<html>Forbidden by proxy</html>")

    client._http._transport = httpx.MockTransport(handler)
    with pytest.raises(Exception) as caught:
        client.get_action(5)
    assert type(caught.value).__name__ == "PermissionDenied"
    assert caught.value.status_code == 403
    assert caught.value.body == "<html>Forbidden by proxy</html>"


def test_a_success_without_json_is_refused(client, server):
    client._http._transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(ServerError, match="without a JSON body"):
        client.get_action(1)


def test_wrong_key_is_an_authentication_error(server):
    c = Client("https://review.test", "wrong", transport=httpx.MockTransport(server.handle))
    with pytest.raises(AuthenticationError):
        c.get_action(1)


def test_bad_arguments_fail_before_any_request(client, server):
    with pytest.raises(TypeError):
        client.request_action("refund", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.request_action("refund", {}, risk_tags="money")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.request_action("refund", {}, confidence=float("nan"))
    with pytest.raises(ValueError):
        client.request_action("", {})
    with pytest.raises(ValueError):
        Client("https://review.test", "")
    assert server.requests == []


# --- waiting ----------------------------------------------------------------------------


def _pending(client, server):
    server.decide = lambda body: {"status": "pending"}
    return client.request_action("refund", {"amount": 40})


def test_wait_long_polls_until_decided(client, server):
    pending = _pending(client, server)

    def on_wait(action, wait):
        if len([r for r in server.requests if r.method == "GET"]) == 3:
            decide_action(action, {"amount": 40}, status="approved", decided_by="alice")

    server.on_wait = on_wait
    result = client.wait(pending, timeout=200)

    gets = [r for r in server.requests if r.method == "GET"]
    assert [r.url.params["wait"] for r in gets] == ["60", "60", "60"]
    assert all(r.url.path == "/api/v1/actions/1" for r in gets)
    assert result.status == "approved" and result.decided_by == "alice"
    assert result.args_digest == args_digest("refund", {"amount": 40})


def test_wait_raises_approval_timeout_when_still_pending(client, server):
    pending = _pending(client, server)
    start = server.clock.now

    with pytest.raises(ApprovalTimeout) as caught:
        client.wait(pending.id, timeout=130)

    gets = [r for r in server.requests if r.method == "GET"]
    # 60 + 60 + 10: the last poll asks only for what is left of the timeout.
    assert [r.url.params["wait"] for r in gets] == ["60", "60", "10"]
    assert server.clock.now - start == 130
    assert caught.value.result is not None and caught.value.result.status == "pending"
    assert "still pending after 130 s" in str(caught.value)


def test_wait_never_spins_on_a_server_that_answers_early(client, server):
    pending = _pending(client, server)
    server.wait_takes = lambda wait: 0.0  # no long polling: pending comes back at once

    with pytest.raises(ApprovalTimeout):
        client.wait(pending, timeout=5)

    gets = [r for r in server.requests if r.method == "GET"]
    assert len(gets) == 5  # one poll a second, not thousands
    assert server.clock.slept == [1.0, 1.0, 1.0, 1.0, 1.0]


def test_wait_returns_a_decided_result_without_asking(client, server):
    decided = client.request_action("refund", {"amount": 1})
    assert client.wait(decided) is decided
    assert len(server.requests) == 1


def test_a_long_poll_gets_a_read_timeout_longer_than_its_wait(client, server):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return server.handle(request)

    client._http._transport = httpx.MockTransport(handler)
    _pending(client, server)
    client.get_action(1, wait=60)
    assert seen == [10.0, 75.0]


def test_get_action_unknown_id_is_not_found(client, server):
    with pytest.raises(NotFound):
        client.get_action(99)


# --- conversations and judge scores -----------------------------------------------------


def test_log_conversations_sends_batches_of_a_thousand(client, server):
    conversations = [{"external_id": f"c-{i}", "messages": [{"role": "user", "content": "hi"}]} for i in range(1500)]

    results = client.log_conversations(conversations)

    posts = [json.loads(r.content) for r in server.requests]
    assert [len(p["conversations"]) for p in posts] == [1000, 500]
    assert len(results) == 1500
    assert results[0].external_id == "c-0" and results[0].status == "created"
    again = client.log_conversations(conversations[0])  # one dict is a batch of one
    assert [r.status for r in again] == ["duplicate"]


def test_add_judge_scores(client, server):
    client.log_conversations([{"external_id": "c-1", "messages": [{"role": "user", "content": "hi"}]}])
    results = client.add_judge_scores([{"external_id": "c-1", "judge": "j", "criterion": "correctness", "score": 0.3}])
    assert json.loads(server.requests[1].content) == {
        "judge_scores": [{"external_id": "c-1", "judge": "j", "criterion": "correctness", "score": 0.3}]
    }
    assert results[0].conversation_id == 1 and results[0].criterion == "correctness"


def test_log_conversations_refuses_a_string(client):
    with pytest.raises(TypeError):
        client.log_conversations("c-1")  # type: ignore[arg-type]


def test_args_digest_is_the_canonical_json_hash():
    # Written out by hand: keys sorted at every level, no spaces, non-ASCII as UTF-8.
    canonical = '{"action":"refund","args":{"amount":40.5,"note":"café ☕","order":{"id":"A-1","lines":[1,2]}}}'
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert (
        args_digest("refund", {"order": {"lines": [1, 2], "id": "A-1"}, "note": "café ☕", "amount": 40.5}) == expected
    )
