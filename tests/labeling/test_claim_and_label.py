from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, AssignmentStatus, ItemEvent, ItemStatus, Label, QueueItem
from reviewapp.errors import Conflict, ValidationFailed
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue, make_schema


@pytest.fixture
def annotators(member):
    return [member("annotator", username=f"ann{i}") for i in range(4)]


def _items(queue, n):
    conversations = [ConversationFactory(project=queue.project) for _ in range(n)]
    services.queue_items_add(queue=queue, conversation_ids=[c.pk for c in conversations], user=None)
    return list(QueueItem.objects.filter(queue=queue).order_by("id"))


def test_claim_hands_items_in_order_and_never_the_same_item_to_two_people(project, annotators):
    queue = make_queue(project)
    items = _items(queue, 3)

    claims = [services.item_claim(queue=queue, user=a) for a in annotators]

    assert [c.item_id for c in claims[:3]] == [i.pk for i in items]
    assert claims[3] is None
    assert list(QueueItem.objects.order_by("id").values_list("leased_count", flat=True)) == [1, 1, 1]


def test_claim_returns_the_lease_a_person_already_holds(project, annotators):
    queue = make_queue(project)
    _items(queue, 3)
    first = services.item_claim(queue=queue, user=annotators[0])

    again = services.item_claim(queue=queue, user=annotators[0])
    prefetched = services.item_claim(queue=queue, user=annotators[0], exclude_item_id=first.item_id)

    assert again.pk == first.pk
    assert prefetched.item_id != first.item_id


def test_overlap_gives_an_item_to_as_many_people_as_labels_needed_and_no_more(project, annotators):
    queue = make_queue(project, annotations_per_item=2)
    [item] = _items(queue, 1)

    claims = [services.item_claim(queue=queue, user=a) for a in annotators[:3]]

    assert [c.item_id if c else None for c in claims] == [item.pk, item.pk, None]


def test_agreeing_labels_complete_the_item_with_that_answer(project, annotators):
    queue = make_queue(project, annotations_per_item=2)
    [item] = _items(queue, 1)
    for a in annotators[:2]:
        services.item_claim(queue=queue, user=a)
        services.label_submit(item=item, user=a, answers={"quality": "good", "notes": a.username})

    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED
    assert item.final_answers["quality"] == "good"
    assert item.final_source == "agreement"
    assert (item.labels_done, item.leased_count) == (2, 0)


def test_disagreement_pulls_one_extra_annotator_then_goes_to_review(project, annotators):
    queue = make_queue(project, annotations_per_item=2, max_extra_annotations=1)
    [item] = _items(queue, 1)
    for a, answer in zip(annotators[:2], ["good", "bad"], strict=True):
        services.item_claim(queue=queue, user=a)
        services.label_submit(item=item, user=a, answers={"quality": answer})
    item.refresh_from_db()
    assert (item.status, item.labels_needed) == (ItemStatus.OPEN, 3)

    services.item_claim(queue=queue, user=annotators[2])
    services.label_submit(item=item, user=annotators[2], answers={"quality": "good"})

    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_REVIEW
    assert list(ItemEvent.objects.filter(item=item).values_list("kind", flat=True)) == [
        "added",
        "labeled",
        "labeled",
        "extra_annotator",
        "labeled",
        "needs_review",
    ]


def test_reviewer_records_the_final_answer(project, annotators, member):
    queue = make_queue(project, annotations_per_item=2)
    [item] = _items(queue, 1)
    for a, answer in zip(annotators[:2], ["good", "bad"], strict=True):
        services.item_claim(queue=queue, user=a)
        services.label_submit(item=item, user=a, answers={"quality": answer})
    reviewer = member("engineer")

    services.item_review(item=item, user=reviewer, answers={"quality": "bad", "helpfulness": 2})

    item.refresh_from_db()
    assert (item.status, item.final_source, item.reviewed_by) == (ItemStatus.COMPLETED, "review", reviewer)
    assert item.final_answers == {"quality": "bad", "helpfulness": 2}


def test_label_is_validated_against_the_schema_and_nothing_is_stored_on_error(project, annotators):
    queue = make_queue(project)
    [item] = _items(queue, 1)
    services.item_claim(queue=queue, user=annotators[0])

    with pytest.raises(ValidationFailed) as exc:
        services.label_submit(item=item, user=annotators[0], answers={"quality": "meh", "helpfulness": 9, "x": 1})

    assert exc.value.errors == {
        "answers.quality": ["Choose one of: good, bad."],
        "answers.helpfulness": ["Must be from 1 to 5."],
        "answers.x": ["No such question in this schema version."],
    }
    assert Label.objects.count() == 0


def test_same_client_token_is_a_replay_not_a_second_label(project, annotators):
    queue = make_queue(project)
    [item] = _items(queue, 1)
    services.item_claim(queue=queue, user=annotators[0])
    first = services.label_submit(item=item, user=annotators[0], answers={"quality": "good"}, client_token="t1")

    again = services.label_submit(item=item, user=annotators[0], answers={"quality": "bad"}, client_token="t1")

    assert (first.created, again.created) == (True, False)
    assert again.label.pk == first.label.pk
    assert Label.objects.get().answers == {"quality": "good"}


