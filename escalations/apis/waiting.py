"""`GET /api/v1/actions/{id}?wait=N`: answer as soon as the action is decided, or after N
seconds (1..60) with its pending state. `wait=0` answers at once.

Served asynchronously so that a waiting agent holds neither a database connection nor a
thread (docs/architecture.md, "Waiting for a decision"):

- Under ASGI, `reviewapp/asgi.py` hands the requests `is_wait_request` matches to `serve`
  (registered through `hooks.on_long_poll`), outside Django's middleware chain and its
  per-request thread: a sync middleware around an async view runs it through `async_to_sync`
  in a thread blocked for the whole wait. `serve` checks the host and sets the headers the
  skipped middleware would have (SecurityMiddleware's, X-Frame-Options, the CSP, never cached,
  Content-Length) and answers errors in the API's shape. Plain GETs go to the sync view.
- Authentication, the role check, `wait` and the reads are the sync DRF view `ActionWaitApi`,
  run in a small thread pool of this module (`ACTION_WAIT_DB_THREADS` per process, which bounds
  the database connections waits use), each job closing its connection when done: the same
  authenticators, permission class and exception handler as every API view, so 401, 403, 404
  and 400 answer exactly as the plain GET does.
- In between, the request awaits its `escalations.waiting` waiter, with no thread.

Under WSGI (the embedded `manage.py serve`, gthread; Django's test client) the first
middleware, `ActionWaitMiddleware`, serves waits the same way through `async_to_sync`, and a
wait cannot help holding its thread: at most `ACTION_WAIT_THREADED_MAX` (4) wait at once per
process; beyond that the action is answered at once, pending, with `Retry-After: 1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from escalations import selectors, serializers, waiting
from escalations.models import Action, ActionStatus
from reviewapp import validation
from reviewapp.middleware import SecurityHeadersMiddleware
from reviewapp.permissions import principal_of
from reviewapp.principal import Principal

logger = logging.getLogger(__name__)

WAIT_MAX_SECONDS = 60
URLCONF = "escalations.urls_wait"
PATH_PREFIX = "/api/v1/actions/"


# --- reading the action --------------------------------------------------------------------


def _action_get(*, principal: Principal, action_id: int) -> Action:
    """The action, if the caller may see it (the same selector as the plain GET: 404 for
    another organization's or, with a project key, another project's)."""
    return selectors.action_get(organization=principal.organization, action_id=action_id, project=principal.project)


def _action_payload(action: Action) -> dict[str, Any]:
    return serializers.action_payload(action)


@dataclass
class _Pending:
    """What the first read left for the wait: who asked, about which action, for how long."""

    principal: Principal
    action_id: int
    seconds: int


class ActionWaitApi(APIView):
    """The sync half of a wait: authenticate, check the role, parse `wait`, read the action.
    A pending action with a wait ahead leaves `self.pending` for the async half."""

    required_capability = "actions.read"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pending: _Pending | None = None

    def get(self, request: Request, action_id: int) -> Response:
        seconds = validation.parse_int(request.query_params.get("wait"), field="wait", min=0, max=WAIT_MAX_SECONDS)
        principal = principal_of(request)
        action = _action_get(principal=principal, action_id=action_id)
        if action.status == ActionStatus.PENDING and seconds > 0:
            self.pending = _Pending(principal=principal, action_id=action_id, seconds=seconds)
        return Response(_action_payload(action))

    def reread(self) -> tuple[HttpResponse, bool]:
        """The action as it is now, for the same caller (authenticated at the start of the
        wait): the response and whether it is decided."""
        assert self.pending is not None
        try:
            action = _action_get(principal=self.pending.principal, action_id=self.pending.action_id)
            response, decided = Response(_action_payload(action)), action.status != ActionStatus.PENDING
        except Exception as exc:  # gone meanwhile (404), or a database error (500): the API's shape
            response, decided = self.handle_exception(exc), True
        return _rendered(self.finalize_response(self.request, response)), decided

    def release(self) -> None:
        """Break the reference cycles DRF leaves between this view and its request, once the
        wait is over: the view holds its Request (`self.request`), its last response and the
        wait's principal, and the Request's `parser_context` holds the view and the Request
        itself. A plain API request's cycles die young and the cycle collector's first
        generation frees them; a wait's live for its whole wait, long enough to be promoted to
        the oldest generation, which gunicorn.conf.py's thresholds (and its gc.freeze) make
        the collector visit about once in a million allocations. Left as cycles, every answered
        wait kept about 7 KB (the view, both requests, the models of the principal, the query
        dict, the responses) until then, and a worker's memory grew by that much per wait
        (bench/RESULTS.md, "Waits (issue 9)"). Broken here, reference counting frees it all as
        the wait ends."""
        parser_context = getattr(getattr(self, "request", None), "parser_context", None)
        if isinstance(parser_context, dict):
            parser_context.clear()
        self.__dict__.clear()


def _rendered(response: HttpResponse) -> HttpResponse:
    render = getattr(response, "render", None)
    if callable(render):
        response = render()
    # DRF's render puts the response into its own `renderer_context`, which also holds the view
    # (and the view holds the response): a cycle that outlives a long wait (see `release`).
    # Rendered, the response does not need it any more (DRF drops it when pickling one, too).
    if getattr(response, "renderer_context", None) is not None:
        response.renderer_context = None
    return response


def _first_read(request: HttpRequest, action_id: int) -> tuple[ActionWaitApi, HttpResponse]:
    try:
        view = ActionWaitApi()
        view.setup(request, action_id=action_id)
        return view, _rendered(view.dispatch(request, action_id=action_id))
    finally:
        waiting._release_connections()


def _reread(view: ActionWaitApi) -> tuple[HttpResponse, bool]:
    try:
        return view.reread()
    finally:
        waiting._release_connections()


# --- running the sync parts ----------------------------------------------------------------

_executor: ThreadPoolExecutor | None = None
_executor_pid = 0
_executor_lock = threading.Lock()


def _db_executor() -> ThreadPoolExecutor:
    """The threads the async waits read through: a few per process, so a thousand waiters
    arriving together queue for them instead of opening a thousand connections. Created in the
    process that serves (a fork does not inherit threads)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(
                max_workers=settings.ACTION_WAIT_DB_THREADS, thread_name_prefix="reviewapp-action-wait-db"
            )
            _executor_pid = os.getpid()
        return _executor


