"""Demo rubric and queues for the demo airline, so `make run` has labeling work to show, and a
first morning of labels on it, so its statistics pages have figures."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from labeling import rubric, services
from labeling.models import Assignment, ItemStatus, Label, LabelSchema, Queue, QueueItem
from reviewapp import selectors as core_selectors
from reviewapp import services as core_services
from reviewapp.models import Conversation, JudgeScore, Project

DEMO_RUBRIC = {
    "name": "Support answer quality",
    "instructions": (
        "Read the whole conversation, including tool calls and their results.\n\n"
        "* **Correct** means every fact the agent stated matches the tool results and policy.\n"
        "* A refund above **$500** needs a supervisor; the agent must not promise it.\n"
        "* Point at the first assistant turn that went wrong, if any."
    ),
    "questions": [
        {
            "key": "correct",
            "type": "single_choice",
            "label": "Was the final answer correct?",
            "options": ["correct", "incorrect"],
            "judge_criterion": "correctness",
        },
        {
            "key": "policy",
            "type": "boolean",
            "label": "Did the agent follow refund and booking policy?",
            "judge_criterion": "policy_compliance",
        },
        {
            "key": "helpfulness",
            "type": "rating",
            "label": "How helpful was the agent?",
            "min": 1,
            "max": 5,
            "judge_criterion": "helpfulness",
        },
        {"key": "wrong_turn", "type": "turn", "label": "Which assistant turn went wrong?", "required": False},
        {"key": "notes", "type": "text", "label": "Notes for the team", "required": False},
    ],
}

DEMO_QUEUES = [
    {
        "name": "Daily QA sample",
        "description": "5% of traffic, every thumbs-down and rephrase, and half of the low judge scores.",
        "annotations_per_item": 2,
        "max_extra_annotations": 1,
        # About one claim in ten is a gold check (demo.labeling's DEMO_GOLD_ITEMS).
        "gold_rate": 0.1,
        "sampling": (
            {"rate": 0.05, "name": "uniform-5pct"},
            {"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "thumbs-down"},
            {"rate": 1.0, "if": {"user_rephrased": True}, "name": "rephrased"},
            {
                "rate": 0.5,
                "if": {"judge": "gpt-judge", "criterion": "correctness", "score_below": 0.5},
                "max_per_day": 200,
                "name": "low-judge-score",
            },
        ),
    },
    {
        "name": "Asked for a human",
        "description": "Every conversation where the customer asked for a person.",
        "priority": 10,
        "sampling": ({"rate": 1.0, "if": {"escalated_by_user": True}, "name": "asked-for-human"},),
    },
]


@dataclass
class QueueSeedResult:
    queues: list[Queue]
    gold: int = 0  # gold checks added


def labeling_demo_seed(*, project: Project, seed: int = 7) -> QueueSeedResult:
    """Create the demo rubric and queues if missing, with their gold checks; their backfill
    samples existing traffic."""
    schema = LabelSchema.objects.filter(project=project, name=DEMO_RUBRIC["name"]).first()
    if schema is None:
        schema = services.label_schema_create(
            project=project, rubric_in=rubric.Rubric.model_validate(DEMO_RUBRIC), user=None
        )
    result = QueueSeedResult(queues=[])
    for spec in DEMO_QUEUES:
        # One transaction with the queue's gold checks: its backfill starts on commit, after
        # them, so the sample never takes a conversation the seed drew for gold and the same
        # seed draws the same gold checks whatever the sampling took.
        with transaction.atomic():
            queue = Queue.objects.filter(project=project, name=spec["name"]).first()
            if queue is None:
                queue = services.queue_create(
                    project=project, spec=services.QueueSpec(schema=schema, **spec), user=None
                )
            if queue.gold_rate > 0:
                result.gold += labeling_demo_gold_seed(queue=queue, seed=seed)
        result.queues.append(queue)
    return result


def labeling_demo_gold_seed(*, queue: Queue, seed: int = 7) -> int:
    """Add gold checks to the queue until it holds DEMO_GOLD_ITEMS (fewer in a project of
    under 160 conversations: one in twenty), through labeling's gold
    service; answers the number added. The conversations are the project's in an order drawn
    from the seed, skipping any already in the queue (a conversation is in a queue once: only
    a queue made before its gold checks has any). The expected answers are the judges'
    verdicts and the item's own rating, as `_answers` reads them with no departure, so an
    annotator is right on a gold check unless they departed from the judges on it."""
    conversations = sorted(
        Conversation.objects.filter(project=queue.project).values_list("external_id", "pk"), key=lambda row: row[0]
    )
    wanted = demo_gold_wanted(len(conversations))
    missing = wanted - QueueItem.objects.filter(queue=queue, is_gold=True).count()
    if missing <= 0:
        return 0
    in_queue = set(QueueItem.objects.filter(queue=queue).values_list("conversation_id", flat=True))
    random.Random(f"{seed}:gold").shuffle(conversations)
    chosen = [(external_id, pk) for external_id, pk in conversations if pk not in in_queue][:missing]
    if not chosen:
        return 0
    verdicts = _judge_verdicts_of([pk for _, pk in chosen])
    items = []
    for external_id, pk in chosen:
        answers = _answers(
            verdicts.get(pk, {}),
            item_rng=random.Random(f"{seed}:{external_id}"),
            rng=random.Random(f"{seed}:{external_id}:gold"),
            error_rate=0.0,
        )
        answers.pop("notes", None)  # free text is not compared, so not part of a gold answer
        items.append(services.GoldItemIn(conversation_id=pk, answers=answers))
    added = services.gold_items_add(queue=queue, items=items, user=None)
    return sum(1 for row in added if row.status == "created")


# --- labels, reviews and statistics ----------------------------------------------------------
#
# So that a fresh `make run` shows agreement and annotator figures, the demo's QA queue gets a
# morning's work from four seeded annotators (not logins: they have no password) through the
# labeling services, the way the browser does it: claim, label, and a third opinion where two
# disagree. Each annotator reads the conversation against the judges' verdicts and departs from
# them at their own rate, so agreement is high but not perfect and one annotator stands out. An
# engineer rules on a few disputed items, then the statistics snapshot is computed.

# (username, how often their answer to a question departs from the judges', seconds per item)
DEMO_ANNOTATORS = [("ana", 0.03, 55), ("ben", 0.05, 80), ("chen", 0.07, 40), ("dara", 0.15, 25)]
DEMO_LABELS_EACH = 50
DEMO_REVIEWS = 3
# Gold checks in the QA queue: conversations with known answers (the judges' verdicts, which the
# annotators depart from at their own rate), served unmarked at the queue's gold rate, so the
# annotators page shows each one's gold accuracy, some right and some wrong.
DEMO_GOLD_ITEMS = 8


def demo_gold_wanted(conversations: int) -> int:
    """Gold checks for a project of `conversations`: DEMO_GOLD_ITEMS, but at most one in twenty,
    so a small demo (`--conversations 60`) keeps most of its sample for labels and disputes."""
    return min(DEMO_GOLD_ITEMS, conversations // 20)


_NOTES = {
    "incorrect": "The amount quoted does not match the tool result.",
    "policy": "Promised a refund above the supervisor limit.",
}


@dataclass
class LabelSeedResult:
    labels: int = 0
    reviews: int = 0


def labeling_demo_labels_seed(*, queue: Queue, reviewer_username: str, seed: int = 7) -> LabelSeedResult:
    """Label the queue's items as the demo annotators (who meet its gold checks at its gold
    rate, through their claims), review a few disputed ones and compute its statistics
    snapshot. Safe to run again: each annotator labels only up to DEMO_LABELS_EACH, and only
    DEMO_REVIEWS items are ever reviewed."""
    result = LabelSeedResult()
    _backfill_finish(queue)
    people = [_annotator_ensure(queue=queue, username=username) for username, _, _ in DEMO_ANNOTATORS]
    done = dict(
        Label.objects.filter(queue=queue, user__in=people)
        .order_by()
        .values("user_id")
        .annotate(n=Count("id"))
        .values_list("user_id", "n")
    )
    made: list[tuple[int, int, int]] = []  # (label id, user id, ms spent), in the order made
    # One transaction for the whole morning: a commit per claim and label was most of the time.
    with transaction.atomic():
        _label_rounds(queue=queue, people=people, done=done, made=made, seed=seed)
        _spread_over_the_morning(made)
    result.labels = len(made)
    reviewer = get_user_model().objects.get(username=reviewer_username)
    reviewed = QueueItem.objects.filter(queue=queue, final_source="review").count()
    disputed = QueueItem.objects.filter(queue=queue, status=ItemStatus.NEEDS_REVIEW).order_by("id")
    for item in disputed[: max(0, DEMO_REVIEWS - reviewed)]:
        # The reviewer sides with the first opinion given.
        first = Label.objects.filter(item=item).order_by("id").values_list("answers", flat=True).first()
        services.item_review(item=item, user=reviewer, answers=first)
        result.reviews += 1
    services.agreement_snapshot_compute(queue_id=queue.pk)
    return result


def _label_rounds(
    *, queue: Queue, people: list[AbstractBaseUser], done: dict[int, int], made: list[tuple[int, int, int]], seed: int
) -> None:
    """Rounds of claim and label, each annotator up to DEMO_LABELS_EACH; appends to `made`."""
    verdicts = _judge_verdicts(queue)
    order = random.Random(seed)
    for _ in range(DEMO_LABELS_EACH):
        # A new order each round, so every pair of annotators shares items (Cohen's kappa is
        # reported per pair, from ten shared items).
        turn = list(zip(people, DEMO_ANNOTATORS, strict=True))
        order.shuffle(turn)
        for user, (username, error_rate, seconds) in turn:
            if done.get(user.pk, 0) >= DEMO_LABELS_EACH:
                continue
            assignment = services.item_claim(queue=queue, user=user)
            if assignment is None:
                continue
            item = assignment.item
            external_id = item.conversation.external_id
            answers = _answers(
                verdicts.get(item.conversation_id, {}),
                item_rng=random.Random(f"{seed}:{external_id}"),
                rng=random.Random(f"{seed}:{external_id}:{username}"),
                error_rate=error_rate,
            )
            spent = int(seconds * 1000 * random.Random(f"{seed}:{external_id}:{username}:t").uniform(0.6, 1.8))
            outcome = services.label_submit(item=item, user=user, answers=answers, time_spent_ms=spent)
            made.append((outcome.label.pk, user.pk, spent))
            done[user.pk] = done.get(user.pk, 0) + 1


def _backfill_finish(queue: Queue) -> None:
    # Without Redis the backfill already ran when the queue was created (on commit); inside a
    # caller's transaction (the tests) it waits for a commit, so step it here. Bounded: each
    # step moves the cursor, and a finished backfill answers "no more".
    for _ in range(1000):
        if not services.queue_backfill_step(queue_id=queue.pk).more:
            return


def _annotator_ensure(*, queue: Queue, username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    organization = queue.project.organization
    if user is None or core_selectors.membership_get(user=user, organization=organization) is None:
        return core_services.membership_add(organization=organization, username=username, role="annotator").user
    return user


def _judge_verdicts(queue: Queue) -> dict[int, dict[str, bool]]:
    """conversation id -> criterion -> whether gpt-judge passed it, for the queue's items."""
    return _verdicts(JudgeScore.objects.filter(conversation__queue_items__queue=queue, judge="gpt-judge"))


