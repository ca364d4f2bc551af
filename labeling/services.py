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
from django.db.models import F, Max
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from labeling import lock_objects, rubric, sampling
from labeling.models import (
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
    SamplingCounter,
    SkipPolicy,
)
from reviewapp import bulk, rawsql, validation
from reviewapp.errors import Conflict, ValidationFailed
from reviewapp.ingest_schemas import errors_from_pydantic
from reviewapp.models import Conversation, JudgeScore, Project

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
            gold_rate=spec.gold_rate,
            created_by=_user(user),
        )
        if spec.assignee_ids:
            queue.assignees.set(spec.assignee_ids)
        if rules:
            _enqueue_backfill(queue.pk)
    return queue


def queue_sampling_update(*, queue: Queue, rules: list[dict[str, Any]], max_per_day: int | None) -> Queue:
    """Replace a queue's sampling rules and backfill again under the new rules (items already
    sampled stay: a conversation is never in a queue twice)."""
    _max_per_day_check(max_per_day)
    parsed = _rules_parse(rules)
    with transaction.atomic():
        Queue.objects.filter(pk=queue.pk).update(
            sampling=[r.model_dump(by_alias=True, exclude_none=True) for r in parsed],
            max_per_day=max_per_day,
            backfill_cursor=None,
            backfill_done_at=None if parsed else timezone.now(),
        )
        if parsed:
            _enqueue_backfill(queue.pk)
    queue.refresh_from_db()
    return queue


def _enqueue_backfill(queue_id: int) -> None:
    from labeling.tasks import queue_backfill

    transaction.on_commit(lambda: queue_backfill.delay(queue_id))


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


def conversations_sample(*, project_id: int, conversation_ids: list[int], source: str = "rule") -> int:
    """Run every active queue's sampling rules over these conversations; returns items added."""
    queues = list(Queue.objects.filter(project_id=project_id, is_active=True).exclude(sampling=[]))
    if not queues or not conversation_ids:
        return 0
    facts = _facts_for(conversation_ids)
    added = 0
    for queue in queues:
        # One queue's broken rules (stored before they were bounded, or a bug) must not stop
        # the others from being sampled: its failure is logged and recorded on it instead.
        try:
            added += _queue_sample(queue=queue, facts=facts, source=source)
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


def _queue_sample(*, queue: Queue, facts: list[sampling.ConversationFacts], source: str) -> int:
    rules = sampling.rules_parse(queue.sampling)
    candidates = [c for f in facts if (c := sampling.candidate_for(queue.pk, rules, f)) is not None]
    if not candidates:
        return 0
    now = timezone.now()
    # Priority sampling on the hash: when a budget is short, the lowest hashes win, so which
    # conversations get in never depends on arrival order within a batch.
    candidates.sort(key=lambda c: c.u)
    with transaction.atomic():
        existing = _in_queue(queue.pk, [c.conversation_id for c in candidates])
        fresh = [c for c in candidates if c.conversation_id not in existing]
        admitted = _apply_budgets(queue=queue, rules=rules, candidates=fresh, now=now)
        items = [
            {
                "organization_id": queue.organization_id,
                "queue_id": queue.pk,
                "conversation_id": c.conversation_id,
                "priority": queue.priority,
                "labels_needed": queue.annotations_per_item,
                "source": source,
                "sampling_rule": rule.label(index),
                "sampling_strategy": rule.strategy(),
                "inclusion_probability": c.inclusion_probability,
                "stratum": c.stratum,
                "sample_hash": c.u,
                "created_at": now,
            }
            for c, index, rule in admitted
        ]
        # ignore_conflicts: a manual add or a concurrent task may have put one in already.
        bulk.insert_rows(QueueItem, items, ignore_conflicts=True)
    return len(items)


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


def _apply_budgets(
    *, queue: Queue, rules: list[sampling.SamplingRule], candidates: list[sampling.Candidate], now: dt.datetime
) -> list[tuple[sampling.Candidate, int, sampling.SamplingRule]]:
    """Admit candidates within per-rule and per-queue daily budgets, paced over the UTC day.
    Counters are locked rows, so parallel sampling tasks never overspend a budget."""
    day = now.date()
    limited_keys = {f"rule:{m.index}" for c in candidates for m in c.passing if m.rule.max_per_day}
    if queue.max_per_day:
        limited_keys.add("queue")
    counters: dict[str, SamplingCounter] = {}
    if limited_keys:
        for key in sorted(limited_keys):  # fixed order: no deadlock between two samplers
            SamplingCounter.objects.get_or_create(queue=queue, key=key, day=day)
        for counter in SamplingCounter.objects.select_for_update().filter(queue=queue, key__in=limited_keys, day=day):
            counters[counter.key] = counter
    room = {
        key: max(0, sampling.pacing_allowance(_limit_for(key, queue, rules), now) - counter.admitted)
        for key, counter in counters.items()
    }
    admitted: list[tuple[sampling.Candidate, int, sampling.SamplingRule]] = []
    for c in candidates:
        for key in {f"rule:{m.index}" for m in c.passing if m.rule.max_per_day} | (
            {"queue"} if queue.max_per_day else set()
        ):
            counters[key].candidates += 1
        if queue.max_per_day and room["queue"] <= 0:
            continue
        for m in c.passing:
            key = f"rule:{m.index}"
            if m.rule.max_per_day and room[key] <= 0:
                continue
            if m.rule.max_per_day:
                room[key] -= 1
                counters[key].admitted += 1
            if queue.max_per_day:
                room["queue"] -= 1
                counters["queue"].admitted += 1
            admitted.append((c, m.index, m.rule))
            break
    for counter in counters.values():
        counter.save(update_fields=["candidates", "admitted"])
    return admitted


