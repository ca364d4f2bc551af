"""The reviewer's pages: which questions each waiting item disagrees on, the final-answer form
pre-filled from unanimous and majority answers (never from a tie), going on to the next item
after recording, and empty states that say why nothing is waiting and what to do next."""

from __future__ import annotations

import pytest
from django.test import Client

from labeling import rubric, services
from labeling.forms import review_prefill
from labeling.models import ItemStatus, QueueItem
from tests.labeling.factories import QUESTIONS, add_items, make_queue, make_schema

XSS = "<script>window.__xss=1</script>"


def _questions() -> list[rubric.Question]:
    return rubric.questions_from_json(QUESTIONS)


# --- pure: which questions disagree, and the consensus -------------------------------------------


def test_disagreeing_questions_are_the_comparable_ones_answered_differently():
    answers = [
        {"quality": "good", "helpfulness": 4, "notes": "fine"},
        {"quality": "bad", "helpfulness": 4, "notes": "other words"},
    ]

    assert [q.key for q in rubric.disagreeing_questions(_questions(), answers)] == ["quality"]
    assert rubric.disagreeing_questions(_questions(), [{"quality": "good"}, {"quality": "good"}]) == []
    # A missing answer differs from a given one, as when the item was sent to review.
    assert [q.key for q in rubric.disagreeing_questions(_questions(), [{"helpfulness": 2}, {}])] == ["helpfulness"]


def test_consensus_is_unanimous_or_a_strict_majority_and_never_a_tie():
    found = rubric.consensus(
        _questions(),
        [
            {"quality": "good", "helpfulness": 4, "notes": "a"},
            {"quality": "good", "helpfulness": 2, "notes": "a"},
            {"quality": "bad", "helpfulness": 3, "notes": "a"},
        ],
    )

    # helpfulness 4/2/3 has no majority; free text is never pre-filled.
    assert found == {"quality": rubric.Consensus(value="good", votes=2, answered=3)}
    assert not found["quality"].unanimous
    tie = rubric.consensus(_questions(), [{"quality": "good"}, {"quality": "bad"}])
    assert tie == {}
    two_of_four = rubric.consensus(_questions(), [{"quality": q} for q in ("good", "good", "bad", "bad")])
    assert two_of_four == {}


def test_consensus_counts_only_the_labels_that_answered_and_needs_two_of_them():
    found = rubric.consensus(_questions(), [{"helpfulness": 5}, {"helpfulness": 5}, {"quality": "good"}])

    assert found == {"helpfulness": rubric.Consensus(value=5, votes=2, answered=2)}
    assert found["helpfulness"].unanimous
    assert rubric.consensus(_questions(), [{"quality": "good"}, {}]) == {}


def test_review_prefill_says_where_each_answer_came_from():
    class L:
        def __init__(self, answers):
            self.answers = answers

    answers, notes = review_prefill(
        _questions(),
        [L({"quality": "good", "helpfulness": 4}), L({"quality": "good", "helpfulness": 4}), L({"quality": "bad"})],
    )

    assert answers == {"quality": "good", "helpfulness": 4}
    assert notes == {
        "quality": "Pre-filled: the majority, 2 of 3 labels",
        "helpfulness": "Pre-filled: all 2 labels agree",
    }


# --- pages -----------------------------------------------------------------------------------


@pytest.fixture
def engineer(member) -> Client:
    client = Client()
    client.user = member("engineer")  # type: ignore[attr-defined]
    client.force_login(client.user)  # type: ignore[attr-defined]
    return client


def _label(queue, item, member, answers):
    user = member("annotator")
    services.item_claim(queue=queue, user=user)
    services.label_submit(item=item, user=user, answers=answers)


def _disputed(project, member, n: int, labels: list[dict], schema=None) -> tuple[object, list[QueueItem]]:
    """A queue asking for len(labels) labels per item and n items labeled with those answers."""
    queue = make_queue(project, schema=schema, annotations_per_item=len(labels))
    items = add_items(queue, n)
    for item in items:
        for answers in labels:
            _label(queue, item, member, answers)
    for item in items:
        item.refresh_from_db()
    return queue, items


def test_the_review_list_names_the_questions_each_item_disagrees_on(project, member, engineer):
    queue, [item] = _disputed(
        project, member, 1, [{"quality": "good", "helpfulness": 4}, {"quality": "bad", "helpfulness": 2}]
    )
    assert item.status == ItemStatus.NEEDS_REVIEW

    response = engineer.get(f"/labeling/queues/{queue.pk}/review")

    [row] = response.context["rows"]
    assert [q.label for q in row["disagree"]] == ["Was the answer right?", "How helpful?"]
    html = response.content.decode()
    assert "Was the answer right?" in html and "quality</span>" not in html  # labels, not keys
    assert f'href="/conversations/{item.conversation_id}/"' in html


