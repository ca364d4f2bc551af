"""Hand-written hot statements: the instances they build match the ORM's, and on PostgreSQL
the prepared path keeps Django's error classes and shows up in query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviewapp import rawsql
from reviewapp.models import Conversation, Feedback, JudgeScore
from reviewapp.selectors import conversation_feedback_and_scores
from reviewapp.serializers import ConversationDetailSerializer, conversation_detail_payload
from tests.factories import ConversationFactory, JudgeScoreFactory

pytestmark = pytest.mark.django_db

_SQL = f"SELECT {rawsql.columns(Conversation, 'c')} FROM reviewapp_conversation c WHERE c.id = %s"  # noqa: S608


def _awkward_conversation(project) -> Conversation:
    return ConversationFactory(
        project=project,
        external_id='ext-\t"quoted"',
        messages=[{"role": "user", "content": "<script>alert(1)</script> ünïcode 🚀"}, {"role": "assistant"}],
        metadata={"nested": {"a": [1, 2.5, None]}, "big": 2**70},
        tags=["refund", "vip"],
        occurred_at=dt.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    )


def test_instance_from_a_raw_row_equals_the_orm_instance(project):
    conversation = _awkward_conversation(project)

    row = rawsql.fetchone(_SQL, [conversation.pk])
    built = rawsql.instance(Conversation, row)
    loaded = Conversation.objects.get(pk=conversation.pk)

    for field in Conversation._meta.concrete_fields:
        assert getattr(built, field.attname) == getattr(loaded, field.attname), field.name
    assert timezone.is_aware(built.occurred_at)
    assert built.messages[0]["content"] == "<script>alert(1)</script> ünïcode 🚀"
    assert built._state.adding is False


def test_fetchall_returns_every_row_and_fetchone_none_when_nothing_matches(project):
    a, b = ConversationFactory(project=project), ConversationFactory(project=project)
    sql = "SELECT c.id FROM reviewapp_conversation c WHERE c.project_id = %s ORDER BY c.id"

    assert rawsql.fetchall(sql, [project.pk]) == [(a.pk,), (b.pk,)]
    assert rawsql.fetchone(_SQL, [10**9]) is None


def test_raw_statements_are_counted_like_orm_queries(project):
    conversation = ConversationFactory(project=project)

    with CaptureQueriesContext(connection) as ctx:
        rawsql.fetchone(_SQL, [conversation.pk])
        rawsql.fetchone(_SQL, [conversation.pk])

    assert len(ctx.captured_queries) == 2


@pytest.mark.postgres
def test_a_prepared_statement_that_breaks_a_constraint_raises_djangos_integrity_error(project):
    conversation = ConversationFactory(project=project)
    sql = (
        "INSERT INTO reviewapp_conversation (organization_id, project_id, external_id, messages, occurred_at,"
        " received_at, agent_version, end_user_id, tags, metadata, user_rephrased, escalated_by_user)"
        " SELECT organization_id, project_id, external_id, messages, occurred_at, received_at, agent_version,"
        " end_user_id, tags, metadata, user_rephrased, escalated_by_user FROM reviewapp_conversation"
        " WHERE id = %s RETURNING id"
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        rawsql.fetchone(sql, [conversation.pk])

    # The failed statement rolled back to the savepoint; the connection still works.
    assert rawsql.fetchone(_SQL, [conversation.pk])[0] == conversation.pk


def test_conversation_payload_matches_the_detail_serializer(project):
    conversation = _awkward_conversation(project)
    JudgeScoreFactory(conversation=conversation, criterion="correctness", score=0.25, confidence=None)
    JudgeScoreFactory(conversation=conversation, criterion="tone", score=None, label="polite", confidence=0.9)
    Feedback.objects.create(
        conversation=conversation, rating="down", comment="<b>wrong</b>", user_rephrased=True, fingerprint="a"
    )
    Feedback.objects.create(conversation=conversation, rating=None, comment="", escalated_by_user=True, fingerprint="b")
    loaded = Conversation.objects.select_related("project").get(pk=conversation.pk)
    expected = ConversationDetailSerializer(
        Conversation.objects.prefetch_related("judge_scores", "feedback").select_related("project").get(pk=loaded.pk)
    ).data

    feedback, scores = conversation_feedback_and_scores(conversation=loaded)
    built = conversation_detail_payload(loaded, feedback=feedback, judge_scores=scores)

    assert built == expected
    assert [s["criterion"] for s in built["judge_scores"]] == ["correctness", "tone"]
    assert [f["rating"] for f in built["feedback"]] == ["down", None]


def test_feedback_without_scores_runs_one_query(project, django_assert_num_queries):
    conversation = ConversationFactory(project=project)
    JudgeScoreFactory(conversation=conversation)

    with django_assert_num_queries(1):
        feedback, scores = conversation_feedback_and_scores(conversation=conversation, judge_scores=False)

    assert (feedback, scores) == ([], [])
    assert JudgeScore.objects.filter(conversation=conversation).count() == 1


def test_insert_and_update_store_what_the_orm_would(project):
    from labeling.models import QueueItem
    from tests.labeling.factories import add_items, make_queue

    first, second = add_items(make_queue(project), 2)
    when = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    changes = {"final_answers": None, "completed_at": when, "labels_done": 2, "final_source": ""}

    QueueItem.objects.filter(pk=first.pk).update(**changes)
    rawsql.update(QueueItem, second.pk, changes)

    assert QueueItem.objects.filter(pk__in=[first.pk, second.pk], final_answers__isnull=True).count() == 2
    stored = list(QueueItem.objects.filter(pk__in=[first.pk, second.pk]).values(*changes))
    assert stored[0] == stored[1] == changes

    rawsql.update(QueueItem, second.pk, {"final_answers": {"quality": "good", "n": [1, None]}})
    assert QueueItem.objects.get(pk=second.pk).final_answers == {"quality": "good", "n": [1, None]}


def test_insert_returns_primary_keys_in_row_order(project):
    ids = rawsql.insert(
        Feedback,
        [
            {
                "conversation_id": ConversationFactory(project=project).pk,
                "rating": "up",
                "comment": "",
                "user_rephrased": False,
                "escalated_by_user": False,
                "fingerprint": f"f{i}",
                "created_at": timezone.now(),
            }
            for i in range(3)
        ],
    )

    assert list(Feedback.objects.order_by("id").values_list("id", "fingerprint")) == list(
        zip(ids, ["f0", "f1", "f2"], strict=True)
    )


class _Recorder:
    """An execute wrapper, as APM agents and debug tools install one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, bool]] = []

    def __call__(self, execute, sql, params, many, context):
        self.calls.append((sql, params, many))
        return execute(sql, params, many, context)


