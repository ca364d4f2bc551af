"""One person claiming from two browser tabs, and a review racing an annotator's late edit, on
PostgreSQL. Each test holds one side inside its transaction (with its lock taken) and proves
the other side waited on that lock before it asserts the outcome."""

from __future__ import annotations

import threading

import pytest
from django.utils import timezone

from labeling import lock_objects, services
from labeling.models import Assignment, AssignmentStatus, ItemEvent, ItemStatus, Label, QueueItem
from labeling.services import claims
from reviewapp.errors import Conflict
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_until_blocked
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.labeling.factories import add_items, make_queue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _person(project, username, role="annotator"):
    user = UserFactory(username=username)
    MembershipFactory(user=user, organization=project.organization, role=role)
    return user


def _live_leases(queue, person):
    return sorted(
        Assignment.objects.filter(
            queue=queue, user=person, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=timezone.now()
        ).values_list("item_id", flat=True)
    )


def _two_tabs(monkeypatch, queue, person, first: dict, second: dict) -> tuple[dict, dict]:
    """Tab one claims and is held right after its precheck took this person's claim lock, before
    it leases; tab two claims meanwhile and must wait on that lock. Returns both answers, and
    per tab what its prechecks read and whether it fell back to a busy wait."""
    hold = hold_call(monkeypatch, claims, "_item_claim_locked", thread="tab1", before=True)
    seen: dict = {"tab1": [], "tab2": [], "busy": []}
    real_precheck, real_exists = lock_objects.claim_precheck, lock_objects.claimable_item_exists

    def claim_precheck(**kwargs):
        result = real_precheck(**kwargs)
        seen[threading.current_thread().name].append(result[0])
        return result

    def claimable_item_exists(**kwargs):
        seen["busy"].append(threading.current_thread().name)
        return real_exists(**kwargs)

    monkeypatch.setattr(lock_objects, "claim_precheck", claim_precheck)
    monkeypatch.setattr(lock_objects, "claimable_item_exists", claimable_item_exists)
    results: dict = {}
    tab1 = start_thread("tab1", lambda: services.item_claim(queue=queue, user=person, **first), results)
    try:
        hold.wait_inside()
        tab2 = start_thread("tab2", lambda: services.item_claim(queue=queue, user=person, **second), results)
        wait_until_blocked(count=1, wait_event="advisory")
        assert results == {}  # neither tab got an answer while tab one held the lock
    finally:
        hold.release()
    join_all(tab1, tab2)
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    return {name: (a.item_id if a else None) for name, a in results.items()}, seen


@pytest.mark.parametrize("session_locks", [True, False], ids=["session-lock", "pooler-transaction-lock"])
def test_two_tabs_opening_the_work_page_at_once_show_the_same_item(monkeypatch, settings, session_locks):
    """item_claim (what the work page calls): a person who holds a live lease gets it back. The
    second tab's precheck read its snapshot before it waited, so it cannot see the first tab's
    lease; the lease statement's guard and the look-again must hand it that lease."""
    settings.DB_SESSION_LOCKS = session_locks
    project = ProjectFactory()
    queue = make_queue(project)
    items = add_items(queue, 3)
    person = _person(project, "two-tabs")

    got, seen = _two_tabs(monkeypatch, queue, person, {}, {})

    assert got == {"tab1": items[0].pk, "tab2": items[0].pk}
    # Tab two's precheck read its snapshot before it waited, so it saw no lease; its lease
    # statement's guard refused a second one and the look-again found tab one's lease, with
    # no busy wait.
    lease = Assignment.objects.get(user=person, item=items[0]).pk
    assert seen == {"tab1": [None], "tab2": [None, lease], "busy": []}
    assert _live_leases(queue, person) == [items[0].pk]
    assert list(QueueItem.objects.filter(queue=queue).order_by("id").values_list("leased_count", flat=True)) == [
        1,
        0,
        0,
    ]


def test_two_tabs_prefetching_at_once_share_one_prefetched_item(monkeypatch):
    """Both tabs show the item on screen and prefetch the next (`exclude=` it): the documented
    second lease, once, and both tabs get that one."""
    project = ProjectFactory()
    queue = make_queue(project)
    items = add_items(queue, 3)
    person = _person(project, "prefetcher")
    on_screen = services.item_claim(queue=queue, user=person)
    assert on_screen.item_id == items[0].pk

    prefetch_kwargs = {"exclude_item_id": items[0].pk}
    got, seen = _two_tabs(monkeypatch, queue, person, prefetch_kwargs, prefetch_kwargs)

    assert got == {"tab1": items[1].pk, "tab2": items[1].pk}
    prefetch = Assignment.objects.get(user=person, item=items[1]).pk
    assert seen == {"tab1": [None], "tab2": [None, prefetch], "busy": []}
    assert _live_leases(queue, person) == [items[0].pk, items[1].pk]
    assert list(QueueItem.objects.filter(queue=queue).order_by("id").values_list("leased_count", flat=True)) == [
        1,
        1,
        0,
    ]