def test_hostile_question_labels_are_escaped_on_both_review_pages(project, member, engineer):
    schema = make_schema(
        project,
        [{"key": "quality", "type": "single_choice", "label": f"Right? {XSS}", "options": ["good", f"bad{XSS}"]}],
    )
    queue, [item] = _disputed(project, member, 1, [{"quality": "good"}, {"quality": f"bad{XSS}"}], schema=schema)

    listing = engineer.get(f"/labeling/queues/{queue.pk}/review").content.decode()
    page = engineer.get(f"/labeling/items/{item.pk}/review").content.decode()

    for html in (listing, page):
        assert "<script>window.__xss" not in html
    assert "Right? &lt;script&gt;" in listing


def test_the_review_page_prefills_unanimous_and_majority_answers_and_leaves_ties(project, member, engineer):
    _, [item] = _disputed(
        project,
        member,
        1,
        [
            {"quality": "good", "helpfulness": 4},
            {"quality": "good", "helpfulness": 2},
            {"quality": "bad", "helpfulness": 3},
        ],
    )

    response = engineer.get(f"/labeling/items/{item.pk}/review")

    views = {q.key: q for q in response.context["questions"]}
    assert [c.value for c in views["quality"].choices if c.checked] == ["good"]
    assert views["quality"].note == "Pre-filled: the majority, 2 of 3 labels"
    assert [c.value for c in views["helpfulness"].choices if c.checked] == []  # 4/2/3: no majority
    assert views["helpfulness"].note == ""
    html = response.content.decode()
    assert "1 of 3 questions pre-filled" in html
    assert "Pre-filled: the majority, 2 of 3 labels" in html
    assert "<kbd>1</kbd>" in html  # the same digit shortcuts as the labeling page
    assert 'src="/static/labeling/keys.js"' in html and 'src="/static/labeling/review.js"' in html


def test_a_unanimous_answer_is_prefilled_beside_a_tie(project, member, engineer):
    _, [item] = _disputed(
        project, member, 1, [{"quality": "good", "helpfulness": 5}, {"quality": "bad", "helpfulness": 5}]
    )

    views = {q.key: q for q in engineer.get(f"/labeling/items/{item.pk}/review").context["questions"]}

    assert [c.value for c in views["helpfulness"].choices if c.checked] == ["5"]
    assert views["helpfulness"].note == "Pre-filled: all 2 labels agree"
    assert [c.value for c in views["quality"].choices if c.checked] == []  # a 1-1 tie
    assert views["quality"].note == ""


def test_an_item_already_ruled_on_shows_its_final_answer_not_a_prefill(project, member, engineer):
    _, [item] = _disputed(project, member, 1, [{"quality": "good"}, {"quality": "bad"}])
    services.item_review(item=item, user=engineer.user, answers={"quality": "bad"})

    views = {q.key: q for q in engineer.get(f"/labeling/items/{item.pk}/review").context["questions"]}

    assert [c.value for c in views["quality"].choices if c.checked] == ["bad"]
    assert views["quality"].note == ""


def test_recording_goes_on_to_the_next_item_waiting_and_then_back_to_the_list(project, member, engineer):
    queue, items = _disputed(project, member, 3, [{"quality": "good"}, {"quality": "bad"}])
    first, second, third = items

    # From the middle one: the next in id order, then round to the first, then the list.
    went = engineer.post(f"/labeling/items/{second.pk}/review", {"a-quality": "good"})
    assert went["Location"] == f"/labeling/items/{third.pk}/review?reviewed={second.pk}"
    page = engineer.get(went["Location"])
    assert "Recorded the final answer for item" in page.content.decode()
    assert f'href="/labeling/queues/{queue.pk}/review"' in page.content.decode()  # back to the list
    went = engineer.post(f"/labeling/items/{third.pk}/review", {"a-quality": "bad"})
    assert went["Location"] == f"/labeling/items/{first.pk}/review?reviewed={third.pk}"
    went = engineer.post(f"/labeling/items/{first.pk}/review", {"a-quality": "bad"})
    assert went["Location"] == f"/labeling/queues/{queue.pk}/review?reviewed={first.pk}"
    assert QueueItem.objects.filter(queue=queue, status=ItemStatus.COMPLETED).count() == 3


def test_the_review_page_links_the_conversation(project, member, engineer):
    _, [item] = _disputed(project, member, 1, [{"quality": "good"}, {"quality": "bad"}])

    html = engineer.get(f"/labeling/items/{item.pk}/review").content.decode()

    assert f'href="/conversations/{item.conversation_id}/"' in html


# --- honest empty states -----------------------------------------------------------------------


def test_with_no_item_labeled_twice_the_list_says_so_and_links_to_labeling(project, member, engineer):
    queue = make_queue(project, annotations_per_item=2)
    [item, _] = add_items(queue, 2)
    _label(queue, item, member, {"quality": "good"})

    response = engineer.get(f"/labeling/queues/{queue.pk}/review")

    html = response.content.decode()
    assert "no item has two labels yet" in html
    assert "agreed on" not in html
    assert f'href="/labeling/queues/{queue.pk}/work"' in html


def test_a_queue_asking_for_one_label_points_to_its_settings(project, member, engineer):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    _label(queue, item, member, {"quality": "good"})

    html = engineer.get(f"/labeling/queues/{queue.pk}/review").content.decode()

    assert "no item has two labels yet" in html
    assert f'href="/labeling/queues/{queue.pk}/settings"' in html