Runner = Callable[..., Awaitable[Any]]


def _in_pool(func: Callable[..., Any]) -> Runner:
    return sync_to_async(func, thread_sensitive=False, executor=_db_executor())


def _in_request_thread(func: Callable[..., Any]) -> Runner:
    # Under WSGI the request's thread is blocked in async_to_sync for the wait anyway: read in
    # it, as a sync view would (and inside a test's transaction, which a pool thread cannot see).
    return sync_to_async(func, thread_sensitive=True)


class _Slots:
    """A per-process bound on waits in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def take(self, limit: int) -> bool:
        with self._lock:
            if self.taken >= limit:
                return False
            self.taken += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.taken -= 1

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        with self._lock:
            self.taken += 1
        try:
            yield
        finally:
            self.give()


threaded_slots = _Slots()
async_slots = _Slots()
# Waits asleep on their waiter right now (past their first read): what tests wait for.
asleep = _Slots()

# A full collection of the cycle collector every this many waits answered in a process.
COLLECT_EVERY = 100
_answered = itertools.count(1)


def _collect_now_and_then() -> None:
    """Run the cycle collector's full collection after every COLLECT_EVERY-th wait.

    A wait's own objects form no cycle (ActionWaitApi.release), but its connection's may: each
    connection gunicorn's ASGI worker closes leaves its protocol, parser, task and buffers in a
    reference cycle (about 6 KB), and a connection held open by a wait lives long enough to
    reach the oldest generation. gunicorn.conf.py (gc.freeze, thresholds of 10,000) has the
    collector visit that generation about once in a million allocations, some 40,000 closed
    connections, so a worker serving waits grew by each connection's until then (bench/wait.py:
    +6 MB a round of 1,000 waiters). Frozen start-up objects are not scanned, so a full
    collection walks only what is alive now and costs milliseconds; run every 100 waits, it
    holds that garbage to a few MB a process (every 500 still grew 14 MB over 8 rounds).
    Scheduled on the loop, after the answer in hand is on its way, not before it."""
    if next(_answered) % COLLECT_EVERY == 0:
        asyncio.get_running_loop().call_soon(gc.collect)


async def action_wait(request: HttpRequest, action_id: int, *, threaded: bool = False) -> HttpResponse:
    """The wait itself. `threaded`: served under WSGI through async_to_sync, holding a thread."""
    run = _in_request_thread if threaded else _in_pool
    slots, limit = (
        (threaded_slots, settings.ACTION_WAIT_THREADED_MAX)
        if threaded
        else (async_slots, settings.ACTION_WAIT_ASYNC_MAX)
    )
    # A slot first: without one (too many waits here already; ACTION_WAIT_THREADED_MAX=0 on
    # sync production workers) the action is read and answered at once, and nothing of the
    # waiting machinery starts in this process.
    slotted = slots.take(limit)
    hub = waiting.hub()
    # Registered before the first read, so a decision committed between that read and the
    # wait still wakes us.
    waiter = hub.register(action_id) if slotted else None
    view: ActionWaitApi | None = None
    try:
        view, response = await run(_first_read)(request, action_id)
        pending = view.pending
        if pending is None:
            return response
        if waiter is None:
            response["Retry-After"] = "1"  # the pending state now, and when to ask again
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + pending.seconds
        while (remaining := deadline - loop.time()) > 0:
            with asleep.holding():
                woken = await waiter.wait(remaining)
            if not woken:
                break
            response, decided = await run(_reread)(view)
            if decided:
                return response
        # Time is up: answer the state as it is now (a decision whose wake-up was lost within
        # the last status-read interval is still answered as decided).
        response, _ = await run(_reread)(view)
        return response
    finally:
        if view is not None:
            view.release()
        _collect_now_and_then()
        if waiter is not None:
            hub.unregister(waiter)
        if slotted:
            slots.give()


# --- dispatch --------------------------------------------------------------------------------


def wait_action_id(method: str, path: str, query_string: bytes | str) -> int | None:
    """The action id when a request is a wait: a GET with a `wait` parameter on a path of
    urls_wait. Cheap for every other request (a prefix check)."""
    if method != "GET" or not path.startswith(PATH_PREFIX):
        return None
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    if not any(key == "wait" for key, _ in parse_qsl(query_string, keep_blank_values=True)):
        return None
    try:
        match = resolve(path, urlconf=URLCONF)
    except Resolver404:
        return None
    return match.kwargs["action_id"]


def is_wait_request(method: str, path: str, query_string: bytes | str) -> bool:
    return wait_action_id(method, path, query_string) is not None


def _request_action_id(request: HttpRequest) -> int | None:
    return wait_action_id(request.method or "", request.path_info, request.META.get("QUERY_STRING", ""))


def _api_error(status: int, message: str) -> HttpResponse:
    return JsonResponse({"message": message, "errors": {}}, status=status)


# Stateless apart from settings: used for their request and response steps only.
_security = SecurityMiddleware(lambda request: HttpResponse())
_frame_options = XFrameOptionsMiddleware(lambda request: HttpResponse())


def _finish(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The headers every API answer gets from the middleware a wait does not pass through."""
    response = _security.process_response(request, response)
    response = _frame_options.process_response(request, response)
    if not response.streaming and not response.has_header("Content-Length"):
        # As CommonMiddleware sets it: without it the server sends the answer chunked.
        response.headers["Content-Length"] = str(len(response.content))
    return SecurityHeadersMiddleware(lambda _request: response)(request)


