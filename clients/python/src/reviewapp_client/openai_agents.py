"""Ask reviewapp before an OpenAI Agents SDK function tool runs (`reviewapp-client[openai-agents]`).

    from agents import Agent, Runner, function_tool
    from reviewapp_client import AsyncClient
    from reviewapp_client.openai_agents import ReviewGuard

    guard = ReviewGuard(AsyncClient(url, api_key))

    @function_tool
    async def refund(order_id: str, amount: float) -> str: ...

    agent = Agent(name="support", tools=[guard(refund, confidence=0.7)])

Each call of a guarded tool is first sent as an action (the tool's name, the model's args) with
an `external_id` derived from the tool call's id, so a retried or resumed call never makes a
second action. Approved: the tool runs with the approved `final_args` (an approver may have
edited them) once `args_digest` is checked. Rejected or expired: the model reads why as the
tool's output (`on_reject="return"`, the default) or the run stops with `ActionRejected`
(`on_reject="raise"`).

`mode="wait"` (default) waits inside the tool call. `mode="interrupt"` uses the SDK's own
human-in-the-loop: a call the policy sends to a person sets `needs_approval`, the run comes
back with `result.interruptions`, and `await guard.resolve(result)` waits for reviewapp's
decisions and answers a `RunState` to resume with `Runner.run(agent, state)`; the state can be
saved (`state.to_json()`) while a person decides.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Literal

try:
    from agents import FunctionTool, RunContextWrapper
    from agents.exceptions import AgentsException
    from agents.items import ToolApprovalItem
    from agents.result import RunResultBase
    from agents.run_state import RunState
    from agents.tool_context import ToolContext
except ImportError as exc:  # pragma: no cover - exercised by test_adapters_optional
    raise ImportError(
        "reviewapp_client.openai_agents needs the OpenAI Agents SDK: pip install 'reviewapp-client[openai-agents]'"
    ) from exc

from reviewapp_client import _adapters
from reviewapp_client._adapters import AnyClient, OnReject, RejectionMessage, RequestFields, Valued
from reviewapp_client.client import DEFAULT_WAIT
from reviewapp_client.errors import ActionRejected, ApprovalTimeout, DigestMismatch
from reviewapp_client.models import ActionResult

__all__ = ["ReviewGuard", "ToolCallDigestMismatch", "ToolCallNotApproved", "ToolCallRejected", "ToolCallTimeout"]

Mode = Literal["wait", "interrupt"]
_GUARD_ATTR = "_reviewapp_guard"


class ToolCallNotApproved(AgentsException):
    """Raised out of `Runner.run` when a guarded call does not run. Being an
    `AgentsException`, the runner lets it through as it is instead of wrapping it in a
    `UserError`, so `except ActionRejected` around `Runner.run` works."""


class ToolCallRejected(ActionRejected, ToolCallNotApproved):
    """Rejected or expired, with `on_reject="raise"`: `.comment`, `.result`."""


class ToolCallTimeout(ApprovalTimeout, ToolCallNotApproved):
    """Still pending when the wait ran out: nothing ran; the action stays pending."""


class ToolCallDigestMismatch(DigestMismatch, ToolCallNotApproved):
    """Approved, but `args_digest` does not match `final_args`: nothing ran."""


class _Guarded:
    """One guarded tool: how to ask for each of its calls."""

    def __init__(
        self,
        guard: ReviewGuard,
        action: str,
        fields: RequestFields,
        on_reject: OnReject,
        timeout: float,
    ) -> None:
        self.guard = guard
        self.action = action
        self.fields = fields
        self.on_reject = on_reject
        self.timeout = timeout

    def external_id(self, call_id: str) -> str:
        return _adapters.stable_external_id(self.guard.id_prefix, self.action, call_id)

    async def ask(self, call_id: str, args: Mapping[str, Any]) -> ActionResult:
        # The same call asks with the same key and the same payload (needs_approval, the
        # invocation after it, a resume): the server answers the one action it has.
        return await _adapters.request_action(
            self.guard.client,
            self.action,
            args,
            external_id=self.external_id(call_id),
            **self.fields.resolve(args),
        )

    def not_approved(self, result: ActionResult) -> str:
        if self.on_reject == "raise":
            raise ToolCallRejected(result.comment, result)
        return self.guard.rejection_message(result)


def _parse_args(raw: str | None) -> dict[str, Any] | None:
    try:
        args = json.loads(raw) if raw else {}
    except ValueError:
        return None
    return args if isinstance(args, dict) else None


class ReviewGuard:
    """Guards function tools with reviewapp approvals. `client` is a `Client` or (better, the
    SDK being asyncio) an `AsyncClient`. The defaults given here apply to every tool guarded
    with it; `guard(tool, ...)` overrides them per tool.

    - `on_reject`: `"return"` gives the model `rejection_message(result)` as the tool's output
      (default: who refused and their comment); `"raise"` stops the run with `ToolCallRejected`
      (an `ActionRejected`).
    - `mode`: `"wait"` long-polls inside the tool call for up to `timeout` seconds;
      `"interrupt"` interrupts the run while a person decides (see `resolve`).
    - `id_prefix`: the start of every `external_id` (`<prefix>:<tool>:<call id>`); give each
      agent deployment its own if call ids might repeat across them.
    """

    def __init__(
        self,
        client: AnyClient,
        *,
        on_reject: OnReject = "return",
        mode: Mode = "wait",
        timeout: float = DEFAULT_WAIT,
        rejection_message: RejectionMessage = _adapters.default_rejection_message,
        id_prefix: str = "openai-agents",
    ) -> None:
        if on_reject not in ("return", "raise"):
            raise ValueError("on_reject must be 'return' or 'raise'.")
        if mode not in ("wait", "interrupt"):
            raise ValueError("mode must be 'wait' or 'interrupt'.")
        self.client = client
        self.on_reject: OnReject = on_reject
        self.mode: Mode = mode
        self.timeout = timeout
        self.rejection_message = rejection_message
        self.id_prefix = id_prefix
        self._tools: dict[str, _Guarded] = {}

    def __call__(
        self,
        tool: FunctionTool,
        *,
        action: str | None = None,
        confidence: Valued = None,
        risk_tags: Valued = (),
        reasoning: Valued = "",
        end_user_id: Valued = "",
        conversation_external_id: Valued = "",
        agent_version: Valued = "",
        callback_url: Valued = "",
        on_reject: OnReject | None = None,
        timeout: float | None = None,
    ) -> FunctionTool:
        """A copy of `tool` that asks reviewapp before each call. `action` defaults to the
        tool's name; `confidence` and the other fields are values or callables of the call's
        args (a dict). The tool itself is left as it was."""
        if not isinstance(tool, FunctionTool):
            raise TypeError(f"ReviewGuard guards FunctionTools (from @function_tool), not {type(tool).__name__}.")
        if getattr(tool, _GUARD_ATTR, None) is not None:
            raise ValueError(f"Tool {tool.name!r} is already guarded.")
        if tool.needs_approval is not False:
            raise ValueError(f"Tool {tool.name!r} has its own needs_approval; reviewapp decides approval here.")
        fields = RequestFields(
            confidence=confidence,
            risk_tags=risk_tags,
            reasoning=reasoning,
            end_user_id=end_user_id,
            conversation_external_id=conversation_external_id,
            agent_version=agent_version,
            callback_url=callback_url,
        )
        guarded_tool = copy.copy(tool)  # FunctionTool.__copy__ keeps guardrails and failure policy
        spec = _Guarded(
            self,
            action or tool.name,
            fields,
            on_reject or self.on_reject,
            self.timeout if timeout is None else timeout,
        )
        invoke = tool.on_invoke_tool

        async def on_invoke_tool(ctx: ToolContext[Any], raw_args: str) -> Any:
            args = _parse_args(raw_args)
            if args is None:
                # Never run what could not be asked about; the model may try again.
                return f"Not done: the arguments for {tool.name} are not a JSON object."
            result = await spec.ask(ctx.tool_call_id, args)
            try:
                result = await _adapters.wait(self.client, result, spec.timeout)
            except ApprovalTimeout as exc:
                raise ToolCallTimeout(str(exc), exc.result) from exc
            if not result.approved:
                return spec.not_approved(result)
            try:
                final_args = _adapters.check_approved(result, spec.action)
            except DigestMismatch as exc:
                raise ToolCallDigestMismatch(str(exc), result) from exc
            # The approved args go through the tool's own parsing and validation, as the
            # model's would have.
            return await invoke(ctx, json.dumps(final_args, ensure_ascii=False))

        guarded_tool.on_invoke_tool = on_invoke_tool
        if self.mode == "interrupt":

            async def needs_approval(_ctx: RunContextWrapper[Any], args: dict[str, Any], call_id: str) -> bool:
                # The policy answers at once for most calls: those run (or are refused) in
                # the tool call itself; only a call waiting for a person interrupts the run.
                return (await spec.ask(call_id, args)).pending

            guarded_tool.needs_approval = needs_approval
        setattr(guarded_tool, _GUARD_ATTR, spec)
        self._tools[guarded_tool.name] = spec
        return guarded_tool

    async def resolve(self, result: RunResultBase | RunState[Any], *, timeout: float | None = None) -> RunState[Any]:
        """For `mode="interrupt"`: wait for reviewapp's decision on each interrupted call of a
        tool guarded here, mark it approved or rejected in the run's state, and answer the
        state to resume with `Runner.run(agent, state)`. A rejected call's model-visible output
        is `rejection_message(result)`; with `on_reject="raise"` this raises
        `ToolCallRejected` instead. Still pending after `timeout` (default: the tool's):
        `ApprovalTimeout`; save the state and call again later. Interruptions of other tools
        are left for you to decide."""
        state = result if isinstance(result, RunState) else result.to_state()
        for item in state.get_interruptions():
            spec = self._tools.get(item.name or "")
            if spec is None:
                continue
            await self._decide(state, item, spec, spec.timeout if timeout is None else timeout)
        return state

    async def _decide(self, state: RunState[Any], item: ToolApprovalItem, spec: _Guarded, timeout: float) -> None:
        args = _parse_args(item.arguments)
        if args is None or not item.call_id:
            state.reject(item, rejection_message=f"Not done: the arguments for {item.name} are not a JSON object.")
            return
        decided = await _adapters.wait(self.client, await spec.ask(item.call_id, args), timeout)
        if decided.approved:
            # The tool call itself checks the digest and runs with the approved args.
            state.approve(item)
        else:
            state.reject(item, rejection_message=spec.not_approved(decided))
