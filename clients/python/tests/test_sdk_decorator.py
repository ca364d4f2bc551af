"""`@client.require_approval` (blocking): the call runs only when approved, with the approved
args, after the digest check; it never runs otherwise."""

from __future__ import annotations

import httpx
import pytest
from sdk_fakes import contract_digest, decide_action

from reviewapp_client import (
    ActionRejected,
    ApprovalTimeout,
    ArgsNotApplicable,
    DigestMismatch,
    NetworkError,
)


@pytest.fixture
def ran():
    return []


@pytest.fixture
def refund(client, ran):
    @client.require_approval("refund", confidence=0.93, end_user_id=lambda a: a["customer"], timeout=120)
    def refund(customer: str, amount: float, currency: str = "EUR") -> str:
        """Refund a customer."""
        ran.append((customer, amount, currency))
        return f"refunded {amount} {currency} to {customer}"

    return refund


def test_auto_approved_runs_at_once_with_the_final_args(refund, server, ran):
    assert refund("cust-1", 40) == "refunded 40 EUR to cust-1"

    (body,) = server.action_bodies()
    assert body["action"] == "refund"
    assert body["args"] == {"customer": "cust-1", "amount": 40, "currency": "EUR"}  # defaults included
    assert body["confidence"] == 0.93
    assert body["end_user_id"] == "cust-1"
    assert ran == [("cust-1", 40, "EUR")]
    assert [r.method for r in server.requests] == ["POST"]  # decided: no waiting
    assert refund.__name__ == "refund" and refund.__doc__ == "Refund a customer."


def test_each_call_is_a_new_action_with_a_fresh_external_id(refund, server):
    refund("cust-1", 40)
    refund("cust-1", 40)
    first, second = server.action_bodies()
    assert first["args"] == second["args"]
    assert first["external_id"] != second["external_id"]
    assert len(server.actions) == 2


def test_escalated_then_approved_with_an_edit_runs_the_edited_args(refund, server, ran):
    server.decide = lambda body: {"status": "pending"}

    def approver_halves_the_amount(action, wait):
        decide_action(
            action,
            status="approved",
            decided_by="alice",
            final_args={"customer": "cust-1", "amount": 20, "currency": "EUR"},
            comment="half is fair",
        )

    server.on_wait = approver_halves_the_amount

    assert refund("cust-1", 40) == "refunded 20 EUR to cust-1"
    assert ran == [("cust-1", 20, "EUR")]
    assert [r.method for r in server.requests] == ["POST", "GET"]


def test_a_digest_that_does_not_match_the_final_args_runs_nothing(refund, server, ran):
    # The approved args were altered on the way: the digest is of the original request.
    server.decide = lambda body: {
        "status": "approved",
        "final_args": {**body["args"], "amount": 4000},
        "args_digest": contract_digest("refund", body["args"]),
    }
    with pytest.raises(DigestMismatch) as caught:
        refund("cust-1", 40)
    assert caught.value.result is not None and caught.value.result.final_args["amount"] == 4000
    assert ran == []


def test_a_digest_for_another_action_runs_nothing(refund, server, ran):
    server.decide = lambda body: {
        "status": "approved",
        "final_args": body["args"],
        "args_digest": contract_digest("payout", body["args"]),
    }
    with pytest.raises(DigestMismatch):
        refund("cust-1", 40)
    assert ran == []


def test_approved_without_a_digest_runs_nothing(refund, server, ran):
    server.decide = lambda body: {"status": "approved", "final_args": body["args"], "args_digest": ""}
    with pytest.raises(DigestMismatch):
        refund("cust-1", 40)
    assert ran == []


def test_rejected_by_a_person_raises_with_the_comment(refund, server, ran):
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(
        action, status="rejected", decided_by="bob", comment="Refunds over 30 need a receipt."
    )

    with pytest.raises(ActionRejected) as caught:
        refund("cust-1", 40)

    assert caught.value.comment == "Refunds over 30 need a receipt."
    assert caught.value.result.status == "rejected"
    assert caught.value.result.decided_by == "bob"
    assert "Refunds over 30 need a receipt." in str(caught.value)
    assert ran == []


