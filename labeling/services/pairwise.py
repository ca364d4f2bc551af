"""Pairwise queues: a queue of kind "pairwise" whose items each show two outputs side by side
(labeling/pairwise.py). Who builds the pairs (two dataset runs, two conversations) is the
caller's business (evaluation); this module stores them with the side each candidate drew."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from labeling import pairwise, rubric
from labeling.models import ItemEvent, PairwiseItem, Queue, QueueItem, QueueKind
from labeling.services._common import _user
from labeling.services.queues import QueueSpec, queue_create
from labeling.services.rubrics import label_schema_create
from reviewapp import validation
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project

MAX_PAIRS = 10_000
MAX_VERSION = 100  # PairwiseItem.baseline_version / candidate_version
MAX_KEY = 64
MAX_TAGS = 50
MAX_TAG = 100
_BATCH = 1000


@dataclass(frozen=True)
class PairIn:
    """One item: the conversation it hangs on (the dataset item's source, or the baseline's
    conversation), the two outputs, the shared input if it is not the conversation itself."""

    conversation_id: int
    key: str
    baseline_output: Any
    candidate_output: Any
    tags: tuple[str, ...] = ()
    input_messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class PairwiseQueueSpec:
    name: str
    baseline_version: str
    candidate_version: str
    # Draws the sides (pairwise.candidate_side); kept by the caller so the draw can be redone.
    seed: int
    annotations_per_item: int = 1
    # [{"key", "label", "help"?}], each asked as A better / B better / equivalent / both bad.
    questions: tuple[dict[str, Any], ...] = ()
    description: str = ""
    instructions: str = ""


def pairwise_questions_parse(raw: Any) -> list[dict[str, Any]]:
    """Questions as a client sends them (`[{"key", "label", "help"?}]`, or nothing for the
    single default "overall" question) to rubric questions with the pairwise options. A 400
    names the field (`questions[1].key`)."""
    if raw is None or raw == []:
        return [pairwise.question(**pairwise.DEFAULT_QUESTION)]
    if not isinstance(raw, list):
        raise validation.InputError("Send a list of questions.", "questions")
    if len(raw) > pairwise.MAX_QUESTIONS:
        raise validation.InputError(f"At most {pairwise.MAX_QUESTIONS} questions.", "questions")
    out = []
    for i, q in enumerate(raw):
        where = f"questions[{i}]"
        if not isinstance(q, dict):
            raise validation.InputError("Each question must be an object.", where)
        extra = set(q) - {"key", "label", "help"}
        if extra:
            raise validation.InputError(f"Unknown field(s): {', '.join(sorted(extra)[:5])}.", where)
        validation.check_json(q, path=where)
        for name in ("key", "label", "help"):
            if name in q and not isinstance(q[name], str):
                raise validation.InputError("Send text.", f"{where}.{name}")
        built = pairwise.question(q.get("key", ""), q.get("label", ""), q.get("help", ""))
        try:
            rubric.Question.model_validate(built)
        except PydanticValidationError as exc:
            errors = rubric.rubric_errors(exc)
            raise ValidationFailed("Invalid question.", errors={f"{where}.{k}": v for k, v in errors.items()}) from exc
        out.append(built)
    keys = [q["key"] for q in out]
    if len(set(keys)) != len(keys):
        raise validation.InputError("Question keys must be unique.", "questions")
    return out


def _check_spec(spec: PairwiseQueueSpec) -> None:
    for name in ("baseline_version", "candidate_version"):
        value = getattr(spec, name)
        if not isinstance(value, str) or not value or len(value) > MAX_VERSION:
            raise validation.InputError(f"Text of 1 to {MAX_VERSION} characters.", name)
        validation.check_text(value, field=name)
    validation.check_int(spec.seed, field="seed", bounds=validation.POSITIVE_BIG)
    validation.check_text(spec.instructions, field="instructions")


def _check_pairs(pairs: Sequence[PairIn]) -> None:
    if not pairs:
        raise validation.InputError("No pairs to compare.", "pairs")
    if len(pairs) > MAX_PAIRS:
        raise validation.InputError(f"At most {MAX_PAIRS} pairs per queue; got {len(pairs)}.", "pairs")
    seen: set[int] = set()
    for i, pair in enumerate(pairs):
        where = f"pairs[{i}]"
        if pair.conversation_id in seen:
            # The queue holds a conversation once (queue_item_once_per_queue): callers skip these.
            raise validation.InputError("Another pair already hangs on this conversation.", where)
        seen.add(pair.conversation_id)
        if len(pair.key) > MAX_KEY:
            raise validation.InputError(f"At most {MAX_KEY} characters.", f"{where}.key")
        if len(pair.tags) > MAX_TAGS or any(not isinstance(t, str) or len(t) > MAX_TAG for t in pair.tags):
            raise validation.InputError(f"At most {MAX_TAGS} tags of {MAX_TAG} characters.", f"{where}.tags")
        validation.check_json(
            [pair.key, list(pair.tags), pair.baseline_output, pair.candidate_output, pair.input_messages], path=where
        )


def pairwise_queue_create(
    *, project: Project, spec: PairwiseQueueSpec, pairs: Sequence[PairIn], user: AbstractBaseUser | None
) -> Queue:
    """A pairwise queue with its own rubric (every question a pairwise one) and one item per pair,
    the candidate's side drawn per item from the seed and recorded."""
    _check_spec(spec)
    _check_pairs(pairs)
    questions = list(spec.questions) or [pairwise.question(**pairwise.DEFAULT_QUESTION)]
    if not all(pairwise.is_pairwise_question(q) for q in questions):
        raise validation.InputError("Pairwise questions are answered A, B, equivalent or both bad.", "questions")
    try:
        rubric_in = rubric.Rubric.model_validate(
            {"name": spec.name, "instructions": spec.instructions, "questions": questions}
        )
    except PydanticValidationError as exc:
        raise ValidationFailed("Invalid queue.", errors=rubric.rubric_errors(exc)) from exc
    with transaction.atomic():
        schema = label_schema_create(project=project, rubric_in=rubric_in, user=user)
        queue = queue_create(
            project=project,
            spec=QueueSpec(
                name=spec.name,
                schema=schema,
                description=spec.description,
                annotations_per_item=spec.annotations_per_item,
                kind=QueueKind.PAIRWISE,
            ),
            user=user,
        )
        now = timezone.now()
        QueueItem.objects.bulk_create(
            [
                QueueItem(
                    organization_id=queue.organization_id,
                    queue=queue,
                    conversation_id=pair.conversation_id,
                    priority=queue.priority,
                    labels_needed=queue.annotations_per_item,
                    source="pairwise",
                    sampling_strategy="manual",
                    created_at=now,
                )
                for pair in pairs
            ],
            batch_size=_BATCH,
        )
        ids = dict(QueueItem.objects.filter(queue=queue).values_list("conversation_id", "pk"))
        rows, events = [], []
        for pair in pairs:
            side = pairwise.candidate_side(spec.seed, pair.key or str(pair.conversation_id))
            baseline = pairwise.output_messages(pair.baseline_output)
            candidate = pairwise.output_messages(pair.candidate_output)
            left, right = (candidate, baseline) if side == pairwise.LEFT else (baseline, candidate)
            item_id = ids[pair.conversation_id]
            rows.append(
                PairwiseItem(
                    organization_id=queue.organization_id,
                    item_id=item_id,
                    input_messages=list(pair.input_messages),
                    left_output=left,
                    right_output=right,
                    candidate_side=side,
                    baseline_version=spec.baseline_version,
                    candidate_version=spec.candidate_version,
                    key=pair.key,
                    tags=list(dict.fromkeys(pair.tags)),
                )
            )
            events.append(
                ItemEvent(
                    organization_id=queue.organization_id,
                    item_id=item_id,
                    user=_user(user),
                    kind="added",
                    data={"source": "pairwise", "candidate_side": side},
                )
            )
        PairwiseItem.objects.bulk_create(rows, batch_size=_BATCH)
        ItemEvent.objects.bulk_create(events, batch_size=_BATCH)
    return queue
