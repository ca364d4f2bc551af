"""Many annotators claiming at once on PostgreSQL: nobody double-handed, overlap honoured."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from labeling import lock_objects, services
from labeling.models import Assignment, AssignmentStatus, ItemEvent, ItemStatus, Label, QueueItem
from labeling.services import claims, labels
from reviewapp import services as core
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_for, wait_until_blocked
from tests.factories import ConversationFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _setup(n_items: int, n_people: int, **queue_spec):
    project = ProjectFactory()
    queue = make_queue(project, **queue_spec)
    conversations = [ConversationFactory(project=project) for _ in range(n_items)]
    services.queue_items_add(queue=queue, conversation_ids=[c.pk for c in conversations], user=None)
    people = []
    for i in range(n_people):
        user = UserFactory(username=f"racer{i}")
        MembershipFactory(user=user, organization=project.organization, role="annotator")
        people.append(user)
    return queue, people


def _work_until_empty(monkeypatch, queue, people, *, answers_for=lambda user: {"quality": "good"}):
    """Every person claims and labels until the queue is empty. The first label stops, holding
    its item's lock, until the others have leased one more item each meanwhile: the claims
    really ran while a label held a lock, and none queued behind it (with overlap, rows with a
    free slot are locked and passed by: SKIP LOCKED)."""
    hold = hold_call(monkeypatch, lock_objects, "item_relock")
    barrier = threading.Barrier(len(people))
    errors: list[BaseException] = []
    handled: list[tuple[int, int]] = []
    lock = threading.Lock()

    def annotator(user):
        try:
            barrier.wait(timeout=10)
            for _ in range(1000):  # bounded
                assignment = services.item_claim(queue=queue, user=user)
                if assignment is None:
                    return
                with lock:
                    handled.append((assignment.item_id, user.pk))
                services.label_submit(item=assignment.item, user=user, answers=answers_for(user))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=annotator, args=(u,)) for u in people]
    for t in threads:
        t.start()
    try:
        hold.wait_inside()
        leased_before = len(handled)
        assert wait_for(lambda: len(handled) >= leased_before + len(people)), "claims stalled behind a locked item"
    finally:
        hold.release()
    join_all(*threads, timeout=120)
    assert errors == []
    return handled


def test_sixteen_annotators_never_get_the_same_item(monkeypatch):
    queue, people = _setup(n_items=120, n_people=16)

    handled = _work_until_empty(monkeypatch, queue, people)

    per_item = Counter(item_id for item_id, _ in handled)
    assert len(per_item) == 120
    assert set(per_item.values()) == {1}
    assert Label.objects.filter(queue=queue).count() == 120
    assert set(QueueItem.objects.filter(queue=queue).values_list("status", "leased_count")) == {
        (ItemStatus.COMPLETED, 0)
    }


def test_overlap_of_three_gives_each_item_to_exactly_three_different_people(monkeypatch):
    queue, people = _setup(n_items=40, n_people=8, annotations_per_item=3)

    handled = _work_until_empty(monkeypatch, queue, people)

    per_item = Counter(item_id for item_id, _ in handled)
    assert set(per_item.values()) == {3}
    # three *different* people per item: (item, user) pairs never repeat
    assert len(set(handled)) == len(handled) == 120
    assert set(QueueItem.objects.filter(queue=queue).values_list("labels_done", flat=True)) == {3}


def test_expired_leases_are_reclaimed_once_under_contention(monkeypatch):
    queue, people = _setup(n_items=9, n_people=10, lease_seconds=30)  # 8 free + 1 stale lease
    stale = people[0]
    held = [services.item_claim(queue=queue, user=stale)]
    assert held[0] is not None
    later = timezone.now() + dt.timedelta(minutes=5)
    # The first claimer to lock the stale lease's item stops there, its expiry uncommitted:
    # the others, seeing the same expired lease, must wait for that item, not expire it again.
    hold = hold_call(monkeypatch, lock_objects, "expired_leases_lock")
    barrier = threading.Barrier(9)
    got: list[int] = []
    lock = threading.Lock()

    def claim(user):
        try:
            barrier.wait(timeout=10)
            assignment = services.item_claim(queue=queue, user=user, now=later)
            if assignment:
                with lock:
                    got.append(assignment.item_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in people[1:]]
    for t in threads:
        t.start()
    try:
        hold.wait_inside()
        wait_until_blocked(count=1)
        assert held[0].item_id not in got  # its slot is not back in the pool before that commit
    finally:
        hold.release()
    join_all(*threads)

    assert len(got) == len(set(got)) == 9
    assert Assignment.objects.get(pk=held[0].pk).status == AssignmentStatus.EXPIRED
    assert sum(QueueItem.objects.filter(queue=queue).values_list("leased_count", flat=True)) == 9
    assert ItemEvent.objects.filter(item_id=held[0].item_id, kind="lease_expired").count() == 1


def test_a_late_label_racing_the_lease_sweeper_neither_deadlocks_nor_loses_the_label(monkeypatch):
    """The label locks the item, then the assignment. The sweeper must take them in the same
    order: were it to lock the expired assignment first and then wait for the item, the two
    would wait on each other and PostgreSQL would abort one of them."""
    queue, [person] = _setup(n_items=1, n_people=1, lease_seconds=30)
    assignment = services.item_claim(queue=queue, user=person)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - dt.timedelta(minutes=1))
    # _schema_version runs inside label_submit right after it locked the item: hold the label
    # there so the sweeper starts in the middle of it.
    hold = hold_call(monkeypatch, labels, "_schema_version", thread="label", before=True)
    results: dict = {}
    label = start_thread(
        "label",
        lambda: services.label_submit(item=assignment.item, user=person, answers={"quality": "good"}),
        results,
    )
    try:
        hold.wait_inside()
        sweep = start_thread("sweep", lambda: services.leases_expire(queue_id=None), results)
        wait_until_blocked(count=1)  # the sweeper waits for the item the label holds
        assert results == {}
    finally:
        hold.release()
    join_all(label, sweep)
    errors = [r for r in results.values() if isinstance(r, BaseException)]
    swept = [results["sweep"]]

    assert errors == []
    assert swept == [0]  # by the time the sweeper held the item, the label had settled it
    assert Label.objects.filter(item=assignment.item, user=person).count() == 1
    assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.SUBMITTED
    assert QueueItem.objects.filter(pk=assignment.item_id).values_list("status", "leased_count").get() == (
        ItemStatus.COMPLETED,
        0,
    )


def test_claim_and_label_cost_a_fixed_handful_of_statements(django_assert_num_queries, monkeypatch):
    """The hot path on PostgreSQL: claim = token, queue, precheck (taking the person's claim
    lock), the one-statement lease, the unlock, feedback; label = token, item, and one short
    transaction. The label completes the item, which schedules the calibration pair sync and the
    datasets' promotion rules after commit: Celery tasks in production, run eagerly inside the
    request by the test settings, so they are recorded here instead of run (their own costs are
    tested in tests/evaluation)."""
    from evaluation import services as evaluation_services
    from evaluation import services_datasets

    scheduled: list[list[int]] = []
    promoted: list[list[int]] = []
    monkeypatch.setattr(evaluation_services, "pairs_items_enqueue", lambda *, item_ids: scheduled.append(item_ids))
    monkeypatch.setattr(services_datasets, "dataset_rules_enqueue", lambda *, item_ids: promoted.append(item_ids))
    queue, [person] = _setup(n_items=3, n_people=1)
    token = core.personal_token_create(user=person, organization=queue.organization).raw
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get("/api/v1/queues")  # the token's first use stamps last_used_at; measure later requests

    with django_assert_num_queries(6):
        item = client.post(f"/api/v1/queues/{queue.pk}/claim").json()["id"]
    with django_assert_num_queries(10):
        response = client.post(
            f"/api/v1/items/{item}/labels", {"answers": {"quality": "good"}}, content_type="application/json"
        )

    assert response.status_code == 201
    assert scheduled == [[item]]
    assert promoted == [[item]]


def test_a_claim_waits_for_work_locked_for_a_moment_instead_of_answering_nothing_left(monkeypatch):
    """SKIP LOCKED passes over an item whose row is locked (here: another person's label being
    saved on an overlapping item). When that was the only work left, the claim must wait the
    few milliseconds the lock lasts, not tell the annotator the queue is done."""
    queue, (first_person, second_person) = _setup(n_items=1, n_people=2, annotations_per_item=2)
    first = services.item_claim(queue=queue, user=first_person)
    locked, met_the_lock = threading.Event(), threading.Event()
    real_exists = lock_objects.claimable_item_exists

    def claimable_item_exists(**kwargs):
        # Asked only after the lease statement skipped everything: work left means it met a lock.
        found = real_exists(**kwargs)
        if found:
            met_the_lock.set()
        return found

    monkeypatch.setattr(lock_objects, "claimable_item_exists", claimable_item_exists)

    def save_a_label_slowly():
        with transaction.atomic():
            lock_objects.item_relock(first.item)
            locked.set()
            # Held until the claim really passed over this row: the race, not a lucky timing.
            assert met_the_lock.wait(20), "the claim never met the locked row"

    results: dict = {}
    holder = start_thread("holder", save_a_label_slowly, results)
    assert locked.wait(timeout=10)
    second = services.item_claim(queue=queue, user=second_person)
    join_all(holder)

    assert results == {"holder": None}
    assert met_the_lock.is_set()
    assert second is not None
    assert second.item_id == first.item_id
    assert services.item_claim(queue=queue, user=UserFactory(username="late")) is None  # truly done: no wait


def test_a_bare_claim_commits_asynchronously_without_changing_the_connection():
    """The lease statement relaxes synchronous_commit for its own transaction only: the next
    statement on the same connection (a label, say) is durable again."""
    queue, [person] = _setup(n_items=2, n_people=1)

    def setting() -> str:
        with connection.cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            return cur.fetchone()[0]

    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = on")  # the test cluster runs with it off
    try:
        assert services.item_claim(queue=queue, user=person) is not None
        assert setting() == "on"
        with transaction.atomic():  # inside a caller's transaction the claim stays durable
            second = services.item_claim(queue=queue, user=person, exclude_item_id=QueueItem.objects.first().pk)
            assert setting() == "on"
        assert second is not None
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET synchronous_commit")


def _claim_in_parallel(monkeypatch, queue, person, n, **claim_kwargs):
    """n threads released together by a barrier, each claiming once for the same person. The
    first claim to take the person's claim lock stops there until the n - 1 others are seen
    waiting for that lock: the claims really met. Returns the item ids they got."""
    hold = hold_call(monkeypatch, claims, "_item_claim_locked", before=True)
    barrier = threading.Barrier(n)
    got: list[int | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim():
        try:
            connection.ensure_connection()  # connect before the barrier: race the claims, not the logins
            barrier.wait(timeout=30)
            assignment = services.item_claim(queue=queue, user=person, **claim_kwargs)
            with lock:
                got.append(assignment.item_id if assignment else None)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        hold.wait_inside()
        wait_until_blocked(count=n - 1, wait_event="advisory")
        assert got == []
    finally:
        hold.release()
    join_all(*threads, timeout=120)
    assert errors == []
    return got


def _live_leases(queue, person):
    return list(
        Assignment.objects.filter(
            queue=queue, user=person, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=timezone.now()
        ).values_list("item_id", flat=True)
    )


@pytest.mark.parametrize("session_locks", [True, False], ids=["session-lock", "pooler-transaction-lock"])
def test_one_person_claiming_twenty_times_at_once_holds_one_lease(monkeypatch, settings, session_locks):
    settings.DB_SESSION_LOCKS = session_locks
    queue, [person] = _setup(n_items=30, n_people=1)

    got = _claim_in_parallel(monkeypatch, queue, person, 20)

    leases = _live_leases(queue, person)
    assert len(leases) == 1
    assert got == leases * 20  # every claim answered with that one lease
    assert sum(QueueItem.objects.filter(queue=queue).values_list("leased_count", flat=True)) == 1


def test_a_prefetching_person_claiming_twenty_times_at_once_holds_two_leases(monkeypatch):
    """The browser's prefetch (`exclude=` the item on screen) is the one documented second lease."""
    queue, [person] = _setup(n_items=30, n_people=1)
    current = services.item_claim(queue=queue, user=person)

    got = _claim_in_parallel(monkeypatch, queue, person, 20, exclude_item_id=current.item_id)

    leases = _live_leases(queue, person)
    assert len(leases) == 2
    prefetched = next(i for i in leases if i != current.item_id)
    assert got == [prefetched] * 20
    assert sum(QueueItem.objects.filter(queue=queue).values_list("leased_count", flat=True)) == 2
