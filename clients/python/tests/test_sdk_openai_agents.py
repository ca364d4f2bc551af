"""`reviewapp_client.openai_agents`: guarded function tools in a real Agents SDK run, with a
scripted model (no network) and the fake server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

pytest.importorskip("agents")

from agent_fakes import RUN_CONFIG, ScriptedModel, text, tool_call
from agents import Agent, Runner, function_tool
from sdk_fakes import decide_action

from reviewapp_client import ActionRejected, ApprovalTimeout, DigestMismatch
from reviewapp_client.openai_agents import ReviewGuard, ToolCallRejected


def run(coro):
    return asyncio.run(coro)


def make_refund(ran: list[tuple[str, float]]):
    @function_tool
    async def refund(order_id: str, amount: float) -> str:
        """Refund an order."""
        ran.append((order_id, amount))
        return f"refunded {amount} on {order_id}"

    return refund


def agent_with(tool, model: ScriptedModel) -> Agent:
    return Agent(name="support", instructions="Help.", model=model, tools=[tool])


def refund_turns(call_id: str = "call_1", amount: float = 400) -> list[list]:
    return [[tool_call("refund", {"order_id": "A-1", "amount": amount}, call_id)], [text("done")]]


def test_a_policy_approval_runs_the_tool_with_the_final_args(make_async_client, server):
    ran: list = []
    model = ScriptedModel(refund_turns())

    async def go():
        async with make_async_client() as client:
            guard = ReviewGuard(client)
            tool = guard(make_refund(ran), confidence=lambda a: 0.9 if a["amount"] < 500 else 0.5)
            return await Runner.run(agent_with(tool, model), "refund A-1", run_config=RUN_CONFIG)

    result = run(go())
    assert result.final_output == "done"
    assert ran == [("A-1", 400)]
    assert model.tool_outputs() == {"call_1": "refunded 400.0 on A-1"}
    [body] = server.action_bodies()
    assert body == {
        "external_id": "openai-agents:refund:call_1",
        "action": "refund",
        "args": {"order_id": "A-1", "amount": 400},
        "confidence": 0.9,
    }


def test_a_pending_call_waits_and_runs_with_the_approvers_edit(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(
        action, status="approved", decided_by="alice", final_args={"order_id": "A-1", "amount": 200}
    )
    model = ScriptedModel(refund_turns())

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client)(make_refund(ran))
            return await Runner.run(agent_with(tool, model), "refund A-1", run_config=RUN_CONFIG)

    run(go())
    assert ran == [("A-1", 200)]
    assert model.tool_outputs() == {"call_1": "refunded 200.0 on A-1"}
    assert len(server.actions) == 1


def test_a_rejection_is_the_tool_output_by_default(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(
        action, status="rejected", decided_by="alice", comment="Needs a receipt."
    )
    model = ScriptedModel(refund_turns())

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client)(make_refund(ran))
            return await Runner.run(agent_with(tool, model), "refund A-1", run_config=RUN_CONFIG)

    assert run(go()).final_output == "done"
    assert ran == []
    assert model.tool_outputs() == {"call_1": "Not done: a reviewer rejected refund. Their comment: Needs a receipt."}


def test_a_policy_rejection_and_a_custom_message(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "rejected", "decided_by": "policy", "reason": "fraud suspected"}
    model = ScriptedModel(refund_turns())

    async def go():
        async with make_async_client() as client:
            guard = ReviewGuard(client, rejection_message=lambda r: f"NO ({r.decided_by}: {r.reason})")
            tool = guard(make_refund(ran))
            return await Runner.run(agent_with(tool, model), "refund A-1", run_config=RUN_CONFIG)

    run(go())
    assert ran == []
    assert model.tool_outputs() == {"call_1": "NO (policy: fraud suspected)"}


def test_on_reject_raise_stops_the_run_with_action_rejected(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "rejected", "decided_by": "alice", "comment": "Not this customer."}

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client, on_reject="raise")(make_refund(ran))
            return await Runner.run(agent_with(tool, ScriptedModel(refund_turns())), "go", run_config=RUN_CONFIG)

    with pytest.raises(ActionRejected) as caught:
        run(go())
    assert isinstance(caught.value, ToolCallRejected)
    assert caught.value.comment == "Not this customer."
    assert ran == []


def test_a_digest_that_does_not_match_runs_nothing(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "approved", "decided_by": "policy", "args_digest": "0" * 64}

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client)(make_refund(ran))
            return await Runner.run(agent_with(tool, ScriptedModel(refund_turns())), "go", run_config=RUN_CONFIG)

    with pytest.raises(DigestMismatch):
        run(go())
    assert ran == []


def test_still_pending_at_the_timeout_runs_nothing(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client, timeout=90)(make_refund(ran))
            return await Runner.run(agent_with(tool, ScriptedModel(refund_turns())), "go", run_config=RUN_CONFIG)

    with pytest.raises(ApprovalTimeout):
        run(go())
    assert ran == []
    assert server.actions[1]["status"] == "pending"


def test_retries_and_a_second_run_of_the_same_call_keep_one_action(make_async_client, server):
    ran: list = []
    # The first answer is lost on the way back: the client sends the same body again.
    server.faults = [("after", httpx.ReadTimeout("lost"))]

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client)(make_refund(ran))
            first = await Runner.run(agent_with(tool, ScriptedModel(refund_turns())), "go", run_config=RUN_CONFIG)
            # The same model call id again (a replayed run): the server answers the same action.
            again = await Runner.run(agent_with(tool, ScriptedModel(refund_turns())), "go", run_config=RUN_CONFIG)
            return first, again

    run(go())
    bodies = server.action_bodies()
    assert [b["external_id"] for b in bodies] == ["openai-agents:refund:call_1"] * 3
    assert len(server.actions) == 1
    assert server.statuses == [201, 200, 200]


def test_interrupt_mode_resumes_with_the_decision(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    model = ScriptedModel(refund_turns())

    async def go():
        async with make_async_client() as client:
            guard = ReviewGuard(client, mode="interrupt")
            agent = agent_with(guard(make_refund(ran)), model)
            first = await Runner.run(agent, "refund A-1", run_config=RUN_CONFIG)
            assert [i.name for i in first.interruptions] == ["refund"]
            assert ran == []
            # A person approves with an edit while the run is paused.
            decide_action(
                server.actions[1], status="approved", decided_by="alice", final_args={"order_id": "A-1", "amount": 150}
            )
            state = await guard.resolve(first)
            return await Runner.run(agent, state, run_config=RUN_CONFIG)

    result = run(go())
    assert result.final_output == "done"
    assert ran == [("A-1", 150)]
    assert model.tool_outputs() == {"call_1": "refunded 150.0 on A-1"}
    assert len(server.actions) == 1
    assert {b["external_id"] for b in server.action_bodies()} == {"openai-agents:refund:call_1"}


def test_interrupt_mode_rejection_reaches_the_model(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(action, status="rejected", decided_by="bob", comment="No.")
    model = ScriptedModel(refund_turns())

    async def go():
        async with make_async_client() as client:
            guard = ReviewGuard(client, mode="interrupt")
            agent = agent_with(guard(make_refund(ran)), model)
            first = await Runner.run(agent, "refund A-1", run_config=RUN_CONFIG)
            return await Runner.run(agent, await guard.resolve(first), run_config=RUN_CONFIG)

    assert run(go()).final_output == "done"
    assert ran == []
    assert model.tool_outputs() == {"call_1": "Not done: a reviewer rejected refund. Their comment: No."}


def test_interrupt_mode_lets_policy_decisions_through_without_interrupting(make_async_client, server):
    ran: list = []

    async def go():
        async with make_async_client() as client:
            guard = ReviewGuard(client, mode="interrupt")
            return await Runner.run(
                agent_with(guard(make_refund(ran)), ScriptedModel(refund_turns())), "go", run_config=RUN_CONFIG
            )

    result = run(go())
    assert result.interruptions == []
    assert ran == [("A-1", 400)]
    assert len(server.actions) == 1


def test_guarding_refuses_what_it_cannot_guard(make_async_client):
    async def go():
        async with make_async_client() as client:
            guard = ReviewGuard(client)
            tool = guard(make_refund([]))
            with pytest.raises(ValueError, match="already guarded"):
                guard(tool)

            @function_tool(needs_approval=True)
            def other(x: int) -> int:
                return x

            with pytest.raises(ValueError, match="needs_approval"):
                guard(other)
            with pytest.raises(ValueError):
                ReviewGuard(client, on_reject="ignore")

    run(go())


def test_a_blocking_client_works_too(client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(action, {"order_id": "A-1", "amount": 400}, status="approved")
    model = ScriptedModel(refund_turns())
    tool = ReviewGuard(client)(make_refund(ran))
    run(Runner.run(agent_with(tool, model), "go", run_config=RUN_CONFIG))
    assert ran == [("A-1", 400)]
    assert len(server.actions) == 1


def test_args_that_are_not_a_json_object_run_nothing_and_ask_nothing(make_async_client, server):
    ran: list = []
    bad = tool_call("refund", {}, "call_1").model_copy(update={"arguments": "[1, 2]"})
    model = ScriptedModel([[bad], [text("done")]])

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client)(make_refund(ran))
            return await Runner.run(agent_with(tool, model), "go", run_config=RUN_CONFIG)

    run(go())
    assert ran == []
    assert server.action_bodies() == []
    assert model.tool_outputs() == {"call_1": "Not done: the arguments for refund are not a JSON object."}


def test_a_long_call_id_is_hashed_to_fit_the_column(make_async_client, server):
    ran: list = []
    model = ScriptedModel(refund_turns(call_id="c" * 300))

    async def go():
        async with make_async_client() as client:
            tool = ReviewGuard(client)(make_refund(ran))
            return await Runner.run(agent_with(tool, model), "go", run_config=RUN_CONFIG)

    run(go())
    [body] = server.action_bodies()
    assert body["external_id"].startswith("openai-agents:sha256:") and len(body["external_id"]) <= 255
    assert ran == [("A-1", 400)]
