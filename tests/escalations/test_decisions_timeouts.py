"""Tier timeouts and claims: driven by the real task (escalations.tasks.actions_timeout_sweep,
run in-process, or by a real worker) with the services' clock pinned."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from escalations import services, tasks
from escalations.models import Action, ActionEvent, ActionStatus, DecidedBy
from escalations.services import decisions, notify
from reviewapp.errors import ApplicationError, Conflict
from reviewapp.principal import Principal
from reviewapp.schedules import BEAT_SCHEDULE
from tests.escalations.factories_decisions import make_ladder, make_pending_action, tier

NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(NOW)
    monkeypatch.setattr(decisions, "clock", clock)
    return clock


@pytest.fixture
def notified(monkeypatch):
    calls: list[tuple[str, int, int | None, str]] = []
    monkeypatch.setattr(
        notify, "action_decided", lambda *, action: calls.append(("decided", action.pk, action.tier, action.status))
    )
    monkeypatch.setattr(
        notify,
        "action_tier_entered",
        lambda *, action: calls.append(("tier_entered", action.pk, action.tier, action.status)),
    )
    return calls


@pytest.fixture
def person(org, member):
    def make(username: str, role: str = "approver") -> Principal:
        return Principal(organization=org, role=role, user=member(role, username=username))

    return make


def _ladder(project):
    return make_ladder(
        project,
        tier(role="approver", timeout_seconds=900),
        tier(users=("lead", "cfo"), timeout_seconds=3600, approvals_required=2),
        name="finance",
    )


def _sweep() -> int:
    return tasks.actions_timeout_sweep.delay().get()


def test_the_beat_schedule_runs_the_sweep_every_15_seconds():
    entry = BEAT_SCHEDULE["escalations-actions-timeout"]
    assert entry == {"task": "escalations.tasks.actions_timeout_sweep", "schedule": dt.timedelta(seconds=15)}
    assert tasks.actions_timeout_sweep.name == entry["task"]


def test_a_due_action_climbs_a_tier_then_expires(project, clock, notified):
    action = make_pending_action(project, _ladder(project), now=NOW)
    other = make_pending_action(project, _ladder(project), now=NOW + dt.timedelta(minutes=5))

    clock.advance(899)
    assert _sweep() == 0  # one second early: nothing moves
    assert Action.objects.get(pk=action.pk).tier == 0

    clock.advance(1)
    assert _sweep() == 1
    action.refresh_from_db()
    assert (action.status, action.tier, action.tier_entered_at, action.due_at) == (
        ActionStatus.PENDING,
        1,
        NOW + dt.timedelta(seconds=900),
        NOW + dt.timedelta(seconds=900 + 3600),
    )
    assert Action.objects.get(pk=other.pk).tier == 0  # due five minutes later
    assert notified == [("tier_entered", action.pk, 1, "pending")]
    assert [(e.kind, e.data) for e in ActionEvent.objects.filter(action=action)] == [
        ("timed_out", {"tier": 0}),
        ("tier_entered", {"tier": 1, "due_at": (NOW + dt.timedelta(seconds=4500)).isoformat()}),
    ]

    clock.advance(3600)
    assert _sweep() == 2  # the first past its last tier, the second up to tier 1
    action.refresh_from_db()
    assert (action.status, action.decided_by, action.decided_by_user, action.decided_at) == (
        ActionStatus.EXPIRED,
        DecidedBy.TIMEOUT,
        None,
        NOW + dt.timedelta(seconds=4500),
    )
    assert action.final_args is None  # fail closed: nothing to run
    assert action.reason == "Nobody decided in time: the last tier timed out (timeout outcome: reject)."
    # Oldest due first: `other` was due at tier 0 since 09:20.
    assert notified[1:] == [("tier_entered", other.pk, 1, "pending"), ("decided", action.pk, 1, "expired")]
    assert [e.kind for e in ActionEvent.objects.filter(action=action)][2:] == ["timed_out", "decided"]

    clock.advance(10 * 3600)
    assert _sweep() == 1  # only `other` is left pending
    assert _sweep() == 0
    assert Action.objects.get(pk=other.pk).status == ActionStatus.EXPIRED


def test_decided_actions_are_never_swept(project, clock, person, notified):
    action = make_pending_action(project, _ladder(project), now=NOW)
    services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")

    clock.advance(10 * 3600)
    assert _sweep() == 0
    assert Action.objects.get(pk=action.pk).status == ActionStatus.APPROVED


def test_a_sweep_stops_at_its_limit_and_the_rest_wait(project, clock, notified, monkeypatch):
    monkeypatch.setattr(decisions, "SWEEP_CHUNK", 3)
    ladder = _ladder(project)
    actions = [make_pending_action(project, ladder, now=NOW + dt.timedelta(seconds=i)) for i in range(8)]
    clock.advance(2 * 3600)

    assert services.actions_timeout_sweep(limit=5) == 5
    tiers = list(Action.objects.filter(pk__in=[a.pk for a in actions]).order_by("pk").values_list("tier", flat=True))
    assert tiers == [1, 1, 1, 1, 1, 0, 0, 0]  # oldest due first
    assert services.actions_timeout_sweep() == 3


def test_a_sweeper_that_fails_mid_chunk_loses_nothing(project, clock, monkeypatch):
    """A crash halfway through a chunk rolls the chunk back: the actions stay due at their tier
    and the next sweep moves each exactly once."""
    ladder = _ladder(project)
    actions = [make_pending_action(project, ladder, now=NOW) for _ in range(3)]
    clock.advance(900)
    seen: list[int] = []

    def die_on_second(*, action):
        seen.append(action.pk)
        if len(seen) == 2:
            raise RuntimeError("worker lost")

    monkeypatch.setattr(notify, "action_tier_entered", die_on_second)
    with pytest.raises(RuntimeError):
        services.actions_timeout_sweep()
    assert set(Action.objects.filter(pk__in=[a.pk for a in actions]).values_list("tier", flat=True)) == {0}
    assert not ActionEvent.objects.exists()

    monkeypatch.setattr(notify, "action_tier_entered", lambda *, action: None)
    assert services.actions_timeout_sweep() == 3
    assert set(Action.objects.filter(pk__in=[a.pk for a in actions]).values_list("tier", flat=True)) == {1}
    assert ActionEvent.objects.filter(kind="timed_out").count() == 3


def test_a_ladder_without_the_tier_expires_the_action(project, clock, notified):
    action = make_pending_action(project, _ladder(project), now=NOW)
    Action.objects.filter(pk=action.pk).update(tier=7)

    assert services.actions_timeout_sweep(now=NOW + dt.timedelta(hours=1)) == 1
    assert Action.objects.get(pk=action.pk).status == ActionStatus.EXPIRED


def test_the_in_process_scheduler_runs_the_sweep(project, clock, notified):
    from reviewapp.scheduler import InProcessScheduler

    action = make_pending_action(project, _ladder(project), now=NOW)
    clock.advance(900)
    scheduler = InProcessScheduler(BEAT_SCHEDULE)
    entry = next(e for e in scheduler.entries if e["name"] == "escalations-actions-timeout")
    for other in scheduler.entries:  # only this job is due
        other["last"] = timezone.now()
    entry["last"] = timezone.now() - dt.timedelta(seconds=16)

    assert scheduler.run_pending() == ["escalations-actions-timeout"]
    assert Action.objects.get(pk=action.pk).tier == 1


# --- claims ------------------------------------------------------------------------------------


def test_a_claim_names_its_holder_to_the_next_claimer(project, person, clock):
    action = make_pending_action(project, _ladder(project), now=NOW)
    alice, bob = person("alice"), person("bob")

    services.action_claim(principal=alice, action_id=action.pk)
    services.action_claim(principal=alice, action_id=action.pk)  # again: nothing changes
    with pytest.raises(Conflict) as taken:
        services.action_claim(principal=bob, action_id=action.pk)

    assert taken.value.message == "Already claimed by alice at 2025-03-03 09:00:00 UTC."
    action.refresh_from_db()
    assert (action.claimed_by, action.claimed_at) == (alice.user, NOW)
    assert [(e.kind, e.actor_user.username) for e in ActionEvent.objects.filter(action=action)] == [
        ("claimed", "alice")
    ]


def test_only_the_holder_releases_a_claim(project, person, clock):
    action = make_pending_action(project, _ladder(project), now=NOW)
    alice, bob = person("alice"), person("bob")
    services.action_claim(principal=alice, action_id=action.pk)

    with pytest.raises(Conflict) as refused:
        services.action_release(principal=bob, action_id=action.pk)
    assert refused.value.message == "Claimed by alice; only they can release it."

    services.action_release(principal=alice, action_id=action.pk)
    services.action_release(principal=alice, action_id=action.pk)  # nothing left to release: no-op
    action.refresh_from_db()
    assert (action.claimed_by, action.claimed_at) == (None, None)
    assert [e.kind for e in ActionEvent.objects.filter(action=action)] == ["claimed", "claim_released"]
    services.action_claim(principal=bob, action_id=action.pk)
    assert Action.objects.get(pk=action.pk).claimed_by == bob.user


def test_claiming_needs_eligibility_at_the_tier(project, person, clock):
    action = make_pending_action(project, _ladder(project), now=NOW)
    Action.objects.filter(pk=action.pk).update(tier=1)  # the tier naming "lead"

    with pytest.raises(ApplicationError) as refused:
        services.action_claim(principal=person("alice"), action_id=action.pk)
    assert refused.value.status_code == 403
    services.action_claim(principal=person("lead"), action_id=action.pk)
    with pytest.raises(ApplicationError) as refused:
        services.action_claim(principal=person("eve", "engineer"), action_id=action.pk)
    assert refused.value.status_code == 403


def test_a_decided_action_cannot_be_claimed(project, person, clock):
    action = make_pending_action(project, _ladder(project), now=NOW)
    services.action_decide(principal=person("alice"), action_id=action.pk, decision="reject", comment="no")

    with pytest.raises(Conflict) as late:
        services.action_claim(principal=person("bob"), action_id=action.pk)
    assert late.value.message == "Already rejected by alice at 2025-03-03 09:00:00 UTC."


def test_a_stale_claim_is_released_by_the_timeout_and_may_be_taken_over(project, person, clock, notified):
    action = make_pending_action(project, _ladder(project), now=NOW)
    alice, bob, lead = person("alice"), person("bob"), person("lead")
    services.action_claim(principal=alice, action_id=action.pk)

    # The tier timed out and the sweep has not run yet: alice's claim is stale, bob may take it.
    clock.advance(900)
    services.action_claim(principal=bob, action_id=action.pk)
    assert Action.objects.get(pk=action.pk).claimed_by == bob.user
    assert ActionEvent.objects.filter(action=action, kind="claimed").last().data == {
        "tier": 0,
        "took_over_from": "alice",
    }

    # The sweep climbs the tier and releases bob's claim.
    assert _sweep() == 1
    action.refresh_from_db()
    assert (action.tier, action.claimed_by, action.claimed_at) == (1, None, None)
    released = ActionEvent.objects.get(action=action, kind="claim_released")
    assert released.data == {"tier": 0, "holder": "bob", "reason": "tier timed out"}

    # A claim made at the new tier is live for that tier's timeout, then stale.
    services.action_claim(principal=lead, action_id=action.pk)
    action.refresh_from_db()
    assert not decisions.claim_is_stale(action, now=clock.now + dt.timedelta(seconds=3599))
    assert decisions.claim_is_stale(action, now=clock.now + dt.timedelta(seconds=3600))


@pytest.mark.celery_worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_moves_due_actions_on(real_celery, project):
    """The beat job's task on a real worker (its own process and clock: the actions are due)."""
    ladder = _ladder(project)
    past = timezone.now() - dt.timedelta(hours=2)
    climbing = make_pending_action(project, ladder, now=past)
    expiring = make_pending_action(project, ladder, tier_index=1, now=past)

    assert tasks.actions_timeout_sweep.delay().get(timeout=60, disable_sync_subtasks=False) == 2

    climbing.refresh_from_db()
    expiring.refresh_from_db()
    assert (climbing.status, climbing.tier) == (ActionStatus.PENDING, 1)
    assert climbing.due_at > timezone.now() + dt.timedelta(minutes=59)
    assert (expiring.status, expiring.decided_by) == (ActionStatus.EXPIRED, DecidedBy.TIMEOUT)


