"""Deciding actions under concurrency on PostgreSQL: approvers racing each other, four-eyes
tiers, sweepers racing each other and deciders. Each test holds one side inside its
transaction (its row locks taken) and proves from the test's connection that the other side
really met it there: waited on the row lock, or, for the sweep (SKIP LOCKED), passed by
without waiting."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.utils import timezone

from escalations import lock_objects, services
from escalations.models import Action, ActionEvent, ActionStatus, Vote
from escalations.services import notify
from reviewapp.errors import Conflict
from reviewapp.principal import Principal
from tests.concurrency.racing import hold_call, join_all, lock_waiters, start_thread, wait_for, wait_until_blocked
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _person(project, username: str, role: str = "approver") -> Principal:
    user = UserFactory(username=username)
    MembershipFactory(user=user, organization=project.organization, role=role)
    return Principal(organization=project.organization, role=role, user=user)


@pytest.fixture
def decided(monkeypatch) -> list[int]:
    calls: list[int] = []
    lock = threading.Lock()

    def record(*, action):
        with lock:
            calls.append(action.pk)

    monkeypatch.setattr(notify, "action_decided", record)
    return calls


def _race(monkeypatch, first, second) -> dict:
    """`first` runs until it holds the action's row lock and is held there; `second` starts and
    must wait on that lock (checked) before `first` is let go. Both answers (or errors)."""
    hold = hold_call(monkeypatch, lock_objects, "action_lock", thread="first")
    results: dict = {}
    one = start_thread("first", first, results)
    try:
        hold.wait_inside()
        two = start_thread("second", second, results)
        wait_until_blocked(count=1, wait_event="transactionid")  # on first's row lock
        assert results == {}  # neither finished while the lock was held
    finally:
        hold.release()
    join_all(one, two)
    return results


def test_two_approvers_deciding_at_once_exactly_one_wins(monkeypatch, decided):
    project = ProjectFactory()
    action = make_pending_action(project, make_ladder(project, tier(role="approver")))
    alice, bob = _person(project, "alice"), _person(project, "bob")

    results = _race(
        monkeypatch,
        lambda: services.action_decide(principal=alice, action_id=action.pk, decision="approve"),
        lambda: services.action_decide(principal=bob, action_id=action.pk, decision="reject", comment="no"),
    )

    assert results["first"].status == ActionStatus.APPROVED
    assert isinstance(results["second"], Conflict)
    assert results["second"].message.startswith("Already approved by alice at ")
    action.refresh_from_db()
    assert (action.status, action.decided_by_user_id) == (ActionStatus.APPROVED, alice.user.pk)
    assert list(Vote.objects.filter(action=action).values_list("user__username", "decision")) == [("alice", "approve")]
    assert list(ActionEvent.objects.filter(action=action).values_list("kind", flat=True)) == ["voted", "decided"]
    assert decided == [action.pk]


def test_four_eyes_two_people_approving_in_parallel_decide_once(monkeypatch, decided):
    project = ProjectFactory()
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))
    alice, bob = _person(project, "alice"), _person(project, "bob")

    results = _race(
        monkeypatch,
        lambda: services.action_decide(principal=alice, action_id=action.pk, decision="approve"),
        lambda: services.action_decide(principal=bob, action_id=action.pk, decision="approve"),
    )

    # The first counted one approval; the second, after the first committed, saw it: two.
    assert (results["first"].status, results["second"].status) == (ActionStatus.PENDING, ActionStatus.APPROVED)
    action.refresh_from_db()
    assert (action.status, action.reason) == (ActionStatus.APPROVED, "Approved by alice, bob")
    assert list(ActionEvent.objects.filter(action=action).values_list("kind", flat=True)) == [
        "voted",
        "voted",
        "decided",
    ]
    assert decided == [action.pk]


def test_four_eyes_one_person_approving_from_two_tabs_counts_once(monkeypatch, decided):
    project = ProjectFactory()
    action = make_pending_action(project, make_ladder(project, tier(role="approver", approvals_required=2)))
    alice = _person(project, "alice")

    results = _race(
        monkeypatch,
        lambda: services.action_decide(principal=alice, action_id=action.pk, decision="approve"),
        lambda: services.action_decide(principal=alice, action_id=action.pk, decision="approve"),
    )

    assert results["first"].status == ActionStatus.PENDING
    assert isinstance(results["second"], Conflict)
    assert results["second"].message == "You already approved this action."
    assert Action.objects.get(pk=action.pk).status == ActionStatus.PENDING
    assert Vote.objects.filter(action=action).count() == 1
    assert decided == []


def test_two_sweepers_never_process_one_action_twice(monkeypatch):
    """Sweeper one is held holding its first chunk's row locks; sweeper two runs meanwhile,
    passes those rows by without waiting (SKIP LOCKED) and moves all the others. Then one
    finishes its chunk. Every action climbed exactly once."""
    project = ProjectFactory()
    ladder = make_ladder(project, tier(role="approver"), tier(role="admin", timeout_seconds=3600))
    start = timezone.now() - dt.timedelta(hours=1)
    actions = [make_pending_action(project, ladder, now=start) for _ in range(120)]
    now = timezone.now()
    hold = hold_call(monkeypatch, lock_objects, "due_actions_lock", thread="one")
    results: dict = {}

    one = start_thread("one", lambda: services.actions_timeout_sweep(now=now), results)
    try:
        hold.wait_inside()
        two = start_thread("two", lambda: services.actions_timeout_sweep(now=now), results)
        assert wait_for(lambda: "two" in results), "sweeper two never finished while one held its chunk"
        assert lock_waiters() == []
        assert "one" not in results
    finally:
        hold.release()
    join_all(one, two)

    assert (results["one"], results["two"]) == (50, 70)
    ids = [a.pk for a in actions]
    assert set(Action.objects.filter(pk__in=ids).values_list("tier", flat=True)) == {1}
    for kind in ("timed_out", "tier_entered"):
        per_action = list(ActionEvent.objects.filter(kind=kind).values_list("action_id", flat=True))
        assert sorted(per_action) == sorted(ids), kind


def test_the_sweep_passes_over_a_decision_in_progress_and_takes_it_next_time(monkeypatch):
    project = ProjectFactory()
    ladder = make_ladder(project, tier(role="approver", approvals_required=2), tier(role="admin", timeout_seconds=3600))
    # Not yet due for the decider (a decision past the deadline applies the timeout itself);
    # due for the sweep, which runs an hour later by its own clock.
    action = make_pending_action(project, ladder, now=timezone.now())
    later = timezone.now() + dt.timedelta(hours=1)
    alice = _person(project, "alice")
    hold = hold_call(monkeypatch, lock_objects, "action_lock", thread="decide")
    results: dict = {}

    decide = start_thread(
        "decide", lambda: services.action_decide(principal=alice, action_id=action.pk, decision="approve"), results
    )
    try:
        hold.wait_inside()
        sweep = start_thread("sweep", lambda: services.actions_timeout_sweep(now=later), results)
        assert wait_for(lambda: "sweep" in results), "the sweep waited on the decision's row lock"
        assert lock_waiters() == []
    finally:
        hold.release()
    join_all(decide, sweep)

    assert results["sweep"] == 0
    assert results["decide"].status == ActionStatus.PENDING  # one approval of two
    # Still pending and due: the next sweep moves it on.
    assert services.actions_timeout_sweep(now=later) == 1
    assert Action.objects.get(pk=action.pk).tier == 1


def test_an_approval_racing_the_last_timeout_loses_to_it(monkeypatch, decided):
    """The sweep locks the action first and expires it; the approval waited on the row lock,
    then reads the expired action and is refused. Never both."""
    project = ProjectFactory()
    action = make_pending_action(
        project, make_ladder(project, tier(role="approver")), now=timezone.now() - dt.timedelta(hours=1)
    )
    alice = _person(project, "alice")
    hold = hold_call(monkeypatch, lock_objects, "due_actions_lock", thread="first")
    results: dict = {}

    one = start_thread("first", lambda: services.actions_timeout_sweep(), results)
    try:
        hold.wait_inside()
        two = start_thread(
            "second", lambda: services.action_decide(principal=alice, action_id=action.pk, decision="approve"), results
        )
        wait_until_blocked(count=1, wait_event="transactionid")
        assert results == {}
    finally:
        hold.release()
    join_all(one, two)

    assert results["first"] == 1
    assert isinstance(results["second"], Conflict)
    assert results["second"].message.startswith("Already expired: nobody decided before its last tier timed out")
    action.refresh_from_db()
    assert (action.status, action.decided_by) == (ActionStatus.EXPIRED, "timeout")
    assert not Vote.objects.filter(action=action).exists()
    assert decided == [action.pk]


def test_two_claimers_at_once_the_second_is_told_who_holds_it(monkeypatch):
    project = ProjectFactory()
    action = make_pending_action(project, make_ladder(project, tier(role="approver")))
    alice, bob = _person(project, "alice"), _person(project, "bob")

    results = _race(
        monkeypatch,
        lambda: services.action_claim(principal=alice, action_id=action.pk),
        lambda: services.action_claim(principal=bob, action_id=action.pk),
    )

    assert results["first"].claimed_by_id == alice.user.pk
    assert isinstance(results["second"], Conflict)
    assert results["second"].message.startswith("Already claimed by alice at ")
    assert Action.objects.get(pk=action.pk).claimed_by_id == alice.user.pk
    assert list(ActionEvent.objects.filter(action=action).values_list("kind", "actor_user__username")) == [
        ("claimed", "alice")
    ]


def test_a_decision_past_the_deadline_and_the_sweep_apply_the_timeout_once(monkeypatch):
    """The decider holds the overdue action's row lock; the sweep passes over it; the decider
    applies the tier's timeout itself (climbs) and decides at the new tier. The timeout is
    applied once, by whoever held the lock."""
    project = ProjectFactory()
    ladder = make_ladder(project, tier(role="approver"), tier(role="approver", timeout_seconds=3600))
    action = make_pending_action(project, ladder, now=timezone.now() - dt.timedelta(hours=1))
    alice = _person(project, "alice")
    hold = hold_call(monkeypatch, lock_objects, "action_lock", thread="decide")
    results: dict = {}

    decide = start_thread(
        "decide", lambda: services.action_decide(principal=alice, action_id=action.pk, decision="approve"), results
    )
    try:
        hold.wait_inside()
        sweep = start_thread("sweep", lambda: services.actions_timeout_sweep(), results)
        assert wait_for(lambda: "sweep" in results), "the sweep waited on the decision's row lock"
        assert lock_waiters() == []
    finally:
        hold.release()
    join_all(decide, sweep)

    assert results["sweep"] == 0  # passed over the held row: the race happened
    assert (results["decide"].status, results["decide"].tier) == (ActionStatus.APPROVED, 1)
    kinds = list(ActionEvent.objects.filter(action=action).values_list("kind", flat=True))
    assert kinds == ["timed_out", "tier_entered", "voted", "decided"]
    assert list(Vote.objects.filter(action=action).values_list("tier", flat=True)) == [1]
    assert services.actions_timeout_sweep() == 0
