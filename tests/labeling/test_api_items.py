"""/api/v1/items: labels, replays, edits, lost leases, skips, drafts, comments, blind overlap and
the reviewer's view."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, ItemComment, ItemEvent, ItemStatus, Label, QueueItem
from tests.factories import JudgeScoreFactory, OrganizationFactory
from tests.labeling.factories import add_items, make_queue


@pytest.fixture
def engineer(api_client_for):
    return api_client_for("engineer")


@pytest.fixture
def ann(api_client_for):
    return api_client_for("annotator")


@pytest.fixture
def queue(project):
    return make_queue(project)


@pytest.fixture
def item(queue):
    [item] = add_items(queue, 1)
    return item


def _claim(client, queue) -> int:
    response = client.post(f"/api/v1/queues/{queue.pk}/claim")
    assert response.status_code == 200, response.content
    return response.json()["id"]


def _submit(client, item_id, answers, **extra):
    return client.post(f"/api/v1/items/{item_id}/labels", {"answers": answers, **extra}, format="json")


def _state(item):
    item.refresh_from_db()
    return (
        item.status,
        item.labels_done,
        item.leased_count,
        list(Label.objects.filter(item=item).values_list("user_id", "answers")),
        list(Assignment.objects.filter(item=item).values_list("user_id", "status", "draft_answers")),
        ItemComment.objects.filter(item=item).count(),
    )


# --- labels ------------------------------------------------------------------------------------


def test_label_is_201_and_a_replay_of_its_client_token_is_200_with_the_same_label(ann, queue, item):
    _claim(ann, queue)

    created = _submit(ann, item.pk, {"quality": "good", "helpfulness": 4}, client_token="tok-1", time_spent_ms=5400)
    replay = _submit(ann, item.pk, {"quality": "bad"}, client_token="tok-1")

    label = Label.objects.get()
    assert created.status_code == 201
    assert created.json() == {
        "id": label.pk,
        "item": item.pk,
        "user": ann.user.username,
        "schema_version": 1,
        "answers": {"quality": "good", "helpfulness": 4},
        "client_token": "tok-1",
        "time_spent_ms": 5400,
        "created_at": created.json()["created_at"],
        "updated_at": created.json()["updated_at"],
        "item_status": "completed",
    }
    assert replay.status_code == 200
    assert replay.json() == created.json()
    assert label.answers == {"quality": "good", "helpfulness": 4}
    item.refresh_from_db()
    assert (item.status, item.final_answers, item.final_source) == (
        "completed",
        {"quality": "good", "helpfulness": 4},
        "single",
    )


def test_a_person_edits_their_label_while_the_item_is_open_with_200(project, api_client_for):
    queue = make_queue(project, annotations_per_item=2)
    [item] = add_items(queue, 1)
    ann = api_client_for("annotator")
    _claim(ann, queue)
    first = _submit(ann, item.pk, {"quality": "good"})

    edited = _submit(ann, item.pk, {"quality": "bad", "notes": "missed the fee"})

    assert edited.status_code == 200
    assert edited.json()["id"] == first.json()["id"]
    assert (edited.json()["answers"], edited.json()["item_status"]) == (
        {"quality": "bad", "notes": "missed the fee"},
        "open",
    )
    assert list(Label.objects.values_list("answers", flat=True)) == [{"quality": "bad", "notes": "missed the fee"}]
    assert list(ItemEvent.objects.filter(item=item).values_list("kind", flat=True)) == [
        "added",
        "labeled",
        "label_edited",
    ]
    item.refresh_from_db()
    assert (item.labels_done, item.leased_count) == (1, 0)


def test_an_edit_that_settles_a_dispute_completes_the_item_and_review_ends_editing(project, api_client_for, engineer):
    queue = make_queue(project, annotations_per_item=2)
    [item] = add_items(queue, 1)
    a, b = api_client_for("annotator"), api_client_for("annotator")
    for client, answer in ((a, "good"), (b, "bad")):
        _claim(client, queue)
        _submit(client, item.pk, {"quality": answer})
    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_REVIEW

    settled = _submit(b, item.pk, {"quality": "good"})

    assert (settled.status_code, settled.json()["item_status"]) == (200, "completed")
    item.refresh_from_db()
    assert (item.final_answers, item.final_source) == ({"quality": "good"}, "agreement")
    engineer.post(f"/api/v1/items/{item.pk}/review", {"answers": {"quality": "bad"}}, format="json")
    before = _state(item)
    late = _submit(a, item.pk, {"quality": "bad"})
    assert (late.status_code, late.json()) == (
        409,
        {"message": "This item was reviewed; its labels can no longer be edited.", "errors": {}},
    )
    assert _state(item) == before


def test_answers_that_do_not_fit_the_rubric_are_400_naming_the_question(ann, queue, item):
    _claim(ann, queue)
    before = _state(item)

    wrong = _submit(ann, item.pk, {"quality": "meh", "helpfulness": True})
    missing = _submit(ann, item.pk, {"notes": "forgot the rest"})
    not_an_object = _submit(ann, item.pk, ["good"])
    no_answers = ann.post(f"/api/v1/items/{item.pk}/labels", {}, format="json")

    assert wrong.status_code == 400
    assert wrong.json() == {
        "message": "Some answers do not fit the rubric.",
        "errors": {
            "answers.quality": ["Choose one of: good, bad."],
            "answers.helpfulness": ["Send a whole number from 1 to 5."],
        },
    }
    assert missing.json()["errors"] == {"answers.quality": ["This question is required."]}
    assert not_an_object.json()["errors"] == {"answers": ["Send an object of answers keyed by question key."]}
    assert (no_answers.status_code, no_answers.json()["errors"]) == (400, {"answers": ["This field is required."]})
    assert _state(item) == before


def test_a_label_after_a_lost_lease_on_a_completed_item_is_409(ann, api_client_for, queue, item):
    _claim(ann, queue)
    Assignment.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    other = api_client_for("annotator")
    assert _claim(other, queue) == item.pk  # the expired lease went back to the pool
    _submit(other, item.pk, {"quality": "good"})
    before = _state(item)

    late = _submit(ann, item.pk, {"quality": "bad"})

    assert late.status_code == 409
    assert late.json() == {
        "message": "Your lease ran out and the item is already complete; your label was not needed.",
        "errors": {},
    }
    assert _state(item) == before


def test_a_label_after_a_lost_lease_is_still_taken_while_the_item_needs_it(ann, queue, item):
    _claim(ann, queue)
    Assignment.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert services.leases_expire(queue_id=queue.pk) == 1

    response = _submit(ann, item.pk, {"quality": "good"})

    assert (response.status_code, response.json()["item_status"]) == (201, "completed")
    item.refresh_from_db()
    assert (item.labels_done, item.leased_count) == (1, 0)


def test_a_label_on_an_item_never_claimed_is_409(ann, engineer, item):
    before = _state(item)

    responses = [_submit(client, item.pk, {"quality": "good"}) for client in (ann, engineer)]

    assert [r.status_code for r in responses] == [409, 409]
    assert responses[0].json() == {"message": "You do not hold this item; claim it first.", "errors": {}}
    assert _state(item) == before


# --- skips -------------------------------------------------------------------------------------


def test_skip_frees_the_item_for_someone_else_and_is_never_a_label(ann, api_client_for, queue, item):
    _claim(ann, queue)

    skipped = ann.post(f"/api/v1/items/{item.pk}/skip", {"reason": "not English"}, format="json")
    twice = ann.post(f"/api/v1/items/{item.pk}/skip", {}, format="json")
    label_after_skip = _submit(ann, item.pk, {"quality": "good"})

    assert (skipped.status_code, skipped.json()) == (200, {"item": item.pk, "status": "skipped"})
    assert (twice.status_code, twice.json()) == (409, {"message": "You do not hold this item.", "errors": {}})
    assert label_after_skip.status_code == 409
    assert Label.objects.count() == 0
    assert ann.post(f"/api/v1/queues/{queue.pk}/claim").status_code == 204
    assert _claim(api_client_for("annotator"), queue) == item.pk
    assert ItemEvent.objects.get(item=item, kind="skipped").data == {"reason": "not English", "policy": "others"}
    assert Assignment.objects.get(user=ann.user).skip_reason == "not English"


# --- drafts ------------------------------------------------------------------------------------


def test_a_draft_is_kept_and_comes_back_with_the_next_claim_of_the_same_item(ann, queue, item):
    _claim(ann, queue)

    saved = ann.put(f"/api/v1/items/{item.pk}/draft", {"answers": {"quality": "bad", "notes": "half"}}, format="json")
    again = ann.post(f"/api/v1/queues/{queue.pk}/claim").json()
    seen = ann.get(f"/api/v1/items/{item.pk}").json()

    assert (saved.status_code, saved.json()) == (200, {"answers": {"quality": "bad", "notes": "half"}})
    assert (again["id"], again["draft"]) == (item.pk, {"quality": "bad", "notes": "half"})
    assert seen["draft"] == {"quality": "bad", "notes": "half"}
    _submit(ann, item.pk, {"quality": "bad"})
    assert Assignment.objects.get().draft_answers == {}


def test_a_draft_needs_a_claim_and_an_object(ann, queue, item):
    not_claimed = ann.put(f"/api/v1/items/{item.pk}/draft", {"answers": {"quality": "bad"}}, format="json")
    _claim(ann, queue)
    not_an_object = ann.put(f"/api/v1/items/{item.pk}/draft", {"answers": "bad"}, format="json")

    assert (not_claimed.status_code, not_claimed.json()["message"]) == (
        409,
        "Drafts are kept while you hold the item; claim it first.",
    )
    assert (not_an_object.status_code, list(not_an_object.json()["errors"])) == (400, ["answers"])
    assert Assignment.objects.get().draft_answers == {}


# --- comments ----------------------------------------------------------------------------------


def test_comments_are_kept_and_shown_to_reviewers(ann, engineer, queue, item):
    _claim(ann, queue)

    added = ann.post(
        f"/api/v1/items/{item.pk}/comments", {"body": "The tool result contradicts the reply."}, format="json"
    )
    blank = ann.post(f"/api/v1/items/{item.pk}/comments", {"body": "  "}, format="json")

    comment = ItemComment.objects.get()
    assert (added.status_code, added.json()) == (
        201,
        {"id": comment.pk, "body": "The tool result contradicts the reply."},
    )
    assert (blank.status_code, blank.json()["errors"]) == (400, {"body": ["This field may not be blank."]})
    comments = engineer.get(f"/api/v1/items/{item.pk}").json()["comments"]
    assert [(c["user"], c["body"]) for c in comments] == [(ann.user.username, "The tool result contradicts the reply.")]


# --- reading an item: blind overlap for annotators, everything for reviewers -------------------


@pytest.fixture
def disputed(project, api_client_for):
    """An item two annotators labeled differently (so it needs review), with a judge score."""
    queue = make_queue(project, annotations_per_item=2)
    [item] = add_items(queue, 1)
    JudgeScoreFactory(conversation=item.conversation, score=0.3)
    a, b = api_client_for("annotator"), api_client_for("annotator")
    for client, answer in ((a, "good"), (b, "bad")):
        _claim(client, queue)
        _submit(client, item.pk, {"quality": answer}, client_token=f"{answer}-token")
    return item, a, b


def test_an_annotator_sees_only_their_own_label(disputed, api_client_for):
    item, a, b = disputed

    mine = a.get(f"/api/v1/items/{item.pk}")
    never_claimed = api_client_for("annotator").get(f"/api/v1/items/{item.pk}")

    assert mine.status_code == 200
    body = mine.json()
    assert set(body) == {"id", "queue", "conversation", "schema", "lease_expires_at", "draft", "my_label", "status"}
    assert (body["my_label"]["user"], body["my_label"]["answers"]) == (a.user.username, {"quality": "good"})
    assert body["status"] == "needs_review"
    assert body["conversation"]["judge_scores"] == []
    assert "bad-token" not in mine.content.decode()  # nothing of b's label appears
    assert b.user.username not in mine.content.decode()
    assert never_claimed.status_code == 404


def test_a_reviewer_sees_every_label_side_by_side_with_the_history(disputed, engineer):
    item, a, b = disputed

    body = engineer.get(f"/api/v1/items/{item.pk}").json()

    assert [(lab["user"], lab["answers"]) for lab in body["labels"]] == [
        (a.user.username, {"quality": "good"}),
        (b.user.username, {"quality": "bad"}),
    ]
    assert [e["kind"] for e in body["events"]] == ["added", "labeled", "labeled", "needs_review"]
    assert [e["user"] for e in body["events"]] == [None, a.user.username, b.user.username, None]
    assert (body["status"], body["labels_needed"], body["labels_done"], body["final_answers"]) == (
        "needs_review",
        2,
        2,
        None,
    )
    assert body["sampling"] == {
        "source": "manual",
        "rule": "",
        "strategy": "manual",
        "inclusion_probability": None,
        "stratum": "",
    }
    assert [s["score"] for s in body["conversation"]["judge_scores"]] == [0.3]


# --- review ------------------------------------------------------------------------------------


def test_a_reviewer_records_the_final_answer(disputed, engineer):
    item, _, _ = disputed

    response = engineer.post(
        f"/api/v1/items/{item.pk}/review", {"answers": {"quality": "bad", "helpfulness": 2}}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": item.pk,
        "status": "completed",
        "final_answers": {"quality": "bad", "helpfulness": 2},
    }
    item.refresh_from_db()
    assert (item.final_source, item.reviewed_by_id) == ("review", engineer.user.pk)
    assert ItemEvent.objects.filter(item=item).last().kind == "reviewed"
    assert engineer.get(f"/api/v1/queues/{item.queue_id}/review").json() == {"items": []}


def test_review_answers_are_validated_and_annotators_may_not_review(disputed, engineer):
    item, a, _ = disputed
    before = _state(item)

    invalid = engineer.post(f"/api/v1/items/{item.pk}/review", {"answers": {"quality": "?"}}, format="json")
    denied = a.post(f"/api/v1/items/{item.pk}/review", {"answers": {"quality": "good"}}, format="json")

    assert (invalid.status_code, invalid.json()["errors"]) == (400, {"answers.quality": ["Choose one of: good, bad."]})
    assert (denied.status_code, denied.json()) == (403, {"message": "Your role may not do this.", "errors": {}})
    assert _state(item) == before
    item.refresh_from_db()
    assert (item.status, item.reviewed_by_id) == (ItemStatus.NEEDS_REVIEW, None)


def test_a_dropped_item_cannot_be_reviewed(project, ann, engineer):
    queue = make_queue(project, skip_policy="drop")
    [item] = add_items(queue, 1)
    _claim(ann, queue)
    ann.post(f"/api/v1/items/{item.pk}/skip", format="json")

    response = engineer.post(f"/api/v1/items/{item.pk}/review", {"answers": {"quality": "good"}}, format="json")

    assert (response.status_code, response.json()["message"]) == (409, "This item was dropped from the queue.")
    item.refresh_from_db()
    assert (item.status, item.final_answers) == (ItemStatus.DROPPED, None)


def test_a_label_on_an_item_another_annotator_dropped_is_a_409_saying_so(project, ann, api_client_for):
    queue = make_queue(project, skip_policy="drop", annotations_per_item=2)
    [item] = add_items(queue, 1)
    other = api_client_for("annotator")
    _claim(ann, queue)
    _claim(other, queue)
    ann.post(f"/api/v1/items/{item.pk}/skip", format="json")

    response = other.post(f"/api/v1/items/{item.pk}/labels", {"answers": {"quality": "good"}}, format="json")
    draft = other.put(f"/api/v1/items/{item.pk}/draft", {"answers": {"quality": "good"}}, format="json")

    assert (response.status_code, response.json()["message"]) == (409, "This item was dropped from the queue.")
    assert draft.status_code == 409
    item.refresh_from_db()
    assert (item.status, item.labels_done, item.leased_count) == (ItemStatus.DROPPED, 0, 0)


# --- tenancy and roles -------------------------------------------------------------------------

ITEM_ENDPOINTS = [
    ("get", "/api/v1/items/{id}", None),
    ("post", "/api/v1/items/{id}/labels", {"answers": {"quality": "good"}}),
    ("post", "/api/v1/items/{id}/skip", {"reason": "x"}),
    ("put", "/api/v1/items/{id}/draft", {"answers": {"quality": "good"}}),
    ("post", "/api/v1/items/{id}/comments", {"body": "hello"}),
    ("post", "/api/v1/items/{id}/review", {"answers": {"quality": "good"}}),
]


def _call(client, method, url, body):
    return client.get(url) if method == "get" else getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize(("method", "url", "body"), ITEM_ENDPOINTS)
def test_another_organizations_item_is_404_and_untouched(api_client_for, other_project, member, method, url, body):
    theirs = make_queue(other_project)
    [item] = add_items(theirs, 1)
    # Someone over there holds it, so only tenancy (not a missing claim) can stop our caller.
    services.item_claim(queue=theirs, user=member("annotator", organization=OrganizationFactory(slug="globex")))
    before = _state(item)

    # Annotators may not call the review endpoint at all (403 on role), so only admins try it.
    for role in ("admin",) if url.endswith("review") else ("admin", "annotator"):
        response = _call(api_client_for(role), method, url.format(id=item.pk), body)
        assert (response.status_code, response.json()) == (404, {"message": "Item not found.", "errors": {}})
    assert _state(item) == before


@pytest.mark.parametrize(("method", "url", "body"), ITEM_ENDPOINTS)
def test_an_item_of_a_queue_the_annotator_may_not_work_is_404(api_client_for, project, method, url, body):
    queue = make_queue(project, assignee_role="engineer")
    [item] = add_items(queue, 1)
    before = _state(item)

    response = _call(api_client_for("annotator"), method, url.format(id=item.pk), body)

    # The review endpoint is refused on role before the item is looked up.
    assert response.status_code == (403 if url.endswith("review") else 404)
    assert _state(item) == before


@pytest.mark.parametrize(("method", "url", "body"), ITEM_ENDPOINTS)
def test_approvers_and_agent_keys_may_not_work_items(api_client_for, agent_client, queue, item, method, url, body):
    before = _state(item)

    for client in (api_client_for("approver"), agent_client):
        response = _call(client, method, url.format(id=item.pk), body)
        assert (response.status_code, response.json()["message"]) == (403, "Your role may not do this.")
    assert _state(item) == before
    assert QueueItem.objects.get().status == ItemStatus.OPEN


# --- lease -------------------------------------------------------------------------------------


def test_restarting_a_live_lease_gives_the_item_lease_seconds_from_now(ann, queue, item):
    _claim(ann, queue)
    Assignment.objects.filter(item=item).update(lease_expires_at=timezone.now() + dt.timedelta(seconds=30))
    before = timezone.now()

    response = ann.post(f"/api/v1/items/{item.pk}/lease")

    assert response.status_code == 200
    expires = Assignment.objects.get(item=item).lease_expires_at
    assert expires >= before + dt.timedelta(seconds=queue.lease_seconds)
    assert response.json() == {"item": item.pk, "lease_expires_at": expires.isoformat().replace("+00:00", "Z")}


def test_a_lease_that_ran_out_or_was_never_held_cannot_be_restarted(ann, api_client_for, queue, item):
    _claim(ann, queue)
    Assignment.objects.filter(item=item).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    stranger = api_client_for("annotator")

    ran_out = ann.post(f"/api/v1/items/{item.pk}/lease")
    never_held = stranger.post(f"/api/v1/items/{item.pk}/lease")

    assert (ran_out.status_code, never_held.status_code) == (409, 409)
    assert ran_out.json() == {"message": "You hold no live lease on this item; claim again.", "errors": {}}
    assert Assignment.objects.get(item=item).lease_expires_at < timezone.now()


def test_another_tenants_item_lease_is_404(api_client_for, queue, item):
    outsider = api_client_for("annotator", organization=OrganizationFactory())

    assert outsider.post(f"/api/v1/items/{item.pk}/lease").status_code == 404


def test_restarting_a_lease_needs_the_labeling_role(api_client_for, item):
    assert api_client_for("approver").post(f"/api/v1/items/{item.pk}/lease").status_code == 403