def test_who_voted_at_an_earlier_tier_may_vote_at_the_next_that_names_them(project, clock, person, notified):
    # Tier 0 needs two approvers; tier 1 is A alone. A's approval at tier 0 must not make tier 1
    # impossible once tier 0 times out.
    ladder = make_ladder(
        project,
        tier(role="approver", timeout_seconds=900, approvals_required=2),
        tier(users=("a",), timeout_seconds=3600),
        name="named",
    )
    action = make_pending_action(project, ladder, now=NOW)
    a = person("a")
    assert services.action_decide(principal=a, action_id=action.pk, decision="approve").status == ActionStatus.PENDING
    with pytest.raises(Conflict):  # still once per tier
        services.action_decide(principal=a, action_id=action.pk, decision="approve")
    clock.advance(900)
    assert _sweep() == 1

    decided = services.action_decide(principal=a, action_id=action.pk, decision="approve")

    assert (decided.status, decided.decided_by_user, decided.reason) == (ActionStatus.APPROVED, a.user, "Approved by a")
    votes = list(action.votes.order_by("id").values_list("user__username", "tier", "decision"))
    assert votes == [("a", 0, "approve"), ("a", 1, "approve")]


def test_a_decision_after_the_deadline_applies_the_timeout_first_then_judges_the_new_tier(
    project, clock, person, notified
):
    action = make_pending_action(project, _ladder(project), now=NOW)
    clock.advance(900)  # tier 0 is over; no sweep has run

    with pytest.raises(ApplicationError) as refused:
        services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")

    # Alice was eligible at tier 0 only: refused, and the climb the sweep would make stands.
    assert refused.value.status_code == 403
    action.refresh_from_db()
    assert (action.status, action.tier, action.due_at) == (
        ActionStatus.PENDING,
        1,
        NOW + dt.timedelta(seconds=900 + 3600),
    )
    assert not action.votes.exists()
    assert list(action.events.values_list("kind", flat=True)) == ["timed_out", "tier_entered"]
    assert notified == [("tier_entered", action.pk, 1, ActionStatus.PENDING)]
    assert _sweep() == 0  # nothing left for the sweep

    # The lead, named at tier 1, decides there (one of the two approvals it needs).
    services.action_decide(principal=person("lead"), action_id=action.pk, decision="approve")
    assert list(action.votes.values_list("user__username", "tier")) == [("lead", 1)]


