from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from labeling import sampling, services
from labeling.models import QueueItem, SamplingCounter
from reviewapp import services as core_services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import Conversation
from tests.factories import ConversationFactory, conversation_payload
from tests.labeling.factories import make_queue


def facts(**kw) -> sampling.ConversationFacts:
    kw.setdefault("id", 1)
    kw.setdefault("external_id", "x")
    return sampling.ConversationFacts(**kw)


def rules(*raw) -> list[sampling.SamplingRule]:
    return sampling.rules_parse(list(raw))


def test_sample_hash_is_deterministic_and_depends_on_queue_and_external_id():
    assert sampling.sample_hash(1, "abc") == sampling.sample_hash(1, "abc")
    assert sampling.sample_hash(1, "abc") != sampling.sample_hash(2, "abc")
    assert 0 <= sampling.sample_hash(1, "abc") < 1


def test_uniform_rate_samples_about_that_share():
    r = rules({"rate": 0.1})
    hits = sum(sampling.candidate_for(7, r, facts(id=i, external_id=f"c{i}")) is not None for i in range(20_000))
    assert 1800 <= hits <= 2200


def test_conditions_filter_on_every_supported_field():
    judged = facts(
        agent_version="v2",
        tags=("refund",),
        metadata={"channel": "web"},
        feedback_rating="down",
        user_rephrased=True,
        judge_scores=(sampling.JudgeFact("gpt-judge", "correctness", 0.3, 0.6),),
    )
    cases = {
        "agent_version": ({"agent_version": "v2"}, {"agent_version": ["v1"]}),
        "tags_any": ({"tags_any": ["x", "refund"]}, {"tags_any": ["booking"]}),
        "metadata": ({"metadata": {"channel": "web"}}, {"metadata": {"channel": "phone"}}),
        "feedback": ({"feedback_rating": "down"}, {"feedback_rating": "up"}),
        "rephrased": ({"user_rephrased": True}, {"user_rephrased": False}),
        "score": (
            {"judge": "gpt-judge", "criterion": "correctness", "score_below": 0.5},
            {"judge": "gpt-judge", "criterion": "correctness", "score_below": 0.2},
        ),
        "confidence": ({"confidence_below": 0.8}, {"confidence_below": 0.5}),
    }
    for name, (yes, no) in cases.items():
        assert sampling.condition_matches(sampling.RuleCondition.model_validate(yes), judged), name
        assert not sampling.condition_matches(sampling.RuleCondition.model_validate(no), judged), name


def test_any_matching_rule_samples_and_inclusion_probability_is_the_highest_matching_rate():
    r = rules({"rate": 0.0}, {"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "thumbs-down"})

    down = sampling.candidate_for(1, r, facts(feedback_rating="down"))
    up = sampling.candidate_for(1, r, facts(feedback_rating="up"))

    assert up is None
    assert down.inclusion_probability == 1.0
    assert down.passing[0].rule.label(down.passing[0].index) == "thumbs-down"
    assert down.passing[0].rule.strategy() == "signal"


def test_invalid_rules_are_rejected_with_the_field_named():
    with pytest.raises(Exception) as exc:
        sampling.SamplingRule.model_validate({"rate": 2, "if": {"colour": "red"}})
    text = str(exc.value)
    assert "rate" in text and "colour" in text


def test_pacing_spreads_a_daily_budget_over_the_day():
    midnight = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    assert sampling.pacing_allowance(240, midnight) == 10
    assert sampling.pacing_allowance(240, midnight + dt.timedelta(hours=12)) == 130
    assert sampling.pacing_allowance(240, midnight + dt.timedelta(hours=23, minutes=59)) == 240


def _ingest(project, payloads):
    return core_services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(p) for p in payloads]
    )