def _judge_verdicts_of(conversation_ids: list[int]) -> dict[int, dict[str, bool]]:
    return _verdicts(JudgeScore.objects.filter(conversation_id__in=conversation_ids, judge="gpt-judge"))


def _verdicts(scores: QuerySet[JudgeScore]) -> dict[int, dict[str, bool]]:
    verdicts: dict[int, dict[str, bool]] = {}
    rows = scores.values_list("conversation_id", "criterion", "label")
    for conversation_id, criterion, label in rows:
        verdicts.setdefault(conversation_id, {})[criterion] = label == "pass"
    return verdicts


def _answers(verdict: dict[str, bool], *, item_rng: random.Random, rng: random.Random, error_rate: float) -> dict:
    """One annotator's answers: the judges' verdicts, each departed from at `error_rate`; the
    rating is the item's own (4-5 when helpful, 2-3 when not), off by one now and then."""
    helpful_rating = item_rng.choice([4, 5])
    unhelpful_rating = item_rng.choice([2, 3])

    def reads(criterion: str) -> bool:
        passed = verdict.get(criterion, True)
        return passed if rng.random() >= error_rate else not passed

    correct, policy, helpful = reads("correctness"), reads("policy_compliance"), reads("helpfulness")
    rating = helpful_rating if helpful else unhelpful_rating
    if rng.random() < error_rate:
        rating = min(5, max(1, rating + rng.choice([-1, 1])))
    answers: dict = {"correct": "correct" if correct else "incorrect", "policy": policy, "helpfulness": rating}
    if not correct and rng.random() < 0.5:
        answers["notes"] = _NOTES["incorrect"]
    elif not policy and rng.random() < 0.5:
        answers["notes"] = _NOTES["policy"]
    return answers


