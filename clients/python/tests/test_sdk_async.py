"""`AsyncClient`: the same contract as `Client`, as coroutines (run with asyncio.run: no
pytest plugin needed)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sdk_fakes import contract_digest, decide_action

from reviewapp_client import (
    ActionRejected,
    ApprovalTimeout,
    BadRequest,
    DigestMismatch,
    NetworkError,
)


def run(coro):
    return asyncio.run(coro)


def test_request_action_retries_with_the_same_external_id(make_async_client, server):
    server.faults = [("after", httpx.ReadTimeout("lost")), ("status", 503), ("before", httpx.ConnectError("refused"))]

    async def go():
        async with make_async_client() as client:
            return await client.request_action("refund", {"amount": 40}, confidence=0.5)

    result = run(go())
    bodies = server.action_bodies()
    assert len(bodies) == 4 and all(b == bodies[0] for b in bodies)
    assert len(server.actions) == 1
    assert server.statuses == [201, 200]  # created (answer lost), then the idempotent repeat
    assert result.status == "approved" and result.args_digest == contract_digest("refund", {"amount": 40})
    assert len(server.clock.slept) == 3


def test_gives_up_after_max_retries(make_async_client, server):
    server.faults = [("before", httpx.ConnectError("refused"))] * 9

    async def go():
        async with make_async_client() as client:
            await client.get_action(1)

    with pytest.raises(NetworkError):
        run(go())
    assert len(server.requests) == 4


def test_4xx_is_not_retried(make_async_client, server):
    async def go():
        async with make_async_client() as client:
            client._http._transport = httpx.MockTransport(handler)
            await client.request_action("refund", {"amount": 1})

    def handler(request):
        server.requests.append(request)
        return httpx.Response(400, json={"message": "Invalid.", "errors": {"confidence": ["At most 1."]}})

    with pytest.raises(BadRequest) as caught:
        run(go())
    assert caught.value.errors == {"confidence": ["At most 1."]}
    assert len(server.requests) == 1


def test_wait_and_timeout(make_async_client, server):
    server.decide = lambda body: {"status": "pending"}

    async def go():
        async with make_async_client() as client:
            pending = await client.request_action("refund", {"amount": 1})
            with pytest.raises(ApprovalTimeout):
                await client.wait(pending, timeout=90)
            server.on_wait = lambda action, wait: decide_action(action, {"amount": 1}, status="approved")
            return await client.wait(pending.id, timeout=90)

    result = run(go())
    assert [r.url.params.get("wait") for r in server.requests if r.method == "GET"] == ["60", "30", "60"]
    assert result.approved


def test_log_conversations_and_judge_scores(make_async_client, server):
    async def go():
        async with make_async_client() as client:
            logged = await client.log_conversations(
                [{"external_id": "c-1", "messages": [{"role": "user", "content": "hi"}]}]
            )
            scored = await client.add_judge_scores({"external_id": "c-1", "judge": "j", "criterion": "c", "score": 1})
            return logged, scored

    logged, scored = run(go())
    assert logged[0].status == "created" and scored[0].conversation_id == logged[0].id
    assert json.loads(server.requests[1].content)["judge_scores"][0]["external_id"] == "c-1"


def test_decorator_escalated_edited_and_approved(make_async_client, server):
    ran = []
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(
        action, status="approved", final_args={"customer": "cust-1", "amount": 25}
    )

    async def go():
        async with make_async_client() as client:

            @client.require_approval("refund", confidence=lambda a: 0.4)
            async def refund(customer: str, amount: int) -> str:
                await asyncio.sleep(0)
                ran.append((customer, amount))
                return "done"

            return await refund("cust-1", 90)

    assert run(go()) == "done"
    assert ran == [("cust-1", 25)]
    assert server.action_bodies()[0]["confidence"] == 0.4


def test_decorator_rejected_digest_mismatch_and_timeout_run_nothing(make_async_client, server):
    ran = []

    async def go(decide, on_wait=lambda action, wait: None):
        server.decide = decide
        server.on_wait = on_wait
        async with make_async_client() as client:

            @client.require_approval("refund", timeout=30)
            async def refund(amount: int) -> None:
                ran.append(amount)

            await refund(90)

    with pytest.raises(ActionRejected) as caught:
        run(
            go(
                lambda body: {"status": "pending"},
                lambda action, wait: decide_action(action, status="rejected", comment="no receipt"),
            )
        )
    assert caught.value.comment == "no receipt"
    with pytest.raises(DigestMismatch):
        run(go(lambda body: {"status": "approved", "final_args": {"amount": 9000}, "args_digest": "0" * 64}))
    with pytest.raises(ApprovalTimeout):
        run(go(lambda body: {"status": "pending"}))
    assert ran == []


def test_sync_functions_need_the_blocking_client(make_async_client):
    client = make_async_client()
    with pytest.raises(TypeError, match=r"Client\.require_approval"):

        @client.require_approval("refund")
        def refund(amount: int) -> None:
            pass
