"""`Client` (blocking) and `AsyncClient` (asyncio): the same methods, the same rules (_core)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from reviewapp_client import _core
from reviewapp_client import gate as _gate
from reviewapp_client._core import ApprovalSpec, ArgsFrom, PreparedCall, Valued
from reviewapp_client.errors import ApprovalTimeout, NetworkError
from reviewapp_client.gate import GateResult
from reviewapp_client.models import ActionResult, ConversationResult, JudgeScoreResult

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_TIMEOUT = 10.0
DEFAULT_WAIT = 300.0


class _Base:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        project: str | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more.")
        self.base_url = _core.api_base(base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        # With a personal token (not a project key) every write names its project.
        self.project = project
        self._headers = _core.default_headers(api_key)
        # Seams for tests: a fake clock drives `wait` without sleeping for real.
        self._clock: Callable[[], float] = time.monotonic

    def _with_project(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.project:
            body["project"] = self.project
        return body

    def _action_body(self, action: str, args: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        return _core.action_body(action=action, args=args, project=self.project, **fields)

    def _spec(self, action: str, func: Callable[..., Any], **options: Any) -> ApprovalSpec:
        if not isinstance(action, str) or not action:
            raise ValueError("require_approval needs the action's name, e.g. @client.require_approval('refund').")
        return ApprovalSpec(action=action, func=func, **options)


class Client(_Base):
    """A blocking client.

    >>> client = Client("https://review.example.com", api_key)
    >>> result = client.request_action("refund", {"order": "A-1", "amount": 40}, confidence=0.97)

    `timeout` is each request's timeout in seconds; connection errors, timeouts and 5xx are
    retried up to `max_retries` times with exponential backoff (`backoff_factor` seconds,
    doubling), never a 4xx. `transport` is passed to httpx (e.g. `httpx.MockTransport` in tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        project: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, api_key, timeout=timeout, max_retries=max_retries, backoff_factor=backoff_factor, project=project
        )
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport)
        self._sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method, path, json=json, params=params, timeout=timeout if timeout is not None else self.timeout
                )
            except httpx.HTTPError as exc:
                if not _core.is_retryable_exception(exc):
                    raise NetworkError(f"{method} {path}: {exc!r}") from exc
                if attempt >= self.max_retries:
                    raise NetworkError(f"{method} {path} failed after {attempt + 1} attempts: {exc!r}") from exc
                attempt += 1
                self._sleep(_core.backoff_delay(attempt, factor=self.backoff_factor))
                continue
            if _core.is_retryable_response(response) and attempt < self.max_retries:
                attempt += 1
                self._sleep(_core.backoff_delay(attempt, factor=self.backoff_factor, response=response))
                continue
            return _core.decode(response)

    # --- conversations and judge scores ---------------------------------------------------

    def log_conversations(
        self, conversations: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> list[ConversationResult]:
        """Send conversations (dicts in the API's shape: `external_id`, `messages`, optional
        `judge_scores`, `feedback`, `tags`, ...). Any number: sent 1,000 per request. Safe to
        repeat: a stored `external_id` answers `duplicate`."""
        items = _core.as_list(conversations, "log_conversations")
        out: list[ConversationResult] = []
        for chunk in _core.chunks(items, _core.CONVERSATIONS_PER_REQUEST):
            body = self._request("POST", "conversations", json=self._with_project({"conversations": list(chunk)}))
            out += [ConversationResult(**r) for r in body["results"]]
        return out

    def add_judge_scores(self, scores: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[JudgeScoreResult]:
        """Add judge scores to stored conversations: dicts with `external_id`, `judge`,
        `criterion` and a `score` or `label`. Safe to repeat (an identical score is a duplicate)."""
        items = _core.as_list(scores, "add_judge_scores")
        out: list[JudgeScoreResult] = []
        for chunk in _core.chunks(items, _core.JUDGE_SCORES_PER_REQUEST):
            body = self._request("POST", "judge-scores", json=self._with_project({"judge_scores": list(chunk)}))
            out += [JudgeScoreResult(**r) for r in body["results"]]
        return out

    def gate(
        self, dataset_id: int, version: int, agent_version: str, results: Iterable[Mapping[str, Any]]
    ) -> GateResult:
        """Post an agent version's results on a golden dataset version (`{"item_id", "passed",
        "score"?, "output"?}` each) and get the release gate's verdict: `result.passed`,
        `result.reasons`. A failing gate is an answer, not an exception. Retried like every
        call, so a lost answer may leave a second, identical run on the server."""
        body = _gate.run_body(agent_version, results)
        timeout = max(self.timeout, _gate.GATE_TIMEOUT)
        return GateResult.from_api(
            self._request("POST", _gate.run_path(dataset_id, version), json=body, timeout=timeout)
        )

    # --- actions -------------------------------------------------------------------------

    def request_action(
        self,
        action: str,
        args: Mapping[str, Any],
        *,
        external_id: str | None = None,
        confidence: float | None = None,
        risk_tags: Sequence[str] = (),
        reasoning: str = "",
        end_user_id: str = "",
        conversation_external_id: str = "",
        agent_version: str = "",
        callback_url: str = "",
    ) -> ActionResult:
        """Ask before acting. Answers at once: `approved` or `rejected` by the policy, or
        `pending` on an approver's tier (then `wait`). `external_id` is the idempotency key
        (a fresh UUID unless given); retries reuse it, so a network failure never makes a
        second action. The same id with a different payload raises `Conflict`."""
        body = self._action_body(
            action,
            args,
            external_id=external_id,
            confidence=confidence,
            risk_tags=risk_tags,
            reasoning=reasoning,
            end_user_id=end_user_id,
            conversation_external_id=conversation_external_id,
            agent_version=agent_version,
            callback_url=callback_url,
        )
        return ActionResult.from_json(self._request("POST", "actions", json=body))

    def get_action(self, action_id: int | ActionResult, *, wait: int = 0) -> ActionResult:
        """The action now; with `wait` (1..60 s) the server answers as soon as it is decided."""
        action_id = action_id.id if isinstance(action_id, ActionResult) else action_id
        params = {"wait": wait} if wait > 0 else None
        timeout = wait + _core.WAIT_GRACE_SECONDS if wait > 0 else None
        return ActionResult.from_json(self._request("GET", f"actions/{int(action_id)}", params=params, timeout=timeout))

    def wait(self, action_id: int | ActionResult, timeout: float = DEFAULT_WAIT) -> ActionResult:
        """Long-poll until the action is decided and return it (approved, rejected or
        expired: check `.status`). Still pending after `timeout` seconds: `ApprovalTimeout`
        (fails closed; the action stays pending on the server)."""
        if isinstance(action_id, ActionResult) and not action_id.pending:
            return action_id
        deadline = self._clock() + timeout
        last: ActionResult | None = None
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            started = self._clock()
            last = self.get_action(action_id, wait=_core.wait_step(remaining))
            if not last.pending:
                return last
            pause = _core.poll_pause(started=started, now=self._clock(), deadline=deadline)
            if pause > 0:
                self._sleep(pause)
        ident = action_id.id if isinstance(action_id, ActionResult) else action_id
        raise ApprovalTimeout(f"Action {ident} is still pending after {timeout:g} s; not running it.", last)

    def require_approval(
        self,
        action: str,
        *,
        confidence: Valued = None,
        args_from: ArgsFrom | None = None,
        timeout: float = DEFAULT_WAIT,
        risk_tags: Valued = (),
        reasoning: Valued = "",
        end_user_id: Valued = "",
        conversation_external_id: Valued = "",
        agent_version: Valued = "",
        callback_url: Valued = "",
    ) -> Callable[[F], F]:
        """Decorate a function so each call asks first and runs only once approved.

        The args sent are the call's arguments by name (defaults applied, `**kwargs`
        flattened), or what `args_from(arguments)` returns. `confidence` and the other fields
        are values, or callables of the call's arguments (a dict). Each call gets a fresh
        external_id, waits up to `timeout` seconds, checks `args_digest` against the
        `final_args` it got back (`DigestMismatch`) and runs the function with them (an
        approver may have edited them). Rejected or expired: `ActionRejected` (its `comment`
        is the approver's words); still pending: `ApprovalTimeout`. The function never runs
        in those cases. Sync functions only: decorate async ones with `AsyncClient`."""

        def decorate(func: F) -> F:
            if inspect.iscoroutinefunction(func):
                raise TypeError(f"{func.__qualname__} is async: use AsyncClient.require_approval for it.")
            spec = self._spec(
                action,
                func,
                confidence=confidence,
                args_from=args_from,
                timeout=timeout,
                risk_tags=risk_tags,
                reasoning=reasoning,
                end_user_id=end_user_id,
                conversation_external_id=conversation_external_id,
                agent_version=agent_version,
                callback_url=callback_url,
            )

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                prepared = spec.call(args, kwargs)
                result = self.request_action(**prepared.request)
                if result.pending:
                    result = self.wait(result, timeout=spec.timeout)
                call_args, call_kwargs = prepared.approved_call(result)
                return func(*call_args, **call_kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate


class AsyncClient(_Base):
    """The asyncio client: `Client`'s methods as coroutines, and `require_approval` for
    `async def` functions."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        project: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, api_key, timeout=timeout, max_retries=max_retries, backoff_factor=backoff_factor, project=project
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, timeout=timeout if timeout is not None else self.timeout
                )
            except httpx.HTTPError as exc:
                if not _core.is_retryable_exception(exc):
                    raise NetworkError(f"{method} {path}: {exc!r}") from exc
                if attempt >= self.max_retries:
                    raise NetworkError(f"{method} {path} failed after {attempt + 1} attempts: {exc!r}") from exc
                attempt += 1
                await self._sleep(_core.backoff_delay(attempt, factor=self.backoff_factor))
                continue
            if _core.is_retryable_response(response) and attempt < self.max_retries:
                attempt += 1
                await self._sleep(_core.backoff_delay(attempt, factor=self.backoff_factor, response=response))
                continue
            return _core.decode(response)

    async def log_conversations(
        self, conversations: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> list[ConversationResult]:
        """See `Client.log_conversations`."""
        items = _core.as_list(conversations, "log_conversations")
        out: list[ConversationResult] = []
        for chunk in _core.chunks(items, _core.CONVERSATIONS_PER_REQUEST):
            body = await self._request("POST", "conversations", json=self._with_project({"conversations": list(chunk)}))
            out += [ConversationResult(**r) for r in body["results"]]
        return out

    async def add_judge_scores(self, scores: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[JudgeScoreResult]:
        """See `Client.add_judge_scores`."""
        items = _core.as_list(scores, "add_judge_scores")
        out: list[JudgeScoreResult] = []
        for chunk in _core.chunks(items, _core.JUDGE_SCORES_PER_REQUEST):
            body = await self._request("POST", "judge-scores", json=self._with_project({"judge_scores": list(chunk)}))
            out += [JudgeScoreResult(**r) for r in body["results"]]
        return out

    async def gate(
        self, dataset_id: int, version: int, agent_version: str, results: Iterable[Mapping[str, Any]]
    ) -> GateResult:
        """See `Client.gate`."""
        body = _gate.run_body(agent_version, results)
        timeout = max(self.timeout, _gate.GATE_TIMEOUT)
        return GateResult.from_api(
            await self._request("POST", _gate.run_path(dataset_id, version), json=body, timeout=timeout)
        )

    async def request_action(
        self,
        action: str,
        args: Mapping[str, Any],
        *,
        external_id: str | None = None,
        confidence: float | None = None,
        risk_tags: Sequence[str] = (),
        reasoning: str = "",
        end_user_id: str = "",
        conversation_external_id: str = "",
        agent_version: str = "",
        callback_url: str = "",
    ) -> ActionResult:
        """See `Client.request_action`."""
        body = self._action_body(
            action,
            args,
            external_id=external_id,
            confidence=confidence,
            risk_tags=risk_tags,
            reasoning=reasoning,
            end_user_id=end_user_id,
            conversation_external_id=conversation_external_id,
            agent_version=agent_version,
            callback_url=callback_url,
        )
        return ActionResult.from_json(await self._request("POST", "actions", json=body))

    async def get_action(self, action_id: int | ActionResult, *, wait: int = 0) -> ActionResult:
        """See `Client.get_action`."""
        action_id = action_id.id if isinstance(action_id, ActionResult) else action_id
        params = {"wait": wait} if wait > 0 else None
        timeout = wait + _core.WAIT_GRACE_SECONDS if wait > 0 else None
        body = await self._request("GET", f"actions/{int(action_id)}", params=params, timeout=timeout)
        return ActionResult.from_json(body)

    async def wait(self, action_id: int | ActionResult, timeout: float = DEFAULT_WAIT) -> ActionResult:
        """See `Client.wait`. Holds no thread while waiting."""
        if isinstance(action_id, ActionResult) and not action_id.pending:
            return action_id
        deadline = self._clock() + timeout
        last: ActionResult | None = None
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            started = self._clock()
            last = await self.get_action(action_id, wait=_core.wait_step(remaining))
            if not last.pending:
                return last
            pause = _core.poll_pause(started=started, now=self._clock(), deadline=deadline)
            if pause > 0:
                await self._sleep(pause)
        ident = action_id.id if isinstance(action_id, ActionResult) else action_id
        raise ApprovalTimeout(f"Action {ident} is still pending after {timeout:g} s; not running it.", last)

    def require_approval(
        self,
        action: str,
        *,
        confidence: Valued = None,
        args_from: ArgsFrom | None = None,
        timeout: float = DEFAULT_WAIT,
        risk_tags: Valued = (),
        reasoning: Valued = "",
        end_user_id: Valued = "",
        conversation_external_id: Valued = "",
        agent_version: Valued = "",
        callback_url: Valued = "",
    ) -> Callable[[F], F]:
        """See `Client.require_approval`; for `async def` functions."""

        def decorate(func: F) -> F:
            if not inspect.iscoroutinefunction(func):
                raise TypeError(f"{func.__qualname__} is not async: use Client.require_approval for it.")
            spec = self._spec(
                action,
                func,
                confidence=confidence,
                args_from=args_from,
                timeout=timeout,
                risk_tags=risk_tags,
                reasoning=reasoning,
                end_user_id=end_user_id,
                conversation_external_id=conversation_external_id,
                agent_version=agent_version,
                callback_url=callback_url,
            )

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                prepared: PreparedCall = spec.call(args, kwargs)
                result = await self.request_action(**prepared.request)
                if result.pending:
                    result = await self.wait(result, timeout=spec.timeout)
                call_args, call_kwargs = prepared.approved_call(result)
                return await func(*call_args, **call_kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate
