"""Writes for labeling: rubrics, queues, sampling, claims, labels, skips, review, drafts.

Each public function is keyword-only and owns its transaction. Claims and label submissions
are one short transaction each.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from labeling import lock_objects, rubric, sampling
from labeling.models import (
    AgreementSnapshot,
    Assignment,
    AssignmentStatus,
    ItemComment,
    ItemEvent,
    ItemStatus,
    Label,
    LabelSchema,
    LabelSchemaVersion,
    Queue,
    QueueItem,
    SamplingBatch,
    SamplingCounter,
    SkipPolicy,
    SnapshotState,
)
from reviewapp import bulk, enqueue, rawsql, validation
from reviewapp.errors import Conflict, ValidationFailed
from reviewapp.ingest_schemas import errors_from_pydantic
from reviewapp.models import Conversation, JudgeScore, Membership, Project

logger = logging.getLogger(__name__)

BACKFILL_CHUNK = 2000
# Expired leases a claim returns to the pool on its way; the beat sweeper does the rest.
EXPIRE_ON_CLAIM = 50
_CLAIM_ATTEMPTS = 3
# A claim that finds only locked work waits 20, 40, 60 ms for it before answering "nothing".
_BUSY_RETRIES = 3
_BUSY_WAIT_SECONDS = 0.02
_BUSY = object()  # _item_claim_once: work is left, but it was all locked just now
# A label's time on task is capped: an item left open over a weekend is not a day's work.
# The API and the browser both send what they measured; the cap is applied here, once.
MAX_TIME_SPENT_MS = 6 * 3600 * 1000
# What _resolve may change on an item; its callers save these while holding the item's lock.
RESOLVE_FIELDS = [
    "status",
    "final_answers",
    "final_source",
    "completed_at",
    "labels_needed",
    "extra_annotations",
    "leased_count",
]


# --- rubrics ---------------------------------------------------------------------------------


def _rubric_check(rubric_in: rubric.Rubric) -> None:
    # NUL in a name or a question would be stored on SQLite and fail on PostgreSQL.
    validation.check_json(rubric_in.model_dump(exclude_none=True))


def label_schema_create(*, project: Project, rubric_in: rubric.Rubric, user: AbstractBaseUser | None) -> LabelSchema:
    _rubric_check(rubric_in)
    with transaction.atomic():
        schema = LabelSchema.objects.create(
            organization_id=project.organization_id, project=project, name=rubric_in.name
        )
        version = LabelSchemaVersion.objects.create(
            schema=schema,
            version=1,
            instructions=rubric_in.instructions,
            questions=[q.model_dump(exclude_none=True) for q in rubric_in.questions],
            created_by=_user(user),
        )
        schema.latest_version = version
        schema.save(update_fields=["latest_version"])
    return schema


def label_schema_version_create(
    *, schema: LabelSchema, rubric_in: rubric.Rubric, user: AbstractBaseUser | None
) -> LabelSchemaVersion:
    """Editing a rubric adds a version; labels keep pointing at the version they were made with."""
    _rubric_check(rubric_in)
    with transaction.atomic():
        locked = LabelSchema.objects.select_for_update().get(pk=schema.pk)
        number = (locked.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        version = LabelSchemaVersion.objects.create(
            schema=locked,
            version=number,
            instructions=rubric_in.instructions,
            questions=[q.model_dump(exclude_none=True) for q in rubric_in.questions],
            created_by=_user(user),
        )
        locked.name = rubric_in.name
        locked.latest_version = version
        locked.save(update_fields=["name", "latest_version"])
    schema.refresh_from_db()
    return version


# --- queues ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSpec:
    name: str
    schema: LabelSchema
    description: str = ""
    annotations_per_item: int = 1
    max_extra_annotations: int = 0
    priority: int = 0
    lease_seconds: int = 600
    assignee_role: str = "annotator"
    assignee_ids: tuple[int, ...] = ()
    show_judge_scores: bool = False
    skip_policy: str = SkipPolicy.OTHERS
    sampling: tuple[dict[str, Any], ...] = ()
    max_per_day: int | None = None
    backfill_days: int = 30
    gold_rate: float = 0.0
    is_active: bool = True


def _assignees_check(*, organization_id: int, assignee_ids: tuple[int, ...] | list[int]) -> None:
    """Only members of the queue's organization may be named: anyone else would see this
    tenant's conversations in their claims."""
    ids = set(assignee_ids)
    if not ids:
        return
    members = set(
        Membership.objects.filter(organization_id=organization_id, user_id__in=ids).values_list("user_id", flat=True)
    )
    if ids - members:
        raise ValidationFailed(
            "Unknown assignees.", errors={"assignees": ["Assignees must be members of the queue's organization."]}
        )


def _queue_spec_check(spec: QueueSpec) -> None:
    """What the serializer bounds, bounded again for every other caller (admin, demo)."""
    validation.check_text(spec.name, field="name")
    validation.check_text(spec.description, field="description")
    validation.check_int(spec.priority, field="priority", bounds=validation.INTEGER)
    validation.check_int(spec.lease_seconds, field="lease_seconds", bounds=validation.POSITIVE)
    validation.check_int(spec.backfill_days, field="backfill_days", bounds=validation.POSITIVE)
    for name in ("annotations_per_item", "max_extra_annotations"):
        validation.check_int(getattr(spec, name), field=name, bounds=validation.POSITIVE_SMALL)
    _max_per_day_check(spec.max_per_day)
    if not (isinstance(spec.gold_rate, int | float) and 0 <= spec.gold_rate <= 1):  # NaN fails too
        raise validation.InputError("Must be from 0 to 1.", "gold_rate")


def _max_per_day_check(max_per_day: int | None) -> None:
    if max_per_day is not None:
        validation.check_int(max_per_day, field="max_per_day", bounds=(1, sampling.MAX_PER_DAY))


def _rules_parse(rules: list[dict[str, Any]]) -> list[sampling.SamplingRule]:
    """Parse rules from a client: bounded JSON (depth, NUL, finite), then the rule model."""
    validation.check_json(rules, path="sampling")
    parsed, errors = [], {}
    for index, rule in enumerate(rules):
        try:
            parsed.append(sampling.SamplingRule.model_validate(rule))
        except PydanticValidationError as exc:
            errors.update(errors_from_pydantic(exc, prefix=("sampling", index)))
    if errors:
        raise ValidationFailed("Invalid sampling rules.", errors=errors)
    return parsed


def queue_create(*, project: Project, spec: QueueSpec, user: AbstractBaseUser | None) -> Queue:
    _queue_spec_check(spec)
    rules = _rules_parse(list(spec.sampling))  # validated by the caller; parse again to be sure
    if spec.schema.organization_id != project.organization_id or spec.schema.project_id != project.pk:
        raise ValidationFailed("Unknown schema.", errors={"schema": ["No such label schema in this project."]})
    _assignees_check(organization_id=project.organization_id, assignee_ids=spec.assignee_ids)
    with transaction.atomic():
        queue = Queue.objects.create(
            organization_id=project.organization_id,
            project=project,
            schema=spec.schema,
            name=spec.name,
            description=spec.description,
            annotations_per_item=spec.annotations_per_item,
            max_extra_annotations=spec.max_extra_annotations,
            priority=spec.priority,
            lease_seconds=spec.lease_seconds,
            assignee_role=spec.assignee_role,
            show_judge_scores=spec.show_judge_scores,
            skip_policy=spec.skip_policy,
            sampling=[r.model_dump(by_alias=True, exclude_none=True) for r in rules],
            max_per_day=spec.max_per_day,
            backfill_days=spec.backfill_days,
            backfill_done_at=None if rules else timezone.now(),
            backfill_heartbeat_at=timezone.now() if rules else None,
            gold_rate=spec.gold_rate,
            is_active=spec.is_active,
            created_by=_user(user),
        )
        if spec.assignee_ids:
            queue.assignees.set(spec.assignee_ids)
        if rules:
            _enqueue_backfill(queue.pk, queue.backfill_generation)
    return queue


