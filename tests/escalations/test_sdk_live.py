"""The Python client (clients/python) against the real app on a live server: conversations and
judge scores, an action the policy approves, one that escalates and an approver decides from
another thread through the decision API (approve with an edit, reject), and the
`require_approval` decorator, sync and async.

The client is not installed in the app's virtualenv: it is imported from its source tree, as
its own tests do. The approver works like a person at the inbox: they list pending actions
over the API until the agent's request shows up, then decide it, while the agent waits.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.urls import NoReverseMatch, reverse

from escalations.models import Action
from reviewapp import services as core_services
from reviewapp.models import Conversation, JudgeScore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))

from reviewapp_client import (
    ActionRejected,
    AsyncClient,
    Client,
    Conflict,
    args_digest,
)


def _server_routes_missing() -> str | None:
    """The endpoints these tests drive, by URL name: which is missing, if any."""
    for name, args in (("api:actions", []), ("api:action-decision", [1]), ("api:policy", [])):
        try:
            reverse(name, args=args)
        except NoReverseMatch:
            return name
    return None


_missing = _server_routes_missing()
pytestmark = pytest.mark.skipif(
    _missing is not None,
    reason=f"the escalations API is not in this checkout yet ({_missing} does not resolve)",
)

POLICY = {
    "project": "support",
    "rules": [
        {"name": "fraud", "if": {"risk_tags_any": ["fraud"]}, "then": "reject", "reason": "fraud suspected"},
        {
            "name": "small sure refunds",
            "if": {
                "action": "refund",
                "confidence_at_least": 0.9,
                "args": [{"path": "amount", "op": "<=", "value": 50}],
            },
            "then": "approve",
            "reason": "small and sure",
        },
    ],
    "default_ladder": "default",
}
# Long enough for a slow CI machine; the tests end as soon as the decision is made.
WAIT = 30


@pytest.fixture
def setup(live_server, project, member):
    """The live server's origin, the agent's key, an approver's token, with a policy."""
    key = core_services.api_key_create(project=project, name="sdk agent").raw
    engineer = member("engineer", username="eng")
    approver = member("approver", username="alice")
    engineer_token = core_services.personal_token_create(user=engineer, organization=project.organization).raw
    approver_token = core_services.personal_token_create(user=approver, organization=project.organization).raw
    answer = httpx.post(
        f"{live_server.url}/api/v1/policy", json=POLICY, headers={"Authorization": f"Bearer {engineer_token}"}
    )
    assert answer.status_code == 201, answer.text
    return {"url": live_server.url, "key": key, "approver_token": approver_token}


@pytest.fixture
def client(setup):
    with Client(setup["url"], setup["key"], timeout=WAIT + 15) as c:
        yield c


