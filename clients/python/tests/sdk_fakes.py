"""A fake reviewapp behind `httpx.MockTransport`, following the actions contract: idempotent
`POST /api/v1/actions` (200 on a repeat, 409 on a changed payload), `GET ...?wait=N` long
polls on a fake clock, faults injected before or after a request is handled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

API_KEY = "rk_test_0123456789"


def contract_digest(action: str, args: dict[str, Any]) -> str:
    """The digest exactly as the contract words it (kept apart from the client's own)."""
    text = json.dumps({"action": action, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


Decider = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class FakeServer:
    """`decide(body)` answers the policy's verdict for a new action: a dict of fields to
    set (`status`, `final_args`, `comment`, ...). `on_wait(action, wait)` runs on each long
    poll of a pending action and may decide it; if it stays pending the poll takes `wait`
    seconds of the fake clock (unless `wait_takes` says otherwise)."""

    clock: FakeClock = field(default_factory=FakeClock)
    decide: Decider = lambda body: {"status": "approved", "decided_by": "policy"}
    on_wait: Callable[[dict[str, Any], int], None] = lambda action, wait: None
    wait_takes: Callable[[int], float] | None = None
    faults: list[tuple[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    actions: dict[int, dict[str, Any]] = field(default_factory=dict)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    conversations: dict[str, int] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)  # every answer made, lost ones too

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault[0] == "before":
            raise fault[1]
        if fault is not None and fault[0] == "status":
            return httpx.Response(fault[1], json={"message": "Service unavailable.", "errors": {}})
        response = self._route(request)
        self.statuses.append(response.status_code)
        if fault is not None and fault[0] == "after":
            raise fault[1]  # handled, but the answer is lost on the way back
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return httpx.Response(401, json={"message": "Invalid API key.", "errors": {}})
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/actions":
            return self._create(json.loads(request.content))
        if request.method == "GET" and path.startswith("/api/v1/actions/"):
            action = self.actions.get(int(path.rsplit("/", 1)[1]))
            if action is None:
                return httpx.Response(404, json={"message": "Not found.", "errors": {}})
            wait = int(request.url.params.get("wait", "0"))
            if wait and action["status"] == "pending":
                self.on_wait(action, wait)
                if action["status"] == "pending":
                    self.clock.now += self.wait_takes(wait) if self.wait_takes else wait
            return httpx.Response(200, json=action)
        if request.method == "POST" and path == "/api/v1/conversations":
            results = []
            for conv in json.loads(request.content)["conversations"]:
                known = conv["external_id"] in self.conversations
                cid = self.conversations.setdefault(conv["external_id"], len(self.conversations) + 1)
                results.append(
                    {"external_id": conv["external_id"], "id": cid, "status": "duplicate" if known else "created"}
                )
            return httpx.Response(201, json={"results": results})
        if request.method == "POST" and path == "/api/v1/judge-scores":
            results = [
                {
                    "external_id": s["external_id"],
                    "conversation_id": self.conversations[s["external_id"]],
                    "judge": s["judge"],
                    "criterion": s["criterion"],
                    "status": "created",
                }
                for s in json.loads(request.content)["judge_scores"]
            ]
            return httpx.Response(201, json={"results": results})
        return httpx.Response(404, json={"message": "Unknown route.", "errors": {}})

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        if not body.get("external_id"):
            return httpx.Response(400, json={"message": "Invalid action.", "errors": {"external_id": ["Required."]}})
        earlier = self.payloads.get(body["external_id"])
        if earlier is not None:
            if earlier != body:
                field_ = next(k for k in sorted(set(earlier) | set(body)) if earlier.get(k) != body.get(k))
                return httpx.Response(
                    409,
                    json={"message": "external_id was used with another payload.", "errors": {field_: ["Differs."]}},
                )
            action = next(a for a in self.actions.values() if a["external_id"] == body["external_id"])
            return httpx.Response(200, json=action)
        self.payloads[body["external_id"]] = body
        action = {
            "id": len(self.actions) + 1,
            "external_id": body["external_id"],
            "action": body["action"],
            "status": "pending",
            "decided_by": "",
            "reason": "",
            "matched_rule": "",
            "policy_version": 3,
            "final_args": None,
            "args_digest": "",
            "comment": "",
            "due_at": None,
            "tier": None,
        }
        self.actions[action["id"]] = action
        verdict = self.decide(body)
        if verdict.get("status", "pending") == "pending":
            action.update(due_at="2026-01-01T10:15:00Z", tier=0, reason="low confidence", matched_rule="review refunds")
        else:
            decide_action(action, body["args"], **verdict)
        return httpx.Response(201, json=action)

    def action_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST" and r.url.path == "/api/v1/actions"]


def decide_action(action: dict[str, Any], args: dict[str, Any] | None = None, **fields: Any) -> None:
    """Decide `action` as the server would: approved ones carry final args and their digest."""
    action.update(fields)
    if action["status"] == "approved":
        final = fields.get("final_args", args if args is not None else action.get("final_args"))
        action["final_args"] = final
        action.setdefault("args_digest", "")
        if "args_digest" not in fields:
            action["args_digest"] = contract_digest(action["action"], final)
    action["due_at"] = None
    action["tier"] = None