def queue_sampling_update(*, queue: Queue, rules: list[dict[str, Any]], max_per_day: int | None) -> Queue:
    """Replace a queue's sampling rules and backfill again under the new rules (items already
    sampled stay: a conversation is never in a queue twice)."""
    _max_per_day_check(max_per_day)
    parsed = _rules_parse(rules)
    now = timezone.now()
    with transaction.atomic():
        # A new generation: a backfill step still running under the old rules can no longer
        # write its cursor (queue_backfill_step compares and sets it), and its chain ends.
        Queue.objects.filter(pk=queue.pk).update(
            sampling=[r.model_dump(by_alias=True, exclude_none=True) for r in parsed],
            max_per_day=max_per_day,
            backfill_cursor=None,
            backfill_done_at=None if parsed else now,
            backfill_generation=F("backfill_generation") + 1,
            backfill_heartbeat_at=now if parsed else None,
        )
        queue.refresh_from_db()
        if parsed:
            _enqueue_backfill(queue.pk, queue.backfill_generation)
    return queue


# What queue_settings_update may change. The project and rubric are fixed once a queue exists
# (its labels point at the rubric's versions); sampling goes through queue_sampling_update so
# the backfill restarts.
QUEUE_SETTINGS = frozenset(
    {
        "name",
        "description",
        "annotations_per_item",
        "max_extra_annotations",
        "priority",
        "lease_seconds",
        "assignee_role",
        "show_judge_scores",
        "skip_policy",
        "backfill_days",
        "gold_rate",
        "is_active",
    }
)


def queue_settings_update(
    *, queue: Queue, changes: dict[str, Any], assignee_ids: tuple[int, ...] | None = None
) -> Queue:
    """Change a queue's settings (`QUEUE_SETTINGS`) and, when given, its named assignees.
    Items already in the queue keep the number of labels they were created with."""
    unknown = sorted(set(changes) - QUEUE_SETTINGS)
    if unknown:
        raise ValidationFailed("Not a queue setting.", errors={name: ["Cannot be changed here."] for name in unknown})
    if assignee_ids is not None:
        _assignees_check(organization_id=queue.organization_id, assignee_ids=assignee_ids)
    with transaction.atomic():
        if changes:
            Queue.objects.filter(pk=queue.pk).update(**changes)
        if assignee_ids is not None:
            queue.assignees.set(assignee_ids)
    queue.refresh_from_db()
    return queue


def _enqueue_backfill(queue_id: int, generation: int) -> None:
    from labeling.tasks import queue_backfill

    # The queue's backfill columns are the record of this work: if the broker is down the
    # resume sweeper starts the chain once its heartbeat is stale.
    enqueue.delay_on_commit(queue_backfill, queue_id, generation)


# --- sampling --------------------------------------------------------------------------------


_FACTS_SQL = """
SELECT c.id, c.external_id, c.agent_version, c.tags, c.metadata, c.feedback_rating, c.user_rephrased,
       c.escalated_by_user
FROM reviewapp_conversation c WHERE c.id = ANY(%s) ORDER BY c.id
"""
_SCORE_FACTS_SQL = """
SELECT s.conversation_id, s.judge, s.criterion, s.score, s.confidence
FROM reviewapp_judgescore s WHERE s.conversation_id = ANY(%s)
"""


def _facts_for(conversation_ids: list[int]) -> list[sampling.ConversationFacts]:
    if connection.vendor == "postgresql":
        # One array parameter instead of a thousand placeholders: client-side binding spent
        # longer splitting that query text than PostgreSQL spent answering it. JSON arrives as
        # text; json, not orjson, decodes it, as JSONField does: exact integers beyond 64 bits.
        rows = [
            (pk, ext, version, tags and json.loads(tags), metadata and json.loads(metadata), *rest)
            for pk, ext, version, tags, metadata, *rest in rawsql.fetchall(_FACTS_SQL, [conversation_ids])
        ]
        score_rows = rawsql.fetchall(_SCORE_FACTS_SQL, [conversation_ids])
    else:
        rows = list(
            Conversation.objects.filter(pk__in=conversation_ids)
            .order_by("pk")
            .values_list(
                "pk",
                "external_id",
                "agent_version",
                "tags",
                "metadata",
                "feedback_rating",
                "user_rephrased",
                "escalated_by_user",
            )
        )
        score_rows = JudgeScore.objects.filter(conversation_id__in=conversation_ids).values_list(
            "conversation_id", "judge", "criterion", "score", "confidence"
        )
    scores: dict[int, list[sampling.JudgeFact]] = {}
    for cid, judge, criterion, score, confidence in score_rows:
        scores.setdefault(cid, []).append(sampling.JudgeFact(judge, criterion, score, confidence))
    return [
        sampling.ConversationFacts(
            id=pk,
            external_id=ext,
            agent_version=version or "",
            tags=tuple(tags or ()),
            metadata=metadata if isinstance(metadata, dict) else {},
            feedback_rating=rating,
            user_rephrased=rephrased,
            escalated_by_user=escalated,
            judge_scores=tuple(scores.get(pk, ())),
        )
        for pk, ext, version, tags, metadata, rating, rephrased, escalated in rows
    ]


def conversations_sample(
    *, project_id: int, conversation_ids: list[int], source: str = "rule", now: dt.datetime | None = None
) -> int:
    """Run every active queue's sampling rules over these conversations; returns items added.
    Safe to repeat: items are unique per (queue, conversation) and budgets count only the rows
    really inserted. `now` pins the clock (budget day and pacing) for tests."""
    # In id order: samplers that meet on several queues take their budget locks queue by queue
    # in the same order, so they wait for each other instead of deadlocking.
    queues = list(
        Queue.objects.filter(project_id=project_id, is_active=True)
        .exclude(sampling=[])
        .select_related("project")
        .order_by("pk")
    )
    if not queues or not conversation_ids:
        return 0
    facts = _facts_for(conversation_ids)
    now = now or timezone.now()
    added = 0
    for queue in queues:
        # One queue's broken rules (stored before they were bounded, or a bug) must not stop
        # the others from being sampled: its failure is logged and recorded on it instead.
        try:
            added += _queue_sample(queue=queue, facts=facts, source=source, now=now)
        except Exception as exc:
            queue_sampling_failed(queue_id=queue.pk, error=exc)
    return added


def queue_sampling_failed(*, queue_id: int, error: BaseException) -> None:
    """Log a queue's sampling failure and record it on the queue: a count, the last error and
    when, shown by the queue's API and page. _queue_sample's own transaction was rolled back,
    so nothing of the failed attempt is kept."""
    logger.error("sampling failed for queue %s", queue_id, exc_info=error)
    text = f"{type(error).__name__}: {error}"[:1000].replace("\x00", "")
    try:
        Queue.objects.filter(pk=queue_id).update(
            sampling_failures=F("sampling_failures") + 1, sampling_error=text, sampling_error_at=timezone.now()
        )
    except DatabaseError:
        logger.exception("could not record the sampling failure of queue %s", queue_id)


def _queue_sample(*, queue: Queue, facts: list[sampling.ConversationFacts], source: str, now: dt.datetime) -> int:
    rules = sampling.rules_parse(queue.sampling)
    candidates = [c for f in facts if (c := sampling.candidate_for(queue.pk, rules, f)) is not None]
    if not candidates:
        return 0
    # Priority sampling on the hash: when a budget is short, the lowest hashes win, so which
    # conversations get in never depends on arrival order within a batch.
    candidates.sort(key=lambda c: c.u)
    local_now = sampling.budget_time(now, queue.project.timezone)
    keys = sorted(_budget_keys(queue, candidates))
    with transaction.atomic():
        counters = lock_objects.sampling_counters_lock(queue_id=queue.pk, keys=keys, day=local_now.date())
        # Read after taking the counters: a sampler that held them has committed its items by
        # now, so they are not counted as candidates (or admitted) a second time.
        existing = _in_queue(queue.pk, [c.conversation_id for c in candidates])
        fresh = [c for c in candidates if c.conversation_id not in existing]
        added = _admit_and_insert(
            queue=queue, rules=rules, candidates=fresh, counters=counters, local_now=local_now, source=source, now=now
        )
        for counter in counters.values():
            counter.save(update_fields=["candidates", "admitted"])
    return added