def test_a_decision_after_the_last_deadline_finds_the_action_expired(project, clock, person, notified):
    action = make_pending_action(project, make_ladder(project, tier(role="approver", timeout_seconds=900)), now=NOW)
    clock.advance(900)

    with pytest.raises(Conflict) as refused:
        services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")

    assert refused.value.message.startswith("Already expired: nobody decided before its last tier timed out")
    action.refresh_from_db()
    assert (action.status, action.decided_by, action.final_args) == (ActionStatus.EXPIRED, DecidedBy.TIMEOUT, None)
    assert not action.votes.exists()
    assert notified == [("decided", action.pk, 0, ActionStatus.EXPIRED)]


def test_a_decision_a_second_before_the_deadline_is_at_the_current_tier(project, clock, person, notified):
    action = make_pending_action(project, _ladder(project), now=NOW)
    clock.advance(899)

    decided = services.action_decide(principal=person("alice"), action_id=action.pk, decision="approve")

    assert (decided.status, decided.final_args) == (ActionStatus.APPROVED, action.args)
    assert list(decided.events.values_list("kind", flat=True)) == ["voted", "decided"]


def test_the_sweep_costs_the_same_queries_per_chunk_whatever_the_actions_people(
    project, org, member, django_assert_num_queries, django_capture_on_commit_callbacks
):
    # 50 due actions, each claimed by a different approver, half climbing to a tier with a chat
    # webhook, half expiring with a callback: the people and the project come with the chunk,
    # so the reads do not grow with the people involved; per action only its own writes remain.
    climbing = make_ladder(project, tier(role="approver", timeout_seconds=900), tier(role="admin"), name="two")
    climbing.notify_webhook_url = "https://hooks.example.com/x"
    climbing.save(update_fields=["notify_webhook_url"])
    last = make_ladder(project, tier(role="approver", timeout_seconds=900), name="one")
    for n in range(50):
        make_pending_action(
            project,
            climbing if n % 2 else last,
            now=NOW,
            claimed_by=member("approver", username=f"p{n}"),
            claimed_at=NOW,
            callback_url="https://agent.example.com/hook",
        )
    sweep_at = NOW + dt.timedelta(seconds=900)

    with django_capture_on_commit_callbacks(), django_assert_num_queries(QUERIES_FOR_50):
        assert services.actions_timeout_sweep(now=sweep_at) == 50

    assert Action.objects.filter(status=ActionStatus.EXPIRED).count() == 25
    assert Action.objects.filter(tier=1, status=ActionStatus.PENDING, claimed_by=None).count() == 25
    released = ActionEvent.objects.filter(kind="claim_released").values_list("data__holder", flat=True)
    assert sorted(released) == sorted(f"p{n}" for n in range(50))


# Per action only its writes: the tier change or expiry (UPDATE), its events (one INSERT) and
# its notification or decision delivery (one INSERT). Per sweep: two chunk locks (the second
# finds nothing), one query for the claimers, and the savepoints around the two chunks.
QUERIES_FOR_50 = 50 * 3 + 2 + 1 + 4
