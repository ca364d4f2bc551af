"""Ask reviewapp from inside a LangGraph node or tool (`reviewapp-client[langgraph]`).

    from reviewapp_client.langgraph import ask_approval

    def refund_node(state):
        decision = ask_approval(client, "refund", {"order_id": state["order"], "amount": 450}, mode="interrupt")
        if not decision.approved:
            return {"reply": decision.message}      # who refused and why, for the model
        payments.refund(**decision.args)           # the approved args, digest checked
        ...

`mode="wait"` (default) long-polls inside the node. `mode="interrupt"` pauses the graph with
langgraph's `interrupt()` while the action is pending (a checkpointer is required); resume it
with `Command(resume=...)` once decided (`resume_command` waits and builds it). The node then
runs again from its start: the same request finds the same action (the `external_id` is
derived from the thread, the task and `key`), and its decision is read from reviewapp, never
taken from the resume value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

try:
    from langgraph.config import get_config
    from langgraph.types import Command, Interrupt, interrupt
except ImportError as exc:  # pragma: no cover - exercised by test_adapters_optional
    raise ImportError("reviewapp_client.langgraph needs LangGraph: pip install 'reviewapp-client[langgraph]'") from exc

from reviewapp_client import _adapters
from reviewapp_client._adapters import AnyClient, OnReject, RejectionMessage, RequestFields, Valued
from reviewapp_client.client import DEFAULT_WAIT, Client
from reviewapp_client.errors import ActionRejected
from reviewapp_client.models import ActionResult

__all__ = [
    "INTERRUPT_TYPE",
    "Decision",
    "aask_approval",
    "aresume_command",
    "ask_approval",
    "external_id_for",
    "resume_command",
    "reviewapp_interrupts",
]

Mode = Literal["wait", "interrupt"]
# The `type` of the value this module interrupts with, so a driver can tell its interrupts apart.
INTERRUPT_TYPE = "reviewapp_action"


@dataclass(frozen=True)
class Decision:
    """reviewapp's decision on one request. `args` are the approved `final_args` (an approver
    may have edited them; their digest is checked) or None; `message` says, for a model, why
    it was not approved (empty when approved); `result` is the whole `ActionResult`."""

    approved: bool
    args: dict[str, Any] | None
    message: str
    result: ActionResult

    @property
    def comment(self) -> str:
        return self.result.comment


def external_id_for(action: str, key: str = "", *, id_prefix: str = "langgraph") -> str:
    """The idempotency key of a request made in the running graph task: its thread, its
    checkpoint namespace (which names the task; a resumed or retried task keeps it), the
    action and `key`. Two requests for one action in one node need different keys (the tool
    call id, say)."""
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError as exc:
        raise ValueError("Outside a LangGraph run: pass external_id= yourself.") from exc
    thread = str(configurable.get("thread_id", ""))
    namespace = str(configurable.get("checkpoint_ns", ""))
    return _adapters.stable_external_id(id_prefix, thread, namespace, action, key)


@dataclass(frozen=True)
class _Ask:
    action: str
    args: dict[str, Any]
    external_id: str
    fields: dict[str, Any]
    mode: Mode
    timeout: float
    on_reject: OnReject
    rejection_message: RejectionMessage

    def interrupt_value(self, pending: ActionResult) -> dict[str, Any]:
        # JSON only: it is stored in the checkpoint and shown to whoever drives the graph.
        return {
            "type": INTERRUPT_TYPE,
            "action_id": pending.id,
            "external_id": pending.external_id or self.external_id,
            "action": self.action,
            "args": self.args,
            "tier": pending.tier,
            "due_at": pending.due_at.isoformat() if pending.due_at else None,
            "reason": pending.reason,
        }

    def decision(self, result: ActionResult) -> Decision:
        if result.approved:
            return Decision(True, _adapters.check_approved(result, self.action), "", result)
        if self.on_reject == "raise":
            raise ActionRejected(result.comment, result)
        return Decision(False, None, self.rejection_message(result), result)


def _prepare(
    action: str,
    args: Mapping[str, Any],
    *,
    key: str,
    external_id: str | None,
    id_prefix: str,
    mode: Mode,
    timeout: float,
    on_reject: OnReject,
    rejection_message: RejectionMessage,
    fields: RequestFields,
) -> _Ask:
    if mode not in ("wait", "interrupt"):
        raise ValueError("mode must be 'wait' or 'interrupt'.")
    if on_reject not in ("return", "raise"):
        raise ValueError("on_reject must be 'return' or 'raise'.")
    if not isinstance(args, Mapping):
        raise TypeError("args must be a dict (a JSON object).")
    return _Ask(
        action=action,
        args=dict(args),
        external_id=external_id or external_id_for(action, key, id_prefix=id_prefix),
        fields=fields.resolve(args),
        mode=mode,
        timeout=timeout,
        on_reject=on_reject,
        rejection_message=rejection_message,
    )


def ask_approval(
    client: Client,
    action: str,
    args: Mapping[str, Any],
    *,
    mode: Mode = "wait",
    key: str = "",
    external_id: str | None = None,
    timeout: float = DEFAULT_WAIT,
    on_reject: OnReject = "return",
    rejection_message: RejectionMessage = _adapters.default_rejection_message,
    id_prefix: str = "langgraph",
    confidence: Valued = None,
    risk_tags: Valued = (),
    reasoning: Valued = "",
    end_user_id: Valued = "",
    conversation_external_id: Valued = "",
    agent_version: Valued = "",
    callback_url: Valued = "",
) -> Decision:
    """Ask reviewapp whether to do `action` with `args`, from a node or tool of a running
    graph, and answer its `Decision`.

    `mode="wait"` waits up to `timeout` seconds (`ApprovalTimeout` after). `mode="interrupt"`
    calls `interrupt()` while pending: the graph stops, and resuming it runs the node again,
    which then reads the decision (and interrupts again if it is still pending). Rejected or
    expired: `Decision(approved=False, message=...)`, or `ActionRejected` with
    `on_reject="raise"`. Approved with a digest that does not match: `DigestMismatch`.

    `confidence` and the other fields are values or callables of the args; like the args,
    they must be the same each time the node runs, or the repeat is refused (`Conflict`).
    """
    ask = _prepare(
        action,
        args,
        key=key,
        external_id=external_id,
        id_prefix=id_prefix,
        mode=mode,
        timeout=timeout,
        on_reject=on_reject,
        rejection_message=rejection_message,
        fields=RequestFields(
            confidence, risk_tags, reasoning, end_user_id, conversation_external_id, agent_version, callback_url
        ),
    )
    result = client.request_action(action, ask.args, external_id=ask.external_id, **ask.fields)
    if mode == "wait":
        return ask.decision(client.wait(result, timeout=timeout))
    while result.pending:
        # The resume value is not trusted: a decision is what reviewapp answers, read below.
        interrupt(ask.interrupt_value(result))
        result = client.get_action(result)
    return ask.decision(result)


async def aask_approval(
    client: AnyClient,
    action: str,
    args: Mapping[str, Any],
    *,
    mode: Mode = "wait",
    key: str = "",
    external_id: str | None = None,
    timeout: float = DEFAULT_WAIT,
    on_reject: OnReject = "return",
    rejection_message: RejectionMessage = _adapters.default_rejection_message,
    id_prefix: str = "langgraph",
    confidence: Valued = None,
    risk_tags: Valued = (),
    reasoning: Valued = "",
    end_user_id: Valued = "",
    conversation_external_id: Valued = "",
    agent_version: Valued = "",
    callback_url: Valued = "",
) -> Decision:
    """`ask_approval` for `async def` nodes: an `AsyncClient` (or a `Client`, run in a thread)."""
    ask = _prepare(
        action,
        args,
        key=key,
        external_id=external_id,
        id_prefix=id_prefix,
        mode=mode,
        timeout=timeout,
        on_reject=on_reject,
        rejection_message=rejection_message,
        fields=RequestFields(
            confidence, risk_tags, reasoning, end_user_id, conversation_external_id, agent_version, callback_url
        ),
    )
    result = await _adapters.request_action(client, action, ask.args, external_id=ask.external_id, **ask.fields)
    if mode == "wait":
        return ask.decision(await _adapters.wait(client, result, timeout))
    while result.pending:
        interrupt(ask.interrupt_value(result))
        result = await _adapters.get_action(client, result)
    return ask.decision(result)


def reviewapp_interrupts(interrupts: Iterable[Interrupt]) -> list[Interrupt]:
    """The interrupts of a run (`result["__interrupt__"]`, `state.interrupts`) made by
    `ask_approval`."""
    return [i for i in interrupts if isinstance(i.value, Mapping) and i.value.get("type") == INTERRUPT_TYPE]


def resume_command(client: Client, interrupts: Iterable[Interrupt], *, timeout: float = DEFAULT_WAIT) -> Command:
    """Wait (up to `timeout` seconds each, else `ApprovalTimeout`) until reviewapp has decided
    every action the run is interrupted on, and answer the `Command` that resumes them. Other
    interrupts are not answered here."""
    mine = reviewapp_interrupts(interrupts)
    if not mine:
        raise ValueError("None of these interrupts is a reviewapp action.")
    decided = {i.id: client.wait(int(i.value["action_id"]), timeout=timeout) for i in mine}
    return Command(resume={ident: result.status for ident, result in decided.items()})


async def aresume_command(
    client: AnyClient, interrupts: Iterable[Interrupt], *, timeout: float = DEFAULT_WAIT
) -> Command:
    """`resume_command` for asyncio drivers."""
    mine = reviewapp_interrupts(interrupts)
    if not mine:
        raise ValueError("None of these interrupts is a reviewapp action.")
    resume: dict[str, str] = {}
    for item in mine:
        resume[item.id] = (await _adapters.wait(client, int(item.value["action_id"]), timeout)).status
    return Command(resume=resume)