def test_rejected_by_the_policy_raises_without_waiting(refund, server, ran):
    server.decide = lambda body: {"status": "rejected", "decided_by": "policy", "reason": "blocked country"}
    with pytest.raises(ActionRejected) as caught:
        refund("cust-1", 40)
    assert caught.value.comment == ""
    assert "blocked country" in str(caught.value)
    assert len(server.requests) == 1
    assert ran == []


def test_expired_on_the_ladder_raises_action_rejected(refund, server, ran):
    server.decide = lambda body: {"status": "pending"}
    server.on_wait = lambda action, wait: decide_action(action, status="expired", decided_by="timeout")
    with pytest.raises(ActionRejected) as caught:
        refund("cust-1", 40)
    assert caught.value.result.status == "expired"
    assert ran == []


def test_still_pending_after_the_timeout_fails_closed(refund, server, ran):
    server.decide = lambda body: {"status": "pending"}
    with pytest.raises(ApprovalTimeout) as caught:
        refund("cust-1", 40)
    assert caught.value.result.status == "pending"
    assert [r.url.params.get("wait") for r in server.requests if r.method == "GET"] == ["60", "60"]
    assert ran == []


def test_an_unknown_status_is_not_an_approval(refund, server, ran):
    server.decide = lambda body: {"status": "cancelled"}
    with pytest.raises(ActionRejected):
        refund("cust-1", 40)
    assert ran == []


def test_a_network_failure_runs_nothing_and_makes_one_action(client, server, ran):
    @client.require_approval("refund")
    def refund(amount: int) -> None:
        ran.append(amount)

    server.faults = [("after", httpx.ReadTimeout("lost")), ("before", httpx.ConnectError("refused"))]
    refund(5)
    bodies = server.action_bodies()
    assert len(bodies) == 3 and len({b["external_id"] for b in bodies}) == 1
    assert len(server.actions) == 1
    assert ran == [5]

    server.faults = [("before", httpx.ConnectError("refused"))] * 4
    with pytest.raises(NetworkError):
        refund(6)
    assert ran == [5]


def test_confidence_and_other_fields_may_be_callables_of_the_call(client, server):
    seen = []

    def confidence(arguments):
        seen.append(dict(arguments))
        return 0.99 if arguments["amount"] < 50 else 0.5

    @client.require_approval(
        "refund",
        confidence=confidence,
        risk_tags=lambda a: ["money"] if a["amount"] > 10 else [],
        reasoning="asked twice",
        agent_version="v7",
    )
    def refund(customer: str, amount: int) -> None:
        pass

    refund("cust-1", 40)
    refund(customer="cust-2", amount=400)
    first, second = server.action_bodies()
    assert seen == [{"customer": "cust-1", "amount": 40}, {"customer": "cust-2", "amount": 400}]
    assert (first["confidence"], second["confidence"]) == (0.99, 0.5)
    assert first["risk_tags"] == ["money"] and first["reasoning"] == "asked twice" and first["agent_version"] == "v7"


def test_args_from_chooses_what_is_sent_and_keeps_the_rest_of_the_call(client, server, ran):
    class Session:  # not JSON: must not be sent
        pass

    session = Session()

    @client.require_approval("refund", args_from=lambda a: {"order_id": a["order_id"], "amount": a["amount"]})
    def refund(session: Session, order_id: str, amount: int) -> None:
        ran.append((session, order_id, amount))

    server.decide = lambda body: {"status": "approved", "final_args": {**body["args"], "amount": 15}}
    refund(session, "A-1", 30)

    (body,) = server.action_bodies()
    assert body["args"] == {"order_id": "A-1", "amount": 30}
    assert ran == [(session, "A-1", 15)]  # the approver's edit applied, the session untouched


@pytest.mark.parametrize(("sent", "approved"), [(1, 1.0), (True, 1), (1, True), (0, False), ([1], [1.0])])
def test_args_from_an_edit_python_calls_equal_is_still_an_edit(client, server, ran, sent, approved):
    # 1 == 1.0 == True in Python, but the approver's JSON (and its digest) differ: the function
    # must run with what was approved, not keep the call's own value.
    @client.require_approval("refund", args_from=lambda a: {"order_id": a["order_id"], "amount": a["amount"]})
    def refund(order_id: str, amount) -> None:
        ran.append((order_id, amount))

    server.decide = lambda body: {"status": "approved", "final_args": {**body["args"], "amount": approved}}
    refund("A-1", sent)

    ((order_id, amount),) = ran
    assert order_id == "A-1"
    assert (amount, type(amount)) == (approved, type(approved))


