"""The project's daily labeling budget across its queues: shares, the total, pacing over the
project's day, thinning recorded per queue, and the API (admins write, engineers read)."""

from __future__ import annotations

import datetime as dt

import pytest

from labeling import selectors, services
from labeling.models import ProjectBudget, ProjectBudgetCounter, QueueItem, SamplingCounter
from reviewapp.errors import ValidationFailed
from reviewapp.models import AuditEvent
from reviewapp.principal import Principal
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue

pytestmark = pytest.mark.django_db

# 23:30 UTC: nearly the whole day has accrued, so a budget of 24 allows all 24 (the pacing
# itself is covered by test_pacing_spreads_a_daily_budget_over_the_day).
LATE = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.UTC)
# 00:30 UTC: half an hour accrued plus one hour's worth up front.
EARLY = dt.datetime(2025, 3, 10, 0, 30, tzinfo=dt.UTC)


def _admin(project) -> Principal:
    return Principal(organization=project.organization, role="admin")


def _conversations(project, n: int, prefix: str = "c") -> list[int]:
    return [ConversationFactory(project=project, external_id=f"{prefix}{i}").pk for i in range(n)]


def test_shares_cap_each_queue_and_the_total_caps_them_together(project):
    a = make_queue(project, name="A", sampling=({"rate": 1.0},), backfill_days=0)
    b = make_queue(project, name="B", sampling=({"rate": 1.0},), backfill_days=0)
    c = make_queue(project, name="C", sampling=({"rate": 1.0},), backfill_days=0)
    services.project_budget_set(
        principal=_admin(project), project=project, daily_items=24, shares={str(a.pk): 0.25, str(b.pk): 0.5}
    )
    ids = _conversations(project, 40)

    added = services.conversations_sample(project_id=project.pk, conversation_ids=ids, now=LATE)

    # A: 25% of 24 = 6; B: 50% = 12; C has no share and takes what the total leaves: 24-6-12.
    counts = {q.name: QueueItem.objects.filter(queue=q).count() for q in (a, b, c)}
    assert counts == {"A": 6, "B": 12, "C": 6}
    assert added == 24
    day = dt.date(2025, 3, 10)
    counter = ProjectBudgetCounter.objects.get(project=project, day=day)
    assert (counter.candidates, counter.admitted) == (120, 24)
    # Each queue records its own thinning by the project budget: candidates and admitted.
    per_queue = dict(SamplingCounter.objects.filter(key="project", day=day).values_list("queue_id", "admitted"))
    assert per_queue == {a.pk: 6, b.pk: 12, c.pk: 6}
    assert set(SamplingCounter.objects.filter(key="project").values_list("candidates", flat=True)) == {40}
    # The lowest hashes win within a queue, and the item keeps the rule's rate.
    items = QueueItem.objects.filter(queue=a)
    assert {i.inclusion_probability for i in items} == {1.0}


def test_the_project_budget_is_paced_over_the_project_day(project):
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)
    services.project_budget_set(principal=_admin(project), project=project, daily_items=48, shares={})
    ids = _conversations(project, 40)

    services.conversations_sample(project_id=project.pk, conversation_ids=ids, now=EARLY)

    # 48 * 0.5/24 = 1 accrued + 2 up front (one hour's worth) = 3 at 00:30.
    assert QueueItem.objects.filter(queue=queue).count() == 3
    # Later the same day the rest of the allowance opens; sampled items are not counted again.
    services.conversations_sample(project_id=project.pk, conversation_ids=ids, now=LATE)
    assert QueueItem.objects.filter(queue=queue).count() == 40
    counter = ProjectBudgetCounter.objects.get(project=project)
    assert (counter.candidates, counter.admitted) == (40 + 37, 40)


def test_the_budget_day_is_the_project_day(project):
    project.timezone = "America/New_York"
    project.save(update_fields=["timezone"])
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)
    services.project_budget_set(principal=_admin(project), project=project, daily_items=2, shares={})
    ids = _conversations(project, 5)
    # 02:00 UTC on the 11th is still the 10th in New York.
    services.conversations_sample(
        project_id=project.pk, conversation_ids=ids, now=dt.datetime(2025, 3, 11, 2, tzinfo=dt.UTC)
    )
    assert QueueItem.objects.filter(queue=queue).count() == 2
    assert list(ProjectBudgetCounter.objects.values_list("day", flat=True)) == [dt.date(2025, 3, 10)]


def test_a_queue_budget_and_the_project_budget_both_apply(project):
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0, max_per_day=5)
    services.project_budget_set(principal=_admin(project), project=project, daily_items=24, shares={})
    services.conversations_sample(project_id=project.pk, conversation_ids=_conversations(project, 30), now=LATE)
    assert QueueItem.objects.filter(queue=queue).count() == 5
    assert ProjectBudgetCounter.objects.get(project=project).admitted == 5


def test_without_a_budget_nothing_changes(project):
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)
    services.conversations_sample(project_id=project.pk, conversation_ids=_conversations(project, 30), now=LATE)
    assert QueueItem.objects.filter(queue=queue).count() == 30
    assert not ProjectBudgetCounter.objects.exists()
    assert not SamplingCounter.objects.filter(key="project").exists()


def test_usage_shows_used_and_left_per_queue(project):
    a = make_queue(project, name="A", sampling=({"rate": 1.0},), backfill_days=0)
    b = make_queue(project, name="B", sampling=({"rate": 1.0, "if": {"tags_any": ["x"]}},), backfill_days=0)
    services.project_budget_set(principal=_admin(project), project=project, daily_items=10, shares={str(a.pk): 0.3})
    services.conversations_sample(project_id=project.pk, conversation_ids=_conversations(project, 8), now=LATE)
    usage = selectors.project_budget_usage(project=project, queues=[a, b], now=LATE)
    assert usage["daily_items"] == 10
    assert usage["used"] == 3
    assert usage["left"] == 7
    assert usage["queues"][a.pk] == {"limit": 3, "used": 3, "left": 0, "share": 0.3}
    assert usage["queues"][b.pk] == {"limit": 10, "used": 0, "left": 7, "share": None}


def test_budget_set_validates_shares_and_audits(project, other_project):
    queue = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)
    foreign = make_queue(other_project, sampling=({"rate": 1.0},), backfill_days=0)
    for shares, field in (
        ({str(foreign.pk): 0.5}, f"shares.{foreign.pk}"),
        ({"abc": 0.5}, "shares.abc"),
        ({str(queue.pk): 1.5}, f"shares.{queue.pk}"),
        ({str(queue.pk): 0}, f"shares.{queue.pk}"),
    ):
        with pytest.raises(ValidationFailed) as err:
            services.project_budget_set(principal=_admin(project), project=project, daily_items=10, shares=shares)
        assert field in err.value.errors
    assert not ProjectBudget.objects.exists()
    assert not AuditEvent.objects.filter(kind="project.budget_set").exists()

    services.project_budget_set(principal=_admin(project), project=project, daily_items=10, shares={str(queue.pk): 1})
    event = AuditEvent.objects.get(kind="project.budget_set")
    assert event.data == {"from": None, "to": {"daily_items": 10, "shares": {str(queue.pk): 1.0}}}
    services.project_budget_set(principal=_admin(project), project=project, daily_items=None, shares={})
    assert not ProjectBudget.objects.exists()
    assert AuditEvent.objects.filter(kind="project.budget_set").count() == 2
