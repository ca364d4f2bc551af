"""Action requests and policy versions racing on PostgreSQL. Each test holds one side inside its
transaction, after its insert (and its locks), and proves the other side waited on that lock
before it asserts the outcome."""

from __future__ import annotations

import pytest

from escalations import services
from escalations.models import Action, ActionEvent, PolicyVersion
from escalations.services import actions as action_services
from reviewapp import services as core_services
from reviewapp.errors import Conflict
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_until_blocked
from tests.escalations.factories import NOW, ladder_create, policy_create, refund_policy, request, request_body
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(monkeypatch, first, second, *, wait_event: str) -> dict:
    """`first` runs until its action and trail are inserted (its locks held), and is held
    there (in `_follow_up`, right after the insert); `second` starts and must be seen waiting
    on a lock of kind `wait_event`."""
    hold = hold_call(monkeypatch, action_services, "_follow_up", thread="first")
    results: dict = {}
    one = start_thread("first", first, results)
    try:
        hold.wait_inside()
        two = start_thread("second", second, results)
        wait_until_blocked(count=1, wait_event=wait_event)
        assert "second" not in results  # it is waiting, not done
    finally:
        hold.release()
    join_all(one, two)
    return results


def _ask(project, body):
    # No callback_url: these tests commit, and a decision's webhook would then be sent.
    body = {**body, "callback_url": ""}
    return lambda: services.action_request(principal=None, project=project, data=body, now=NOW)


def test_two_identical_requests_racing_make_one_action(monkeypatch):
    project = ProjectFactory()
    policy_create(project, [{"then": "approve"}])
    body = request_body()

    results = _race(monkeypatch, _ask(project, body), _ask(project, body), wait_event="transactionid")

    (first, first_created), (second, second_created) = results["first"], results["second"]
    assert (first_created, second_created) == (True, False)
    assert first.pk == second.pk
    assert Action.objects.count() == 1
    assert ActionEvent.objects.count() == 2


def test_a_different_request_racing_on_the_same_external_id_is_a_conflict(monkeypatch):
    project = ProjectFactory()
    policy_create(project, [{"then": "approve"}])

    results = _race(
        monkeypatch,
        _ask(project, request_body()),
        _ask(project, request_body(args={"amount": 9999})),
        wait_event="transactionid",
    )

    assert results["first"][1] is True
    assert isinstance(results["second"], Conflict)
    assert list(results["second"].errors) == ["args"]
    assert list(Action.objects.values_list("args", flat=True)) == [request_body()["args"]]


def test_two_refunds_to_one_customer_at_once_are_counted_in_each_others_window(monkeypatch):
    """Without the velocity lock both would see only the first $400 and both be approved."""
    project = ProjectFactory()
    refund_policy(project)
    assert request(project, request_body("r-0", callback_url="")).status == "approved"

    results = _race(
        monkeypatch,
        _ask(project, request_body("r-1")),
        _ask(project, request_body("r-2")),
        wait_event="advisory",
    )

    assert (results["first"][0].status, results["second"][0].status) == ("approved", "pending")
    assert results["second"][0].matched_rule == "refund velocity"


def test_another_customers_refund_does_not_wait_for_the_velocity_lock(monkeypatch):
    project = ProjectFactory()
    refund_policy(project)
    hold = hold_call(monkeypatch, action_services, "_follow_up", thread="first")
    results: dict = {}
    one = start_thread("first", _ask(project, request_body("r-1", end_user_id="a")), results)
    try:
        hold.wait_inside()
        two = start_thread("second", _ask(project, request_body("r-2", end_user_id="b")), results)
        join_all(two)  # finishes while the first is still held
        assert results["second"][0].status == "approved"
    finally:
        hold.release()
    join_all(one)


def test_two_policy_versions_saved_at_once_get_the_next_two_numbers(monkeypatch):
    project = ProjectFactory()
    ladder_create(project)
    hold = hold_call(monkeypatch, core_services, "audit_event_record", thread="first")
    results: dict = {}

    def save(rules):
        return lambda: services.policy_version_create(principal=None, project=project, data={"rules": rules})

    one = start_thread("first", save([{"then": "approve"}]), results)
    try:
        hold.wait_inside()
        two = start_thread("second", save([{"then": "reject"}]), results)
        wait_until_blocked(count=1, wait_event="transactionid")
        assert "second" not in results
    finally:
        hold.release()
    join_all(one, two)

    assert (results["first"].version, results["second"].version) == (1, 2)
    stored = dict(PolicyVersion.objects.values_list("version", "rules"))
    assert [rule["then"] for rule in stored[1]] == ["approve"]
    assert [rule["then"] for rule in stored[2]] == ["reject"]