_IN_QUEUE_SQL = "SELECT conversation_id FROM labeling_queueitem WHERE queue_id = %s AND conversation_id = ANY(%s)"


def _in_queue(queue_id: int, conversation_ids: list[int]) -> set[int]:
    """Which of these conversations the queue already holds."""
    if connection.vendor == "postgresql":
        return {cid for (cid,) in rawsql.fetchall(_IN_QUEUE_SQL, [queue_id, conversation_ids])}
    return set(
        QueueItem.objects.filter(queue_id=queue_id, conversation_id__in=conversation_ids).values_list(
            "conversation_id", flat=True
        )
    )


def _budget_keys(queue: Queue, candidates: list[sampling.Candidate]) -> set[str]:
    keys = {f"rule:{m.index}" for c in candidates for m in c.passing if m.rule.max_per_day}
    if queue.max_per_day:
        keys.add("queue")
    return keys


@dataclass(frozen=True)
class _Admission:
    candidate: sampling.Candidate
    index: int
    rule: sampling.SamplingRule
    keys: tuple[str, ...]  # the budgets it spends


# A conflict (a manual add, or an unbudgeted concurrent sampler) can drop admitted rows; their
# budget goes to the next-lowest hashes, for at most this many rounds.
_ADMIT_ROUNDS = 3


def _admit_and_insert(
    *,
    queue: Queue,
    rules: list[sampling.SamplingRule],
    candidates: list[sampling.Candidate],
    counters: dict[str, SamplingCounter],
    local_now: dt.datetime,
    source: str,
    now: dt.datetime,
) -> int:
    """Admit candidates within the per-rule and per-queue daily budgets (paced over the
    project's day), insert them, and count against the budgets only the rows really inserted.
    The caller holds the counters' locks and saves them."""
    for c in candidates:
        for key in _budget_keys(queue, [c]):
            counters[key].candidates += 1
    room = {
        key: max(0, sampling.pacing_allowance(_limit_for(key, queue, rules), local_now) - counter.admitted)
        for key, counter in counters.items()
    }
    added = 0
    pending = candidates
    for _ in range(_ADMIT_ROUNDS):
        admitted, refused = _admit(queue, pending, room)
        if not admitted:
            break
        inserted = set(
            bulk.insert_rows(
                QueueItem,
                [_item_row(queue, a, source, now) for a in admitted],
                ignore_conflicts=True,
                returning="conversation_id",
            )
        )
        added += len(inserted)
        dropped = False
        for a in admitted:
            for key in a.keys:
                if a.candidate.conversation_id in inserted:
                    counters[key].admitted += 1
                else:
                    room[key] += 1
            dropped = dropped or a.candidate.conversation_id not in inserted
        if not dropped or not refused:
            break
        pending = refused
    return added


def _admit(
    queue: Queue, candidates: list[sampling.Candidate], room: dict[str, int]
) -> tuple[list[_Admission], list[sampling.Candidate]]:
    """Candidates (lowest hash first) the room left admits, spending it; and those refused."""
    admitted: list[_Admission] = []
    refused: list[sampling.Candidate] = []
    for c in candidates:
        if queue.max_per_day and room["queue"] <= 0:
            refused.append(c)
            continue
        for m in c.passing:
            key = f"rule:{m.index}"
            if m.rule.max_per_day and room[key] <= 0:
                continue
            keys = ((key,) if m.rule.max_per_day else ()) + (("queue",) if queue.max_per_day else ())
            for spent in keys:
                room[spent] -= 1
            admitted.append(_Admission(c, m.index, m.rule, keys))
            break
        else:
            refused.append(c)
    return admitted, refused


def _item_row(queue: Queue, a: _Admission, source: str, now: dt.datetime) -> dict[str, Any]:
    c = a.candidate
    return {
        "organization_id": queue.organization_id,
        "queue_id": queue.pk,
        "conversation_id": c.conversation_id,
        "priority": queue.priority,
        "labels_needed": queue.annotations_per_item,
        "source": source,
        "sampling_rule": a.rule.label(a.index),
        "sampling_strategy": a.rule.strategy(),
        "inclusion_probability": c.inclusion_probability,
        "stratum": c.stratum,
        "sample_hash": c.u,
        "created_at": now,
    }


def _limit_for(key: str, queue: Queue, rules: list[sampling.SamplingRule]) -> int:
    if key == "queue":
        return int(queue.max_per_day or 0)
    return int(rules[int(key.split(":", 1)[1])].max_per_day or 0)


# --- sampling outbox -------------------------------------------------------------------------

# The sweeper re-enqueues a batch not sampled this long after it was (last) enqueued: longer
# than a healthy worker takes, so it rarely duplicates a message still in the broker (harmless
# anyway: the second run finds the batch gone or locked).
SAMPLING_RETRY_SECONDS = 120
SAMPLING_SWEEP_LIMIT = 1000
SAMPLING_ATTEMPTS_WARN = 5


def sampling_work_record(*, project_id: int, conversation_ids: list[int]) -> SamplingBatch | None:
    """Record, in the caller's transaction, that these conversations must be sampled, and
    enqueue that after commit. A broker error only delays it: the sweeper finds the row."""
    from labeling.tasks import sampling_batch_process

    if not conversation_ids:
        return None
    batch = SamplingBatch.objects.create(project_id=project_id, conversation_ids=list(conversation_ids))
    enqueue.delay_on_commit(sampling_batch_process, batch.pk)
    return batch


def sampling_batch_process(*, batch_id: int, now: dt.datetime | None = None) -> int | None:
    """Sample one recorded batch and delete it, in one transaction; None when there is nothing
    to do (already done, or another worker holds it right now)."""
    with transaction.atomic():
        batch = lock_objects.sampling_batch_claim(batch_id=batch_id)
        if batch is None:
            return None
        added = conversations_sample(project_id=batch.project_id, conversation_ids=batch.conversation_ids, now=now)
        SamplingBatch.objects.filter(pk=batch.pk).delete()
    return added


def sampling_batches_due(*, now: dt.datetime | None = None, limit: int = SAMPLING_SWEEP_LIMIT) -> list[int]:
    """Batches enqueued more than SAMPLING_RETRY_SECONDS ago and still here (a broker outage,
    a lost message, a failed run), marked re-enqueued now (compare-and-set, so two sweepers
    never both take one). The caller enqueues them."""
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=SAMPLING_RETRY_SECONDS)
    due = list(
        SamplingBatch.objects.filter(enqueued_at__lt=stale_before)
        .order_by("enqueued_at", "pk")
        .values_list("pk", "enqueued_at", "attempts")[:limit]
    )
    taken = []
    for pk, enqueued_at, attempts in due:
        if SamplingBatch.objects.filter(pk=pk, enqueued_at=enqueued_at).update(
            enqueued_at=now, attempts=F("attempts") + 1
        ):
            taken.append(pk)
            if attempts + 1 == SAMPLING_ATTEMPTS_WARN:
                # An outage clears in a few sweeps; this many means the batch itself fails.
                logger.warning("sampling batch %s still unsampled after %s attempts", pk, attempts + 1)
    return taken


# --- backfill --------------------------------------------------------------------------------

# The resume sweeper restarts a backfill chain whose last step is older than this. A step is
# bounded by the task time limit (300 s), so a live chain always beats this heartbeat.
BACKFILL_STALE_SECONDS = 600