async def _serve(request: HttpRequest, action_id: int, *, threaded: bool) -> HttpResponse:
    try:
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware would check it
    except DisallowedHost:
        return _finish(request, _api_error(400, "Bad request."))
    redirect = _security.process_request(request)  # SECURE_SSL_REDIRECT
    if redirect is not None:
        return _finish(request, redirect)
    try:
        response = await action_wait(request, action_id, threaded=threaded)
    except Exception:
        logger.exception("action wait failed: %s", request.path)
        response = _api_error(500, "Internal server error.")
    return _finish(request, response)


async def serve(request: HttpRequest) -> HttpResponse:
    """A wait under ASGI: reviewapp/asgi.py calls this instead of the middleware chain for the
    requests `is_wait_request` matches (hooks.on_long_poll). No thread is held while waiting."""
    action_id = _request_action_id(request)
    assert action_id is not None, "serve() is only called for what is_wait_request matched"
    return await _serve(request, action_id, threaded=False)


class ActionWaitMiddleware:
    """A wait under WSGI (the embedded server, Django's test clients, or an ASGI server given
    Django's own handler rather than reviewapp.asgi): served here, first in MIDDLEWARE, holding
    the request's thread for the wait (bounded by ACTION_WAIT_THREADED_MAX). Every other request
    passes on after a prefix check.

    Sync only on purpose: Django picks a middleware's mode from the middleware inside it, and
    the rest of the chain is sync, so an async-capable one would run sync anyway; and an
    async-only one first in the chain would put every WSGI request through async_to_sync."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        action_id = _request_action_id(request)
        if action_id is None:
            return self.get_response(request)
        return async_to_sync(_serve)(request, action_id, threaded=True)
