"""/api/v1/queues: creating queues with sampling rules, progress counts, who sees which queue,
adding items by hand, claiming, the review list and the engineer-only statistics."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling import sampling, selectors, services
from labeling.models import AgreementSnapshot, Assignment, Queue, QueueItem
from reviewapp import services as core_services
from reviewapp.ingest_schemas import ConversationIn
from tests.factories import (
    ConversationFactory,
    JudgeScoreFactory,
    OrganizationFactory,
    ProjectFactory,
    conversation_payload,
)
from tests.labeling.factories import add_items, make_queue, make_schema

# The rules of the issue, verbatim.
ISSUE_RULES = [
    {"rate": 0.05},
    {"rate": 1.0, "if": {"feedback_rating": "down"}},
    {"rate": 0.5, "if": {"judge": "gpt-judge", "criterion": "correctness", "score_below": 0.5}, "max_per_day": 200},
]


@pytest.fixture
def engineer(api_client_for):
    return api_client_for("engineer")


@pytest.fixture
def annotator(api_client_for):
    return api_client_for("annotator")


@pytest.fixture
def schema(project):
    return make_schema(project)


def _ingest(project, payloads):
    return core_services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(p) for p in payloads]
    )


def _claim(client, queue):
    response = client.post(f"/api/v1/queues/{queue.pk}/claim")
    assert response.status_code == 200, response.content
    return response.json()["id"]


def _label(client, item_id, answer):
    response = client.post(f"/api/v1/items/{item_id}/labels", {"answers": {"quality": answer}}, format="json")
    assert response.status_code == 201, response.content


# --- creating and reading queues ---------------------------------------------------------------


def test_engineer_creates_a_queue_with_sampling_rules_and_old_conversations_are_backfilled(
    engineer, schema, project, member, django_capture_on_commit_callbacks
):
    member("annotator", username="ana")
    _ingest(project, [conversation_payload("down", feedback={"rating": "down"}), conversation_payload("up")])

    with django_capture_on_commit_callbacks(execute=True):
        response = engineer.post(
            "/api/v1/queues",
            {
                "project": "support",
                "name": "Support QA",
                "schema": schema.pk,
                "annotations_per_item": 2,
                "lease_seconds": 300,
                "assignees": ["ana"],
                "sampling": ISSUE_RULES,
                "max_per_day": 1000,
            },
            format="json",
        )

    assert response.status_code == 201
    queue = Queue.objects.get()
    body = response.json()
    assert body == {
        "id": queue.pk,
        "name": "Support QA",
        "description": "",
        "project": "support",
        "schema": schema.pk,
        "annotations_per_item": 2,
        "max_extra_annotations": 0,
        "priority": 0,
        "lease_seconds": 300,
        "assignee_role": "annotator",
        "assignees": ["ana"],
        "show_judge_scores": False,
        "skip_policy": "others",
        "sampling": ISSUE_RULES,
        "max_per_day": 1000,
        "backfill_days": 30,
        "backfill_done": False,  # as created; the backfill ran after commit
        "gold_rate": 0.0,
        "is_active": True,
        "created_at": body["created_at"],
        "budget": None,
        "sampling_rate": None,
        "sampling_health": {
            "failures": 0,
            "last_error": "",
            "last_error_at": None,
            "given_up": 0,
            "given_up_at": None,
        },
        "counts": {"pending": 0, "in_progress": 0, "needs_review": 0, "completed": 0, "dropped": 0},
        "total": 0,
    }
    # The thumbs-down conversation matches the rate-1.0 rule; whether "up" is in depends only on
    # its hash against the 5% uniform rule.
    expected = {"down"} | ({"up"} if sampling.sample_hash(queue.pk, "up") < 0.05 else set())
    items = QueueItem.objects.filter(queue=queue).select_related("conversation")
    assert {i.conversation.external_id for i in items} == expected
    assert {(i.source, i.sampling_rule) for i in items if i.conversation.external_id == "down"} == {
        ("backfill", "rule1")
    }
    detail = engineer.get(f"/api/v1/queues/{queue.pk}").json()
    assert (detail["backfill_done"], detail["total"], detail["counts"]["pending"]) == (
        True,
        len(expected),
        len(expected),
    )


def test_an_invalid_sampling_rule_is_400_naming_the_rule_and_field(engineer, schema):
    response = engineer.post(
        "/api/v1/queues",
        {
            "project": "support",
            "name": "Support QA",
            "schema": schema.pk,
            "sampling": [{"rate": 0.1}, {"rate": 1.0, "if": {"xxx": "red"}}, {"rate": 2}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid sampling rules.",
        "errors": {
            "sampling[1].if.xxx": ["Extra inputs are not permitted"],
            "sampling[2].rate": ["Input should be less than or equal to 1"],
        },
    }
    assert Queue.objects.count() == 0


def test_a_queue_needs_a_rubric_of_its_own_project(engineer, schema, project, other_project):
    sibling = make_schema(ProjectFactory(organization=project.organization, slug="billing"))
    foreign = make_schema(other_project)

    responses = [
        engineer.post("/api/v1/queues", {"project": "support", "name": "Q", "schema": pk}, format="json")
        for pk in (999_999, sibling.pk, foreign.pk)
    ]

    unknown = {"message": "Unknown schema.", "errors": {"schema": ["No such label schema in this project."]}}
    assert [(r.status_code, r.json()) for r in responses] == [(400, unknown)] * 3
    assert Queue.objects.count() == 0


def test_assignees_must_be_members_of_the_organization(engineer, schema, member):
    member("annotator", username="ana")
    member("annotator", username="outsider", organization=OrganizationFactory(slug="globex"))

    response = engineer.post(
        "/api/v1/queues",
        {"project": "support", "name": "Q", "schema": schema.pk, "assignees": ["ana", "outsider", "nobody"]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "message": "Unknown assignees.",
        "errors": {"assignees": ["Not members of this organization: outsider, nobody."]},
    }
    assert Queue.objects.count() == 0


def test_a_personal_token_must_name_the_project(engineer, schema):
    response = engineer.post("/api/v1/queues", {"name": "Q", "schema": schema.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"project": ["This field is required with a personal token."]}
    assert Queue.objects.count() == 0


def test_plain_fields_are_validated_by_the_serializer(engineer, schema):
    response = engineer.post(
        "/api/v1/queues",
        {"project": "support", "name": "Q", "schema": schema.pk, "annotations_per_item": 0, "skip_policy": "never"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "message": "Validation failed.",
        "errors": {
            "annotations_per_item": ["Ensure this value is greater than or equal to 1."],
            "skip_policy": ['"never" is not a valid choice.'],
        },
    }
    assert Queue.objects.count() == 0


def test_counts_follow_items_through_every_state(engineer, member, project, api_client_for):
    queue = make_queue(project, annotations_per_item=2, skip_policy="drop")
    items = add_items(queue, 6)
    a, b = api_client_for("annotator"), api_client_for("annotator")
    for answer in ("good", "good", "good"):  # items 0, 1, 2
        _label(a, _claim(a, queue), answer)
    a.post(f"/api/v1/items/{_claim(a, queue)}/skip", {"reason": "not English"}, format="json")  # item 3: dropped
    assert _claim(a, queue) == items[4].pk  # held
    _label(b, _claim(b, queue), "good")  # item 0: two agreeing labels
    _label(b, _claim(b, queue), "bad")  # item 1: disagreement, no extra annotator

    detail = engineer.get(f"/api/v1/queues/{queue.pk}").json()

    # pending: item 5; in progress: item 2 (one of two labels) and item 4 (leased).
    assert detail["counts"] == {"pending": 1, "in_progress": 2, "needs_review": 1, "completed": 1, "dropped": 1}
    assert detail["total"] == 6
    assert a.get(f"/api/v1/queues/{queue.pk}").json()["counts"] == detail["counts"]


def test_annotators_see_only_the_queues_they_may_work(project, member, api_client_for, engineer):
    open_to_annotators = make_queue(project, name="Open", priority=5)
    engineers_only = make_queue(project, name="Engineers", assignee_role="engineer")
    named = make_queue(project, name="Named")
    ana = api_client_for("annotator")
    bob = api_client_for("annotator")
    named.assignees.set([bob.user])
    add_items(named, 1)

    assert [q["name"] for q in ana.get("/api/v1/queues").json()] == ["Open"]
    assert [q["name"] for q in bob.get("/api/v1/queues").json()] == ["Open", "Named"]
    assert [q["name"] for q in engineer.get("/api/v1/queues").json()] == ["Open", "Engineers", "Named"]
    for queue in (engineers_only, named):
        assert ana.get(f"/api/v1/queues/{queue.pk}").status_code == 404
        assert ana.post(f"/api/v1/queues/{queue.pk}/claim").status_code == 404
    assert bob.get(f"/api/v1/queues/{named.pk}").status_code == 200
    assert bob.get(f"/api/v1/queues/{open_to_annotators.pk}").status_code == 200
    assert Assignment.objects.count() == 0


def test_replacing_sampling_rules_backfills_again(engineer, project, django_capture_on_commit_callbacks):
    _ingest(project, [conversation_payload("down", feedback={"rating": "down"})])
    queue = make_queue(project)  # no rules: nothing to backfill

    with django_capture_on_commit_callbacks(execute=True):
        response = engineer.put(
            f"/api/v1/queues/{queue.pk}/sampling",
            {"sampling": [{"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "down"}], "max_per_day": 10},
            format="json",
        )

    assert response.status_code == 200
    assert (response.json()["sampling"], response.json()["max_per_day"]) == (
        [{"name": "down", "rate": 1.0, "if": {"feedback_rating": "down"}}],
        10,
    )
    assert list(QueueItem.objects.filter(queue=queue).values_list("sampling_rule", "source")) == [("down", "backfill")]


def test_invalid_replacement_rules_change_nothing(engineer, project):
    queue = make_queue(project, sampling=({"rate": 0.5},), backfill_days=0)

    response = engineer.put(
        f"/api/v1/queues/{queue.pk}/sampling", {"sampling": [{"rate": 1.0, "if": {"tags_any": "x"}}]}, format="json"
    )

    assert (response.status_code, list(response.json()["errors"])) == (400, ["sampling[0].if.tags_any"])
    queue.refresh_from_db()
    assert queue.sampling == [{"rate": 0.5}]


# --- adding items by hand ----------------------------------------------------------------------


def test_items_are_added_by_id_and_by_external_id_and_duplicates_are_reported(engineer, project):
    queue = make_queue(project)
    a, b, c = (ConversationFactory(project=project, external_id=x) for x in ("a", "b", "c"))

    first = engineer.post(
        f"/api/v1/queues/{queue.pk}/items",
        {"conversation_ids": [a.pk, b.pk], "external_ids": ["c", "a"]},
        format="json",
    )
    again = engineer.post(f"/api/v1/queues/{queue.pk}/items", {"external_ids": ["b"]}, format="json")

    items = dict(QueueItem.objects.filter(queue=queue).values_list("conversation_id", "pk"))
    assert first.status_code == 201
    assert first.json() == {
        "results": [
            {"conversation_id": a.pk, "item_id": items[a.pk], "status": "created"},
            {"conversation_id": b.pk, "item_id": items[b.pk], "status": "created"},
            {"conversation_id": c.pk, "item_id": items[c.pk], "status": "created"},
            {"conversation_id": a.pk, "item_id": items[a.pk], "status": "duplicate"},
        ]
    }
    assert again.json() == {"results": [{"conversation_id": b.pk, "item_id": items[b.pk], "status": "duplicate"}]}
    assert QueueItem.objects.filter(queue=queue, source="manual").count() == 3


def test_unknown_conversations_are_400_naming_their_index_and_nothing_is_added(engineer, project, other_project):
    queue = make_queue(project)
    ours = ConversationFactory(project=project, external_id="ours")
    theirs = ConversationFactory(project=other_project, external_id="theirs")

    response = engineer.post(
        f"/api/v1/queues/{queue.pk}/items",
        {"conversation_ids": [ours.pk, theirs.pk], "external_ids": ["ours", "theirs", "nope"]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "message": "Some conversations were not found.",
        "errors": {
            "conversation_ids[1]": ["No such conversation in this queue's project."],
            "external_ids[1]": ["No such conversation in this queue's project."],
            "external_ids[2]": ["No such conversation in this queue's project."],
        },
    }
    assert QueueItem.objects.count() == 0


def test_adding_items_needs_ids(engineer, project):
    queue = make_queue(project)

    response = engineer.post(f"/api/v1/queues/{queue.pk}/items", {"conversation_ids": []}, format="json")

    assert (response.status_code, response.json()["errors"]) == (
        400,
        {"conversation_ids": ["Send conversation_ids or external_ids."]},
    )


# --- claiming ----------------------------------------------------------------------------------


def test_claim_returns_the_item_with_its_transcript_rubric_and_lease(annotator, project):
    queue = make_queue(project, lease_seconds=120)
    [item] = add_items(queue, 1)
    JudgeScoreFactory(conversation=item.conversation, score=0.2)

    response = annotator.post(f"/api/v1/queues/{queue.pk}/claim")

    assert response.status_code == 200
    body = response.json()
    assignment = Assignment.objects.get()
    version = queue.schema.latest_version
    assert (assignment.item_id, assignment.user_id) == (item.pk, annotator.user.pk)
    assert set(body) == {"id", "queue", "conversation", "schema", "lease_expires_at", "draft"}
    assert (body["id"], body["queue"], body["draft"]) == (item.pk, queue.pk, {})
    assert body["lease_expires_at"] == assignment.lease_expires_at.isoformat().replace("+00:00", "Z")
    assert (assignment.lease_expires_at - assignment.leased_at).total_seconds() == 120
    assert body["conversation"]["id"] == item.conversation_id
    assert body["conversation"]["messages"] == item.conversation.messages
    assert body["conversation"]["judge_scores"] == []  # hidden by default: anchoring
    assert body["schema"] == {
        "id": queue.schema_id,
        "version_id": version.pk,
        "version": 1,
        "instructions": "Judge the **final** answer.",
        "questions": body["schema"]["questions"],
    }
    assert [q["key"] for q in body["schema"]["questions"]] == ["quality", "helpfulness", "notes"]


def test_claim_shows_judge_scores_when_the_queue_says_so(annotator, project):
    queue = make_queue(project, show_judge_scores=True)
    [item] = add_items(queue, 1)
    JudgeScoreFactory(conversation=item.conversation, score=0.2)

    body = annotator.post(f"/api/v1/queues/{queue.pk}/claim").json()

    assert [(s["judge"], s["criterion"], s["score"]) for s in body["conversation"]["judge_scores"]] == [
        ("gpt-judge", "correctness", 0.2)
    ]


def test_claim_is_204_when_nothing_is_left_for_the_caller(annotator, api_client_for, project):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    empty = make_queue(project, name="Empty")
    _label(annotator, _claim(annotator, queue), "good")

    nothing_left = annotator.post(f"/api/v1/queues/{queue.pk}/claim")
    nothing_at_all = api_client_for("annotator").post(f"/api/v1/queues/{empty.pk}/claim")

    assert (nothing_left.status_code, nothing_left.content) == (204, b"")
    assert (nothing_at_all.status_code, nothing_at_all.content) == (204, b"")
    assert Assignment.objects.filter(item=item).count() == 1


def test_claim_again_returns_the_held_lease_and_exclude_prefetches_another(annotator, project):
    queue = make_queue(project)
    first, second = add_items(queue, 2)

    held = _claim(annotator, queue)
    again = _claim(annotator, queue)
    prefetched = annotator.post(f"/api/v1/queues/{queue.pk}/claim?exclude={held}").json()["id"]

    assert (held, again, prefetched) == (first.pk, first.pk, second.pk)
    assert Assignment.objects.count() == 2


def _claim_queries(client, queue) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.post(f"/api/v1/queues/{queue.pk}/claim").status_code == 200
    return len(ctx.captured_queries)


def test_claim_costs_the_same_queries_whatever_the_queue_size(
    project, member, api_client_for, django_assert_num_queries, django_assert_max_num_queries
):
    small, large = make_queue(project, name="Small"), make_queue(project, name="Large")
    add_items(small, 5)
    large_items = add_items(large, 200)
    worker = member("annotator")
    for _ in range(150):  # finished work must not be walked either
        assignment = services.item_claim(queue=large, user=worker)
        services.label_submit(item=assignment.item, user=worker, answers={"quality": "good"})
    # Warm up: the first request of a token stamps its last use; both measured calls are the
    # second request of their client.
    a, b = api_client_for("annotator"), api_client_for("annotator")
    a.get("/api/v1/queues")
    b.get("/api/v1/queues")

    baseline = _claim_queries(a, small)

    with django_assert_num_queries(baseline):
        assert b.post(f"/api/v1/queues/{large.pk}/claim").json()["id"] == large_items[150].pk
    with django_assert_max_num_queries(18):
        b.post(f"/api/v1/queues/{small.pk}/claim")


# --- review list, agreement, annotators ---------------------------------------------------------


def _disputed_queue(project, api_client_for):
    queue = make_queue(project, annotations_per_item=2)
    items = add_items(queue, 3)
    a, b = api_client_for("annotator"), api_client_for("annotator")
    for client, answers in ((a, ["good", "good", "bad"]), (b, ["good", "bad", "good"])):
        for answer in answers:
            _label(client, _claim(client, queue), answer)
    return queue, items


def test_review_list_shows_disputed_items_to_engineers_only(engineer, annotator, project, api_client_for):
    queue, items = _disputed_queue(project, api_client_for)

    response = engineer.get(f"/api/v1/queues/{queue.pk}/review")
    denied = annotator.get(f"/api/v1/queues/{queue.pk}/review")

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {"id": i.pk, "conversation": i.conversation_id, "external_id": i.conversation.external_id, "labels_done": 2}
            for i in items[1:]
        ]
    }
    assert denied.status_code == 403


def test_agreement_and_annotator_stats_are_for_engineers(engineer, annotator, project, api_client_for):
    queue, _ = _disputed_queue(project, api_client_for)

    agreement = engineer.get(f"/api/v1/queues/{queue.pk}/agreement")
    annotators = engineer.get(f"/api/v1/queues/{queue.pk}/annotators")

    assert agreement.status_code == 200
    assert set(agreement.json()) >= {"questions", "pairs"}
    assert agreement.json()["questions"]["quality"]["n_items"] == 3
    assert agreement.json()["questions"]["quality"]["percent_agreement"] == pytest.approx(1 / 3)
    assert annotators.status_code == 200
    assert [(r["done"], r["skipped"], r["leased"]) for r in annotators.json()["annotators"]] == [(3, 0, 0), (3, 0, 0)]
    assert annotator.get(f"/api/v1/queues/{queue.pk}/agreement").status_code == 403
    assert annotator.get(f"/api/v1/queues/{queue.pk}/annotators").status_code == 403


# --- tenancy and roles -------------------------------------------------------------------------

QUEUE_ENDPOINTS = [
    ("get", "/api/v1/queues/{id}", None),
    ("put", "/api/v1/queues/{id}/sampling", {"sampling": [{"rate": 1.0}]}),
    ("post", "/api/v1/queues/{id}/items", {"external_ids": ["x"]}),
    ("post", "/api/v1/queues/{id}/gold", {"items": [{"external_id": "x", "answers": {"quality": "good"}}]}),
    ("post", "/api/v1/queues/{id}/claim", None),
    ("get", "/api/v1/queues/{id}/review", None),
    ("get", "/api/v1/queues/{id}/agreement", None),
    ("post", "/api/v1/queues/{id}/agreement/refresh", None),
    ("get", "/api/v1/queues/{id}/annotators", None),
]


def _call(client, method, url, body):
    return client.get(url) if method == "get" else getattr(client, method)(url, body, format="json")


def _snapshot(queue):
    queue.refresh_from_db()
    return (
        queue.sampling,
        queue.backfill_done_at,
        list(QueueItem.objects.filter(queue=queue).values_list("pk", "status", "leased_count")),
        Assignment.objects.filter(queue=queue).count(),
        AgreementSnapshot.objects.filter(queue=queue).count(),
    )


@pytest.mark.parametrize(("method", "url", "body"), QUEUE_ENDPOINTS)
def test_another_organizations_queue_is_404_and_untouched(api_client_for, other_project, method, url, body):
    theirs = make_queue(other_project)
    add_items(theirs, 1, external_id="x")
    before = _snapshot(theirs)
    admin = api_client_for("admin")

    response = _call(admin, method, url.format(id=theirs.pk), body)

    assert response.status_code == 404
    assert response.json() == {"message": "Queue not found.", "errors": {}}
    assert _snapshot(theirs) == before


def test_queue_lists_show_only_the_callers_organization(api_client_for, project, other_project):
    ours = make_queue(project)
    make_queue(other_project)

    assert [q["id"] for q in api_client_for("admin").get("/api/v1/queues").json()] == [ours.pk]


@pytest.mark.parametrize(("method", "url", "body"), [("get", "/api/v1/queues", None), *QUEUE_ENDPOINTS])
def test_approvers_and_agent_keys_may_not_use_queues(api_client_for, agent_client, project, method, url, body):
    queue = make_queue(project)
    add_items(queue, 1, external_id="x")
    before = _snapshot(queue)

    for client in (api_client_for("approver"), agent_client):
        response = _call(client, method, url.format(id=queue.pk), body)
        assert response.status_code == 403
    assert _snapshot(queue) == before


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", "/api/v1/queues", {"project": "support", "name": "Q", "schema": 0}),
        *[
            e
            for e in QUEUE_ENDPOINTS
            if e[1].endswith(("sampling", "items", "gold", "review", "agreement", "refresh", "annotators"))
        ],
    ],
)
def test_annotators_may_not_manage_queues(annotator, project, method, url, body):
    queue = make_queue(project)
    add_items(queue, 1, external_id="x")
    before = _snapshot(queue)

    response = _call(annotator, method, url.format(id=queue.pk), body)

    assert response.status_code == 403
    assert _snapshot(queue) == before
    assert Queue.objects.count() == 1


def test_listing_queues_costs_the_same_queries_however_many_there_are(
    project, schema, api_client_for, django_assert_num_queries
):
    annotator = api_client_for("annotator")
    named = make_queue(project, schema, name="Named")
    named.assignees.set([annotator.user])
    annotator.get("/api/v1/queues")  # the token's first use stamps it; measure the next ones
    with CaptureQueriesContext(connection) as one:
        annotator.get("/api/v1/queues")
    for i in range(5):
        make_queue(project, schema, name=f"Q{i}").assignees.set([annotator.user])

    with django_assert_num_queries(len(one.captured_queries)):
        assert len(annotator.get("/api/v1/queues").json()) == 6


def test_counts_of_big_queues_are_cached_briefly_and_small_ones_are_exact(project, member, monkeypatch):
    monkeypatch.setattr(selectors, "COUNTS_CACHE_MIN_ITEMS", 3)
    small, big = make_queue(project, name="Small"), make_queue(project, name="Big")
    add_items(small, 2)
    add_items(big, 3)
    worker = member("annotator")
    before = (selectors.queue_counts(queue=small), selectors.queue_counts(queue=big))

    for queue in (small, big):
        services.label_submit(
            item=services.item_claim(queue=queue, user=worker).item, user=worker, answers={"quality": "good"}
        )

    assert before[0]["completed"] == before[1]["completed"] == 0
    assert selectors.queue_counts(queue=small)["completed"] == 1  # exact
    assert selectors.queue_counts(queue=big) == before[1]  # cached: the count ran before the label
    cache.clear()
    assert selectors.queue_counts(queue=big)["completed"] == 1


def test_gold_checks_are_added_by_id_or_external_id_with_validated_answers(engineer, project):
    queue = make_queue(project, gold_rate=0.1)
    by_id = ConversationFactory(project=project)
    by_ext = ConversationFactory(project=project, external_id="gold-ext")

    response = engineer.post(
        f"/api/v1/queues/{queue.pk}/gold",
        {
            "items": [
                {"conversation_id": by_id.pk, "answers": {"quality": "good"}},
                {"external_id": "gold-ext", "answers": {"quality": "bad", "helpfulness": 2}},
            ]
        },
        format="json",
    )

    assert response.status_code == 201
    assert [r["conversation_id"] for r in response.json()["results"]] == [by_id.pk, by_ext.pk]
    gold = QueueItem.objects.filter(queue=queue, is_gold=True).order_by("id")
    assert [i.gold_answers for i in gold] == [{"quality": "good"}, {"quality": "bad", "helpfulness": 2}]


def test_bad_gold_items_are_400_naming_each_and_nothing_is_added(engineer, project, other_project):
    queue = make_queue(project, gold_rate=0.1)
    ours = ConversationFactory(project=project)
    theirs = ConversationFactory(project=other_project, external_id="theirs")

    response = engineer.post(
        f"/api/v1/queues/{queue.pk}/gold",
        {
            "items": [
                {"conversation_id": ours.pk, "answers": {"quality": "good"}},
                {"conversation_id": theirs.pk, "answers": {"quality": "good"}},
                {"external_id": "theirs", "answers": {"quality": "good"}},
                {"answers": {"quality": "good"}},
            ]
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "items[1].conversation_id": ["No such conversation in this queue's project."],
        "items[2].conversation_id": ["No such conversation in this queue's project."],
        "items[3].conversation_id": ["Send conversation_id or external_id."],
    }
    assert QueueItem.objects.filter(queue=queue).count() == 0
