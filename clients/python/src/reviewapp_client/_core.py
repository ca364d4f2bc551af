"""What the sync and async clients share: no I/O here, so both run the same rules.

Retry rule: connection errors, timeouts and 5xx are retried with exponential backoff, with the
same request body (so the same `external_id`): the server treats a repeat as the same action,
and a network failure never creates a second one. A 4xx is never retried: sending the same
thing again cannot make it right.
"""

from __future__ import annotations

import inspect
import json
import math
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from reviewapp_client import __version__
from reviewapp_client.errors import (
    ActionRejected,
    ApiError,
    ArgsNotApplicable,
    AuthenticationError,
    BadRequest,
    Conflict,
    DigestMismatch,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from reviewapp_client.models import ActionResult


def _canonical(value: Any) -> str:
    """A JSON value as the digest sees it (sorted keys, compact). "Unchanged" is judged on this,
    not with Python's `==`, for which 1, 1.0 and True are equal though the approved JSON (and
    its digest) tells them apart."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# The server's limits per request: conversations per batch, judge scores per batch.
CONVERSATIONS_PER_REQUEST = 1000
JUDGE_SCORES_PER_REQUEST = 10_000
# `GET /api/v1/actions/{id}?wait=N` holds a request at most this long.
MAX_WAIT_SECONDS = 60
# The read timeout of a long poll is its wait plus this much for the server to answer.
WAIT_GRACE_SECONDS = 15.0
# A server that answers a long poll early while still pending (one without long-polling, or
# a proxy cutting the request) is asked again no sooner than this: the loop never spins.
MIN_POLL_INTERVAL = 1.0
MAX_BACKOFF = 10.0

_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}

_RETRYABLE_EXCEPTIONS = (httpx.TransportError,)  # connect/read/write errors and every timeout


def api_base(base_url: str) -> str:
    """The API root for a server address: `https://review.example.com` → `.../api/v1/`."""
    base = base_url.rstrip("/")
    if not base.endswith("/api/v1"):
        base += "/api/v1"
    return base + "/"


def default_headers(api_key: str) -> dict[str, str]:
    if not api_key or not isinstance(api_key, str):
        raise ValueError("api_key is required (a project API key or a personal token).")
    return {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "User-Agent": f"reviewapp-client/{__version__}",
    }


def is_retryable_exception(exc: BaseException) -> bool:
    return isinstance(exc, _RETRYABLE_EXCEPTIONS)


def is_retryable_response(response: httpx.Response) -> bool:
    return response.status_code >= 500


def backoff_delay(attempt: int, *, factor: float, response: httpx.Response | None = None) -> float:
    """Seconds to sleep before retry number `attempt` (1-based): factor * 2^(attempt-1) with
    full jitter, capped; a 503's numeric Retry-After is honoured up to the cap."""
    if factor <= 0:
        return 0.0
    if response is not None:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isascii() and retry_after.isdigit():
            return min(float(retry_after), MAX_BACKOFF)
    ceiling = min(factor * (2 ** (attempt - 1)), MAX_BACKOFF)
    return random.uniform(ceiling / 2, ceiling)


def decode(response: httpx.Response) -> Any:
    """The body of a successful answer, or the right `ApiError` for an error."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_success:
        if body is None and response.status_code != 204:
            raise ServerError(
                response.status_code, "The server answered without a JSON body.", body=response.text[:500]
            )
        return body
    message = ""
    errors: dict[str, list[str]] = {}
    if isinstance(body, dict):
        message = str(body.get("message") or "")
        raw_errors = body.get("errors")
        if isinstance(raw_errors, dict):
            errors = {str(k): [str(m) for m in v] if isinstance(v, list) else [str(v)] for k, v in raw_errors.items()}
    if not message:
        message = response.reason_phrase or "Request failed"
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ApiError
    raise cls(response.status_code, message, errors, body if body is not None else response.text[:500])


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def as_list(items: Any, what: str) -> list[Any]:
    if isinstance(items, Mapping):
        return [items]
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        raise TypeError(f"{what}: pass a list of dicts (or one dict).")
    return list(items)


def action_body(
    *,
    action: str,
    args: Mapping[str, Any],
    external_id: str | None,
    confidence: float | None,
    risk_tags: Sequence[str],
    reasoning: str,
    end_user_id: str,
    conversation_external_id: str,
    agent_version: str,
    callback_url: str,
    project: str | None,
) -> dict[str, Any]:
    """The `POST /api/v1/actions` body. The external_id is chosen here, once, so every retry
    sends the same one."""
    if not isinstance(action, str) or not action:
        raise ValueError("action is required (e.g. 'refund').")
    if not isinstance(args, Mapping):
        raise TypeError("args must be a dict (a JSON object).")
    if isinstance(risk_tags, str):
        raise TypeError("risk_tags must be a list of strings, not one string.")
    body: dict[str, Any] = {
        "external_id": external_id or str(uuid.uuid4()),
        "action": action,
        "args": dict(args),
    }
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not math.isfinite(confidence):
            raise TypeError("confidence must be a number between 0 and 1.")
        body["confidence"] = float(confidence)
    optional = {
        "risk_tags": list(risk_tags),
        "reasoning": reasoning,
        "end_user_id": end_user_id,
        "conversation_external_id": conversation_external_id,
        "agent_version": agent_version,
        "callback_url": callback_url,
    }
    body.update({k: v for k, v in optional.items() if v})
    if project:
        body["project"] = project
    return body


def wait_step(remaining: float) -> int:
    """The `?wait=` of the next long poll when `remaining` seconds are left (> 0): whole
    seconds, at least 1, at most the server's limit."""
    return max(1, min(MAX_WAIT_SECONDS, math.ceil(remaining)))


def poll_pause(*, started: float, now: float, deadline: float) -> float:
    """Seconds to sleep after a long poll that came back pending: none when it took its
    time; else the rest of MIN_POLL_INTERVAL, never past the deadline (so the loop ends)."""
    return max(0.0, min(MIN_POLL_INTERVAL - (now - started), deadline - now))


# --- require_approval -----------------------------------------------------------------------

ArgsFrom = Callable[[dict[str, Any]], Mapping[str, Any]]
Valued = Any  # a value, or a callable of the call's bound arguments returning it
_SKIPPED = frozenset({"self", "cls"})


def _value(spec: Valued, arguments: dict[str, Any]) -> Any:
    return spec(arguments) if callable(spec) else spec


@dataclass(frozen=True)
class ApprovalSpec:
    """What `require_approval` was given; `call` prepares one call of the function."""

    action: str
    func: Callable[..., Any]
    confidence: Valued
    args_from: ArgsFrom | None
    risk_tags: Valued
    reasoning: Valued
    end_user_id: Valued
    conversation_external_id: Valued
    agent_version: Valued
    callback_url: Valued
    timeout: float

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> PreparedCall:
        signature = inspect.signature(self.func)
        bound = signature.bind(*args, **kwargs)  # a TypeError here is the caller's mistake, as without us
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        if self.args_from is not None:
            sent = self.args_from(arguments)
            if not isinstance(sent, Mapping):
                raise TypeError(f"args_from must return a dict, not {type(sent).__name__}.")
            sent = dict(sent)
        else:
            sent = {}
            for name, param in signature.parameters.items():
                if name in _SKIPPED or name not in arguments:
                    continue
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    sent.update(arguments[name])  # **kwargs flatten into args
                elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                    sent[name] = list(arguments[name])
                else:
                    sent[name] = arguments[name]
        try:
            # The args as the server will see them (a tuple is a list, keys are strings): what
            # edits are compared with. Not JSON at all is the caller's to fix, before any request.
            sent = json.loads(json.dumps(sent, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"require_approval({self.action!r}): the call's args are not JSON ({exc}); "
                "pass args_from= to choose what is sent."
            ) from exc
        request = {
            "action": self.action,
            "args": sent,
            "confidence": _value(self.confidence, arguments),
            "risk_tags": tuple(_value(self.risk_tags, arguments) or ()),
            "reasoning": _value(self.reasoning, arguments) or "",
            "end_user_id": _value(self.end_user_id, arguments) or "",
            "conversation_external_id": _value(self.conversation_external_id, arguments) or "",
            "agent_version": _value(self.agent_version, arguments) or "",
            "callback_url": _value(self.callback_url, arguments) or "",
            # A fresh idempotency key per call: two calls with the same args are two actions.
            "external_id": str(uuid.uuid4()),
        }
        return PreparedCall(spec=self, signature=signature, bound=bound, sent=sent, request=request)


@dataclass(frozen=True)
class PreparedCall:
    spec: ApprovalSpec
    signature: inspect.Signature
    bound: inspect.BoundArguments
    sent: dict[str, Any]
    request: dict[str, Any]

    def approved_call(self, result: ActionResult) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments to run the function with, once `result` is
        decided: raises unless it is approved with a digest that matches its final args.

        Without `args_from` the function runs with the approved args as sent back (JSON
        values: a tuple comes back a list). With `args_from`, only what the approver changed
        is applied, to the parameter of the same name; the rest of the call is untouched. An
        edit that names no parameter cannot be applied and nothing runs."""
        if not result.approved:
            raise ActionRejected(result.comment, result)
        if not result.digest_ok(self.spec.action):
            raise DigestMismatch(
                f"Action {result.id}: args_digest does not match the approved final_args; not running it.", result
            )
        final = dict(result.final_args or {})
        params = self.signature.parameters
        arguments = self.bound.arguments
        var_kw = next((n for n, p in params.items() if p.kind is _VAR_KEYWORD), None)
        derived = self.spec.args_from is not None
        name = getattr(self.spec.func, "__qualname__", "the function")

        def refuse(why: str) -> ArgsNotApplicable:
            return ArgsNotApplicable(f"Action {result.id}: {why} of {name}; not running it.", result)

        kwargs_out: dict[str, Any] = {}
        for key, value in final.items():
            param = params.get(key)
            if derived and key in self.sent and _canonical(self.sent[key]) == _canonical(value):
                continue  # args_from's value, approved unchanged: the call keeps its own object
            if param is not None and key not in _SKIPPED and param.kind in _NAMED:
                arguments[key] = value
            elif param is not None and param.kind is _VAR_POSITIONAL:
                if not isinstance(value, list):
                    raise refuse(f"the approved {key!r} is not a list for *{key}")
                arguments[key] = tuple(value)
            elif not derived and var_kw is not None and key not in params:
                kwargs_out[key] = value
            else:
                raise refuse(f"the approved args change {key!r}, which is not a parameter")
        for key in self.sent:
            if key in final:
                continue
            param = params.get(key)
            if param is not None and param.kind in _NAMED and param.default is not inspect.Parameter.empty:
                arguments[key] = param.default  # the approver removed an optional arg
            elif not derived and var_kw is not None and key not in params:
                continue  # a **kwargs entry the approver removed: left out below
            else:
                raise refuse(f"the approved args leave out {key!r}, a required parameter")
        if not derived and var_kw is not None:
            # **kwargs were flattened into the args; they come back from the approved args only.
            arguments[var_kw] = kwargs_out
        return self.bound.args, self.bound.kwargs


_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_NAMED = frozenset(
    {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
)
_MISSING = object()