def test_label_after_lost_lease_on_a_completed_item_is_a_conflict(project, annotators):
    queue = make_queue(project, lease_seconds=60)
    [item] = _items(queue, 1)
    services.item_claim(queue=queue, user=annotators[0])
    later = timezone.now() + dt.timedelta(seconds=120)
    reclaimed = services.item_claim(queue=queue, user=annotators[1], now=later)
    assert reclaimed.item_id == item.pk  # the expired lease went back to the pool
    services.label_submit(item=item, user=annotators[1], answers={"quality": "good"})

    with pytest.raises(Conflict):
        services.label_submit(item=item, user=annotators[0], answers={"quality": "bad"})

    assert Label.objects.filter(item=item).count() == 1


def test_skip_is_an_event_and_the_item_goes_to_someone_else(project, annotators):
    queue = make_queue(project)
    [item] = _items(queue, 1)
    services.item_claim(queue=queue, user=annotators[0])

    services.item_skip(item=item, user=annotators[0], reason="not English")

    assert Label.objects.count() == 0
    assert services.item_claim(queue=queue, user=annotators[0]) is None
    assert services.item_claim(queue=queue, user=annotators[1]).item_id == item.pk
    assert ItemEvent.objects.filter(item=item, kind="skipped").get().data["reason"] == "not English"


def test_skip_policy_same_person_later_brings_it_back_after_other_work(project, annotators):
    queue = make_queue(project, skip_policy="same_person_later")
    first, second = _items(queue, 2)
    services.item_claim(queue=queue, user=annotators[0])
    services.item_skip(item=first, user=annotators[0])

    nxt = services.item_claim(queue=queue, user=annotators[0])
    assert nxt.item_id == second.pk
    services.label_submit(item=second, user=annotators[0], answers={"quality": "good"})

    back = services.item_claim(queue=queue, user=annotators[0])
    assert back.item_id == first.pk
    assert Assignment.objects.get(pk=back.pk).status == AssignmentStatus.ACTIVE


def test_skip_policy_drop_removes_the_item(project, annotators):
    queue = make_queue(project, skip_policy="drop")
    [item] = _items(queue, 1)
    services.item_claim(queue=queue, user=annotators[0])

    services.item_skip(item=item, user=annotators[0])

    item.refresh_from_db()
    assert item.status == ItemStatus.DROPPED
    assert services.item_claim(queue=queue, user=annotators[1]) is None


def test_manual_add_never_puts_a_conversation_in_a_queue_twice(project):
    queue = make_queue(project)
    conversation = ConversationFactory(project=project)

    first = services.queue_items_add(queue=queue, conversation_ids=[conversation.pk, conversation.pk], user=None)
    second = services.queue_items_add(queue=queue, conversation_ids=[conversation.pk], user=None)

    assert [r.status for r in first] == ["created", "duplicate"]
    assert [r.status for r in second] == ["duplicate"]
    assert QueueItem.objects.filter(queue=queue).count() == 1


def test_gold_items_are_mixed_in_at_the_gold_rate_and_score_annotator_accuracy(project, annotators):
    from labeling import selectors

    queue = make_queue(project, gold_rate=1.0)
    _items(queue, 2)
    gold_conversations = [ConversationFactory(project=project) for _ in range(2)]
    services.gold_items_add(
        queue=queue,
        items=[services.GoldItemIn(c.pk, {"quality": "good"}) for c in gold_conversations],
        user=None,
    )
    user = annotators[0]

    served = []
    for answer in ["good", "bad"]:  # every claim is a gold turn at rate 1.0 while gold items remain
        assignment = services.item_claim(queue=queue, user=user)
        served.append(assignment.item.is_gold)
        services.label_submit(item=assignment.item, user=user, answers={"quality": answer})
    normal = services.item_claim(queue=queue, user=user)

    assert served == [True, True]
    assert normal.item.is_gold is False
    [row] = selectors.queue_statistics(queue=queue)[0]["annotators"]
    assert (row["gold_items"], row["gold_accuracy"]) == (2, 0.5)
    assert selectors.queue_counts(queue=queue)["total"] == 2  # gold checks are not queue work
    assert QueueItem.objects.filter(is_gold=True, status=ItemStatus.OPEN).count() == 2


def test_gold_answers_are_validated_against_the_rubric(project):
    queue = make_queue(project, gold_rate=0.1)
    conversation = ConversationFactory(project=project)

    with pytest.raises(ValidationFailed) as exc:
        services.gold_items_add(queue=queue, items=[services.GoldItemIn(conversation.pk, {"quality": "?"})], user=None)

    assert list(exc.value.errors) == ["items[0].answers.quality"]
    assert QueueItem.objects.count() == 0


