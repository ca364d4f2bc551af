"""Helpers for the wait tests: pending actions, and deciding one as the decision services do
(status compare-and-set, then `services.action_decided` in the same transaction)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from escalations import services
from escalations.models import Action, ActionStatus, DecidedBy
from reviewapp.models import Project


def pending_action(project: Project, *, external_id: str = "refund-1", **fields) -> Action:
    return Action.objects.create(
        organization=project.organization,
        project=project,
        external_id=external_id,
        action="refund",
        args={"amount": 400},
        confidence=0.4,
        status=ActionStatus.PENDING,
        tier=0,
        tier_entered_at=timezone.now(),
        due_at=timezone.now() + dt.timedelta(minutes=15),
        **fields,
    )


def decide(action_id: int, *, status: str = ActionStatus.APPROVED, publish: bool = True) -> None:
    """Decide a pending action by policy. `publish=False` writes the decision without telling
    anyone, as a process whose publish was lost would: only a status read can see it."""
    with transaction.atomic():
        updated = Action.objects.filter(pk=action_id, status=ActionStatus.PENDING).update(
            status=status,
            decided_by=DecidedBy.POLICY,
            decided_at=timezone.now(),
            reason="test decision",
            final_args={"amount": 400},
            tier=None,
            due_at=None,
        )
        assert updated == 1
        if publish:
            services.action_decided(action=Action.objects.get(pk=action_id))


def decide_all(action_ids: list[int]) -> None:
    """Decide several in one transaction. The SQLite test database is in memory with a shared
    cache, where a reader that meets a writer fails at once instead of waiting (a file in WAL
    mode, as served, does not): waiters woken by the first of several transactions would
    re-read while the next one writes."""
    with transaction.atomic():
        for action_id in action_ids:
            decide(action_id)


@dataclass
class AsgiResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.headers


def asgi_get(raw_key: str | None, path: str, *, host: str = "testserver") -> AsgiResponse:
    """GET `path` through the production ASGI application (reviewapp/asgi.py) in-process, as
    an ASGI server would call it: Django's AsyncClient would use Django's own handler, and so
    not the path that serves waits with no thread held."""
    from reviewapp.asgi import application

    path, _, query = path.partition("?")
    headers = [(b"host", host.encode())]
    if raw_key is not None:
        headers.append((b"authorization", f"Bearer {raw_key}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def run() -> None:
        body_sent = False

        async def receive() -> dict:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client stays connected until cancelled
            raise AssertionError("unreachable")

        async def send(message: dict) -> None:
            sent.append(message)

        await application(scope, receive, send)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return AsgiResponse(
        status_code=start["status"],
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]},
        body=body,
    )
