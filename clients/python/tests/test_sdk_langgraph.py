"""`reviewapp_client.langgraph`: approvals asked from nodes of a real StateGraph with an
in-memory checkpointer, no LLM, against the fake server."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest

pytest.importorskip("langgraph")

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy
from sdk_fakes import decide_action

from reviewapp_client import ActionRejected, ApprovalTimeout, Conflict
from reviewapp_client.langgraph import aask_approval, ask_approval, resume_command, reviewapp_interrupts


class State(TypedDict, total=False):
    order: str
    amount: int
    reply: str


def build(node, *, retry: RetryPolicy | None = None):
    graph = StateGraph(State)
    graph.add_node("refund", node, retry_policy=retry)
    graph.add_edge(START, "refund")
    graph.add_edge("refund", END)
    return graph.compile(checkpointer=InMemorySaver())


def refund_node(client, ran: list, **options: Any):
    def node(state: State) -> State:
        decision = ask_approval(client, "refund", {"order": state["order"], "amount": state["amount"]}, **options)
        if not decision.approved:
            return {"reply": decision.message}
        ran.append(decision.args)
        return {"reply": f"refunded {decision.args['amount']}"}

    return node


def config(thread: str = "t-1") -> dict:
    return {"configurable": {"thread_id": thread}}


def test_wait_mode_runs_with_the_approved_args(client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(
        action, status="approved", decided_by="alice", final_args={"order": "A-1", "amount": 200}
    )
    out = build(refund_node(client, ran, confidence=0.6)).invoke({"order": "A-1", "amount": 400}, config())
    assert out["reply"] == "refunded 200"
    assert ran == [{"order": "A-1", "amount": 200}]
    [body] = server.action_bodies()
    assert body["external_id"].startswith("langgraph:t-1:refund:")
    assert body["args"] == {"order": "A-1", "amount": 400} and body["confidence"] == 0.6


def test_wait_mode_rejection_is_a_message_or_raises(client, server):
    ran: list = []
    server.decide = lambda body: {"status": "rejected", "decided_by": "bob", "comment": "Needs a receipt."}
    out = build(refund_node(client, ran)).invoke({"order": "A-1", "amount": 400}, config())
    assert out["reply"] == "Not done: a reviewer rejected refund. Their comment: Needs a receipt."

    with pytest.raises(ActionRejected) as caught:
        build(refund_node(client, ran, on_reject="raise")).invoke({"order": "A-2", "amount": 400}, config("t-2"))
    assert caught.value.comment == "Needs a receipt."
    assert ran == []


def test_wait_mode_timeout_runs_nothing(client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    with pytest.raises(ApprovalTimeout):
        build(refund_node(client, ran, timeout=30)).invoke({"order": "A-1", "amount": 400}, config())
    assert ran == []


def test_interrupt_mode_pauses_until_decided_and_resumes_with_the_decision(client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    graph = build(refund_node(client, ran, mode="interrupt"))

    paused = graph.invoke({"order": "A-1", "amount": 400}, config())
    [waiting] = reviewapp_interrupts(paused["__interrupt__"])
    assert waiting.value["action_id"] == 1
    assert waiting.value["args"] == {"order": "A-1", "amount": 400}
    assert waiting.value["tier"] == 0 and waiting.value["due_at"] == "2026-01-01T10:15:00+00:00"
    assert ran == [] and "reply" not in paused

    # Resumed before anyone decided (or with a forged "approved"): it pauses again.
    paused = graph.invoke(Command(resume="approved"), config())
    assert reviewapp_interrupts(paused["__interrupt__"])
    assert ran == []

    server.on_wait = lambda action, wait: decide_action(
        action, status="approved", decided_by="alice", final_args={"order": "A-1", "amount": 150}
    )
    out = graph.invoke(resume_command(client, graph.get_state(config()).interrupts), config())
    assert out["reply"] == "refunded 150"
    assert ran == [{"order": "A-1", "amount": 150}]
    # Every run of the node asked with the same key: one action.
    assert len(server.actions) == 1
    assert len({b["external_id"] for b in server.action_bodies()}) == 1
    assert len(server.action_bodies()) == 3


def test_interrupt_mode_rejection_continues_with_the_message(client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}
    graph = build(refund_node(client, ran, mode="interrupt"))
    paused = graph.invoke({"order": "A-1", "amount": 400}, config())
    decide_action(server.actions[1], status="rejected", decided_by="bob", comment="No.")
    out = graph.invoke(resume_command(client, paused["__interrupt__"]), config())
    assert out["reply"] == "Not done: a reviewer rejected refund. Their comment: No."
    assert ran == []


def test_interrupt_mode_policy_decisions_do_not_pause(client, server):
    ran: list = []
    out = build(refund_node(client, ran, mode="interrupt")).invoke({"order": "A-1", "amount": 40}, config())
    assert "__interrupt__" not in out
    assert ran == [{"order": "A-1", "amount": 40}]


def test_a_retried_node_asks_with_the_same_key(client, server):
    asked: list = []
    attempts = {"n": 0}

    def node(state: State) -> State:
        decision = ask_approval(client, "refund", {"order": "A-1", "amount": 40})
        asked.append(decision.result.id)
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionError("the payment provider hung up")
        return {"reply": "ok"}

    out = build(node, retry=RetryPolicy(max_attempts=2, initial_interval=0.01, jitter=False)).invoke(
        {"order": "A-1", "amount": 40}, config()
    )
    assert out["reply"] == "ok"
    assert asked == [1, 1]
    assert len(server.actions) == 1
    assert server.statuses == [201, 200]


def test_two_asks_in_one_node_need_two_keys_and_make_two_actions(client, server):
    def node(state: State) -> State:
        first = ask_approval(client, "refund", {"order": "A-1", "amount": 10}, key="call_a")
        second = ask_approval(client, "refund", {"order": "A-2", "amount": 20}, key="call_b")
        return {"reply": f"{first.result.id},{second.result.id}"}

    assert build(node).invoke({"order": "", "amount": 0}, config())["reply"] == "1,2"
    ids = [b["external_id"] for b in server.action_bodies()]
    assert ids[0].endswith(":refund:call_a") and ids[1].endswith(":refund:call_b")


def test_outside_a_graph_the_key_must_be_given(client, server):
    with pytest.raises(ValueError, match="external_id"):
        ask_approval(client, "refund", {"amount": 1})
    assert ask_approval(client, "refund", {"amount": 1}, external_id="mine").approved
    assert server.action_bodies()[0]["external_id"] == "mine"


def test_async_node_with_the_async_client(make_async_client, server):
    ran: list = []
    server.decide = lambda body: {"status": "pending"}

    async def go():
        async with make_async_client() as client:

            async def node(state: State) -> State:
                decision = await aask_approval(client, "refund", dict(state), mode="interrupt")
                ran.append(decision.args)
                return {"reply": "ok" if decision.approved else decision.message}

            graph = build(node)
            paused = await graph.ainvoke({"order": "A-1", "amount": 400}, config())
            decide_action(
                server.actions[1], server.payloads[server.actions[1]["external_id"]]["args"], status="approved"
            )
            return await graph.ainvoke(Command(resume={paused["__interrupt__"][0].id: "decided"}), config())

    assert asyncio.run(go())["reply"] == "ok"
    assert ran == [{"order": "A-1", "amount": 400}]
    assert len(server.actions) == 1


def test_a_node_that_asks_with_other_args_on_resume_is_refused(client, server):
    server.decide = lambda body: {"status": "pending"}
    amounts = iter([400, 390])

    def node(state: State) -> State:
        # Not deterministic: the run after the resume asks for something else.
        decision = ask_approval(client, "refund", {"order": "A-1", "amount": next(amounts)}, mode="interrupt")
        return {"reply": str(decision.approved)}

    graph = build(node)
    graph.invoke({"order": "A-1", "amount": 0}, config())
    with pytest.raises(Conflict):
        graph.invoke(Command(resume="go"), config())
    assert len(server.actions) == 1