@dataclass(frozen=True)
class BackfillStep:
    added: int
    more: bool
    generation: int


def queue_backfill_step(
    *, queue_id: int, generation: int | None = None, chunk: int = BACKFILL_CHUNK, now: dt.datetime | None = None
) -> BackfillStep:
    """Sample the next chunk of older conversations for a queue (newest first, within its
    backfill window). The step's progress is written only if the queue's generation (bumped by
    a rules change) and cursor are still the ones it started from; otherwise another chain or
    newer rules own the backfill and this chain ends (`more` False)."""
    queue = (
        Queue.objects.select_related("project")
        .filter(pk=queue_id, is_active=True, backfill_done_at__isnull=True)
        .first()
    )
    if queue is None or (generation is not None and queue.backfill_generation != generation):
        return BackfillStep(0, False, generation or 0)
    now = now or timezone.now()
    since = now - dt.timedelta(days=queue.backfill_days)
    qs = Conversation.objects.filter(project_id=queue.project_id, occurred_at__gte=since)
    if queue.backfill_cursor is not None:
        qs = qs.filter(pk__lt=queue.backfill_cursor)
    ids = list(qs.order_by("-pk").values_list("pk", flat=True)[:chunk])
    try:
        added = _queue_sample(queue=queue, facts=_facts_for(ids), source="backfill", now=now) if ids else 0
    except Exception as exc:
        # Recorded on the queue; the chain ends, and the resume sweeper restarts it once its
        # heartbeat is stale (the rules may be fixed by then).
        queue_sampling_failed(queue_id=queue.pk, error=exc)
        return BackfillStep(0, False, queue.backfill_generation)
    more = len(ids) == chunk
    written = Queue.objects.filter(
        pk=queue.pk, backfill_generation=queue.backfill_generation, backfill_cursor=queue.backfill_cursor
    ).update(
        backfill_cursor=ids[-1] if ids else queue.backfill_cursor,
        backfill_done_at=None if more else timezone.now(),
        backfill_heartbeat_at=timezone.now(),
    )
    return BackfillStep(added, more and written == 1, queue.backfill_generation)


def backfills_resume(*, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """(queue id, generation) of the backfills to restart: unfinished, and no step for
    BACKFILL_STALE_SECONDS (a crash, a deploy, a broker outage). Each is claimed by moving its
    heartbeat (compare-and-set), so only one sweeper restarts it and a live chain is left alone."""
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=BACKFILL_STALE_SECONDS)
    stale = list(
        Queue.objects.filter(is_active=True, backfill_done_at__isnull=True)
        .filter(Q(backfill_heartbeat_at__isnull=True) | Q(backfill_heartbeat_at__lt=stale_before))
        .values_list("pk", "backfill_generation", "backfill_heartbeat_at")
    )
    taken = []
    for pk, generation, heartbeat in stale:
        if Queue.objects.filter(pk=pk, backfill_generation=generation, backfill_heartbeat_at=heartbeat).update(
            backfill_heartbeat_at=now
        ):
            taken.append((pk, generation))
    return taken


@dataclass(frozen=True)
class ItemAddResult:
    conversation_id: int
    item_id: int
    status: str  # created | duplicate


def queue_items_add(
    *, queue: Queue, conversation_ids: list[int], user: AbstractBaseUser | None, source: str = "manual"
) -> list[ItemAddResult]:
    """Add conversations by hand. A conversation already in the queue is a duplicate, whichever
    way it got there."""
    with transaction.atomic():
        existing = dict(
            QueueItem.objects.filter(queue=queue, conversation_id__in=conversation_ids).values_list(
                "conversation_id", "pk"
            )
        )
        new = [cid for cid in dict.fromkeys(conversation_ids) if cid not in existing]
        now = timezone.now()
        QueueItem.objects.bulk_create(
            [
                QueueItem(
                    organization_id=queue.organization_id,
                    queue=queue,
                    conversation_id=cid,
                    priority=queue.priority,
                    labels_needed=queue.annotations_per_item,
                    source=source,
                    sampling_strategy="manual",
                    created_at=now,
                )
                for cid in new
            ],
            ignore_conflicts=True,
        )
        ids = dict(QueueItem.objects.filter(queue=queue, conversation_id__in=new).values_list("conversation_id", "pk"))
        ItemEvent.objects.bulk_create(
            [
                ItemEvent(
                    organization_id=queue.organization_id,
                    item_id=ids[cid],
                    user=_user(user),
                    kind="added",
                    data={"source": source},
                )
                for cid in new
                if cid in ids
            ]
        )
    created = set(new)
    results = []
    seen: set[int] = set()
    for cid in conversation_ids:
        status = "created" if cid in created and cid not in seen else "duplicate"
        seen.add(cid)
        results.append(ItemAddResult(cid, existing.get(cid) or ids[cid], status))
    return results


# --- claims ----------------------------------------------------------------------------------


def leases_expire(*, queue_id: int | None, limit: int = EXPIRE_ON_CLAIM, now: dt.datetime | None = None) -> int:
    """Return expired leases to the pool. Safe to run from any number of places at once.

    Every claim calls this, and almost always there is nothing to do: that case is one indexed
    query (the partial index assignment_live_leases) and no transaction."""
    now = now or timezone.now()
    expired = Assignment.objects.filter(status=AssignmentStatus.ACTIVE, lease_expires_at__lte=now)
    if queue_id is not None:
        expired = expired.filter(queue_id=queue_id)
    item_ids = sorted(set(expired.order_by("lease_expires_at").values_list("item_id", flat=True)[:limit]))
    if not item_ids:
        return 0
    with transaction.atomic():
        # Locked, re-read: another expirer or a late label may have finished some meanwhile.
        rows = lock_objects.expired_leases_lock(item_ids=item_ids, now=now)
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=AssignmentStatus.EXPIRED, finished_at=now
        )
        # One statement for every item, whatever the number of leases: leased_count counts
        # the item's active leases, so with the item locked it is counted again.
        expired_items = sorted({item_id for _, item_id in rows})
        live = Assignment.objects.filter(item=OuterRef("pk"), status=AssignmentStatus.ACTIVE)
        QueueItem.objects.filter(pk__in=expired_items).update(
            leased_count=Coalesce(Subquery(live.values("item").annotate(n=Count("pk")).values("n")), 0)
        )
        org_of = dict(QueueItem.objects.filter(pk__in=expired_items).values_list("pk", "organization_id"))
        ItemEvent.objects.bulk_create(
            [
                ItemEvent(
                    organization_id=org_of[item_id], item_id=item_id, kind="lease_expired", data={"assignment": pk}
                )
                for pk, item_id in rows
            ]
        )
    return len(rows)


def item_claim(
    *, queue: Queue, user: AbstractBaseUser, exclude_item_id: int | None = None, now: dt.datetime | None = None
) -> Assignment | None:
    """Give `user` an item of `queue` and lease it for queue.lease_seconds.

    A person who already holds a live lease in this queue gets that one back (a reload must not
    hoard items); with `exclude_item_id` (the browser prefetching the next item) they get a
    second one. Never the same item twice, never more live leases than labels still needed.
    """
    if exclude_item_id is not None and not validation.is_id(exclude_item_id):
        raise validation.InputError("Not an item id.", "exclude")
    conflicts = waits = 0
    while True:
        try:
            result = _item_claim_once(
                queue=queue, user=user, exclude_item_id=exclude_item_id, now=now or timezone.now()
            )
        except IntegrityError:
            # The same person claiming from two tabs at once: the (item, user) constraint
            # stopped the second lease. Try again; the loser gets a different item.
            conflicts += 1
            if conflicts == _CLAIM_ATTEMPTS:
                raise
            continue
        if result is not _BUSY:
            return result
        # Work is left but every free slot sat on a row locked that instant (a label being
        # saved on an overlapping item, another claim): SKIP LOCKED passed them by. Those locks
        # last milliseconds; wait a little rather than tell the person the queue is done.
        waits += 1
        if waits > _BUSY_RETRIES:
            return None
        time.sleep(_BUSY_WAIT_SECONDS * waits)


