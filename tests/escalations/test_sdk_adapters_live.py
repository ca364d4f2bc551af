"""The client's framework adapters against the real app on a live server: an OpenAI Agents SDK
run (a scripted model, no network) whose guarded tool asks first, waiting in the call or
interrupting the run, and a LangGraph graph (in-memory checkpointer, no LLM) that pauses
with `interrupt()` until an approver decides. The approver decides from another thread over
the API, as in test_sdk_live."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest

from escalations.models import Action
from reviewapp import services as core_services
from tests.escalations.test_sdk_live import POLICY, WAIT, Approver, _server_routes_missing

# The client and its test doubles are imported from the source tree, as test_sdk_live does.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "tests"))

from agent_fakes import RUN_CONFIG, ScriptedModel, text, tool_call
from agents import Agent, Runner, function_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from reviewapp_client import AsyncClient, Client
from reviewapp_client.langgraph import ask_approval, resume_command
from reviewapp_client.openai_agents import ReviewGuard

_missing = _server_routes_missing()
pytestmark = pytest.mark.skipif(
    _missing is not None,
    reason=f"the escalations API is not in this checkout yet ({_missing} does not resolve)",
)


@pytest.fixture
def setup(live_server, project, member):
    key = core_services.api_key_create(project=project, name="adapter agent").raw
    engineer = member("engineer", username="eng")
    approver = member("approver", username="alice")
    engineer_token = core_services.personal_token_create(user=engineer, organization=project.organization).raw
    approver_token = core_services.personal_token_create(user=approver, organization=project.organization).raw
    answer = httpx.post(
        f"{live_server.url}/api/v1/policy", json=POLICY, headers={"Authorization": f"Bearer {engineer_token}"}
    )
    assert answer.status_code == 201, answer.text
    return {"url": live_server.url, "key": key, "approver_token": approver_token}


def _refund_tool(ran: list[tuple[str, int]]):
    @function_tool
    async def refund(order: str, amount: int) -> str:
        """Refund an order."""
        ran.append((order, amount))
        return f"refunded {amount} on {order}"

    return refund


def _run_agent(setup: dict[str, Any], model: ScriptedModel, ran: list, *, mode: str = "wait") -> Any:
    async def go() -> Any:
        async with AsyncClient(setup["url"], setup["key"], timeout=WAIT + 15) as client:
            guard = ReviewGuard(client, mode=mode, timeout=WAIT)
            agent = Agent(
                name="support",
                model=model,
                tools=[guard(_refund_tool(ran), confidence=lambda a: 0.95 if a["amount"] <= 50 else 0.5)],
            )
            result = await Runner.run(agent, "refund", run_config=RUN_CONFIG)
            while result.interruptions:
                result = await Runner.run(agent, await guard.resolve(result), run_config=RUN_CONFIG)
            return result

    return asyncio.run(go())


def test_openai_agents_tool_waits_in_the_call(setup, project):
    ran: list = []
    model = ScriptedModel(
        [
            [tool_call("refund", {"order": "D-1", "amount": 20}, "call_small")],
            [tool_call("refund", {"order": "D-2", "amount": 400}, "call_big")],
            [tool_call("refund", {"order": "D-3", "amount": 900}, "call_bad")],
            [text("done")],
        ]
    )
    approver = Approver(setup, {"decision": "approve", "args": {"order": "D-2", "amount": 200}, "comment": "half"})
    approver.start()
    # The third call is rejected by a second approver once the second is decided.
    rejecter = _after(approver, Approver(setup, {"decision": "reject", "comment": "Needs a receipt."}))
    result = _run_agent(setup, model, ran)
    approver.finish()
    rejecter.finish()

    assert result.final_output == "done"
    assert ran == [("D-1", 20), ("D-2", 200)]
    assert model.tool_outputs() == {
        "call_small": "refunded 20 on D-1",
        "call_big": "refunded 200 on D-2",
        "call_bad": "Not done: a reviewer rejected refund. Their comment: Needs a receipt.",
    }
    stored = {a.external_id: a.status for a in Action.objects.filter(project=project)}
    assert stored == {
        "openai-agents:refund:call_small": "approved",
        "openai-agents:refund:call_big": "approved",
        "openai-agents:refund:call_bad": "rejected",
    }


def test_openai_agents_run_interrupts_and_resumes(setup, project):
    ran: list = []
    model = ScriptedModel([[tool_call("refund", {"order": "E-1", "amount": 400}, "call_e1")], [text("done")]])
    approver = Approver(setup, {"decision": "approve", "args": {"order": "E-1", "amount": 150}})
    approver.start()
    result = _run_agent(setup, model, ran, mode="interrupt")
    approver.finish()

    assert result.final_output == "done"
    assert ran == [("E-1", 150)]
    assert model.tool_outputs() == {"call_e1": "refunded 150 on E-1"}
    action = Action.objects.get(project=project)
    assert (action.external_id, action.status, action.final_args) == (
        "openai-agents:refund:call_e1",
        "approved",
        {"order": "E-1", "amount": 150},
    )


class State(TypedDict, total=False):
    order: str
    amount: int
    reply: str


def test_langgraph_node_pauses_until_an_approver_decides(setup, project):
    ran: list = []
    with Client(setup["url"], setup["key"], timeout=WAIT + 15) as client:

        def refund(state: State) -> State:
            decision = ask_approval(
                client, "refund", {"order": state["order"], "amount": state["amount"]}, mode="interrupt", confidence=0.5
            )
            if not decision.approved:
                return {"reply": decision.message}
            ran.append(decision.args)
            return {"reply": f"refunded {decision.args['amount']}"}

        builder = StateGraph(State)
        builder.add_node("refund", refund)
        builder.add_edge(START, "refund")
        builder.add_edge("refund", END)
        graph = builder.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "ticket-7"}}

        paused = graph.invoke({"order": "F-1", "amount": 400}, config)
        assert ran == [] and paused["__interrupt__"]
        action = Action.objects.get(project=project)
        assert action.status == "pending"
        assert paused["__interrupt__"][0].value["action_id"] == action.pk

        approver = Approver(setup, {"decision": "approve", "args": {"order": "F-1", "amount": 250}})
        approver.start()
        out = graph.invoke(resume_command(client, paused["__interrupt__"], timeout=WAIT), config)
        approver.finish()

        assert out["reply"] == "refunded 250"
        assert ran == [{"order": "F-1", "amount": 250}]
        assert Action.objects.filter(project=project).count() == 1
        assert Action.objects.get(project=project).external_id.startswith("langgraph:ticket-7:refund:")

        # A rejection on another thread of the same graph: the node continues with the words.
        paused = graph.invoke({"order": "F-2", "amount": 900}, {"configurable": {"thread_id": "ticket-8"}})
        rejecter = Approver(setup, {"decision": "reject", "comment": "Not this customer."})
        rejecter.start()
        out = graph.invoke(
            resume_command(client, paused["__interrupt__"], timeout=WAIT), {"configurable": {"thread_id": "ticket-8"}}
        )
        rejecter.finish()
        assert out["reply"] == "Not done: a reviewer rejected refund. Their comment: Not this customer."
        assert ran == [{"order": "F-1", "amount": 250}]


def _after(first: Approver, second: Approver) -> Approver:
    """Start `second` once `first` has decided, so each finds only its own pending action."""

    def start() -> None:
        first.join(WAIT + 5)
        second.start()

    threading.Thread(target=start, daemon=True).start()
    return second
