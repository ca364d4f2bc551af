"""What the framework adapters (openai_agents, langgraph) share, importing neither framework:
the deterministic idempotency key, the request's optional fields, one way to call a blocking or
an asyncio client, and the words a model reads when an action was not approved."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reviewapp_client.client import DEFAULT_WAIT, AsyncClient, Client
from reviewapp_client.errors import DigestMismatch
from reviewapp_client.models import ActionResult

# The server's limit on `external_id` (the column is 255 characters).
EXTERNAL_ID_MAX = 255

OnReject = Literal["return", "raise"]
AnyClient = Client | AsyncClient


def stable_external_id(prefix: str, *parts: str) -> str:
    """The same key for the same parts, every time: a retried or resumed tool call carries
    the key of its first try, so the server answers the action it already has instead of
    making a second one. Readable when it fits the column, else a SHA-256 of the parts."""
    readable = ":".join((prefix, *parts))
    if len(readable) <= EXTERNAL_ID_MAX:
        return readable
    digest = hashlib.sha256(json.dumps(list(parts), ensure_ascii=False).encode()).hexdigest()
    return f"{prefix}:sha256:{digest}"


# A value, or a callable of the tool call's args (a dict) returning it.
Valued = Any


def _value(spec: Valued, args: Mapping[str, Any]) -> Any:
    return spec(dict(args)) if callable(spec) else spec


@dataclass(frozen=True)
class RequestFields:
    """The optional fields of an action request. Each is a value, or a callable of the args;
    a callable must answer the same for the same args, or a retry is refused (409)."""

    confidence: Valued = None
    risk_tags: Valued = ()
    reasoning: Valued = ""
    end_user_id: Valued = ""
    conversation_external_id: Valued = ""
    agent_version: Valued = ""
    callback_url: Valued = ""

    def resolve(self, args: Mapping[str, Any]) -> dict[str, Any]:
        risk_tags = _value(self.risk_tags, args) or ()
        if isinstance(risk_tags, str) or not isinstance(risk_tags, Sequence):
            raise TypeError("risk_tags must be a list of strings.")
        return {
            "confidence": _value(self.confidence, args),
            "risk_tags": tuple(risk_tags),
            "reasoning": _value(self.reasoning, args) or "",
            "end_user_id": _value(self.end_user_id, args) or "",
            "conversation_external_id": _value(self.conversation_external_id, args) or "",
            "agent_version": _value(self.agent_version, args) or "",
            "callback_url": _value(self.callback_url, args) or "",
        }


async def request_action(client: AnyClient, action: str, args: Mapping[str, Any], **fields: Any) -> ActionResult:
    """`request_action` on either client; a blocking one runs in a thread so the event loop
    the agent runs on is never held."""
    if isinstance(client, AsyncClient):
        return await client.request_action(action, args, **fields)
    return await asyncio.to_thread(client.request_action, action, args, **fields)


async def wait(client: AnyClient, result: ActionResult | int, timeout: float = DEFAULT_WAIT) -> ActionResult:
    if isinstance(result, ActionResult) and not result.pending:
        return result
    if isinstance(client, AsyncClient):
        return await client.wait(result, timeout=timeout)
    return await asyncio.to_thread(client.wait, result, timeout)


async def get_action(client: AnyClient, result: ActionResult | int) -> ActionResult:
    if isinstance(client, AsyncClient):
        return await client.get_action(result)
    return await asyncio.to_thread(client.get_action, result)


def check_approved(result: ActionResult, action: str) -> dict[str, Any]:
    """The approved `final_args`, once their digest is checked: approval fails closed."""
    if not result.digest_ok(action):
        raise DigestMismatch(
            f"Action {result.id}: args_digest does not match the approved final_args; not running it.", result
        )
    return dict(result.final_args or {})


def default_rejection_message(result: ActionResult) -> str:
    """What the model reads instead of the tool's output when its call was not approved: who
    said no and why, so it can adapt (ask for a receipt, offer less) rather than retry blindly."""
    action = result.action or "this action"
    if result.status == "expired":
        return f"Not done: the request to run {action} expired before anyone approved it."
    if result.decided_by == "policy" or not result.decided_by:
        why = result.reason or result.comment
        return f"Not done: {action} was rejected by policy" + (f": {why}" if why else ".")
    words = result.comment or result.reason
    return f"Not done: a reviewer rejected {action}" + (f". Their comment: {words}" if words else ".")


RejectionMessage = Callable[[ActionResult], str]