def test_hand_written_statements_pass_through_djangos_execute_wrappers(project):
    """On PostgreSQL they run on a prepared-statement cursor of their own; APM and debug tools
    hook connection.execute_wrappers, so they must see these statements like any ORM query."""
    conversation = ConversationFactory(project=project)
    seen = _Recorder()

    with connection.execute_wrapper(seen):
        row = rawsql.fetchone(_SQL, [conversation.pk])
        rows = rawsql.fetchall(_SQL, [10**9])
        rawsql.update(Conversation, conversation.pk, {"agent_version": "v2"})

    assert row[0] == conversation.pk and rows == []
    assert seen.calls[:2] == [(_SQL, [conversation.pk], False), (_SQL, [10**9], False)]
    assert len(seen.calls) == 3 and seen.calls[2][0].startswith('UPDATE "reviewapp_conversation" SET')
    assert Conversation.objects.get(pk=conversation.pk).agent_version == "v2"


def test_an_execute_wrapper_can_refuse_a_hand_written_statement(project):
    def refuse(execute, sql, params, many, context):
        raise RuntimeError("blocked by the wrapper")

    with connection.execute_wrapper(refuse), pytest.raises(RuntimeError, match="blocked by the wrapper"):
        rawsql.fetchone(_SQL, [1])


@pytest.mark.parametrize(
    ("field", "values"),
    [
        (rawsql.models.CharField(max_length=10), ["", "ü 🚀", None]),
        (rawsql.models.TextField(null=True), ["x" * 100, None]),
        (rawsql.models.IntegerField(), [0, -(2**31), 2**31 - 1, None]),
        (rawsql.models.BigIntegerField(), [2**63 - 1, None]),
        (rawsql.models.PositiveSmallIntegerField(), [0, 32767]),
        (rawsql.models.FloatField(), [0.0, -1.5, 1e300, None]),
        (rawsql.models.BooleanField(), [True, False, None]),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, rawsql.models.Field) else "",
)
def test_values_passed_through_unprepared_are_what_the_field_would_prepare(field, values):
    """The insert's shortcut for plain values (reviewapp/rawsql.py _PLAIN) answers exactly what
    the field's own preparation does, for the types it takes as they are."""
    field.set_attributes_from_name("f")
    for value in values:
        assert rawsql._prep_values({"f": field}, {"f": value}) == [field.get_db_prep_save(value, connection)]


def test_values_of_other_types_are_prepared_by_the_field(project):
    """A value of another type than the field stores (an int for a text column, a datetime, a
    JSON value, a foreign key given a model's id) still goes through the field."""
    fields = {f.attname: f for f in Conversation._meta.concrete_fields}
    when = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
    row = {
        "external_id": 5,
        "occurred_at": when,
        "metadata": {"a": [1]},
        "project_id": project.pk,
        "agent_version": None,
    }
    expected = [fields[name].get_db_prep_save(value, connection) for name, value in row.items()]
    prepared = rawsql._prep_values(fields, row)
    assert [type(v) for v in prepared] == [type(v) for v in expected]
    assert prepared[:2] == expected[:2] and prepared[3:] == expected[3:]
    assert prepared[0] == "5"