def _item_claim_once(
    *, queue: Queue, user: AbstractBaseUser, exclude_item_id: int | None, now: dt.datetime
) -> Assignment | object | None:
    # One person's claims in a queue take turns (an advisory lock taken by the precheck
    # statement itself): the held-lease check and the lease are otherwise two statements, and
    # parallel claims by one person each found nothing held. Outside a caller's transaction the
    # lock is the session's, given back right after the lease commits: one more round trip,
    # and the lease stays a bare statement that does not wait for its WAL flush. Inside one it
    # lasts until the caller commits.
    if connection.vendor == "postgresql" and not connection.in_atomic_block and not lock_objects.session_locks_usable():
        with transaction.atomic():  # behind a transaction-mode pooler: see settings.DB_SESSION_LOCKS
            return _item_claim_once(queue=queue, user=user, exclude_item_id=exclude_item_id, now=now)
    lock = None
    if connection.vendor == "postgresql":
        lock = "transaction" if connection.in_atomic_block else "session"
    # The wait for the lock is bounded and a session lock is given back on every way out
    # (lock_objects.claim_lock).
    with lock_objects.claim_lock(
        queue_id=queue.pk, user_id=user.pk, exclude_item_id=exclude_item_id, now=now, scope=lock
    ) as (held_id, expired):
        return _item_claim_locked(
            queue=queue, user=user, exclude_item_id=exclude_item_id, now=now, held_id=held_id, expired=expired
        )


def _held_lease(*, held_id: int, now: dt.datetime) -> Assignment | None:
    live = Assignment.objects.filter(pk=held_id, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=now)
    return live.select_related("item").first()


def _item_claim_locked(
    *,
    queue: Queue,
    user: AbstractBaseUser,
    exclude_item_id: int | None,
    now: dt.datetime,
    held_id: int | None,
    expired: bool,
) -> Assignment | object | None:
    """The claim, holding this person's claim lock for the queue (on PostgreSQL)."""
    if expired:
        leases_expire(queue_id=queue.pk, now=now)
    if held_id is not None:
        # A reload must not hoard items: give back the lease they hold. (It may have ended
        # since the precheck; then they get a new one below.)
        existing = _held_lease(held_id=held_id, now=now)
        if existing is not None:
            return existing
    lease_until = now + dt.timedelta(seconds=queue.lease_seconds)
    gold_turn = queue.gold_rate > 0 and _gold_turn(queue=queue, user=user)
    # On PostgreSQL each lease is one statement, atomic on its own: no transaction to open and
    # commit unless a caller's is open (then a savepoint, so a lost race leaves it usable).
    bare = connection.vendor == "postgresql" and not connection.in_atomic_block
    with contextlib.nullcontext() if bare else transaction.atomic():
        for gold in (True, False) if gold_turn else (False,):
            assignment = _lease_next(
                queue=queue, user=user, gold=gold, now=now, until=lease_until, exclude_item_id=exclude_item_id
            )
            if assignment is not None:
                return assignment
    # Nothing leased. Having waited for the lock, this person may hold the lease their other
    # claim just made, which the precheck could not see and the lease statement's guard did:
    # look again (a fresh statement sees it), and give that one back.
    held_id, _ = lock_objects.claim_precheck(
        queue_id=queue.pk, user_id=user.pk, exclude_item_id=exclude_item_id, now=now
    )
    if held_id is not None and (existing := _held_lease(held_id=held_id, now=now)) is not None:
        return existing
    if queue.skip_policy == SkipPolicy.SAME_PERSON_LATER:
        reclaimed = _skipped_item_reclaim(queue=queue, user=user, now=now, until=lease_until)
        if reclaimed is not None:
            return reclaimed
    if connection.vendor == "postgresql" and lock_objects.claimable_item_exists(queue_id=queue.pk, user_id=user.pk):
        return _BUSY
    return None


def _skipped_item_reclaim(
    *, queue: Queue, user: AbstractBaseUser, now: dt.datetime, until: dt.datetime
) -> Assignment | None:
    """An item this person skipped earlier, for queues whose skips come back to the same person
    once nothing else is left for them."""
    with transaction.atomic():
        item = lock_objects.claimable_item_lock(queue=queue, user_id=user.pk, skipped_by_user=True)
        if item is None:
            return None
        QueueItem.objects.filter(pk=item.pk).update(leased_count=F("leased_count") + 1)
        item.leased_count += 1
        assignment = Assignment.objects.get(item=item, user=user)
        assignment.status = AssignmentStatus.ACTIVE
        assignment.leased_at = now
        assignment.lease_expires_at = until
        assignment.finished_at = None
        assignment.save(update_fields=["status", "leased_at", "lease_expires_at", "finished_at"])
        assignment.item = item
        return assignment


def lease_restart(
    *, queue: Queue, item_id: int, user: AbstractBaseUser, now: dt.datetime | None = None
) -> dt.datetime | None:
    """Restart the clock of a person's live lease: lease_seconds from now. The browser calls it
    when it shows a prefetched item (that lease should run from when the person sees it, not
    from when it was fetched); API clients call it to keep an item they are still working on.
    A lease that already ran out is left alone (the sweeper may have returned its slot).
    Returns the new expiry, or None when there was no live lease to restart."""
    now = now or timezone.now()
    until = now + dt.timedelta(seconds=queue.lease_seconds)
    restarted = Assignment.objects.filter(
        queue=queue, item_id=item_id, user=user, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=now
    ).update(leased_at=now, lease_expires_at=until)
    return until if restarted else None


def _lease_next(
    *,
    queue: Queue,
    user: AbstractBaseUser,
    gold: bool,
    now: dt.datetime,
    until: dt.datetime,
    exclude_item_id: int | None,
) -> Assignment | None:
    """Lease the next item nobody has handed this person before."""
    if connection.vendor == "postgresql":
        return lock_objects.item_lease_next(
            queue=queue, user_id=user.pk, gold=gold, now=now, until=until, exclude_item_id=exclude_item_id
        )
    # Elsewhere (SQLite: one writer at a time, no SKIP LOCKED) the same steps through the ORM.
    item = lock_objects.claimable_item_lock(queue=queue, user_id=user.pk, gold=gold)
    if item is None:
        return None
    QueueItem.objects.filter(pk=item.pk).update(leased_count=F("leased_count") + 1)
    item.leased_count += 1
    return Assignment.objects.create(
        organization_id=queue.organization_id, queue=queue, item=item, user=user, leased_at=now, lease_expires_at=until
    )


def _gold_turn(*, queue: Queue, user: AbstractBaseUser) -> bool:
    """Whether this claim should be a gold check: a hash of (queue, person, how many items they
    have had) against the queue's gold rate, so gold items are spread through each person's
    work at that rate and are indistinguishable from normal items."""
    seen = Assignment.objects.filter(queue=queue, user=user).count()
    return sampling.sample_hash(queue.pk, f"gold:{user.pk}:{seen}") < queue.gold_rate


# Gold items are labeled once by everyone who meets them; they never complete.
GOLD_LABELS_NEEDED = 32_000


@dataclass(frozen=True)
class GoldItemIn:
    conversation_id: int
    answers: dict[str, Any]


