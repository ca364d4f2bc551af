"""Many annotators claiming at once on PostgreSQL: nobody double-handed, overlap honoured."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, AssignmentStatus, ItemStatus, Label, QueueItem
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


def _work_until_empty(queue, people, *, answers_for=lambda user: {"quality": "good"}):
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
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    return handled


def test_sixteen_annotators_never_get_the_same_item():
    queue, people = _setup(n_items=120, n_people=16)

    handled = _work_until_empty(queue, people)

    per_item = Counter(item_id for item_id, _ in handled)
    assert len(per_item) == 120
    assert set(per_item.values()) == {1}
    assert Label.objects.filter(queue=queue).count() == 120
    assert set(QueueItem.objects.filter(queue=queue).values_list("status", "leased_count")) == {
        (ItemStatus.COMPLETED, 0)
    }


def test_overlap_of_three_gives_each_item_to_exactly_three_different_people():
    queue, people = _setup(n_items=40, n_people=8, annotations_per_item=3)

    handled = _work_until_empty(queue, people)

    per_item = Counter(item_id for item_id, _ in handled)
    assert set(per_item.values()) == {3}
    # three *different* people per item: (item, user) pairs never repeat
    assert len(set(handled)) == len(handled) == 120
    assert set(QueueItem.objects.filter(queue=queue).values_list("labels_done", flat=True)) == {3}


def test_expired_leases_are_reclaimed_once_under_contention():
    queue, people = _setup(n_items=9, n_people=10, lease_seconds=30)  # 8 free + 1 stale lease
    stale = people[0]
    held = [services.item_claim(queue=queue, user=stale)]
    assert held[0] is not None
    later = timezone.now() + dt.timedelta(minutes=5)
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
    for t in threads:
        t.join(timeout=60)

    assert len(got) == len(set(got)) == 9
    assert Assignment.objects.get(pk=held[0].pk).status == AssignmentStatus.EXPIRED
    assert sum(QueueItem.objects.filter(queue=queue).values_list("leased_count", flat=True)) == 9