def test_when_every_overlapping_item_was_agreed_on_the_list_says_that(project, member, engineer):
    queue, items = _disputed(project, member, 2, [{"quality": "good"}, {"quality": "good"}])
    assert {i.final_source for i in items} == {"agreement"}

    html = engineer.get(f"/labeling/queues/{queue.pk}/review").content.decode()

    assert "every item with two or more labels was agreed on" in html
    assert "no item has two labels yet" not in html
    assert "(2 items)" in html


def test_when_some_were_ruled_on_the_list_counts_agreed_and_reviewed(project, member, engineer):
    queue, _ = _disputed(project, member, 1, [{"quality": "good"}, {"quality": "good"}])
    disputed = add_items(queue, 1)[-1]
    for answer in ("good", "bad"):
        _label(queue, disputed, member, {"quality": answer})
    services.item_review(item=disputed, user=engineer.user, answers={"quality": "bad"})

    response = engineer.get(f"/labeling/queues/{queue.pk}/review")

    assert response.context["overlap"] == {"overlap": 2, "agreed": 1, "reviewed": 1, "waiting": 0}
    html = response.content.decode()
    assert "1 was agreed on and 1 was ruled on by a reviewer" in html
    assert "every item with two or more labels was agreed on" not in html


# --- the charts ----------------------------------------------------------------------------------


def test_the_queue_list_draws_each_queues_progress(project, member, engineer):
    queue, _ = _disputed(project, member, 1, [{"quality": "good"}, {"quality": "bad"}])
    add_items(queue, 2)
    empty = make_queue(project, name="Nothing yet")

    response = engineer.get("/labeling/")

    html = response.content.decode()
    meters = {row["queue"].pk: row["meter"] for row in response.context["rows"]}
    assert "<title>in review: 1</title>" in meters[queue.pk]
    assert "<title>open: 2</title>" in meters[queue.pk]
    assert "<title>" not in meters[empty.pk].split("</title>", 1)[1]  # only the bar's own title: no segment
    assert "No items yet" in html and f'href="/labeling/queues/{empty.pk}/settings"' in html
    assert "<progress" not in html


def test_the_agreement_page_charts_throughput_and_agreement_over_time(project, member, engineer):
    queue, _ = _disputed(project, member, 2, [{"quality": "good"}, {"quality": "good"}])
    [disputed] = add_items(queue, 1)[-1:]
    for answer in ("good", "bad"):
        _label(queue, disputed, member, {"quality": answer})
    services.item_review(item=disputed, user=engineer.user, answers={"quality": "bad"})

    response = engineer.get(f"/labeling/queues/{queue.pk}/agreement")

    throughput, trend = response.context["throughput_chart"], response.context["agreement_chart"]
    assert "6 labels, at most 6 a day" in throughput
    assert "labels, " in throughput and ": 6</title></rect>" in throughput
    assert "2 of 3 items with two or more labels agreed" in trend
    assert ": 67%</title></circle>" in trend
    assert "No data" not in throughput + trend


def test_the_agreement_page_with_no_labels_says_so_and_its_charts_have_no_data(project, engineer):
    queue = make_queue(project, annotations_per_item=2)
    add_items(queue, 2)

    response = engineer.get(f"/labeling/queues/{queue.pk}/agreement")

    html = response.content.decode()
    assert 'data-empty="no-labels"' in html and "No labels yet" in html
    assert f'href="/labeling/queues/{queue.pk}/work"' in html
    assert "No data" in response.context["throughput_chart"] and "No data" in response.context["agreement_chart"]
    assert "This rubric has no question that can be compared" not in html


def test_the_agreement_page_with_labels_but_no_overlap_says_no_item_has_two_labels(project, member, engineer):
    queue = make_queue(project, annotations_per_item=2)
    [item, _] = add_items(queue, 2)
    _label(queue, item, member, {"quality": "good"})

    html = engineer.get(f"/labeling/queues/{queue.pk}/agreement").content.decode()

    assert 'data-empty="no-overlap"' in html and "no item has two labels yet" in html


def test_the_annotators_page_with_nobody_links_to_settings_and_labeling(project, engineer):
    queue = make_queue(project)

    html = engineer.get(f"/labeling/queues/{queue.pk}/annotators").content.decode()

    assert "Nobody has worked this queue yet" in html
    assert f'href="/labeling/queues/{queue.pk}/settings"' in html
    assert f'href="/labeling/queues/{queue.pk}/work"' in html


def test_my_work_with_nothing_says_what_to_do_next(project, member):
    annotator = Client()
    annotator.force_login(member("annotator"))
    make_queue(project)

    queues_html = annotator.get("/labeling/mine").content.decode()

    assert "You have not labeled anything yet. Press “Continue”" in queues_html
    assert 'href="/labeling/queues/' in queues_html


def test_my_work_without_a_queue_points_an_engineer_to_creating_one(org, member):
    engineer = Client()
    engineer.force_login(member("engineer"))

    html = engineer.get("/labeling/mine").content.decode()

    assert 'data-empty="no-queues"' in html and 'href="/labeling/queues/new"' in html