def gold_items_add(*, queue: Queue, items: list[GoldItemIn], user: AbstractBaseUser | None) -> list[ItemAddResult]:
    """Add gold checks: conversations with known answers, mixed into the queue unmarked at its
    gold rate to measure each annotator's accuracy. Answers are validated against the rubric."""
    version = _schema_version(queue=queue, version_id=None)
    questions = rubric.questions_from_json(version.questions)
    errors: dict[str, list[str]] = {}
    cleaned: list[dict[str, Any]] = []
    # Turn answers are checked against each conversation's messages: read them all at once.
    turns = _has_turns(questions)
    messages_of: dict[int, Any] = {}
    if turns:
        messages_of = dict(
            Conversation.objects.filter(
                organization_id=queue.organization_id, pk__in=[g.conversation_id for g in items]
            ).values_list("pk", "messages")
        )
    for index, gold in enumerate(items):
        roles = _roles_of(messages_of.get(gold.conversation_id)) if turns else None
        clean, problems = rubric.answers_validate(questions, gold.answers, turn_roles=roles)
        cleaned.append(clean)
        for path, messages in problems.items():
            errors[f"items[{index}].{path}"] = messages
    if errors:
        raise ValidationFailed("Some gold answers do not fit the rubric.", errors=errors)
    with transaction.atomic():
        existing = dict(
            QueueItem.objects.filter(queue=queue, conversation_id__in=[g.conversation_id for g in items]).values_list(
                "conversation_id", "pk"
            )
        )
        rows = [
            QueueItem(
                organization_id=queue.organization_id,
                queue=queue,
                conversation_id=g.conversation_id,
                priority=queue.priority,
                labels_needed=GOLD_LABELS_NEEDED,
                source="gold",
                sampling_strategy="gold",
                is_gold=True,
                gold_answers=clean,
            )
            for g, clean in zip(items, cleaned, strict=True)
            if g.conversation_id not in existing
        ]
        QueueItem.objects.bulk_create(rows, ignore_conflicts=True)
        ids = dict(
            QueueItem.objects.filter(queue=queue, conversation_id__in=[g.conversation_id for g in items]).values_list(
                "conversation_id", "pk"
            )
        )
    return [
        ItemAddResult(
            g.conversation_id, ids[g.conversation_id], "duplicate" if g.conversation_id in existing else "created"
        )
        for g in items
    ]


def draft_save(*, item: QueueItem, user: AbstractBaseUser, answers: dict[str, Any]) -> Assignment:
    """Keep a half-filled form on the person's assignment, unvalidated, so it survives leaving
    the page. Only the holder of the item has a draft."""
    validation.check_json(answers, path="answers")
    # One compare-and-set: the lease must still be live when the draft is written, not only
    # when it was read (a label, skip, drop or the sweeper may end it in between).
    live = Assignment.objects.filter(
        item=item, user=user, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=timezone.now()
    )
    if live.update(draft_answers=answers) != 1:
        raise Conflict("Drafts are kept while you hold the item; claim it first.")
    assignment = Assignment.objects.get(item=item, user=user)
    assignment.draft_answers = answers
    return assignment


# --- labels ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelOutcome:
    label: Label
    created: bool
    item_status: str


def label_submit(
    *,
    item: QueueItem,
    user: AbstractBaseUser,
    answers: Any,
    client_token: str = "",
    schema_version_id: int | None = None,
    time_spent_ms: int | None = None,
) -> LabelOutcome:
    """Record `user`'s answers on `item` (or edit their earlier label until the item is final).

    Replaying the same `client_token` returns the stored label unchanged. A lost lease is fine
    while the item still needs labels; once it is complete the late label is refused (409).
    `time_spent_ms` must fit its column and counts as at most MAX_TIME_SPENT_MS.
    """
    # Everything from the client is checked before anything is locked or written.
    validation.check_json(answers, path="answers")
    validation.check_text(client_token, field="client_token")
    if schema_version_id is not None and not validation.is_id(schema_version_id):
        raise validation.InputError("Not a version of this queue's schema.", "schema_version")
    if time_spent_ms is not None:
        validation.check_int(time_spent_ms, field="time_spent_ms", bounds=validation.POSITIVE)
        time_spent_ms = min(time_spent_ms, MAX_TIME_SPENT_MS)
    with transaction.atomic():
        item = lock_objects.item_relock(item)
        queue = item.queue
        version = _schema_version(queue=queue, version_id=schema_version_id)
        assignment, existing = lock_objects.assignment_and_label_lock(item_id=item.pk, user_id=user.pk)
        if existing is not None and client_token and existing.client_token == client_token:
            return LabelOutcome(existing, False, item.status)
        questions = rubric.questions_from_json(version.questions)
        clean, errors = rubric.answers_validate(questions, answers, turn_roles=_turn_roles(questions, item))
        if errors:
            raise ValidationFailed("Some answers do not fit the rubric.", errors=errors)
        now = timezone.now()
        events: list[ItemEvent] = []

        if existing is not None:
            # Editing is allowed until a reviewer has ruled: a completed-by-agreement item is
            # re-resolved with the edited label (and may reopen as a dispute).
            if item.status == ItemStatus.DROPPED or item.final_source == "review":
                raise Conflict("This item was reviewed; its labels can no longer be edited.")
            existing.answers = clean
            existing.schema_version = version
            existing.client_token = client_token or existing.client_token
            existing.updated_at = now
            existing.save(update_fields=["answers", "schema_version", "client_token", "updated_at"])
            _event(item, user, "label_edited", {"label": existing.pk}, into=events)
            if item.labels_done >= item.labels_needed or item.status == ItemStatus.NEEDS_REVIEW:
                if item.status == ItemStatus.COMPLETED:
                    item.status = ItemStatus.OPEN
                    item.final_answers, item.final_source, item.completed_at = None, "", None
                _resolve(item, now, events)
                item.save(update_fields=RESOLVE_FIELDS)
            ItemEvent.objects.bulk_create(events)
            return LabelOutcome(existing, False, item.status)

        if item.status == ItemStatus.DROPPED:
            raise Conflict("This item was dropped from the queue.")
        if assignment is None or assignment.status == AssignmentStatus.SKIPPED:
            raise Conflict("You do not hold this item; claim it first.")
        if item.status != ItemStatus.OPEN:
            raise Conflict("Your lease ran out and the item is already complete; your label was not needed.")
        # The hottest write path of labeling: plain prepared statements (reviewapp/rawsql.py)
        # instead of Model.save(), which cost more Python than the four writes cost PostgreSQL.
        values = {
            "organization_id": item.organization_id,
            "queue_id": queue.pk,
            "item_id": item.pk,
            "user_id": user.pk,
            "schema_version_id": version.pk,
            "answers": clean,
            "client_token": client_token,
            "time_spent_ms": time_spent_ms if time_spent_ms is not None else _elapsed_ms(assignment.leased_at, now),
            "created_at": now,
            "updated_at": now,
        }
        [label_id] = rawsql.insert(Label, [values])
        label = Label(id=label_id, **values)
        label._state.adding = False
        label.user, label.schema_version = user, version
        if assignment.status == AssignmentStatus.ACTIVE:
            item.leased_count = max(0, item.leased_count - 1)
        rawsql.update(
            Assignment, assignment.pk, {"status": AssignmentStatus.SUBMITTED, "finished_at": now, "draft_answers": {}}
        )
        item.labels_done += 1
        _event(item, user, "labeled", {"label": label.pk}, into=events)
        if item.labels_done >= item.labels_needed and not item.is_gold:
            # The common case, one label needed: it is the only label, no need to read it back.
            _resolve(item, now, events, labels=[label] if item.labels_done == 1 else None)
        rawsql.update(QueueItem, item.pk, {name: getattr(item, name) for name in ["labels_done", *RESOLVE_FIELDS]})
        rawsql.insert(ItemEvent, [_event_row(e, now) for e in events])
        return LabelOutcome(label, True, item.status)


