"""Hostile input to labeling: bounded integers, no NUL, no NaN or infinity, bounded depth, in the
API, the browser and the services alike; sampling rules that can never break ingestion. Every
refusal is a 4xx naming the field and changes no row, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from labeling import services
from labeling.models import Assignment, ItemComment, Label, LabelSchema, Queue, QueueItem
from labeling.services import sampling as sampling_services
from reviewapp import rawsql, validation
from reviewapp.models import Conversation
from tests.factories import conversation_payload
from tests.labeling.factories import add_items, make_queue, make_schema

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def engineer(api_client_for):
    return api_client_for("engineer")


@pytest.fixture
def annotator(api_client_for):
    return api_client_for("annotator")


@pytest.fixture
def schema(project):
    return make_schema(project)


def _error(response, status: int) -> dict[str, list[str]]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "errors"}
    return body["errors"]


def _raw(client, method: str, url: str, body: str):
    return client.generic(method, url, body, content_type="application/json")


def _counts() -> dict[str, int]:
    return {
        "schemas": LabelSchema.objects.count(),
        "queues": Queue.objects.count(),
        "items": QueueItem.objects.count(),
        "labels": Label.objects.count(),
        "comments": ItemComment.objects.count(),
    }


def _claimed(project, client) -> QueueItem:
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    response = client.post(f"/api/v1/queues/{queue.pk}/claim")
    assert response.status_code == 200, response.content
    return item


# --- queues: integers bounded to their columns ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", "2147483648"),
        ("priority", "-2147483649"),
        ("priority", str(2**70)),
        ("max_per_day", str(10**9 + 1)),
        ("max_per_day", "1" + "0" * 400),
        ("schema", str(2**63)),
        ("lease_seconds", str(2**64)),
    ],
)
def test_queue_create_refuses_integers_beyond_their_column(engineer, schema, field, value):
    body = {"project": "support", "name": "Q", "schema": schema.pk}
    raw = json.dumps(body)[:-1] + f', "{field}": {value}}}'
    before = _counts()

    errors = _error(_raw(engineer, "POST", "/api/v1/queues", raw), 400)

    assert list(errors) == [field]
    assert _counts() == before


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ('{"rate": 1, "max_per_day": 1' + "0" * 400 + "}", "sampling[0].max_per_day"),
        ('{"rate": 1, "max_per_day": 1000000001}', "sampling[0].max_per_day"),
        ('{"rate": NaN}', "sampling[0].rate"),
        ('{"rate": 1e400}', "sampling[0].rate"),
        ('{"rate": 0.5, "if": {"score_below": Infinity}}', "sampling[0].if.score_below"),
        ('{"rate": 0.5, "if": {"score_below": -1e999}}', "sampling[0].if.score_below"),
        ('{"rate": 0.5, "if": {"metadata": {"k": "a\\u0000"}}}', "sampling[0].if.metadata.k"),
        ('{"rate": 0.5, "if": {"tags_any": ["a\\u0000"]}}', "sampling[0].if.tags_any[0]"),
    ],
)
def test_sampling_rules_are_bounded(engineer, schema, rule, field):
    raw = '{"project": "support", "name": "Q", "schema": %d, "sampling": [%s]}' % (schema.pk, rule)  # noqa: UP031
    before = _counts()

    errors = _error(_raw(engineer, "POST", "/api/v1/queues", raw), 400)

    assert list(errors) == [field]
    assert _counts() == before


def test_sampling_update_refuses_an_unbounded_budget(engineer, project):
    queue = make_queue(project, sampling=({"rate": 0.5},))
    raw = '{"sampling": [{"rate": 0.5}], "max_per_day": 1' + "0" * 400 + "}"

    errors = _error(_raw(engineer, "PUT", f"/api/v1/queues/{queue.pk}/sampling", raw), 400)

    assert list(errors) == ["max_per_day"]
    queue.refresh_from_db()
    assert (queue.sampling, queue.max_per_day) == ([{"rate": 0.5}], None)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"priority": 2**31}, "priority"),
        ({"max_per_day": 10**400}, "max_per_day"),
        ({"gold_rate": float("nan")}, "gold_rate"),
        ({"name": "Q\x00"}, "name"),
        ({"sampling": ({"rate": 1, "max_per_day": 10**400},)}, "sampling[0].max_per_day"),
        ({"sampling": ({"rate": float("inf")},)}, "sampling[0].rate"),
    ],
)
def test_queue_create_service_bounds_what_other_callers_send(project, schema, spec, field):
    spec = {"name": "Q", **spec}
    before = _counts()

    with pytest.raises(validation.ValidationFailed) as caught:
        services.queue_create(project=project, spec=services.QueueSpec(schema=schema, **spec), user=None)

    assert list(caught.value.errors) == [field]
    assert _counts() == before


# --- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item_id", [str(2**63), "99999999999999999999999"])
@pytest.mark.parametrize("action", ["labels", "skip", "lease", "draft"])
def test_item_ids_beyond_64_bits_are_not_found(annotator, project, item_id, action):
    _claimed(project, annotator)
    method = "PUT" if action == "draft" else "POST"

    _error(_raw(annotator, method, f"/api/v1/items/{item_id}/{action}", '{"answers": {}}'), 404)

    assert Label.objects.count() == 0


@pytest.mark.parametrize("exclude", ["²", "abc", str(2**63), "-1", "0"])
def test_claim_refuses_an_odd_exclude(annotator, project, exclude):
    queue = make_queue(project)
    add_items(queue, 1)

    errors = _error(annotator.post(f"/api/v1/queues/{queue.pk}/claim?exclude={exclude}"), 400)

    assert list(errors) == ["exclude"]
    assert Assignment.objects.count() == 0


@pytest.mark.parametrize("value", [2**63, 0, -5])
def test_adding_items_by_an_out_of_range_id_is_a_400(engineer, project, value):
    queue = make_queue(project)

    errors = _error(
        engineer.post(f"/api/v1/queues/{queue.pk}/items", {"conversation_ids": [value]}, format="json"), 400
    )

    assert list(errors) == ["conversation_ids[0]"]
    assert QueueItem.objects.count() == 0


# --- labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (', "time_spent_ms": 5000000000', "time_spent_ms"),
        (', "time_spent_ms": -1', "time_spent_ms"),
        (', "schema_version": 9223372036854775808', "schema_version"),
        (', "client_token": "t\\u0000"', "client_token"),
    ],
)
def test_label_integers_and_text_are_bounded(annotator, project, extra, field):
    item = _claimed(project, annotator)
    raw = '{"answers": {"quality": "good"}' + extra + "}"

    errors = _error(_raw(annotator, "POST", f"/api/v1/items/{item.pk}/labels", raw), 400)

    assert list(errors) == [field]
    assert Label.objects.count() == 0


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ('{"quality": "good", "notes": "a\\u0000b"}', "answers.notes"),
        ('{"quality": "good", "notes": "ok", "x\\u0000": 1}', "answers"),
        ('{"quality": "good", "helpfulness": 1e400}', "answers.helpfulness"),
        ('{"quality": "good", "helpfulness": NaN}', "answers.helpfulness"),
        ('{"quality": "good", "notes": ' + "[" * 100 + "]" * 100 + "}", "answers.notes"),
    ],
)
def test_label_answers_refuse_nul_non_finite_and_depth(annotator, project, answers, field):
    item = _claimed(project, annotator)

    errors = _error(_raw(annotator, "POST", f"/api/v1/items/{item.pk}/labels", '{"answers": ' + answers + "}"), 400)

    assert [key.startswith(field) for key in errors] == [True]
    assert Label.objects.count() == 0


def test_a_label_body_nested_ten_thousand_deep_is_a_400(annotator, project):
    item = _claimed(project, annotator)
    raw = '{"answers": ' + "[" * 10_000 + "]" * 10_000 + "}"

    errors = _error(_raw(annotator, "POST", f"/api/v1/items/{item.pk}/labels", raw), 400)

    assert list(errors) == ["body"]
    assert Label.objects.count() == 0


def test_time_spent_is_capped_in_the_service(annotator, project):
    item = _claimed(project, annotator)

    response = annotator.post(
        f"/api/v1/items/{item.pk}/labels",
        {"answers": {"quality": "good"}, "time_spent_ms": 2**31 - 1},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert Label.objects.get().time_spent_ms == services.MAX_TIME_SPENT_MS


def test_the_raw_insert_refuses_what_the_column_cannot_hold(annotator, project):
    item = _claimed(project, annotator)
    label_row = {
        "organization_id": item.organization_id,
        "queue_id": item.queue_id,
        "item_id": item.pk,
        "user_id": annotator.user.pk,
        "schema_version_id": item.queue.schema.latest_version_id,
        "answers": {},
        "client_token": "",
        "time_spent_ms": 5_000_000_000,
    }

    with pytest.raises(validation.InputError) as caught:
        rawsql.insert(Label, [label_row])

    assert list(caught.value.errors) == ["time_spent_ms"]
    assert Label.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "action", "body", "field"),
    [
        ("PUT", "draft", '{"answers": {"notes": "a\\u0000"}}', "answers.notes"),
        ("PUT", "draft", '{"answers": {"notes": 1e400}}', "answers.notes"),
        ("POST", "skip", '{"reason": "a\\u0000"}', "reason"),
        ("POST", "comments", '{"body": "a\\u0000"}', "body"),
    ],
)
def test_drafts_skips_and_comments_refuse_nul_and_non_finite(annotator, project, method, action, body, field):
    item = _claimed(project, annotator)
    before = _counts()

    errors = _error(_raw(annotator, method, f"/api/v1/items/{item.pk}/{action}", body), 400)

    assert list(errors) == [field]
    assert _counts() == before
    assert Assignment.objects.get().draft_answers == {}


def test_review_refuses_nul(engineer, project):
    queue = make_queue(project)
    [item] = add_items(queue, 1)

    errors = _error(
        _raw(
            engineer, "POST", f"/api/v1/items/{item.pk}/review", '{"answers": {"quality": "good", "notes": "\\u0000"}}'
        ),
        400,
    )

    assert list(errors) == ["answers.notes"]
    item.refresh_from_db()
    assert item.final_answers is None


def test_rubric_names_and_questions_refuse_nul(engineer, project):
    body = {"project": "support", "name": "R", "questions": [{"key": "q", "type": "text", "label": "L"}]}
    raw = json.dumps(body).replace('"name": "R"', '"name": "R\\u0000"')

    errors = _error(_raw(engineer, "POST", "/api/v1/label-schemas", raw), 400)

    assert list(errors) == ["name"]
    assert LabelSchema.objects.count() == 0


@pytest.mark.parametrize(
    ("answers", "field"), [({"notes": "a\x00"}, "answers.notes"), ({"quality": float("inf")}, "answers.quality")]
)
def test_label_submit_service_refuses_nul_and_non_finite(project, member, answers, field):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    user = member("annotator")
    services.item_claim(queue=queue, user=user)

    with pytest.raises(validation.ValidationFailed) as caught:
        services.label_submit(item=item, user=user, answers=answers)

    assert list(caught.value.errors) == [field]
    assert Label.objects.count() == 0


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture
def browser(member):
    user = member("annotator")
    client = Client()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize(
    "fields",
    [
        {"shown": "²"},
        {"shown": "99999999999999999999999"},
        {"time_spent_ms": "²"},
        {"time_spent_ms": "5000000000"},
        {"schema_version": "²"},
        {"a-helpfulness": "²"},
        {"a-helpfulness": "99999999999999999999"},
        {"a-notes": "a\x00b"},
    ],
)
def test_a_browser_submit_with_a_bad_field_saves_nothing_and_answers_422(project, browser, fields):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    services.item_claim(queue=queue, user=browser.user)
    data = {"client_token": "tok", "time_spent_ms": "1500", "mode": "work", "a-quality": "good", **fields}

    response = browser.post(f"/labeling/items/{item.pk}/submit", data, **HX)

    assert response.status_code == 422
    assert Label.objects.count() == 0


def test_a_browser_submit_with_a_numeric_shown_still_works(project, browser):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    services.item_claim(queue=queue, user=browser.user)
    data = {"client_token": "tok", "time_spent_ms": "99999999", "mode": "work", "a-quality": "good", "shown": "7"}

    response = browser.post(f"/labeling/items/{item.pk}/submit", data, **HX)

    assert response.status_code == 200
    assert Label.objects.get().time_spent_ms == services.MAX_TIME_SPENT_MS


@pytest.mark.parametrize("path", ["/labeling/queues/{q}/next?exclude=²", "/labeling/queues/{q}/review?reviewed=²"])
def test_browser_hints_with_odd_ids_are_ignored(project, member, path):
    user = member("engineer")
    client = Client()
    client.force_login(user)
    queue = make_queue(project)
    add_items(queue, 1)
    url = path.format(q=queue.pk)

    response = client.post(url, **HX) if "/next" in url else client.get(url)

    assert response.status_code == 200


def test_browser_comment_and_skip_refuse_nul(project, browser):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    services.item_claim(queue=queue, user=browser.user)

    comment = browser.post(f"/labeling/items/{item.pk}/comments", {"body": "a\x00b"}, **HX)
    skip = browser.post(f"/labeling/items/{item.pk}/skip", {"reason": "a\x00b"}, **HX)

    assert (comment.status_code, skip.status_code) == (422, 422)
    assert ItemComment.objects.count() == 0
    assert Assignment.objects.get().status == "active"


# --- sampling can never break ingestion -----------------------------------------------------------


def _break(queue: Queue, rules: list) -> None:
    # Rules stored before they were bounded (or written around the service).
    Queue.objects.filter(pk=queue.pk).update(sampling=rules)


@pytest.mark.parametrize(
    "bad_rules",
    [
        [{"rate": 1, "max_per_day": 10**400}],
        [{"rate": "x"}],
        [{"rate": 1, "if": {"score_below": "nope"}}],
    ],
)
def test_a_broken_queue_is_skipped_recorded_and_visible_while_others_sample(
    project, agent_client, engineer, django_capture_on_commit_callbacks, bad_rules
):
    bad = make_queue(project, name="Broken", sampling=({"rate": 1.0},))
    good = make_queue(project, name="Fine", sampling=({"rate": 1.0},))
    _break(bad, bad_rules)

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post("/api/v1/conversations", conversation_payload("c-1"), format="json")

    assert response.status_code == 201, response.content
    assert Conversation.objects.count() == 1
    assert QueueItem.objects.filter(queue=good).count() == 1
    assert QueueItem.objects.filter(queue=bad).count() == 0
    bad.refresh_from_db()
    assert bad.sampling_failures == 1
    assert bad.sampling_error and bad.sampling_error_at is not None
    health = engineer.get(f"/api/v1/queues/{bad.pk}").json()["sampling_health"]
    assert health["failures"] == 1
    assert health["last_error"] == bad.sampling_error
    page = Client()
    page.force_login(engineer.user)
    assert "Sampling failed 1 time" in page.get("/labeling/").content.decode()


def test_an_unexpected_sampling_crash_is_isolated_per_queue(
    project, agent_client, monkeypatch, django_capture_on_commit_callbacks
):
    bad = make_queue(project, name="Broken", sampling=({"rate": 1.0},))
    good = make_queue(project, name="Fine", sampling=({"rate": 1.0},))
    real = sampling_services._queue_sample

    def flaky(*, queue, facts, source, now):
        if queue.pk == bad.pk:
            raise ZeroDivisionError("boom")
        return real(queue=queue, facts=facts, source=source, now=now)

    monkeypatch.setattr(sampling_services, "_queue_sample", flaky)

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post("/api/v1/conversations", conversation_payload("c-1"), format="json")

    assert response.status_code == 201
    assert QueueItem.objects.filter(queue=good).count() == 1
    bad.refresh_from_db()
    assert (bad.sampling_failures, bad.sampling_error) == (1, "ZeroDivisionError: boom")


def test_the_ingest_never_fails_because_sampling_did(
    project, agent_client, monkeypatch, django_capture_on_commit_callbacks
):
    make_queue(project, sampling=({"rate": 1.0},))

    def broken(conversation_ids):
        raise RuntimeError("sampling is down")

    monkeypatch.setattr(sampling_services, "_facts_for", broken)

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post("/api/v1/conversations", conversation_payload("c-1"), format="json")

    assert response.status_code == 201
    assert Conversation.objects.count() == 1