def test_args_from_an_unchanged_arg_keeps_the_calls_own_object(client, server, ran):
    amounts = (30, 40)  # a tuple goes out as a JSON list and comes back a list: unchanged

    @client.require_approval("refund", args_from=lambda a: {"order_id": a["order_id"], "amount": a["amount"]})
    def refund(order_id: str, amount) -> None:
        ran.append(amount)

    server.decide = lambda body: {"status": "approved", "final_args": body["args"]}
    refund("A-1", amounts)

    assert ran == [amounts] and ran[0] is amounts


def test_an_edit_to_a_derived_arg_that_names_no_parameter_runs_nothing(client, server, ran):
    @client.require_approval("refund", args_from=lambda a: {"order_id": a["order"]["id"], "amount": a["amount"]})
    def refund(order: dict, amount: int) -> None:
        ran.append((order, amount))

    server.decide = lambda body: {"status": "approved", "final_args": {"order_id": "B-2", "amount": 30}}
    with pytest.raises(ArgsNotApplicable, match="'order_id'"):
        refund({"id": "A-1"}, 30)
    assert ran == []


def test_an_approver_adding_an_unknown_arg_runs_nothing(refund, server, ran):
    server.decide = lambda body: {"status": "approved", "final_args": {**body["args"], "note": "x"}}
    with pytest.raises(ArgsNotApplicable, match="'note'"):
        refund("cust-1", 40)
    assert ran == []


def test_an_approver_removing_an_optional_arg_gets_its_default(refund, server, ran):
    server.decide = lambda body: {"status": "approved", "final_args": {"customer": "cust-1", "amount": 40}}
    refund("cust-1", 40, currency="USD")
    assert ran == [("cust-1", 40, "EUR")]


def test_an_approver_removing_a_required_arg_runs_nothing(refund, server, ran):
    server.decide = lambda body: {"status": "approved", "final_args": {"customer": "cust-1"}}
    with pytest.raises(ArgsNotApplicable, match="'amount'"):
        refund("cust-1", 40)
    assert ran == []


def test_var_args_and_kwargs_round_trip(client, server, ran):
    @client.require_approval("bulk_refund")
    def bulk(reason: str, *orders: str, **extra: int) -> None:
        ran.append((reason, orders, extra))

    server.decide = lambda body: {
        "status": "approved",
        "final_args": {"reason": "storm", "orders": ["A-1"], "cap": 50},  # dropped one order and `fee`
    }
    bulk("storm", "A-1", "A-2", cap=100, fee=3)

    (body,) = server.action_bodies()
    assert body["args"] == {"reason": "storm", "orders": ["A-1", "A-2"], "cap": 100, "fee": 3}
    assert ran == [("storm", ("A-1",), {"cap": 50})]


def test_methods_do_not_send_self(client, server, ran):
    class Agent:
        @client.require_approval("refund")
        def refund(self, amount: int) -> None:
            ran.append((self, amount))

    agent = Agent()
    agent.refund(7)
    assert server.action_bodies()[0]["args"] == {"amount": 7}
    assert ran == [(agent, 7)]


def test_args_that_are_not_json_fail_before_any_request(refund, server, ran):
    with pytest.raises(TypeError, match="args_from"):
        refund("cust-1", object())
    with pytest.raises(TypeError):
        refund("cust-1", float("inf"))
    assert server.requests == [] and ran == []


def test_a_wrong_call_is_a_type_error_as_without_the_decorator(refund, server):
    with pytest.raises(TypeError):
        refund("cust-1")
    assert server.requests == []


def test_async_functions_need_the_async_client(client):
    with pytest.raises(TypeError, match="AsyncClient"):

        @client.require_approval("refund")
        async def refund(amount: int) -> None:
            pass