def _resolve(item: QueueItem, now: dt.datetime, events: list[ItemEvent], *, labels: list[Label] | None = None) -> None:
    """All labels are in: agree → completed with that answer; disagree → one more annotator if
    the queue allows, else review. Mutates `item` (the caller saves it, holding its lock) and
    adds the events to `events` (the caller writes them)."""
    if labels is None:
        labels = list(item.labels.select_related("schema_version").order_by("id"))
    if not labels:
        return
    questions = rubric.questions_from_json(labels[-1].schema_version.questions)
    answers = [lab.answers for lab in labels]
    if len(labels) == 1 or rubric.answers_agree(questions, answers):
        item.status = ItemStatus.COMPLETED
        item.final_answers = dict(answers[0])
        item.final_source = "single" if len(labels) == 1 else "agreement"
        item.completed_at = now
        _release_other_leases(item, now)
        _event(item, None, "completed", {"source": item.final_source}, into=events)
    elif item.extra_annotations < item.queue.max_extra_annotations and item.status == ItemStatus.OPEN:
        item.labels_needed += 1
        item.extra_annotations += 1
        _event(item, None, "extra_annotator", {"labels_needed": item.labels_needed}, into=events)
    else:
        item.status = ItemStatus.NEEDS_REVIEW
        _release_other_leases(item, now)
        _event(item, None, "needs_review", {"labels": len(labels)}, into=events)


def _release_other_leases(item: QueueItem, now: dt.datetime) -> None:
    # leased_count counts the item's active leases (kept under the item lock), so with none
    # left there is nothing to release and no statement to send.
    if item.leased_count > 0:
        Assignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).update(
            status=AssignmentStatus.EXPIRED, finished_at=now
        )
    item.leased_count = 0


def item_skip(*, item: QueueItem, user: AbstractBaseUser, reason: str = "") -> Assignment:
    """A skip is an event and frees the slot; it is never a label. What happens next follows
    the queue's skip policy."""
    validation.check_text(reason, field="reason")
    with transaction.atomic():
        item = lock_objects.item_relock(item)
        assignment = Assignment.objects.select_for_update().filter(item=item, user=user).first()
        if assignment is None or assignment.status != AssignmentStatus.ACTIVE:
            raise Conflict("You do not hold this item.")
        now = timezone.now()
        assignment.status = AssignmentStatus.SKIPPED
        assignment.finished_at = now
        assignment.skip_reason = reason[:500]
        assignment.save(update_fields=["status", "finished_at", "skip_reason"])
        item.leased_count = max(0, item.leased_count - 1)
        fields = ["leased_count"]
        # A gold item is everyone's check and never completes: one person's skip must not
        # take it from the others, so it is only skipped for them.
        if item.queue.skip_policy == SkipPolicy.DROP and item.labels_done == 0 and not item.is_gold:
            item.status = ItemStatus.DROPPED
            fields.append("status")
            # Nobody else may keep working on a dropped item: end their leases now, so their
            # label is refused as "dropped" instead of counted against a slot that is gone.
            _release_other_leases(item, now)
        item.save(update_fields=fields)
        _event(item, user, "skipped", {"reason": reason[:500], "policy": item.queue.skip_policy})
    return assignment


def item_review(*, item: QueueItem, user: AbstractBaseUser, answers: Any) -> QueueItem:
    """A reviewer records the final answer (for disputed items, or to overrule agreement)."""
    validation.check_json(answers, path="answers")
    with transaction.atomic():
        item = lock_objects.item_relock(item)
        if item.status == ItemStatus.DROPPED:
            raise Conflict("This item was dropped from the queue.")
        version = _schema_version(queue=item.queue, version_id=None)
        questions = rubric.questions_from_json(version.questions)
        clean, errors = rubric.answers_validate(questions, answers, turn_roles=_turn_roles(questions, item))
        if errors:
            raise ValidationFailed("Some answers do not fit the rubric.", errors=errors)
        now = timezone.now()
        previous = item.status
        item.status = ItemStatus.COMPLETED
        item.final_answers = clean
        item.final_source = "review"
        item.reviewed_by = user
        item.reviewed_at = now
        item.completed_at = now
        _release_other_leases(item, now)
        item.save(
            update_fields=[
                "status",
                "final_answers",
                "final_source",
                "reviewed_by",
                "reviewed_at",
                "completed_at",
                "leased_count",
            ]
        )
        _event(item, user, "reviewed", {"previous_status": previous, "answers": clean})
    return item


def item_comment_add(*, item: QueueItem, user: AbstractBaseUser, body: str, is_reviewer: bool = False) -> ItemComment:
    """A note for reviewers, from someone who was handed the item (or a reviewer)."""
    if not is_reviewer and not Assignment.objects.filter(item=item, user=user).exists():
        raise Conflict("Comment on items you were handed.")
    body = (body or "").strip()
    validation.check_text(body, field="body")
    if not body:
        raise ValidationFailed("Write something.", errors={"body": ["This field may not be blank."]})
    if len(body) > 10_000:
        raise ValidationFailed("Too long.", errors={"body": ["At most 10000 characters."]})
    return ItemComment.objects.create(item=item, user=user, body=body)


# --- helpers ---------------------------------------------------------------------------------


def schema_version_resolve(*, queue: Queue, version_id: int | None) -> LabelSchemaVersion:
    """The rubric version answers are made against: the queue's latest when none is named, else
    the named one, which must be a version of the queue's rubric (400 otherwise). The API and
    the browser both ask here, so neither quietly labels against another version."""
    if version_id is not None and not validation.is_id(version_id):
        raise ValidationFailed(
            "Unknown schema version.", errors={"schema_version": ["Not a version of this queue's schema."]}
        )
    version = _schema_version(queue=queue, version_id=version_id)
    if version is None:  # _schema_version raises first; this narrows the type
        raise Conflict("This queue's schema has no version.")
    return version


def _schema_version(*, queue: Queue, version_id: int | None) -> LabelSchemaVersion | None:
    if version_id is None:
        # The selectors load the queue with its rubric's latest version: no query then.
        version = queue.schema.latest_version
    else:
        version = LabelSchemaVersion.objects.filter(pk=version_id, schema_id=queue.schema_id).first()
        if version is None:
            raise ValidationFailed(
                "Unknown schema version.", errors={"schema_version": ["Not a version of this queue's schema."]}
            )
    if version is None:
        raise Conflict("This queue's schema has no version.")
    return version


def _turn_roles(questions: list[rubric.Question], item: QueueItem | GoldItemIn) -> list[str] | None:
    """The role of each message of the item's conversation, for checking `turn` answers; None
    (nothing to check, no query) when the rubric has no turn question."""
    if not _has_turns(questions):
        return None
    if isinstance(item, QueueItem) and QueueItem.conversation.is_cached(item):
        messages = item.conversation.messages
    else:
        messages = Conversation.objects.filter(pk=item.conversation_id).values_list("messages", flat=True).first()
    return _roles_of(messages)


def _has_turns(questions: list[rubric.Question]) -> bool:
    return any(q.type == "turn" for q in questions)


def _roles_of(messages: Any) -> list[str]:
    return [str(m.get("role", "")) if isinstance(m, dict) else "" for m in messages or []]


def _elapsed_ms(start: dt.datetime, end: dt.datetime) -> int:
    return min(MAX_TIME_SPENT_MS, max(0, int((end - start).total_seconds() * 1000)))


def _event(
    item: QueueItem,
    user: AbstractBaseUser | None,
    kind: str,
    data: dict[str, Any],
    *,
    into: list[ItemEvent] | None = None,
) -> None:
    """Record an event now, or add it to `into` for the caller to write in one statement."""
    event = ItemEvent(organization_id=item.organization_id, item=item, user=_user(user), kind=kind, data=data)
    if into is None:
        event.save()
    else:
        into.append(event)


def _event_row(event: ItemEvent, now: dt.datetime) -> dict[str, Any]:
    return {
        "organization_id": event.organization_id,
        "item_id": event.item_id,
        "user_id": event.user_id,
        "kind": event.kind,
        "data": event.data,
        "created_at": now,
    }