def _limit_for(key: str, queue: Queue, rules: list[sampling.SamplingRule]) -> int:
    if key == "queue":
        return int(queue.max_per_day or 0)
    return int(rules[int(key.split(":", 1)[1])].max_per_day or 0)


def queue_backfill_step(*, queue_id: int, chunk: int = BACKFILL_CHUNK) -> tuple[int, bool]:
    """Sample the next chunk of older conversations for a queue (newest first, within its
    backfill window). Returns (items added, whether more remain)."""
    queue = Queue.objects.filter(pk=queue_id, is_active=True, backfill_done_at__isnull=True).first()
    if queue is None:
        return 0, False
    since = timezone.now() - dt.timedelta(days=queue.backfill_days)
    qs = Conversation.objects.filter(project_id=queue.project_id, occurred_at__gte=since)
    if queue.backfill_cursor is not None:
        qs = qs.filter(pk__lt=queue.backfill_cursor)
    ids = list(qs.order_by("-pk").values_list("pk", flat=True)[:chunk])
    try:
        added = _queue_sample(queue=queue, facts=_facts_for(ids), source="backfill") if ids else 0
    except Exception as exc:
        # Recorded on the queue; the beat sweeper tries again later (rules may be fixed by then).
        queue_sampling_failed(queue_id=queue.pk, error=exc)
        return 0, False
    more = len(ids) == chunk
    Queue.objects.filter(pk=queue.pk).update(
        backfill_cursor=ids[-1] if ids else queue.backfill_cursor,
        backfill_done_at=None if more else timezone.now(),
    )
    return added, more


def queues_with_pending_backfill() -> list[int]:
    return list(Queue.objects.filter(is_active=True, backfill_done_at__isnull=True).values_list("pk", flat=True))


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
        for _pk, item_id in rows:
            QueueItem.objects.filter(pk=item_id, leased_count__gt=0).update(leased_count=F("leased_count") - 1)
        org_of = dict(QueueItem.objects.filter(pk__in=[i for _, i in rows]).values_list("pk", "organization_id"))
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
    held_id, expired = lock_objects.claim_precheck(
        queue_id=queue.pk, user_id=user.pk, exclude_item_id=exclude_item_id, now=now
    )
    if expired:
        leases_expire(queue_id=queue.pk, now=now)
    if held_id is not None:
        # A reload must not hoard items: give back the lease they hold. (It may have ended
        # since the precheck; then they get a new one below.)
        live = Assignment.objects.filter(pk=held_id, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=now)
        existing = live.select_related("item").first()
        if existing is not None:
            return existing
    lease_until = now + dt.timedelta(seconds=queue.lease_seconds)
    gold_turn = queue.gold_rate > 0 and _gold_turn(queue=queue, user=user)
    # On PostgreSQL each lease is one statement, atomic on its own: no transaction to open and
    # commit unless a caller's is open (then a savepoint, so a lost race leaves it usable).
    bare = connection.vendor == "postgresql" and not connection.in_atomic_block
    with contextlib.nullcontext() if bare else transaction.atomic():
        for gold in (True, False) if gold_turn else (False,):
            assignment = _lease_next(queue=queue, user=user, gold=gold, now=now, until=lease_until)
            if assignment is not None:
                return assignment
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
    *, queue: Queue, user: AbstractBaseUser, gold: bool, now: dt.datetime, until: dt.datetime
) -> Assignment | None:
    """Lease the next item nobody has handed this person before."""
    if connection.vendor == "postgresql":
        return lock_objects.item_lease_next(queue=queue, user_id=user.pk, gold=gold, now=now, until=until)
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
    for index, gold in enumerate(items):
        clean, problems = rubric.answers_validate(questions, gold.answers, turn_roles=_turn_roles(questions, gold))
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
    assignment = Assignment.objects.filter(item=item, user=user, status=AssignmentStatus.ACTIVE).first()
    if assignment is None:
        raise Conflict("Drafts are kept while you hold the item; claim it first.")
    Assignment.objects.filter(pk=assignment.pk).update(draft_answers=answers)
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
        if item.queue.skip_policy == SkipPolicy.DROP and item.labels_done == 0:
            item.status = ItemStatus.DROPPED
            fields.append("status")
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
    if not any(q.type == "turn" for q in questions):
        return None
    if isinstance(item, QueueItem) and QueueItem.conversation.is_cached(item):
        messages = item.conversation.messages
    else:
        messages = Conversation.objects.filter(pk=item.conversation_id).values_list("messages", flat=True).first()
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
