"""Labeling browser pages: the queue list, the labeling page and its htmx endpoints (submit,
skip, prefetch, drafts, comments), my work, and the engineer's review, annotators and agreement
pages. Access follows the API's rules; hostile conversation content is escaped."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db.models import F
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, AssignmentStatus, ItemComment, ItemStatus, Label, QueueItem
from tests.factories import ConversationFactory, JudgeScoreFactory
from tests.labeling.factories import make_queue, make_schema

HX = {"HTTP_HX_REQUEST": "true"}
XSS = "<script>window.__xss=1</script>"


def _add_items(queue, n: int, **conversation) -> list[QueueItem]:
    conversations = [ConversationFactory(project=queue.project, **conversation) for _ in range(n)]
    services.queue_items_add(queue=queue, conversation_ids=[c.pk for c in conversations], user=None)
    return list(QueueItem.objects.filter(queue=queue).order_by("id"))


def _submit(client, item, *, htmx: bool = True, **fields):
    data = {"client_token": "tok-" + str(item.pk), "time_spent_ms": "1500", "mode": "work", **fields}
    return client.post(f"/labeling/items/{item.pk}/submit", data, **(HX if htmx else {}))


# --- the queue list --------------------------------------------------------------------------


def test_queue_list_shows_the_queues_an_annotator_may_work_with_progress(project, browser_for, member):
    queue = make_queue(project, name="Refund QA")
    make_queue(project, name="Named only", assignee_ids=(member("annotator").pk,))
    items = _add_items(queue, 3)
    client = browser_for("annotator")
    services.item_claim(queue=queue, user=client.user)
    services.label_submit(item=items[0], user=client.user, answers={"quality": "good"})

    response = client.get("/labeling/")

    assert response.status_code == 200
    [row] = response.context["rows"]
    assert row["queue"] == queue
    assert row["mine"] == {"done": 1, "skipped": 0, "leased": 0}
    assert row["counts"]["completed"] == 1
    html = response.content.decode()
    assert "Named only" not in html
    assert f'href="/labeling/queues/{queue.pk}/work"' in html
    assert f"/labeling/queues/{queue.pk}/agreement" not in html  # engineers only


def _queues_with_my_labels(project, user, n: int):
    queues = [make_queue(project, name=f"Queue {i}") for i in range(n)]
    for queue in queues:
        for item in _add_items(queue, 2):
            services.item_claim(queue=queue, user=user)
            services.label_submit(item=item, user=user, answers={"quality": "good"}, time_spent_ms=2000)
    return queues


@pytest.mark.parametrize("queues", [1, 4])
def test_queue_list_queries_do_not_grow_with_the_queues(project, browser_for, queues, django_assert_num_queries):
    client = browser_for("annotator")
    _queues_with_my_labels(project, client.user, queues)
    client.get("/labeling/", **HX)

    # Session, user, membership; the queues, their assignees; every queue's counts in one
    # grouped pass, the person's progress in another.
    with django_assert_num_queries(7):
        response = client.get("/labeling/", **HX)

    assert [row["mine"] for row in response.context["rows"]] == [{"done": 2, "skipped": 0, "leased": 0}] * queues
    assert [row["counts"]["completed"] for row in response.context["rows"]] == [2] * queues


def test_queue_list_for_an_engineer_links_review_annotators_and_agreement(project, browser_for):
    queue = make_queue(project)

    html = browser_for("engineer").get("/labeling/").content.decode()

    for page in ("review", "annotators", "agreement"):
        assert f'href="/labeling/queues/{queue.pk}/{page}"' in html


def test_home_loads_the_annotators_queue_list_and_shows_an_empty_state(project, browser_for):
    client = browser_for("annotator")

    home = client.get("/").content.decode()
    partial = client.get("/labeling/", **HX)

    assert 'hx-get="/labeling/"' in home
    assert "No queues are assigned to you yet" in partial.content.decode()
    assert "<html" not in partial.content.decode()  # the fragment, not a page


def test_people_without_the_labeling_capability_are_refused(project, browser_for):
    queue = make_queue(project)
    approver = browser_for("approver")
    annotator = browser_for("annotator")

    assert approver.get("/labeling/").status_code == 403
    assert approver.get(f"/labeling/queues/{queue.pk}/work").status_code == 403
    for page in ("review", "annotators", "agreement"):
        assert annotator.get(f"/labeling/queues/{queue.pk}/{page}").status_code == 403
    assert Assignment.objects.count() == 0


def test_another_tenants_queue_and_item_are_not_found(project, other_project, browser_for, member):
    theirs = make_queue(other_project)
    [item] = _add_items(theirs, 1)
    annotator = browser_for("annotator")
    engineer = browser_for("engineer")

    assert annotator.get(f"/labeling/queues/{theirs.pk}/work").status_code == 404
    assert annotator.post(f"/labeling/queues/{theirs.pk}/next", **HX).status_code == 404
    assert _submit(annotator, item, **{"a-quality": "good"}).status_code == 404
    assert annotator.post(f"/labeling/items/{item.pk}/skip", **HX).status_code == 404
    assert annotator.put(f"/labeling/items/{item.pk}/draft", "a-quality=good").status_code == 404
    assert annotator.post(f"/labeling/items/{item.pk}/comments", {"body": "hi"}).status_code == 404
    assert annotator.get(f"/labeling/items/{item.pk}/edit").status_code == 404
    for page in ("review", "annotators", "agreement"):
        assert engineer.get(f"/labeling/queues/{theirs.pk}/{page}").status_code == 404
    assert engineer.get(f"/labeling/items/{item.pk}/review").status_code == 404
    assert engineer.post(f"/labeling/items/{item.pk}/review", {"a-quality": "good"}).status_code == 404
    assert (Assignment.objects.count(), Label.objects.count(), ItemComment.objects.count()) == (0, 0, 0)
    item.refresh_from_db()
    assert (item.status, item.final_answers) == (ItemStatus.OPEN, None)


def test_a_queue_the_annotator_may_not_work_is_not_found(project, browser_for, member):
    queue = make_queue(project, assignee_ids=(member("annotator").pk,))
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")

    assert client.get(f"/labeling/queues/{queue.pk}/work").status_code == 404
    assert _submit(client, item, **{"a-quality": "good"}).status_code == 404
    assert Assignment.objects.count() == 0


# --- the labeling page -----------------------------------------------------------------------


def test_labeling_page_claims_an_item_and_a_reload_gets_the_same_one(project, browser_for):
    queue = make_queue(project)
    items = _add_items(queue, 2)
    JudgeScoreFactory(conversation=items[0].conversation, criterion="correctness", score=0.123)
    client = browser_for("annotator")

    first = client.post(f"/labeling/queues/{queue.pk}/work", follow=True)
    again = client.get(f"/labeling/queues/{queue.pk}/work")

    assert first.status_code == again.status_code == 200
    assert first.context["item"] == again.context["item"] == items[0]
    assert Assignment.objects.filter(user=client.user, status=AssignmentStatus.ACTIVE).count() == 1
    html = first.content.decode()
    assert f'data-item="{items[0].pk}"' in html
    assert "Where is my refund?" in html  # the transcript
    assert "Judge the <strong>final</strong> answer." in html  # instructions, as markdown
    assert 'name="a-quality" value="good" data-kbd="1"' in html
    assert 'name="a-helpfulness" value="3" data-kbd="3"' in html
    assert '<textarea name="a-notes"' in html
    assert "0.12" not in html  # judge scores are hidden unless the queue shows them
    assert 'src="/static/labeling/labeling.js"' in html


def test_opening_the_labeling_page_takes_no_lease_and_shows_a_start_form(project, browser_for):
    queue = make_queue(project)
    _add_items(queue, 2)
    client = browser_for("annotator")

    responses = [client.get(f"/labeling/queues/{queue.pk}/work") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    html = responses[0].content.decode()
    assert 'class="item-panel start active" data-state="start"' in html
    assert f'hx-post="/labeling/queues/{queue.pk}/work"' in html
    assert "data-item=" not in html
    assert Assignment.objects.count() == 0
    assert QueueItem.objects.filter(leased_count__gt=0).count() == 0


def test_starting_by_htmx_claims_and_answers_the_items_panel(project, browser_for):
    queue = make_queue(project)
    items = _add_items(queue, 2)
    client = browser_for("annotator")

    first = client.post(f"/labeling/queues/{queue.pk}/work", **HX)
    again = client.post(f"/labeling/queues/{queue.pk}/work", **HX)

    assert first.status_code == again.status_code == 200
    for response in (first, again):
        html = response.content.decode()
        assert f'class="item-panel incoming" data-item="{items[0].pk}"' in html
        assert "<html" not in html
    [assignment] = Assignment.objects.filter(user=client.user)
    assert (assignment.item_id, assignment.status) == (items[0].pk, AssignmentStatus.ACTIVE)


def test_starting_without_htmx_redirects_to_the_page_showing_the_lease(project, browser_for):
    queue = make_queue(project)
    items = _add_items(queue, 1)
    client = browser_for("annotator")

    response = client.post(f"/labeling/queues/{queue.pk}/work")
    page = client.get(f"/labeling/queues/{queue.pk}/work")

    assert (response.status_code, response["Location"]) == (302, f"/labeling/queues/{queue.pk}/work")
    assert page.context["item"] == items[0]
    assert Assignment.objects.filter(user=client.user, status=AssignmentStatus.ACTIVE).count() == 1


def test_starting_an_empty_queue_shows_all_done(project, browser_for):
    queue = make_queue(project)

    response = browser_for("annotator").post(f"/labeling/queues/{queue.pk}/work", **HX)

    assert 'class="item-panel done incoming"' in response.content.decode()


def test_the_labeling_page_queries_are_pinned(project, browser_for, django_assert_num_queries):
    queue = make_queue(project)
    _add_items(queue, 3)
    client = browser_for("annotator")
    client.get(f"/labeling/queues/{queue.pk}/work")

    # Session, user, membership; the queue; the lease held (none); the organization switcher's
    # memberships and organization.
    with django_assert_num_queries(7):
        start = client.get(f"/labeling/queues/{queue.pk}/work")
    client.post(f"/labeling/queues/{queue.pk}/work", **HX)
    # ...and with a lease held, its conversation and the conversation's signals too.
    with django_assert_num_queries(9):
        held = client.get(f"/labeling/queues/{queue.pk}/work")

    assert 'data-state="start"' in start.content.decode()
    assert held.context["item"].pk == Assignment.objects.get(user=client.user).item_id


@pytest.mark.parametrize("disputed", [1, 3])
def test_the_review_list_queries_do_not_grow_with_the_items(
    project, browser_for, member, disputed, django_assert_num_queries
):
    queue = make_queue(project, annotations_per_item=2)
    items = _add_items(queue, disputed)
    for answer in ("good", "bad"):
        person = member("annotator")
        for _ in items:
            item = services.item_claim(queue=queue, user=person).item
            services.label_submit(item=item, user=person, answers={"quality": answer})
    client = browser_for("engineer")
    client.get(f"/labeling/queues/{queue.pk}/review")

    # Session, user, membership; the queue; the items with their conversations; the rubric's
    # latest version and every listed item's labels (which questions disagree: one query for
    # the page, not one per item); the counts; the organization switcher's memberships and
    # organization.
    with django_assert_num_queries(10):
        response = client.get(f"/labeling/queues/{queue.pk}/review")

    assert len(response.context["items"]) == disputed


def test_judge_scores_show_when_the_queue_shows_them(project, browser_for):
    queue = make_queue(project, show_judge_scores=True)
    [item] = _add_items(queue, 1)
    JudgeScoreFactory(conversation=item.conversation, criterion="correctness", score=0.123)

    html = browser_for("annotator").post(f"/labeling/queues/{queue.pk}/work", follow=True).content.decode()

    assert "correctness 0.12" in html


def test_turn_questions_list_the_eligible_turns_with_their_index(project, browser_for):
    schema = make_schema(project, [{"key": "bad_turn", "type": "turn", "label": "Which turn?"}])
    queue = make_queue(project, schema=schema)
    _add_items(queue, 1)

    response = browser_for("annotator").post(f"/labeling/queues/{queue.pk}/work", follow=True)

    [question] = response.context["questions"]
    assert [(c.value, c.text, c.kbd) for c in question.choices] == [("1", "#1 assistant", "1")]


def test_a_label_naming_another_rubrics_version_is_refused_by_the_browser_as_by_the_api(
    project, browser_for, api_client_for
):
    queue = make_queue(project)
    other = make_schema(project, name="Another rubric")
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", **HX)
    api = api_client_for("annotator")

    browser = _submit(client, item, **{"a-quality": "good", "schema_version": str(other.latest_version_id)})
    answered = api.post(
        f"/api/v1/items/{item.pk}/labels",
        {"answers": {"quality": "good"}, "schema_version": other.latest_version_id},
        format="json",
    )

    assert browser.status_code == 422
    assert "Not a version of this queue&#x27;s schema." in browser.content.decode()
    assert (answered.status_code, answered.json()["errors"]) == (
        400,
        {"schema_version": ["Not a version of this queue's schema."]},
    )
    assert Label.objects.count() == 0
    assert Assignment.objects.get(user=client.user).status == AssignmentStatus.ACTIVE


def test_submit_stores_the_label_and_returns_the_next_items_panel(project, browser_for):
    queue = make_queue(project)
    items = _add_items(queue, 3)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    response = _submit(client, items[0], **{"a-quality": "good", "a-helpfulness": "4", "a-notes": " fine "})

    assert response.status_code == 200
    label = Label.objects.get(user=client.user)
    assert (label.item, label.answers) == (items[0], {"quality": "good", "helpfulness": 4, "notes": "fine"})
    assert (label.time_spent_ms, label.client_token) == (1500, f"tok-{items[0].pk}")
    html = response.content.decode()
    assert f'class="item-panel incoming" data-item="{items[1].pk}"' in html
    assert "<html" not in html
    assert Assignment.objects.get(item=items[1], user=client.user).status == AssignmentStatus.ACTIVE


def test_prefetch_leases_a_second_item_and_submit_then_answers_with_nothing(
    project, browser_for, django_assert_max_num_queries
):
    queue = make_queue(project)
    items = _add_items(queue, 3)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    # The per-item path of a labeling session; a bound, so an N+1 shows up here. About a third
    # is the session, user and membership lookups every signed-in page makes.
    with django_assert_max_num_queries(16):
        prefetched = client.post(f"/labeling/queues/{queue.pk}/next?exclude={items[0].pk}", **HX)
    with django_assert_max_num_queries(20):
        response = _submit(client, items[0], shown=str(items[1].pk), **{"a-quality": "bad"})

    assert prefetched.status_code == 200
    assert f'class="item-panel " data-item="{items[1].pk}"' in prefetched.content.decode()  # hidden, not active
    assert (response.status_code, response.content) == (200, b"")
    assert sorted(Assignment.objects.filter(user=client.user).values_list("item_id", "status")) == [
        (items[0].pk, AssignmentStatus.SUBMITTED),
        (items[1].pk, AssignmentStatus.ACTIVE),
    ]


def test_the_prefetched_items_lease_runs_from_when_it_is_shown_not_when_it_was_fetched(project, browser_for):
    queue = make_queue(project, lease_seconds=600)
    items = _add_items(queue, 2)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)
    client.post(f"/labeling/queues/{queue.pk}/next?exclude={items[0].pk}", **HX)
    prefetched = Assignment.objects.get(user=client.user, item=items[1])
    # Eight minutes on the first item: the prefetched lease would have two minutes left.
    eight = dt.timedelta(minutes=8)
    Assignment.objects.filter(pk=prefetched.pk).update(
        leased_at=F("leased_at") - eight, lease_expires_at=F("lease_expires_at") - eight
    )
    before = timezone.now()

    _submit(client, items[0], shown=str(items[1].pk), **{"a-quality": "good"})

    prefetched.refresh_from_db()
    assert prefetched.leased_at >= before
    assert prefetched.lease_expires_at >= before + dt.timedelta(seconds=600)


def test_a_lease_that_ran_out_is_not_restarted_by_showing_it(project, member):
    queue = make_queue(project, lease_seconds=60)
    items = _add_items(queue, 1)
    worker = member("annotator")
    assignment = services.item_claim(queue=queue, user=worker)
    later = timezone.now() + dt.timedelta(minutes=5)

    assert services.lease_restart(queue=queue, item_id=items[0].pk, user=worker, now=later) is None
    assignment.refresh_from_db()
    assert assignment.lease_expires_at < later


def test_prefetch_answers_204_when_nothing_else_is_left(project, browser_for):
    queue = make_queue(project)
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    response = client.post(f"/labeling/queues/{queue.pk}/next?exclude={item.pk}", **HX)

    assert response.status_code == 204
    assert Assignment.objects.filter(user=client.user).count() == 1


def test_the_last_submit_returns_the_all_done_panel(project, browser_for):
    queue = make_queue(project)
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    response = _submit(client, item, **{"a-quality": "good"})

    assert response.status_code == 200
    assert 'data-state="done"' in response.content.decode()


def test_invalid_answers_come_back_on_the_same_item_with_the_messages_and_nothing_is_stored(project, browser_for):
    queue = make_queue(project)
    items = _add_items(queue, 2)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    response = _submit(client, items[0], **{"a-helpfulness": "4", "a-notes": "half done"})

    assert response.status_code == 422
    html = response.content.decode()
    assert "This question is required." in html
    assert f'data-item="{items[0].pk}" data-state="invalid"' in html
    assert 'name="a-helpfulness" value="4" data-kbd="4" checked' in html  # answers kept
    assert ">half done</textarea>" in html
    assert f'name="client_token" value="tok-{items[0].pk}"' in html
    assert Label.objects.count() == 0
    assert Assignment.objects.get(item=items[0], user=client.user).status == AssignmentStatus.ACTIVE
    assert not Assignment.objects.filter(item=items[1]).exists()


def test_out_of_range_answers_name_the_question(project, browser_for):
    queue = make_queue(project)
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    response = _submit(client, item, **{"a-quality": "meh", "a-helpfulness": "9"})

    assert response.status_code == 422
    assert response.context["questions"][0].errors == ["Choose one of: good, bad."]
    assert response.context["questions"][1].errors == ["Must be from 1 to 5."]
    assert Label.objects.count() == 0


def test_a_label_after_the_lease_was_lost_and_the_item_completed_is_a_notice_and_the_next_item(
    project, browser_for, member
):
    queue = make_queue(project)
    items = _add_items(queue, 2)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)
    Assignment.objects.filter(user=client.user).update(lease_expires_at="2000-01-01T00:00:00Z")
    other = member("annotator")
    assert services.item_claim(queue=queue, user=other).item_id == items[0].pk
    services.label_submit(item=items[0], user=other, answers={"quality": "bad"})

    response = _submit(client, items[0], **{"a-quality": "good"})

    assert response.status_code == 409
    trigger = json.loads(response.headers["HX-Trigger"])
    assert "already complete" in trigger["labeling-notice"]["message"]
    assert f'data-item="{items[1].pk}"' in response.content.decode()
    assert list(Label.objects.values_list("user_id", "answers")) == [(other.pk, {"quality": "bad"})]


def test_without_htmx_submit_redirects_back_to_the_labeling_page(project, browser_for):
    queue = make_queue(project)
    item, following = _add_items(queue, 2)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    response = _submit(client, item, htmx=False, **{"a-quality": "good"})
    page = client.get(response["Location"])

    assert (response.status_code, response["Location"]) == (302, f"/labeling/queues/{queue.pk}/work")
    assert Label.objects.get().answers == {"quality": "good"}
    assert page.context["item"] == following  # leased by the post, shown by the page


def test_skip_records_the_reason_and_returns_the_next_item(project, browser_for):
    queue = make_queue(project)
    items = _add_items(queue, 2)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    response = client.post(f"/labeling/items/{items[0].pk}/skip", {"reason": "not English"}, **HX)

    assert response.status_code == 200
    assert f'data-item="{items[1].pk}"' in response.content.decode()
    skipped = Assignment.objects.get(item=items[0], user=client.user)
    assert (skipped.status, skipped.skip_reason) == (AssignmentStatus.SKIPPED, "not English")
    assert Label.objects.count() == 0


def test_skipping_an_item_you_do_not_hold_is_a_notice(project, browser_for):
    queue = make_queue(project)
    items = _add_items(queue, 2)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)
    client.post(f"/labeling/items/{items[0].pk}/skip", {}, **HX)

    response = client.post(f"/labeling/items/{items[0].pk}/skip", {"shown": str(items[1].pk)}, **HX)

    assert (response.status_code, response.content) == (409, b"")
    assert json.loads(response.headers["HX-Trigger"])["labeling-notice"]["message"] == "You do not hold this item."


def test_drafts_autosave_and_come_back_when_the_page_is_opened_again(project, browser_for):
    queue = make_queue(project)
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    saved = client.put(
        f"/labeling/items/{item.pk}/draft",
        "a-quality=bad&a-helpfulness=2&a-notes=half+a+thought",
        content_type="application/x-www-form-urlencoded",
    )
    reopened = client.get(f"/labeling/queues/{queue.pk}/work")

    assert saved.status_code == 204
    assert Assignment.objects.get(item=item).draft_answers == {
        "quality": "bad",
        "helpfulness": 2,
        "notes": "half a thought",
    }
    html = reopened.content.decode()
    assert 'name="a-quality" value="bad" data-kbd="2" checked' in html
    assert 'name="a-helpfulness" value="2" data-kbd="2" checked' in html
    assert ">half a thought</textarea>" in html
    assert Label.objects.count() == 0


def test_a_draft_for_an_item_never_claimed_is_refused(project, browser_for):
    queue = make_queue(project)
    [item] = _add_items(queue, 1)

    response = browser_for("annotator").put(f"/labeling/items/{item.pk}/draft", "a-quality=bad")

    assert response.status_code == 409
    assert not Assignment.objects.exists()


def test_comments_for_reviewers_are_stored(project, browser_for):
    queue = make_queue(project)
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    client.post(f"/labeling/queues/{queue.pk}/work", follow=True)

    sent = client.post(f"/labeling/items/{item.pk}/comments", {"body": "Tool result looks stale."}, **HX)
    blank = client.post(f"/labeling/items/{item.pk}/comments", {"body": "  "}, **HX)
    stranger = browser_for("annotator").post(f"/labeling/items/{item.pk}/comments", {"body": "drive-by"}, **HX)

    assert sent.status_code == 200
    assert "Sent to reviewers" in sent.content.decode()
    assert blank.status_code == 422
    assert stranger.status_code == 409  # only those handed the item comment on it
    assert "Comment on items you were handed." in stranger.content.decode()
    assert list(ItemComment.objects.values_list("user_id", "body")) == [(client.user.pk, "Tool result looks stale.")]


def test_annotators_never_see_other_peoples_labels(project, browser_for, member):
    queue = make_queue(project, annotations_per_item=2)
    [item] = _add_items(queue, 1)
    other = member("annotator")
    services.item_claim(queue=queue, user=other)
    services.label_submit(item=item, user=other, answers={"quality": "bad", "notes": "secret-note-of-another"})
    services.item_comment_add(item=item, user=other, body="secret-comment-of-another")

    html = browser_for("annotator").post(f"/labeling/queues/{queue.pk}/work", follow=True).content.decode()

    assert f'data-item="{item.pk}"' in html
    assert "secret-note-of-another" not in html
    assert "secret-comment-of-another" not in html
    assert " checked" not in html


# --- my work and editing ---------------------------------------------------------------------


def test_my_work_shows_progress_per_queue_and_recent_labels_with_edit_links(project, browser_for, member):
    queue = make_queue(project, annotations_per_item=2)
    items = _add_items(queue, 3)
    client = browser_for("annotator")
    for item, spent in zip(items[:2], (1000, 3000), strict=True):
        services.item_claim(queue=queue, user=client.user)
        services.label_submit(item=item, user=client.user, answers={"quality": "good"}, time_spent_ms=spent)
    other = member("annotator")
    services.item_claim(queue=queue, user=other)
    services.label_submit(item=items[0], user=other, answers={"quality": "good"})  # completes items[0]
    services.item_review(item=items[0], user=member("engineer"), answers={"quality": "good"})  # and rules on it
    services.item_claim(queue=queue, user=client.user)

    response = client.get("/labeling/mine")

    assert response.status_code == 200
    [row] = response.context["rows"]
    assert (row["progress"], row["median_seconds"]) == ({"done": 2, "skipped": 0, "leased": 1}, 2.0)
    recent = {r["label"].item_id: r["editable"] for r in response.context["recent"]}
    assert recent == {items[0].pk: False, items[1].pk: True}
    html = response.content.decode()
    assert f'href="/labeling/items/{items[1].pk}/edit"' in html
    assert f'href="/labeling/items/{items[0].pk}/edit"' not in html


@pytest.mark.parametrize("queues", [1, 4])
def test_my_work_queries_do_not_grow_with_the_queues_or_labels(project, browser_for, queues, django_assert_num_queries):
    client = browser_for("annotator")
    _queues_with_my_labels(project, client.user, queues)
    client.get("/labeling/mine")

    # Session, user, membership; the queues, their assignees; progress, time samples; the
    # recent labels' count and page; the page's organization switcher (memberships, org).
    with django_assert_num_queries(11):
        response = client.get("/labeling/mine")

    assert [row["median_seconds"] for row in response.context["rows"]] == [2.0] * queues
    assert len(response.context["recent"]) == 2 * queues


def test_my_work_pages_the_recent_labels(project, browser_for, settings, monkeypatch):
    from labeling.views import mine

    monkeypatch.setattr(mine, "RECENT_LABELS", 3)
    client = browser_for("annotator")
    [queue] = _queues_with_my_labels(project, client.user, 1)
    _add_items(queue, 2)
    for _ in range(2):
        item = services.item_claim(queue=queue, user=client.user).item
        services.label_submit(item=item, user=client.user, answers={"quality": "bad"})
    ids = list(Label.objects.filter(user=client.user).order_by("-updated_at", "-pk").values_list("item_id", flat=True))

    first = client.get("/labeling/mine")
    second = client.get("/labeling/mine?page=2")

    assert [r["label"].item_id for r in first.context["recent"]] == ids[:3]
    assert [r["label"].item_id for r in second.context["recent"]] == ids[3:]
    assert 'href="?page=2"' in first.content.decode()


def test_editing_my_label_changes_it_until_the_item_is_reviewed(project, browser_for):
    queue = make_queue(project, annotations_per_item=2)
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    services.item_claim(queue=queue, user=client.user)
    services.label_submit(item=item, user=client.user, answers={"quality": "good"})

    page = client.get(f"/labeling/items/{item.pk}/edit")
    saved = client.post(
        f"/labeling/items/{item.pk}/submit", {"mode": "edit", "a-quality": "bad", "a-helpfulness": "2"}, **HX
    )

    assert page.status_code == 200
    assert 'name="a-quality" value="good" data-kbd="1" checked' in page.content.decode()
    assert 'name="mode" value="edit"' in page.content.decode()
    assert saved.status_code == 200
    assert "Your label on item" in saved.content.decode()
    assert Label.objects.get().answers == {"quality": "bad", "helpfulness": 2}
    assert Label.objects.count() == 1


def test_a_reviewed_item_cannot_be_edited(project, browser_for, member):
    queue = make_queue(project)
    [item] = _add_items(queue, 1)
    client = browser_for("annotator")
    services.item_claim(queue=queue, user=client.user)
    services.label_submit(item=item, user=client.user, answers={"quality": "good"})
    services.item_review(item=item, user=member("engineer"), answers={"quality": "good"})

    page = client.get(f"/labeling/items/{item.pk}/edit")
    refused = client.post(f"/labeling/items/{item.pk}/submit", {"mode": "edit", "a-quality": "bad"}, **HX)

    assert "This item was reviewed" in page.content.decode()
    assert 'name="a-quality"' not in page.content.decode()
    assert refused.status_code == 409
    assert Label.objects.get().answers == {"quality": "good"}


# --- engineer pages --------------------------------------------------------------------------


@pytest.fixture
def disputed(project, member):
    """A queue with overlap 2 and one item two annotators disagree on (needs review)."""
    queue = make_queue(project, annotations_per_item=2)
    [item] = _add_items(queue, 1)
    for username, answer in (("ann-a", "good"), ("ann-b", "bad")):
        user = member("annotator", username=username)
        services.item_claim(queue=queue, user=user)
        services.label_submit(item=item, user=user, answers={"quality": answer}, time_spent_ms=2000)
    services.item_comment_add(item=item, user=user, body="Not sure about this one.")
    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_REVIEW
    return queue, item


def test_review_list_and_item_show_labels_side_by_side_with_comments(disputed, browser_for):
    queue, item = disputed
    client = browser_for("engineer")

    listing = client.get(f"/labeling/queues/{queue.pk}/review")
    page = client.get(f"/labeling/items/{item.pk}/review")

    assert listing.status_code == 200
    assert list(listing.context["items"]) == [item]
    assert f'href="/labeling/items/{item.pk}/review"' in listing.content.decode()
    assert page.status_code == 200
    assert [label.user.username for label in page.context["labels"]] == ["ann-a", "ann-b"]
    [quality] = [row for row in page.context["table"] if row["key"] == "quality"]
    assert (quality["cells"], quality["differs"]) == (["good", "bad"], True)
    assert page.context["times"] == ["2.0 s", "2.0 s"]
    assert "Not sure about this one." in page.content.decode()


def test_reviewer_records_the_final_answer(disputed, browser_for):
    queue, item = disputed
    client = browser_for("engineer")

    response = client.post(f"/labeling/items/{item.pk}/review", {"a-quality": "bad", "a-helpfulness": "2"})

    assert (response.status_code, response["Location"]) == (
        302,
        f"/labeling/queues/{queue.pk}/review?reviewed={item.pk}",
    )
    item.refresh_from_db()
    assert (item.status, item.final_source, item.reviewed_by) == (ItemStatus.COMPLETED, "review", client.user)
    assert item.final_answers == {"quality": "bad", "helpfulness": 2}
    assert client.get(response["Location"]).context["items"] == []


def test_an_invalid_final_answer_is_shown_and_nothing_changes(disputed, browser_for):
    _, item = disputed

    response = browser_for("engineer").post(f"/labeling/items/{item.pk}/review", {"a-helpfulness": "2"})

    assert response.status_code == 422
    assert "This question is required." in response.content.decode()
    item.refresh_from_db()
    assert (item.status, item.final_answers) == (ItemStatus.NEEDS_REVIEW, None)


def test_annotators_page_shows_each_assignees_numbers(disputed, browser_for):
    queue, _ = disputed

    response = browser_for("engineer").get(f"/labeling/queues/{queue.pk}/annotators")

    assert response.status_code == 200
    rows = {r["username"]: r for r in response.context["rows"]}
    assert set(rows) == {"ann-a", "ann-b"}
    assert (rows["ann-a"]["done"], rows["ann-a"]["median"], rows["ann-a"]["agreement"]) == (1, "2.0", "0%")
    assert rows["ann-a"]["gold"] == "—"


def test_agreement_page_shows_figures_pairs_and_a_confusion_table(disputed, browser_for):
    queue, _ = disputed

    response = browser_for("engineer").get(f"/labeling/queues/{queue.pk}/agreement")

    assert response.status_code == 200
    questions = {q["key"]: q for q in response.context["questions"]}
    assert set(questions) == {"quality", "helpfulness"}  # free text is not compared
    assert (questions["quality"]["n_items"], questions["quality"]["percent_agreement"]) == (1, "0%")
    [pair] = response.context["pairs"]
    assert (pair["a"], pair["b"], pair["n_items"]) == ("ann-a", "ann-b", 1)
    confusion = response.context["confusion"]
    assert confusion["categories"] == ["good", "bad"]
    assert [row for _, row, _ in confusion["rows"]] == [[0, 1], [0, 0]]
    html = response.content.decode()
    assert "Cohen" in html and "Krippendorff" in html and "Gwet" in html


def test_agreement_page_with_no_overlapping_labels_renders_empty(project, browser_for):
    queue = make_queue(project)
    _add_items(queue, 2)

    response = browser_for("engineer").get(f"/labeling/queues/{queue.pk}/agreement?question=nope")

    assert response.status_code == 200
    assert response.context["pairs"] == []
    assert "No two annotators have labeled the same item yet." in response.content.decode()


# --- hostile content -------------------------------------------------------------------------


def test_hostile_content_is_escaped_on_the_labeling_and_review_pages(project, browser_for):
    queue = make_queue(project, annotations_per_item=2, show_judge_scores=True)
    messages = [
        {"role": "user", "content": f"user {XSS} <img src=x onerror=alert(1)>"},
        {"role": "assistant", "content": f"**bold** {XSS}", "name": f"bot{XSS}"},
    ]
    [item] = _add_items(queue, 1, messages=messages, external_id=f"ext-{XSS}")
    JudgeScoreFactory(conversation=item.conversation, criterion=f"c{XSS}", label=f"l{XSS}", reasoning=f"r{XSS}")
    annotator = browser_for("annotator")

    labeling_html = annotator.post(f"/labeling/queues/{queue.pk}/work", follow=True).content.decode()
    other = browser_for("annotator")
    services.item_claim(queue=queue, user=other.user)
    services.label_submit(item=item, user=other.user, answers={"quality": "bad", "notes": f"n{XSS}"})
    services.item_comment_add(item=item, user=other.user, body=f"comment {XSS}")
    review_html = browser_for("engineer").get(f"/labeling/items/{item.pk}/review").content.decode()
    mine_html = other.get("/labeling/mine").content.decode()

    for html in (labeling_html, review_html, mine_html):
        assert "<script>window.__xss" not in html
        assert "<img" not in html
    assert "ext-&lt;script&gt;" in mine_html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in labeling_html
    assert "<strong>bold</strong>" in labeling_html  # markdown still renders
    assert "ncomment" not in review_html and "comment &lt;script&gt;" in review_html
    assert "n&lt;script&gt;" in review_html