def _user(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return user if user is not None and getattr(user, "pk", None) else None


# --- statistics snapshots --------------------------------------------------------------------
#
# Agreement and annotator statistics read every label of a queue (seconds at a million), so
# pages and the API show a stored snapshot with its "as of" time and refresh it in the
# background. When it refreshes:
# - never on the label path: a label stays ten statements, whatever the statistics;
# - on a read, when no snapshot exists or labels changed since it was taken: a queue of at most
#   SNAPSHOT_SYNC_MAX_LABELS labels is recomputed in the request (tens of milliseconds, and a
#   small queue is where someone checks the figure right after their own label); a larger one
#   is refreshed in the background, at most once per SNAPSHOT_AUTO_REFRESH, so a busy page
#   cannot keep a worker computing;
# - from the beat (agreement_snapshots_sweep, every 10 minutes): stale snapshots of active
#   queues, so whoever opens the page next sees figures minutes old rather than a spinner, and
#   refreshes a lost task left queued or running;
# - on the refresh button or POST .../agreement/refresh, at once.

SNAPSHOT_SYNC_MAX_LABELS = 5_000
SNAPSHOT_AUTO_REFRESH = dt.timedelta(minutes=5)
# A refresh takes seconds (under 30 at a million labels); one queued or running for this long
# was lost with its task (worker crash, deploy) and is enqueued again.
SNAPSHOT_STUCK_AFTER = dt.timedelta(minutes=15)


def _snapshot_row(queue: Queue) -> AgreementSnapshot:
    snapshot, _ = AgreementSnapshot.objects.get_or_create(
        queue=queue, defaults={"organization_id": queue.organization_id}
    )
    return snapshot


def agreement_snapshot_compute(*, queue_id: int, queued_only: bool = False) -> AgreementSnapshot | None:
    """Read the queue's labels and store its statistics snapshot. Returns None when the queue
    is gone or the computation was not this call's to run. With `queued_only` (the task) it
    runs only if a refresh is queued, so redelivered or duplicate tasks do nothing; otherwise
    only when no refresh is running. Either way it first moves the row to RUNNING with a
    compare-and-set on its state, and at the end:
    - its figures land unless the row already holds figures read later (`computed_at`, when
      the labels were read, is the order): a run the sweeper gave up on as lost but which was
      only slow still lands, so a computation longer than SNAPSHOT_STUCK_AFTER is not thrown
      away and restarted forever, and a finishing old run never overwrites a newer one;
    - the row goes back to IDLE only if the run is still the row's (`started_at` is its
      start): a sweeper's re-queue, or the next run, stands."""
    queue = Queue.objects.select_related("schema__latest_version").filter(pk=queue_id).first()
    if queue is None:
        return None
    snapshot = _snapshot_row(queue)
    started = timezone.now()
    allowed = [SnapshotState.QUEUED] if queued_only else [SnapshotState.IDLE, SnapshotState.QUEUED]
    claimed = AgreementSnapshot.objects.filter(pk=snapshot.pk, state__in=allowed).update(
        state=SnapshotState.RUNNING, started_at=started
    )
    if not claimed:
        return None
    mine = AgreementSnapshot.objects.filter(pk=snapshot.pk, state=SnapshotState.RUNNING, started_at=started)
    clock = time.perf_counter()
    try:
        from labeling import selectors

        payload, label_count = selectors.queue_statistics(queue=queue)
    except Exception as exc:
        mine.update(state=SnapshotState.IDLE, requested_at=None, started_at=None, error=repr(exc)[:2000])
        raise
    older = Q(computed_at__isnull=True) | Q(computed_at__lt=started)
    with transaction.atomic():
        AgreementSnapshot.objects.filter(older, pk=snapshot.pk).update(
            computed_at=started,
            label_count=label_count,
            duration_ms=round((time.perf_counter() - clock) * 1000),
            payload=payload,
            error="",
        )
        mine.update(state=SnapshotState.IDLE, requested_at=None, started_at=None)
    snapshot.refresh_from_db()
    return snapshot


def agreement_snapshot_request(*, queue: Queue) -> AgreementSnapshot:
    """Queue a background refresh, unless one is queued or running already. The state is
    recorded first and the task enqueued on commit; the sweeper re-enqueues a lost one."""
    snapshot = _snapshot_row(queue)
    queued = AgreementSnapshot.objects.filter(pk=snapshot.pk, state=SnapshotState.IDLE).update(
        state=SnapshotState.QUEUED, requested_at=timezone.now()
    )
    if queued:
        _enqueue_snapshot(queue.pk)
    snapshot.refresh_from_db()
    return snapshot


def _enqueue_snapshot(queue_id: int) -> None:
    from labeling.tasks import agreement_snapshot_refresh

    transaction.on_commit(lambda: agreement_snapshot_refresh.delay(queue_id))


def agreement_snapshot_current(*, queue: Queue) -> AgreementSnapshot:
    """The snapshot a page or the API shows, refreshed by the rules above. Two queries when it
    is fresh (the row, and one index probe for labels changed since)."""
    from labeling import selectors

    snapshot = selectors.agreement_snapshot_get(queue=queue)
    if snapshot is not None and snapshot.computed_at is not None:
        if not selectors.labels_changed_since(queue=queue, moment=snapshot.computed_at):
            return snapshot
        small = snapshot.label_count <= SNAPSHOT_SYNC_MAX_LABELS
        due = timezone.now() - snapshot.computed_at >= SNAPSHOT_AUTO_REFRESH
    else:
        small, due = True, True
    if small and selectors.queue_label_count_at_most(queue=queue, limit=SNAPSHOT_SYNC_MAX_LABELS) <= (
        SNAPSHOT_SYNC_MAX_LABELS
    ):
        computed = agreement_snapshot_compute(queue_id=queue.pk)
        if computed is not None and computed.computed_at is not None:
            return computed
    if due:
        return agreement_snapshot_request(queue=queue)
    return snapshot if snapshot is not None else _snapshot_row(queue)


def _snapshots_stuck(*, now: dt.datetime) -> list[tuple[int, int, str, dt.datetime | None, dt.datetime | None]]:
    """(pk, queue id, state, requested_at, started_at) of refreshes queued or running for
    SNAPSHOT_STUCK_AFTER: lost with their task, or (running) merely slow."""
    return list(
        AgreementSnapshot.objects.filter(
            Q(state=SnapshotState.QUEUED, requested_at__lt=now - SNAPSHOT_STUCK_AFTER)
            | Q(state=SnapshotState.RUNNING, started_at__lt=now - SNAPSHOT_STUCK_AFTER)
        ).values_list("pk", "queue_id", "state", "requested_at", "started_at")
    )


def agreement_snapshots_sweep() -> int:
    """Beat: re-enqueue refreshes lost with their task, and refresh stale snapshots of active
    queues (labels changed since, taken over SNAPSHOT_AUTO_REFRESH ago). Returns how many
    refreshes it enqueued."""
    from labeling import selectors

    now = timezone.now()
    enqueued = 0
    for pk, queue_id, state, requested_at, started_at in _snapshots_stuck(now=now):
        # Compare-and-set on the very request or run judged lost: a refresh queued or started
        # since the read above is left alone.
        if state == SnapshotState.RUNNING:
            same = Q(state=SnapshotState.RUNNING, started_at=started_at)
        else:
            same = Q(state=SnapshotState.QUEUED, requested_at=requested_at)
        if AgreementSnapshot.objects.filter(same, pk=pk).update(
            state=SnapshotState.QUEUED, requested_at=now, started_at=None
        ):
            _enqueue_snapshot(queue_id)
            enqueued += 1
    stale = AgreementSnapshot.objects.filter(
        state=SnapshotState.IDLE, queue__is_active=True, computed_at__lt=now - SNAPSHOT_AUTO_REFRESH
    ).select_related("queue")
    for snapshot in stale:
        if selectors.labels_changed_since(queue=snapshot.queue, moment=snapshot.computed_at):
            agreement_snapshot_request(queue=snapshot.queue)
            enqueued += 1
    return enqueued