def _send(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request of the approver, tried again on a 5xx. The SQLite test database is in
    memory with a shared cache, where a statement that meets another thread's lock fails at
    once ("database table is locked") instead of waiting as a file database does; the agent's
    side retries such answers itself (the client retries 5xx). A decision that failed so was
    rolled back, so sending it again is safe."""
    for _attempt in range(20):
        answer = http.request(method, url, **kwargs)
        if answer.status_code < 500:
            return answer
        time.sleep(0.1)
    answer.raise_for_status()
    return answer


class Approver(threading.Thread):
    """A person at the inbox, in another thread: waits for the next pending action (of
    `action` and not seen before), then decides it with `body`. The outcome is in `.answer`
    (the decision API's response) or `.error`."""

    def __init__(self, setup: dict[str, Any], body: dict[str, Any], *, action: str = "refund", delay: float = 0.3):
        super().__init__(daemon=True)
        self.setup = setup
        self.body = body
        self.action = action
        self.delay = delay
        self.answer: httpx.Response | None = None
        self.decided_id: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            headers = {"Authorization": f"Bearer {self.setup['approver_token']}"}
            with httpx.Client(base_url=self.setup["url"], headers=headers, timeout=10) as http:
                deadline = time.monotonic() + WAIT
                while time.monotonic() < deadline:
                    listed = _send(http, "GET", "/api/v1/actions", params={"status": "pending", "action": self.action})
                    pending = listed.json()["results"]
                    if pending:
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError("no pending action showed up")
                self.decided_id = pending[0]["id"]
                # Let the agent get into its long poll first: the decision must wake it.
                time.sleep(self.delay)
                self.answer = _send(http, "POST", f"/api/v1/actions/{self.decided_id}/decision", json=self.body)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> httpx.Response:
        self.join(WAIT + 5)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error
        assert self.answer is not None and self.answer.status_code == 200, self.answer and self.answer.text
        return self.answer


def test_conversations_and_judge_scores(client, project):
    conversation = {
        "external_id": "sdk-1",
        "messages": [{"role": "user", "content": "Refund my ticket"}, {"role": "assistant", "content": "Done."}],
        "end_user_id": "cust-1",
    }
    first = client.log_conversations([conversation])
    again = client.log_conversations(conversation)
    scores = client.add_judge_scores([{"external_id": "sdk-1", "judge": "j", "criterion": "correctness", "score": 0.2}])

    stored = Conversation.objects.get(project=project, external_id="sdk-1")
    assert [(r.external_id, r.id, r.status) for r in first] == [("sdk-1", stored.pk, "created")]
    assert [r.status for r in again] == ["duplicate"]
    assert [(r.conversation_id, r.status) for r in scores] == [(stored.pk, "created")]
    assert JudgeScore.objects.filter(conversation=stored, judge="j", score=0.2).count() == 1


def test_the_policy_approves_a_small_sure_refund(client, project):
    args = {"order": "A-1", "amount": 40}
    result = client.request_action("refund", args, external_id="ext-1", confidence=0.95, end_user_id="cust-1")

    assert result.status == "approved"
    assert result.decided_by == "policy"
    assert result.matched_rule == "small sure refunds"
    assert result.reason == "small and sure"
    assert result.policy_version == 1
    assert result.final_args == args
    assert result.args_digest == args_digest("refund", args)
    assert result.digest_ok("refund")

    # The same request again is the same action; the same id with other args is refused.
    assert (
        client.request_action("refund", args, external_id="ext-1", confidence=0.95, end_user_id="cust-1").id
        == result.id
    )
    with pytest.raises(Conflict) as caught:
        client.request_action("refund", {**args, "amount": 45}, external_id="ext-1", confidence=0.95)
    assert caught.value.status_code == 409
    assert Action.objects.filter(project=project).count() == 1


def test_an_escalated_action_approved_with_an_edit_from_another_thread(client, setup, project):
    pending = client.request_action("refund", {"order": "A-2", "amount": 400}, confidence=0.6)
    assert pending.pending
    assert pending.tier == 0 and pending.due_at is not None
    assert pending.final_args is None

    approver = Approver(setup, {"decision": "approve", "args": {"order": "A-2", "amount": 200}, "comment": "half"})
    approver.start()
    started = time.monotonic()
    result = client.wait(pending, timeout=WAIT)
    approver.finish()

    assert time.monotonic() - started < WAIT
    assert approver.decided_id == pending.id
    assert result.status == "approved"
    assert result.decided_by == "alice"
    assert result.final_args == {"order": "A-2", "amount": 200}
    assert result.args_digest == args_digest("refund", {"order": "A-2", "amount": 200})
    assert Action.objects.get(pk=pending.id).final_args == {"order": "A-2", "amount": 200}


def test_an_escalated_action_rejected_and_one_the_policy_rejects(client, setup):
    pending = client.request_action("refund", {"order": "A-3", "amount": 900}, confidence=0.3)
    approver = Approver(setup, {"decision": "reject", "comment": "Needs a receipt."})
    approver.start()
    result = client.wait(pending, timeout=WAIT)
    approver.finish()
    assert (result.status, result.comment, result.decided_by) == ("rejected", "Needs a receipt.", "alice")

    refused = client.request_action("refund", {"order": "A-4", "amount": 5}, confidence=0.99, risk_tags=["fraud"])
    assert (refused.status, refused.decided_by, refused.matched_rule) == ("rejected", "policy", "fraud")


def test_decorator_sync(client, setup):
    ran: list[tuple[str, int]] = []

    @client.require_approval("refund", confidence=lambda a: 0.95 if a["amount"] <= 50 else 0.5, timeout=WAIT)
    def refund(order: str, amount: int) -> str:
        ran.append((order, amount))
        return "refunded"

    assert refund("B-1", 20) == "refunded"  # the policy approves at once
    assert ran == [("B-1", 20)]

    approver = Approver(setup, {"decision": "approve", "args": {"order": "B-2", "amount": 150}})
    approver.start()
    assert refund("B-2", 300) == "refunded"  # escalated, approved with an edit
    approver.finish()
    assert ran == [("B-1", 20), ("B-2", 150)]

    approver = Approver(setup, {"decision": "reject", "comment": "Not this customer."})
    approver.start()
    with pytest.raises(ActionRejected) as caught:
        refund("B-3", 300)
    approver.finish()
    assert caught.value.comment == "Not this customer."
    assert ran == [("B-1", 20), ("B-2", 150)]
    assert Action.objects.filter(action="refund").count() == 3


def test_decorator_async(setup):
    ran: list[tuple[str, int]] = []

    async def agent(run: Callable[..., Any]) -> Any:
        async with AsyncClient(setup["url"], setup["key"], timeout=WAIT + 15) as client:

            @client.require_approval("refund", confidence=0.5, timeout=WAIT)
            async def refund(order: str, amount: int) -> str:
                ran.append((order, amount))
                return "refunded"

            return await run(refund)

    approver = Approver(setup, {"decision": "approve", "args": {"order": "C-1", "amount": 80}})
    approver.start()
    assert asyncio.run(agent(lambda refund: refund("C-1", 100))) == "refunded"
    approver.finish()
    assert ran == [("C-1", 80)]

    approver = Approver(setup, {"decision": "reject", "comment": "No."})
    approver.start()
    with pytest.raises(ActionRejected) as caught:
        asyncio.run(agent(lambda refund: refund("C-2", 100)))
    approver.finish()
    assert caught.value.comment == "No."
    assert ran == [("C-1", 80)]