def test_a_tab_reloading_while_another_prefetches_keeps_the_held_item_and_one_prefetch(monkeypatch):
    """One tab reloads the work page (plain claim) while the other prefetches past the item on
    screen: the reload gets the item on screen back, the prefetch the one second lease."""
    project = ProjectFactory()
    queue = make_queue(project)
    items = add_items(queue, 3)
    person = _person(project, "reloader")
    services.item_claim(queue=queue, user=person)

    got, _ = _two_tabs(monkeypatch, queue, person, {"exclude_item_id": items[0].pk}, {})

    assert got == {"tab1": items[1].pk, "tab2": items[0].pk}
    assert _live_leases(queue, person) == [items[0].pk, items[1].pk]


def _disputed_item():
    """An item two annotators labelled differently, with no extra annotator allowed: it needs
    review. Returns (item, the annotator who said "good", the reviewer)."""
    project = ProjectFactory()
    queue = make_queue(project, annotations_per_item=2, max_extra_annotations=0)
    [item] = add_items(queue, 1)
    first, second = _person(project, "ann-good"), _person(project, "ann-bad")
    for user, answer in ((first, "good"), (second, "bad")):
        assert services.item_claim(queue=queue, user=user).item_id == item.pk
        services.label_submit(item=item, user=user, answers={"quality": answer})
    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_REVIEW
    return item, first, _person(project, "engineer", role="engineer")


def _race(monkeypatch, holder: str, item, annotator, reviewer) -> dict:
    """Run the annotator's edit and the engineer's review against each other; `holder` takes
    the item's row lock first and is held there until the other side waits on it."""
    hold = hold_call(monkeypatch, lock_objects, "item_relock", thread=holder)
    sides = {
        "edit": lambda: services.label_submit(
            item=QueueItem.objects.get(pk=item.pk), user=annotator, answers={"quality": "bad"}
        ),
        "review": lambda: services.item_review(
            item=QueueItem.objects.get(pk=item.pk), user=reviewer, answers={"quality": "good"}
        ),
    }
    waiter = "review" if holder == "edit" else "edit"
    results: dict = {}
    first = start_thread(holder, sides[holder], results)
    try:
        hold.wait_inside()
        second = start_thread(waiter, sides[waiter], results)
        wait_until_blocked(count=1)  # the waiter is stuck on the item's row lock
        assert results == {}
    finally:
        hold.release()
    join_all(first, second)
    return results


def test_a_late_edit_locking_the_item_first_is_seen_by_the_review(monkeypatch):
    item, annotator, reviewer = _disputed_item()

    results = _race(monkeypatch, "edit", item, annotator, reviewer)

    assert results["edit"].label.answers == {"quality": "bad"}
    assert results["review"].status == ItemStatus.COMPLETED
    # The edit settled the dispute (both now say "bad"); the review, after it, ruled on that
    # state and overruled it. Nothing was lost: the edited label is stored, the ruling is final.
    assert Label.objects.get(item=item, user=annotator).answers == {"quality": "bad"}
    item.refresh_from_db()
    assert (item.status, item.final_source, item.final_answers, item.reviewed_by_id) == (
        ItemStatus.COMPLETED,
        "review",
        {"quality": "good"},
        reviewer.pk,
    )
    events = list(ItemEvent.objects.filter(item=item).order_by("id").values_list("kind", "data"))
    assert [kind for kind, _ in events[-3:]] == ["label_edited", "completed", "reviewed"]
    assert events[-1][1]["previous_status"] == ItemStatus.COMPLETED


def test_a_late_edit_arriving_while_the_review_holds_the_item_is_refused(monkeypatch):
    item, annotator, reviewer = _disputed_item()
    events_before = ItemEvent.objects.filter(item=item).count()

    results = _race(monkeypatch, "review", item, annotator, reviewer)

    assert results["review"].final_answers == {"quality": "good"}
    assert isinstance(results["edit"], Conflict)
    assert results["edit"].status_code == 409
    assert Label.objects.get(item=item, user=annotator).answers == {"quality": "good"}  # unchanged
    item.refresh_from_db()
    assert (item.status, item.final_source, item.final_answers, item.reviewed_by_id) == (
        ItemStatus.COMPLETED,
        "review",
        {"quality": "good"},
        reviewer.pk,
    )
    kinds = list(ItemEvent.objects.filter(item=item).order_by("id").values_list("kind", flat=True))
    assert kinds[events_before:] == ["reviewed"]