def test_ingest_samples_into_queues_on_commit_and_records_why(project, django_capture_on_commit_callbacks):
    queue = make_queue(
        project,
        sampling=({"rate": 0.0}, {"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "down"}),
        backfill_days=0,
    )
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(
            project,
            [
                conversation_payload("a", feedback={"rating": "down"}),
                conversation_payload("b", feedback={"rating": "up"}),
            ],
        )

    item = QueueItem.objects.get(queue=queue)
    assert item.conversation.external_id == "a"
    assert (item.source, item.sampling_rule, item.sampling_strategy, item.inclusion_probability) == (
        "rule",
        "down",
        "signal",
        1.0,
    )


def test_resending_a_conversation_never_samples_it_twice(project, django_capture_on_commit_callbacks):
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            _ingest(project, [conversation_payload("same")])
    services.conversations_sample(
        project_id=project.pk, conversation_ids=list(project.conversations.values_list("pk", flat=True))
    )

    assert QueueItem.objects.filter(queue=queue).count() == 1


def test_daily_budget_admits_at_most_the_paced_allowance_lowest_hashes_first(
    project, django_capture_on_commit_callbacks
):
    queue = make_queue(project, sampling=({"rate": 1.0},), max_per_day=24, backfill_days=0)
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(project, [conversation_payload(f"c{i}") for i in range(50)])

    allowance = sampling.pacing_allowance(24, dt.datetime.now(dt.UTC))
    items = list(QueueItem.objects.filter(queue=queue))
    assert len(items) == allowance
    admitted = sorted(i.sample_hash for i in items)
    all_hashes = sorted(sampling.sample_hash(queue.pk, f"c{i}") for i in range(50))
    assert admitted == all_hashes[:allowance]
    counter = SamplingCounter.objects.get(queue=queue, key="queue")
    assert (counter.candidates, counter.admitted) == (50, allowance)


def test_per_rule_quota_caps_only_that_rule(project, django_capture_on_commit_callbacks):
    queue = make_queue(
        project,
        sampling=(
            {"rate": 1.0, "if": {"tags_any": ["refund"]}, "max_per_day": 1, "name": "refunds"},
            {"rate": 1.0, "if": {"tags_any": ["booking"]}},
        ),
        backfill_days=0,
    )
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(
            project,
            [conversation_payload(f"r{i}", tags=["refund"]) for i in range(5)]
            + [conversation_payload(f"b{i}", tags=["booking"]) for i in range(5)],
        )

    strata = sorted(QueueItem.objects.filter(queue=queue).values_list("stratum", flat=True))
    assert strata.count("tag:refund") == 1
    assert len(strata) == 6


def test_backfill_samples_older_conversations_when_a_queue_is_created(project, django_capture_on_commit_callbacks):
    _ingest(project, [conversation_payload(f"old{i}", occurred_at=None) for i in range(30)])

    with django_capture_on_commit_callbacks(execute=True):
        queue = make_queue(project, sampling=({"rate": 1.0},))

    assert QueueItem.objects.filter(queue=queue, source="backfill").count() == 30
    queue.refresh_from_db()
    assert queue.backfill_done_at is not None


def test_backfill_proceeds_in_bounded_steps(project):
    _ingest(project, [conversation_payload(f"old{i}", occurred_at=None) for i in range(5)])
    queue = make_queue(project, sampling=({"rate": 1.0},))

    steps = [services.queue_backfill_step(queue_id=queue.pk, chunk=2) for _ in range(4)]

    assert [(s.added, s.more) for s in steps] == [(2, True), (2, True), (1, False), (0, False)]
    assert QueueItem.objects.filter(queue=queue).count() == 5


def test_metadata_rules_match_exact_values_even_integers_beyond_64_bits(project):
    queue = make_queue(project, sampling=({"rate": 1.0, "if": {"metadata": {"account": 2**70}}},), backfill_days=0)
    exact = ConversationFactory(project=project, external_id="exact", metadata={"account": 2**70, "tier": "gold"})
    rounded = ConversationFactory(project=project, external_id="near", metadata={"account": 2**70 + 1})

    services.conversations_sample(project_id=project.pk, conversation_ids=[exact.pk, rounded.pk])

    assert list(QueueItem.objects.filter(queue=queue).values_list("conversation_id", flat=True)) == [exact.pk]


def test_the_backfill_walks_conversations_through_the_project_id_index(project):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Conversation._meta.db_table)
    indexes = {name: c["columns"] for name, c in constraints.items() if c["index"] and not c["unique"]}
    assert indexes["conv_project_id_desc"] == ["project_id", "id"]


@pytest.mark.postgres
def test_a_backfill_step_reads_through_the_project_id_index(project):
    queue = make_queue(project, sampling=[{"rate": 1.0}])
    ConversationFactory.create_batch(30, project=project)
    since = timezone.now() - dt.timedelta(days=queue.backfill_days)
    qs = Conversation.objects.filter(project_id=project.pk, occurred_at__gte=since, pk__lt=10**9)
    sql, params = qs.order_by("-pk").values_list("pk", flat=True)[:2000].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "conv_project_id_desc" in plan
