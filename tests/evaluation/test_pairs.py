"""Calibration pairs follow final labels, reviews, late judge scores and people's decisions."""

from __future__ import annotations

import datetime as dt

import pytest

from escalations import services as escalation_services
from escalations.models import Action
from evaluation import services
from evaluation.models import CalibrationPair, PairKind
from labeling import services as labeling_services
from labeling.models import QueueItem
from reviewapp.principal import Principal
from tests.escalations.factories_decisions import make_ladder, make_pending_action
from tests.evaluation.factories import add_items, calibration_queue, label, score

FIELDS = ("judge", "judge_version", "criterion", "judge_pass", "human_pass", "inclusion_probability")


def _pairs(**filters) -> list[tuple]:
    return list(CalibrationPair.objects.filter(**filters).order_by("id").values_list(*FIELDS))


def test_a_final_label_pairs_every_score_of_a_criterion_the_rubric_names(
    project, member, django_capture_on_commit_callbacks
):
    queue = calibration_queue(project)
    [item] = add_items(queue, 1)
    QueueItem.objects.filter(pk=item.pk).update(inclusion_probability=0.25)
    score(project, item.conversation, judge="gpt", judge_version="v1", criterion="correctness", label="Correct")
    score(project, item.conversation, judge="gpt", judge_version="v1", criterion="helpfulness", score=2.0)
    score(project, item.conversation, judge="gpt", judge_version="v1", criterion="tone", score=0.9)
    assert not CalibrationPair.objects.exists()  # not final yet: a late score makes no pair

    with django_capture_on_commit_callbacks(execute=True):
        label(item, member("annotator"), {"quality": "bad", "helpful": 5})

    assert _pairs() == [
        ("gpt", "v1", "correctness", True, False, 0.25),
        ("gpt", "v1", "helpfulness", False, True, 0.25),
    ]
    helpful = CalibrationPair.objects.get(criterion="helpfulness")
    assert (helpful.judge_score, helpful.human_score, helpful.human_answer, helpful.question_key) == (
        2.0,
        5.0,
        5,
        "helpful",
    )
    assert helpful.queue_item_id == item.pk and helpful.conversation_id == item.conversation_id


def test_reruns_are_idempotent_and_a_review_rewrites_the_pair(project, member, django_capture_on_commit_callbacks):
    queue = calibration_queue(project, annotations_per_item=2)
    [item] = add_items(queue, 1)
    score(project, item.conversation, judge="gpt", criterion="correctness", score=0.8)
    with django_capture_on_commit_callbacks(execute=True):
        label(item, member("annotator", username="a1"), {"quality": "good"})
        label(item, member("annotator", username="a2"), {"quality": "bad"})
    assert QueueItem.objects.get(pk=item.pk).status == "needs_review"
    assert _pairs() == []

    with django_capture_on_commit_callbacks(execute=True):
        labeling_services.item_review(item=item, user=member("engineer"), answers={"quality": "bad"})
    first = CalibrationPair.objects.get()
    assert (first.judge_pass, first.human_pass) == (True, False)

    assert services.pairs_sync_items(item_ids=[item.pk]) == 1
    assert services.pairs_sync_items(item_ids=[item.pk]) == 1
    again = CalibrationPair.objects.get()
    assert again.pk == first.pk and again.human_pass is False


def test_a_late_judge_score_on_a_final_item_makes_its_pair(project, member, django_capture_on_commit_callbacks):
    queue = calibration_queue(project)
    [item] = add_items(queue, 1, agent_version="agent-7")
    with django_capture_on_commit_callbacks(execute=True):
        label(item, member("annotator"), {"quality": "good"})
    assert _pairs() == []

    with django_capture_on_commit_callbacks(execute=True):
        score(
            project,
            item.conversation,
            judge="gpt",
            judge_version="v2",
            criterion="correctness",
            score=0.1,
            confidence=0.7,
        )

    pair = CalibrationPair.objects.get()
    assert (pair.judge_version, pair.judge_pass, pair.human_pass, pair.judge_confidence) == ("v2", False, True, 0.7)
    assert pair.agent_version == "agent-7"
    assert pair.inclusion_probability is None  # added by hand: no sampling probability


def test_an_edit_that_reopens_a_completed_item_withdraws_its_pairs(project, member, django_capture_on_commit_callbacks):
    queue = calibration_queue(project, annotations_per_item=2)
    [item] = add_items(queue, 1)
    score(project, item.conversation, judge="gpt", criterion="correctness", label="pass")
    a1, a2 = member("annotator", username="a1"), member("annotator", username="a2")
    with django_capture_on_commit_callbacks(execute=True):
        label(item, a1, {"quality": "good"})
        label(item, a2, {"quality": "good"})
    assert _pairs() == [("gpt", "", "correctness", True, True, None)]

    with django_capture_on_commit_callbacks(execute=True):
        labeling_services.label_submit(item=item, user=a2, answers={"quality": "bad"})

    assert QueueItem.objects.get(pk=item.pk).status == "needs_review"
    assert _pairs() == []


@pytest.fixture
def approver(org, member):
    return Principal(organization=org, role="approver", user=member("approver", username="ann"))


def test_a_persons_decision_pairs_the_agents_confidence_and_a_policy_decision_does_not(
    project, approver, django_capture_on_commit_callbacks
):
    ladder = make_ladder(project)
    approved = make_pending_action(project, ladder, action="refund", confidence=0.9, agent_version="a1")
    rejected = make_pending_action(project, ladder, action="refund", confidence=0.8)
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.action_decide(principal=approver, action_id=approved.pk, decision="approve")
        escalation_services.action_decide(principal=approver, action_id=rejected.pk, decision="reject", comment="no")

    rows = list(
        CalibrationPair.objects.filter(kind=PairKind.AGENT_ACTION)
        .order_by("action_id")
        .values_list("action_id", "criterion", "judge_version", "judge_confidence", "human_pass")
    )
    assert rows == [(approved.pk, "refund", "a1", 0.9, True), (rejected.pk, "refund", "", 0.8, False)]
    assert services.pairs_sync_actions(action_ids=[approved.pk, rejected.pk]) == 2
    assert CalibrationPair.objects.filter(kind=PairKind.AGENT_ACTION).count() == 2

    by_policy = make_pending_action(project, ladder, confidence=0.99)
    Action.objects.filter(pk=by_policy.pk).update(
        status="approved", decided_by="policy", decided_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    assert services.pairs_sync_actions(action_ids=[by_policy.pk]) == 0


def test_pairs_sync_is_one_write_per_batch(project, member, django_assert_max_num_queries):
    queue = calibration_queue(project)
    items = add_items(queue, 30)
    annotator = member("annotator")
    for item in items:
        score(project, item.conversation, judge="gpt", criterion="correctness", score=0.9)
        label(item, annotator, {"quality": "good"})

    # items, scores, and the upsert in a savepoint-free transaction: no per-row statement.
    with django_assert_max_num_queries(5):
        assert services.pairs_sync_items(item_ids=[i.pk for i in items]) == 30
