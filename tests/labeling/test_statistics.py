"""Statistics snapshots: what is computed from the database, when it refreshes, and how the pages
and the API read it. The maths itself is tested in test_agreement.py."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from labeling import agreement, selectors, services, tasks
from labeling.models import AgreementSnapshot, Assignment, AssignmentStatus, Label, QueueItem, SnapshotState
from labeling.services import statistics as snapshots
from tests.factories import ConversationFactory
from tests.labeling.factories import add_items, make_queue


def _labels(queue, rows) -> None:
    """rows: (item, user, answers, time_spent_ms, created_at or None): labels and their
    submitted assignments, written directly (the label path is tested elsewhere)."""
    version = queue.schema.latest_version
    now = timezone.now()
    for item, user, answers, spent, created in rows:
        Label.objects.create(
            organization_id=queue.organization_id,
            queue=queue,
            item=item,
            user=user,
            schema_version=version,
            answers=answers,
            time_spent_ms=spent,
            created_at=created or now,
            updated_at=created or now,
        )
        Assignment.objects.create(
            organization_id=queue.organization_id,
            queue=queue,
            item=item,
            user=user,
            status=AssignmentStatus.SUBMITTED,
            lease_expires_at=now,
        )


def _engineer_browser(member) -> Client:
    client = Client()
    client.force_login(member("engineer", username="eng"))
    return client


@pytest.fixture
def annotators(member):
    return [member("annotator", username=f"ann-{i}") for i in range(4)]


@pytest.fixture
def labeled(project, annotators):
    """A queue with 30 items, 2 or 3 labels each from four annotators, time spent and a gold item."""
    queue = make_queue(project, annotations_per_item=2)
    items = add_items(queue, 30)
    rng = np.random.default_rng(4)
    rows = []
    for item in items:
        who = rng.choice(4, size=int(rng.choice([2, 2, 3])), replace=False)
        truth = "good" if rng.random() < 0.7 else "bad"
        for a in who:
            quality = truth if rng.random() < 0.8 else ("bad" if truth == "good" else "good")
            answers = {"quality": quality, "helpfulness": int(rng.integers(3, 6)), "notes": "free text"}
            rows.append((item, annotators[int(a)], answers, int(rng.integers(1000, 9000)), None))
    _labels(queue, rows)
    return queue


def _expected_questions(queue) -> dict:
    """The same figures from the dict-form inputs, built from the stored labels by hand, as
    JSON (a rating's prevalence is keyed "3", not 3, once stored)."""
    quality, helpfulness = {}, {}
    for item_id, user_id, answers in Label.objects.filter(queue=queue, item__is_gold=False).values_list(
        "item_id", "user_id", "answers"
    ):
        quality.setdefault(item_id, {})[user_id] = answers.get("quality")
        helpfulness.setdefault(item_id, {})[user_id] = answers.get("helpfulness")
    return json_round_trip(
        {
            "quality": agreement.question_agreement(
                agreement.QuestionRatings("quality", "nominal", quality, ["good", "bad"]), bootstrap=200, seed=queue.pk
            ),
            "helpfulness": agreement.question_agreement(
                agreement.QuestionRatings("helpfulness", "ordinal", helpfulness, [1, 2, 3, 4, 5]),
                bootstrap=200,
                seed=queue.pk,
            ),
        }
    )


def json_round_trip(value):
    return json.loads(json.dumps(value))


def test_snapshot_holds_the_figures_of_the_pure_maths_on_the_same_labels(labeled):
    snapshot = services.agreement_snapshot_compute(queue_id=labeled.pk)

    assert snapshot.state == SnapshotState.IDLE
    assert snapshot.label_count == Label.objects.filter(queue=labeled).count()
    assert snapshot.computed_at is not None
    assert snapshot.error == ""
    # Free text is not compared; Cohen's kappa is not a queue-level figure.
    assert list(snapshot.payload["agreement"]["questions"]) == ["quality", "helpfulness"]
    assert snapshot.payload["agreement"]["questions"] == _expected_questions(labeled)
    assert "cohen_kappa" not in snapshot.payload["agreement"]["questions"]["quality"]
    # Pairs carry Cohen's kappa, from ten shared items on a question.
    for pair in snapshot.payload["agreement"]["pairs"]:
        for figures in pair["questions"].values():
            assert (figures["cohen_kappa"] is None) or figures["n_items"] >= 10


def test_renumbering_annotators_leaves_every_queue_level_figure_unchanged(labeled, annotators, member):
    before = services.agreement_snapshot_compute(queue_id=labeled.pk).payload
    # Hand every label (and lease) to other people: new users, in another order, so every id
    # and the order of ids change.
    others = [member("annotator", username=f"other-{i}") for i in range(4)]
    mapping = {annotators[i].pk: others[3 - i].pk for i in range(4)}
    for model in (Label, Assignment):
        for old, new in mapping.items():
            model.objects.filter(queue=labeled, user_id=old).update(user_id=new)

    after = services.agreement_snapshot_compute(queue_id=labeled.pk).payload

    assert after["agreement"]["questions"] == before["agreement"]["questions"]
    assert after["agreement"]["answer_pairs"] == before["agreement"]["answer_pairs"]
    renamed = {frozenset((p["annotator_a"], p["annotator_b"])): p for p in after["agreement"]["pairs"]}
    for pair in before["agreement"]["pairs"]:
        moved = renamed[frozenset((mapping[pair["annotator_a"]], mapping[pair["annotator_b"]]))]
        assert (moved["n_items"], moved["questions"]) == (pair["n_items"], pair["questions"])
    old_rows = {mapping[r["user_id"]]: r for r in before["annotators"]}
    for row in after["annotators"]:
        old = old_rows[row["user_id"]]
        for field in ("done", "median_seconds", "agreement_with_others", "gold_accuracy"):
            assert row[field] == old[field]


def test_annotator_rows_count_in_sql_and_take_medians_and_gold_from_the_arrays(project, annotators):
    queue = make_queue(project, annotations_per_item=2)
    items = add_items(queue, 3)
    gold_conversation = ConversationFactory(project=project)
    services.gold_items_add(
        queue=queue, items=[services.GoldItemIn(gold_conversation.pk, {"quality": "good"})], user=None
    )
    gold = QueueItem.objects.get(queue=queue, is_gold=True)
    ann, bob = annotators[:2]
    t0 = timezone.now() - dt.timedelta(hours=2)
    _labels(
        queue,
        [
            (items[0], ann, {"quality": "good"}, 1000, t0),
            (items[1], ann, {"quality": "good"}, 3000, t0 + dt.timedelta(minutes=30)),
            (items[2], ann, {"quality": "bad"}, 8000, t0 + dt.timedelta(minutes=60)),
            (gold, ann, {"quality": "good"}, None, t0 + dt.timedelta(minutes=90)),
            (items[0], bob, {"quality": "bad"}, 2000, t0),
            (items[1], bob, {"quality": "good"}, 4000, t0 + dt.timedelta(hours=1)),
            (gold, bob, {"quality": "good", "helpfulness": 2}, None, t0 + dt.timedelta(hours=2)),
        ],
    )
    Assignment.objects.create(
        organization_id=queue.organization_id,
        queue=queue,
        item=items[2],
        user=bob,
        status=AssignmentStatus.ACTIVE,
        lease_expires_at=timezone.now() + dt.timedelta(minutes=5),
    )

    payload, label_count = selectors.queue_statistics(queue=queue)

    assert label_count == 7
    assert payload["annotators"] == [
        {
            "user_id": ann.pk,
            "done": 4,
            "skipped": 0,
            "leased": 0,
            "username": "ann-0",
            "median_seconds": 3.0,  # of 1, 3 and 8 s; the gold label has no time
            "labels_per_hour": 2.7,  # 4 labels over 1.5 hours
            "agreement_with_others": 0.5,  # item 0 disagrees, item 1 agrees
            "gold_accuracy": 1.0,
            "gold_items": 1,
        },
        {
            "user_id": bob.pk,
            "done": 3,
            "skipped": 0,
            "leased": 1,
            "username": "ann-1",
            "median_seconds": 3.0,  # of 2 and 4 s
            "labels_per_hour": 1.5,  # 3 labels over 2 hours
            "agreement_with_others": 0.5,
            # The gold answer leaves helpfulness out; bob's 2 does not match it.
            "gold_accuracy": 0.0,
            "gold_items": 1,
        },
    ]
    quality = payload["agreement"]["questions"]["quality"]
    assert (quality["n_items"], quality["n_labels"]) == (2, 4)  # gold labels are not agreement data
    assert payload["agreement"]["answer_pairs"]["quality"] == {
        "categories": ["good", "bad"],
        "rows": [[1, 1], [0, 0]],
        "n_items": 2,
    }


def test_answers_are_read_by_type_so_an_option_named_3_is_not_the_rating_3(project, annotators):
    from tests.labeling.factories import make_schema

    schema = make_schema(
        project,
        [
            {"key": "pick", "type": "single_choice", "label": "Pick", "options": ["3", "4"]},
            {"key": "tags", "type": "multi_choice", "label": "Tags", "options": ["a", "b"], "required": False},
            {"key": "ok", "type": "boolean", "label": "OK?", "required": False},
        ],
        name="Typed",
    )
    queue = make_queue(project, schema=schema, annotations_per_item=2)
    [item] = add_items(queue, 1)
    _labels(
        queue,
        [
            (item, annotators[0], {"pick": "3", "tags": ["a", "b"], "ok": True}, None, None),
            (item, annotators[1], {"pick": "3", "tags": ["b", "a"], "ok": False}, None, None),
        ],
    )

    questions = selectors.queue_statistics(queue=queue)[0]["agreement"]["questions"]

    assert (questions["pick"]["categories"], questions["pick"]["percent_agreement"]) == (["3", "4"], 1.0)
    assert (questions["tags"]["categories"], questions["tags"]["percent_agreement"]) == ([["a", "b"]], 1.0)
    assert (questions["ok"]["categories"], questions["ok"]["percent_agreement"]) == ([False, True], 0.0)


# --- when snapshots refresh ----------------------------------------------------------------------


def test_a_small_queue_is_computed_in_the_request_and_again_after_new_labels(labeled, api_client_for, annotators):
    engineer = api_client_for("engineer")

    first = engineer.get(f"/api/v1/queues/{labeled.pk}/agreement")
    extra = add_items(labeled, 1)[-1]
    _labels(labeled, [(extra, annotators[0], {"quality": "good"}, None, None)])
    second = engineer.get(f"/api/v1/queues/{labeled.pk}/agreement")

    assert first.status_code == second.status_code == 200
    count = Label.objects.filter(queue=labeled).count()
    assert (first.json()["label_count"], second.json()["label_count"]) == (count - 1, count)
    assert second.json()["refreshing"] is False
    assert second.json()["questions"] == _expected_questions(labeled)


def test_a_large_queue_without_a_snapshot_answers_202_and_computes_in_the_background(
    labeled, api_client_for, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(snapshots, "SNAPSHOT_SYNC_MAX_LABELS", 10)
    engineer = api_client_for("engineer")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        pending = engineer.get(f"/api/v1/queues/{labeled.pk}/annotators")
        again = engineer.get(f"/api/v1/queues/{labeled.pk}/agreement")
    assert (pending.status_code, again.status_code) == (202, 202)
    assert pending.json() == {"annotators": [], "as_of": None, "label_count": 0, "refreshing": True}
    assert len(callbacks) == 1  # one refresh queued, however many reads
    assert AgreementSnapshot.objects.get(queue=labeled).state == SnapshotState.QUEUED

    callbacks[0]()  # the task, run in-process
    ready = engineer.get(f"/api/v1/queues/{labeled.pk}/agreement")

    assert ready.status_code == 200
    assert ready.json()["questions"] == _expected_questions(labeled)
    assert ready.json()["refreshing"] is False


def test_a_stale_large_snapshot_is_shown_and_refreshed_at_most_every_few_minutes(
    labeled, api_client_for, annotators, monkeypatch, django_capture_on_commit_callbacks
):
    services.agreement_snapshot_compute(queue_id=labeled.pk)
    monkeypatch.setattr(snapshots, "SNAPSHOT_SYNC_MAX_LABELS", 10)
    extra = add_items(labeled, 1)[-1]
    _labels(labeled, [(extra, annotators[0], {"quality": "good"}, None, None)])
    engineer = api_client_for("engineer")

    with django_capture_on_commit_callbacks(execute=True) as recent:
        shown = engineer.get(f"/api/v1/queues/{labeled.pk}/agreement")
    # Taken a moment ago: shown as it is, no refresh queued yet.
    assert (shown.status_code, shown.json()["refreshing"], len(recent)) == (200, False, 0)
    assert shown.json()["label_count"] == Label.objects.filter(queue=labeled).count() - 1

    AgreementSnapshot.objects.filter(queue=labeled).update(
        computed_at=timezone.now() - services.SNAPSHOT_AUTO_REFRESH - dt.timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True) as old:
        stale = engineer.get(f"/api/v1/queues/{labeled.pk}/agreement")
    after = engineer.get(f"/api/v1/queues/{labeled.pk}/agreement")

    assert (stale.json()["refreshing"], len(old)) == (True, 1)
    assert stale.json()["label_count"] == Label.objects.filter(queue=labeled).count() - 1  # the old figures
    assert (after.json()["refreshing"], after.json()["label_count"]) == (
        False,
        Label.objects.filter(queue=labeled).count(),
    )


def test_the_refresh_task_runs_only_when_a_refresh_is_queued(labeled):
    assert tasks.agreement_snapshot_refresh.delay(labeled.pk).get() is False  # nothing queued: no-op
    assert AgreementSnapshot.objects.get(queue=labeled).computed_at is None

    services.agreement_snapshot_request(queue=labeled)  # on_commit never fires inside the test transaction
    assert tasks.agreement_snapshot_refresh.delay(labeled.pk).get() is True
    assert tasks.agreement_snapshot_refresh.delay(labeled.pk).get() is False  # redelivered: done already
    snapshot = AgreementSnapshot.objects.get(queue=labeled)
    assert (snapshot.state, snapshot.label_count) == (SnapshotState.IDLE, Label.objects.filter(queue=labeled).count())
    assert tasks.agreement_snapshot_refresh.delay(10**9).get() is False  # queue gone


def test_a_failed_refresh_is_recorded_and_the_old_figures_kept(labeled, monkeypatch):
    good = services.agreement_snapshot_compute(queue_id=labeled.pk)

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(selectors, "queue_statistics", broken)
    with pytest.raises(RuntimeError):
        services.agreement_snapshot_compute(queue_id=labeled.pk)

    snapshot = AgreementSnapshot.objects.get(queue=labeled)
    assert (snapshot.state, snapshot.computed_at, snapshot.payload) == (
        SnapshotState.IDLE,
        good.computed_at,
        good.payload,
    )
    assert snapshot.error == "RuntimeError('disk on fire')"


def test_the_sweeper_requeues_lost_refreshes_and_refreshes_stale_active_queues(
    labeled, project, annotators, django_capture_on_commit_callbacks
):
    services.agreement_snapshot_compute(queue_id=labeled.pk)
    old = timezone.now() - dt.timedelta(hours=1)
    quiet = make_queue(project, name="Quiet")
    services.agreement_snapshot_compute(queue_id=quiet.pk)
    lost = make_queue(project, name="Lost")
    AgreementSnapshot.objects.create(
        organization_id=lost.organization_id, queue=lost, state=SnapshotState.RUNNING, started_at=old
    )
    AgreementSnapshot.objects.filter(queue__in=[labeled, quiet]).update(computed_at=old)
    Label.objects.filter(queue=labeled).update(updated_at=timezone.now())  # an edit since

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueued = tasks.agreement_snapshots_sweep.delay().get()

    assert (enqueued, len(callbacks)) == (2, 2)
    states = dict(AgreementSnapshot.objects.values_list("queue_id", "state"))
    assert states == {labeled.pk: SnapshotState.QUEUED, quiet.pk: SnapshotState.IDLE, lost.pk: SnapshotState.QUEUED}


@pytest.fixture
def clock(monkeypatch):
    """timezone.now() under the test's control."""
    current = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: current[0])

    class Clock:
        start = current[0]

        def now(self):
            return current[0]

        def advance(self, delta: dt.timedelta) -> None:
            current[0] += delta

    return Clock()


def _slow_statistics(monkeypatch, during, *, payload=None):
    """selectors.queue_statistics that calls `during()` once after reading the labels, as if
    that happened while a long computation ran; `payload` replaces the run's figures."""
    real = selectors.queue_statistics
    calls = []

    def statistics(**kwargs):
        result = real(**kwargs)
        calls.append(1)
        if len(calls) == 1:
            during()
            if payload is not None:
                return payload, result[1]
        return result

    monkeypatch.setattr(selectors, "queue_statistics", statistics)


def test_a_run_slower_than_the_stuck_limit_lands_its_figures_and_is_restarted_once(labeled, clock, monkeypatch):
    # Before, the sweeper reset the row to queued and the slow run's write found the row no
    # longer its own and was dropped; the next run was as slow: restarted forever, never landing.
    services.agreement_snapshot_request(queue=labeled)
    swept = []

    def sweep_meanwhile():
        clock.advance(services.SNAPSHOT_STUCK_AFTER + dt.timedelta(minutes=1))
        swept.append(services.agreement_snapshots_sweep())

    _slow_statistics(monkeypatch, sweep_meanwhile)

    first = services.agreement_snapshot_compute(queue_id=labeled.pk, queued_only=True)

    assert swept == [1]  # the sweeper did give it up as lost
    assert first.computed_at == clock.start  # ... and its figures landed all the same
    assert first.label_count == Label.objects.filter(queue=labeled).count()
    assert list(first.payload["agreement"]["questions"]) == ["quality", "helpfulness"]
    assert first.state == SnapshotState.QUEUED  # the sweeper's re-queue stands
    again = services.agreement_snapshot_compute(queue_id=labeled.pk, queued_only=True)
    assert (again.state, again.computed_at) == (SnapshotState.IDLE, clock.now())
    assert services.agreement_snapshot_compute(queue_id=labeled.pk, queued_only=True) is None  # done


def test_a_finishing_old_run_does_not_overwrite_a_newer_one(labeled, clock, monkeypatch):
    services.agreement_snapshot_request(queue=labeled)

    def sweep_and_run_a_newer_refresh():
        clock.advance(services.SNAPSHOT_STUCK_AFTER + dt.timedelta(minutes=1))
        assert services.agreement_snapshots_sweep() == 1
        newer = services.agreement_snapshot_compute(queue_id=labeled.pk, queued_only=True)
        assert newer.computed_at == clock.now()

    _slow_statistics(monkeypatch, sweep_and_run_a_newer_refresh, payload={"from": "the old run"})

    services.agreement_snapshot_compute(queue_id=labeled.pk, queued_only=True)

    snapshot = AgreementSnapshot.objects.get(queue=labeled)
    assert snapshot.computed_at == clock.now()  # the newer run's read, not the old one's
    assert "from" not in snapshot.payload
    assert (snapshot.state, snapshot.started_at) == (SnapshotState.IDLE, None)


def test_the_sweeper_leaves_alone_a_run_started_after_it_looked(labeled, clock, monkeypatch):
    old = clock.now() - services.SNAPSHOT_STUCK_AFTER - dt.timedelta(minutes=5)
    snapshot = AgreementSnapshot.objects.create(
        organization_id=labeled.organization_id, queue=labeled, state=SnapshotState.RUNNING, started_at=clock.now()
    )
    # What the sweeper read an instant earlier: the previous run, started long ago.
    monkeypatch.setattr(
        snapshots,
        "_snapshots_stuck",
        lambda now: [(snapshot.pk, labeled.pk, SnapshotState.RUNNING, None, old)],
    )

    assert services.agreement_snapshots_sweep() == 0

    snapshot.refresh_from_db()
    assert (snapshot.state, snapshot.started_at) == (SnapshotState.RUNNING, clock.now())


# --- pages and API -------------------------------------------------------------------------------


def test_pages_read_the_snapshot_in_a_fixed_number_of_queries(labeled, member, django_assert_num_queries):
    services.agreement_snapshot_compute(queue_id=labeled.pk)
    browser = _engineer_browser(member)
    browser.get(f"/labeling/queues/{labeled.pk}/annotators")  # session and membership warmed

    # Session, user, membership, queue, snapshot, "labels changed since?" (one index probe), and
    # the page chrome's two (memberships, organization); the agreement page adds the rubric
    # version and its two charts' grouped counts (labels per day over the last 30 days through
    # the (queue, updated_at) index; items agreed per week). No query reads all the labels.
    with django_assert_num_queries(8):
        annotators_page = browser.get(f"/labeling/queues/{labeled.pk}/annotators")
    with django_assert_num_queries(11):
        agreement_page = browser.get(f"/labeling/queues/{labeled.pk}/agreement")

    assert annotators_page.status_code == agreement_page.status_code == 200
    html = agreement_page.content.decode()
    assert "As of" in html and "Refresh" in html
    assert "Cohen" in html and "Fleiss" in html and "Gwet" in html
    assert [q["label"] for q in agreement_page.context["questions"]] == ["Was the answer right?", "How helpful?"]
    assert [name for name, _, _ in agreement_page.context["questions"][0]["stats"]] == [
        "Fleiss' κ",
        "Krippendorff's α",  # noqa: RUF001
        "Gwet's AC1",
    ]


def test_the_refresh_button_queues_a_refresh_and_the_status_line_polls(labeled, member, monkeypatch):
    services.agreement_snapshot_compute(queue_id=labeled.pk)
    browser = _engineer_browser(member)
    # Hold the task back, as a busy worker would.
    monkeypatch.setattr(snapshots, "_enqueue_snapshot", lambda queue_id: None)

    clicked = browser.post(f"/labeling/queues/{labeled.pk}/statistics/refresh", HTTP_HX_REQUEST="true")
    snapshot = AgreementSnapshot.objects.get(queue=labeled)
    polled = browser.get(
        f"/labeling/queues/{labeled.pk}/statistics/status",
        {"as_of": snapshot.computed_at.isoformat()},
        HTTP_HX_REQUEST="true",
    )
    services.agreement_snapshot_compute(queue_id=labeled.pk, queued_only=True)  # the worker gets to it
    done = browser.get(
        f"/labeling/queues/{labeled.pk}/statistics/status",
        {"as_of": snapshot.computed_at.isoformat()},
        HTTP_HX_REQUEST="true",
    )
    plain = browser.post(f"/labeling/queues/{labeled.pk}/statistics/refresh", {"page": "annotators"})

    assert clicked.status_code == 200
    assert "refreshing" in clicked.content.decode() and 'hx-trigger="every 3s"' in clicked.content.decode()
    assert polled.status_code == 200 and "HX-Refresh" not in polled
    assert (done.status_code, done["HX-Refresh"]) == (204, "true")
    assert (plain.status_code, plain["Location"]) == (302, f"/labeling/queues/{labeled.pk}/annotators")


def test_refresh_api_is_for_engineers_of_the_queues_organization(
    labeled, api_client_for, other_org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for("engineer").post(f"/api/v1/queues/{labeled.pk}/agreement/refresh")
    denied = api_client_for("annotator").post(f"/api/v1/queues/{labeled.pk}/agreement/refresh")
    stranger = api_client_for("engineer", organization=other_org).post(f"/api/v1/queues/{labeled.pk}/agreement/refresh")

    assert response.status_code == 202
    assert set(response.json()) == {"as_of", "label_count", "refreshing"}
    assert (denied.status_code, stranger.status_code) == (403, 404)
    # The eager task ran on commit: the snapshot is in.
    assert AgreementSnapshot.objects.get(queue=labeled).label_count == Label.objects.filter(queue=labeled).count()