def _spread_over_the_morning(made: list[tuple[int, int, int]]) -> None:
    """The services stamp each label with the moment it was saved, so the seeded ones would all
    fall within a second and the annotators page would show tens of thousands of labels an
    hour. Demo set-up (no service moves a label in time): each annotator's labels and their
    claims are placed one after another, each taking the time recorded on it, ending now."""
    if not made:
        return
    totals: dict[int, int] = {}
    for _, user_id, spent in made:
        totals[user_id] = totals.get(user_id, 0) + spent
    now = timezone.now()
    clocks = {user_id: now - dt.timedelta(milliseconds=total) for user_id, total in totals.items()}
    labels = {label.pk: label for label in Label.objects.filter(pk__in=[pk for pk, _, _ in made])}
    assignments = {
        (a.item_id, a.user_id): a
        for a in Assignment.objects.filter(item_id__in=[label.item_id for label in labels.values()])
    }
    for label_id, user_id, spent in made:
        started, clocks[user_id] = clocks[user_id], clocks[user_id] + dt.timedelta(milliseconds=spent)
        label = labels[label_id]
        label.created_at = label.updated_at = clocks[user_id]
        assignment = assignments[(label.item_id, user_id)]
        assignment.leased_at, assignment.finished_at = started, clocks[user_id]
    with transaction.atomic():
        Label.objects.bulk_update(labels.values(), ["created_at", "updated_at"], batch_size=500)
        Assignment.objects.bulk_update(
            [assignments[(labels[pk].item_id, user_id)] for pk, user_id, _ in made],
            ["leased_at", "finished_at"],
            batch_size=500,
        )