def test_single_label_can_be_edited_until_reviewed_and_the_final_answer_follows(project, annotators, member):
    queue = make_queue(project)
    [item] = _items(queue, 1)
    services.item_claim(queue=queue, user=annotators[0])
    services.label_submit(item=item, user=annotators[0], answers={"quality": "good"})

    services.label_submit(item=item, user=annotators[0], answers={"quality": "bad"})
    item.refresh_from_db()
    assert (item.status, item.final_answers) == (ItemStatus.COMPLETED, {"quality": "bad"})

    services.item_review(item=item, user=member("engineer"), answers={"quality": "good"})
    with pytest.raises(Conflict):
        services.label_submit(item=item, user=annotators[0], answers={"quality": "bad"})
    item.refresh_from_db()
    assert item.final_answers == {"quality": "good"}


def test_editing_an_agreed_label_reopens_the_item_as_a_dispute(project, annotators):
    queue = make_queue(project, annotations_per_item=2)
    [item] = _items(queue, 1)
    for a in annotators[:2]:
        services.item_claim(queue=queue, user=a)
        services.label_submit(item=item, user=a, answers={"quality": "good"})

    services.label_submit(item=item, user=annotators[1], answers={"quality": "bad"})

    item.refresh_from_db()
    assert (item.status, item.final_answers) == (ItemStatus.NEEDS_REVIEW, None)


def test_a_drop_ends_the_other_annotators_leases_and_their_label_is_refused_as_dropped(project, annotators):
    queue = make_queue(project, skip_policy="drop", annotations_per_item=2)
    [item] = _items(queue, 1)
    mine = services.item_claim(queue=queue, user=annotators[0])
    theirs = services.item_claim(queue=queue, user=annotators[1])
    assert mine.item_id == theirs.item_id == item.pk

    services.item_skip(item=item, user=annotators[0])

    item.refresh_from_db()
    assert (item.status, item.leased_count) == (ItemStatus.DROPPED, 0)
    assert Assignment.objects.get(pk=theirs.pk).status == AssignmentStatus.EXPIRED
    with pytest.raises(Conflict) as exc:
        services.label_submit(item=item, user=annotators[1], answers={"quality": "good"})
    assert exc.value.message == "This item was dropped from the queue."
    assert Label.objects.count() == 0
    item.refresh_from_db()
    assert (item.status, item.labels_done) == (ItemStatus.DROPPED, 0)


def test_a_drop_skip_of_a_gold_item_skips_it_for_that_person_only(project, annotators):
    queue = make_queue(project, skip_policy="drop", gold_rate=1.0)
    conversation = ConversationFactory(project=project)
    services.gold_items_add(queue=queue, items=[services.GoldItemIn(conversation.pk, {"quality": "good"})], user=None)
    [gold] = QueueItem.objects.filter(queue=queue, is_gold=True)
    assert services.item_claim(queue=queue, user=annotators[0]).item_id == gold.pk
    other = services.item_claim(queue=queue, user=annotators[1])

    services.item_skip(item=gold, user=annotators[0])

    gold.refresh_from_db()
    assert (gold.status, gold.leased_count) == (ItemStatus.OPEN, 1)
    assert Assignment.objects.get(pk=other.pk).status == AssignmentStatus.ACTIVE
    assert services.item_claim(queue=queue, user=annotators[2]).item_id == gold.pk
    services.label_submit(item=gold, user=annotators[1], answers={"quality": "good"})
    assert Label.objects.filter(item=gold).count() == 1


def test_a_draft_is_not_saved_once_the_lease_ran_out(project, annotators):
    queue = make_queue(project)
    [item] = _items(queue, 1)
    assignment = services.item_claim(queue=queue, user=annotators[0])
    services.draft_save(item=item, user=annotators[0], answers={"quality": "good"})
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))

    with pytest.raises(Conflict):
        services.draft_save(item=item, user=annotators[0], answers={"quality": "bad"})

    assert Assignment.objects.get(pk=assignment.pk).draft_answers == {"quality": "good"}


@pytest.mark.parametrize("n", [1, 5])
def test_adding_gold_items_with_turn_questions_costs_the_same_queries_for_one_or_many(
    project, n, django_assert_num_queries
):
    schema = make_schema(project, [{"key": "bad_turn", "type": "turn", "label": "Which turn?"}])
    queue = make_queue(project, schema=schema, gold_rate=0.1)
    conversations = [ConversationFactory(project=project) for _ in range(n)]
    wrong = ConversationFactory(project=project, messages=[{"role": "user", "content": "hi"}])

    # The conversations' messages; existing items, the insert, the ids (in a savepoint).
    with django_assert_num_queries(6):
        results = services.gold_items_add(
            queue=queue, items=[services.GoldItemIn(c.pk, {"bad_turn": 1}) for c in conversations], user=None
        )
    with pytest.raises(ValidationFailed) as exc:
        services.gold_items_add(
            queue=queue,
            items=[services.GoldItemIn(wrong.pk, {"bad_turn": 0}), services.GoldItemIn(wrong.pk, {"bad_turn": 5})],
            user=None,
        )

    assert [r.status for r in results] == ["created"] * n
    assert list(exc.value.errors) == ["items[0].answers.bad_turn", "items[1].answers.bad_turn"]
