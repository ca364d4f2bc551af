"""Sampling sees every signal, whenever it arrives, and a broker outage never loses the work:
late judge scores and feedback, the SamplingBatch outbox and its sweeper, and the budget day in
the project's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from labeling import sampling, services, tasks
from labeling.models import QueueItem, SamplingBatch, SamplingCounter
from labeling.services import sampling as sampling_services
from reviewapp import services as core_services
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project
from tests.factories import ConversationFactory, conversation_payload
from tests.labeling.factories import make_queue

JUDGE_RULE = {"rate": 1.0, "if": {"judge": "gpt-judge", "score_below": 0.5}, "name": "low-score"}
THUMBS_DOWN_RULE = {"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "thumbs-down"}


def _bare(external_id: str, **overrides: object) -> dict:
    """A conversation as an agent sends it before any judge or user has spoken."""
    body = conversation_payload(external_id)
    body.pop("judge_scores")
    body.pop("feedback")
    body.update(overrides)
    return body


def _items(queue) -> list[tuple[str, str]]:
    return sorted(QueueItem.objects.filter(queue=queue).values_list("conversation__external_id", "sampling_rule"))


def test_a_judge_score_added_after_ingestion_samples_the_conversation(
    agent_client, project, django_capture_on_commit_callbacks
):
    queue = make_queue(project, sampling=(JUDGE_RULE,), backfill_days=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert agent_client.post("/api/v1/conversations", _bare("late"), format="json").status_code == 201
        assert agent_client.post("/api/v1/conversations", _bare("fine"), format="json").status_code == 201
    assert _items(queue) == []

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            "/api/v1/judge-scores",
            {
                "judge_scores": [
                    {"external_id": "late", "judge": "gpt-judge", "criterion": "correctness", "score": 0.2},
                    {"external_id": "fine", "judge": "gpt-judge", "criterion": "correctness", "score": 0.9},
                ]
            },
            format="json",
        )

    assert response.status_code == 201
    assert _items(queue) == [("late", "low-score")]
    assert SamplingBatch.objects.count() == 0


def test_feedback_on_a_resent_conversation_samples_it_and_an_identical_resend_records_nothing(
    agent_client, project, django_capture_on_commit_callbacks
):
    queue = make_queue(project, sampling=(THUMBS_DOWN_RULE,), backfill_days=0)
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post("/api/v1/conversations", _bare("c1"), format="json")
    assert _items(queue) == []

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post("/api/v1/conversations", _bare("c1", feedback={"rating": "down"}), format="json")
    assert response.status_code == 201
    assert response.json()["results"][0]["status"] == "duplicate"
    assert _items(queue) == [("c1", "thumbs-down")]

    # The same feedback again adds no row, so nothing changed and no sampling work is recorded.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        agent_client.post("/api/v1/conversations", _bare("c1", feedback={"rating": "down"}), format="json")
    assert callbacks == []
    assert SamplingBatch.objects.count() == 0


def test_ingest_records_the_sampling_work_in_its_own_transaction(project, django_capture_on_commit_callbacks):
    make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)

    with django_capture_on_commit_callbacks(execute=False):
        results = core_services.conversations_ingest(
            project=project, conversations=[_model(_bare("a")), _model(_bare("b"))]
        )

    # Not yet committed-and-run: the work is a row, not only a message in a broker.
    assert list(SamplingBatch.objects.values_list("project_id", "conversation_ids")) == [
        (project.pk, [r.id for r in results])
    ]


def _model(payload: dict):
    from reviewapp.ingest_schemas import ConversationIn

    return ConversationIn.model_validate(payload)


def test_with_the_broker_down_ingest_answers_201_and_the_sweeper_samples_the_batch_later(
    agent_client, project, monkeypatch, django_capture_on_commit_callbacks
):
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(tasks.sampling_batch_process, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            "/api/v1/conversations", {"conversations": [_bare("a"), _bare("b")]}, format="json"
        )

    assert response.status_code == 201
    assert _items(queue) == []
    [batch] = SamplingBatch.objects.all()

    # A sweep before the retry delay leaves it alone; the broker is back at the next one.
    monkeypatch.undo()
    assert tasks.sampling_batches_sweep.delay().get() == 0
    SamplingBatch.objects.filter(pk=batch.pk).update(
        enqueued_at=timezone.now() - dt.timedelta(seconds=services.SAMPLING_RETRY_SECONDS + 1)
    )
    assert tasks.sampling_batches_sweep.delay().get() == 1

    assert _items(queue) == [("a", "rule0"), ("b", "rule0")]
    assert SamplingBatch.objects.count() == 0
    assert tasks.sampling_batches_sweep.delay().get() == 0


def test_a_sampling_error_run_in_process_does_not_fail_the_ingest_and_the_batch_stays(
    agent_client, project, monkeypatch, django_capture_on_commit_callbacks
):
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)

    def broken(conversation_ids):
        raise RuntimeError("sampling bug")

    monkeypatch.setattr(sampling_services, "_facts_for", broken)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post("/api/v1/conversations", _bare("a"), format="json")

    assert response.status_code == 201
    [batch] = SamplingBatch.objects.all()
    assert QueueItem.objects.count() == 0
    # The run failed as a whole: its queue stays owed, and the batch waits for a retry.
    assert (batch.queue_ids, batch.attempts, batch.last_error) == ([queue.pk], 1, "RuntimeError: sampling bug")
    assert batch.next_attempt_at is not None


def test_a_batch_is_sampled_once_however_often_it_is_delivered(project, django_capture_on_commit_callbacks):
    queue = make_queue(project, sampling=({"rate": 1.0},), max_per_day=10_000, backfill_days=0)
    with django_capture_on_commit_callbacks(execute=False):
        core_services.conversations_ingest(project=project, conversations=[_model(_bare(f"c{i}")) for i in range(5)])
    [batch] = SamplingBatch.objects.all()

    assert tasks.sampling_batch_process.delay(batch.pk).get() == 5
    assert tasks.sampling_batch_process.delay(batch.pk).get() is None

    assert QueueItem.objects.filter(queue=queue).count() == 5
    assert list(SamplingCounter.objects.values_list("key", "candidates", "admitted")) == [("queue", 5, 5)]


def test_projects_without_sampling_queues_record_no_work(project, django_capture_on_commit_callbacks):
    make_queue(project)  # manual queue: no rules

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        core_services.conversations_ingest(project=project, conversations=[_model(_bare("a"))])

    assert callbacks == []
    assert SamplingBatch.objects.count() == 0


# --- the budget day ------------------------------------------------------------------------


NEW_YORK = ZoneInfo("America/New_York")


def test_daily_budgets_roll_over_at_the_projects_midnight_not_utcs(project):
    Project.objects.filter(pk=project.pk).update(timezone="America/New_York")
    queue = make_queue(project, sampling=({"rate": 1.0},), max_per_day=24, backfill_days=0)
    evening = [ConversationFactory(project=project, external_id=f"e{i}").pk for i in range(40)]
    morning = [ConversationFactory(project=project, external_id=f"m{i}").pk for i in range(40)]
    # 23:30 and 00:30 in New York are 04:30 and 05:30 UTC on the same UTC day.
    before = dt.datetime(2026, 11, 23, 23, 30, tzinfo=NEW_YORK)
    after = dt.datetime(2026, 11, 24, 0, 30, tzinfo=NEW_YORK)
    assert before.astimezone(dt.UTC).date() == after.astimezone(dt.UTC).date()

    first = services.conversations_sample(project_id=project.pk, conversation_ids=evening, now=before)
    second = services.conversations_sample(project_id=project.pk, conversation_ids=morning, now=after)

    # The whole day's 24 by 23:30; just after midnight a new day's paced allowance (2).
    assert (first, second) == (24, sampling.pacing_allowance(24, after)) == (24, 2)
    assert sorted(SamplingCounter.objects.filter(queue=queue).values_list("day", "candidates", "admitted")) == [
        (dt.date(2026, 11, 23), 40, 24),
        (dt.date(2026, 11, 24), 40, 2),
    ]


def test_pacing_counts_a_day_with_a_clock_change_as_25_hours():
    # New York leaves summer time at 02:00 on 1 November 2026: noon is 13 of 25 hours in.
    noon = dt.datetime(2026, 11, 1, 12, 0, tzinfo=NEW_YORK)

    assert sampling.pacing_allowance(250, noon) == 130 + 11


def test_a_project_time_zone_must_be_a_real_zone(org, api_client_for):
    with pytest.raises(ValidationFailed) as exc:
        core_services.project_create(organization=org, slug="mars", time_zone="Mars/Olympus")
    assert list(exc.value.errors) == ["timezone"]
    assert not Project.objects.filter(slug="mars").exists()

    core_services.project_create(organization=org, slug="paris", time_zone="Europe/Paris")
    response = api_client_for("engineer").get("/api/v1/projects")
    assert [(p["slug"], p["timezone"]) for p in response.json()] == [("paris", "Europe/Paris")]
