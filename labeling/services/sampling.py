"""Sampling: run the queues' rules over conversations, within their daily budgets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Avg, F
from django.utils import timezone

from labeling import builder, lock_objects, sampling, sql
from labeling.models import ProjectBudgetCounter, Queue, QueueItem, SamplingCounter
from labeling.services import budgets
from reviewapp import bulk, rawsql
from reviewapp.models import Conversation, ConversationSignal, JudgeScore, Project

logger = logging.getLogger(__name__)


def _facts_for(conversation_ids: list[int]) -> list[sampling.ConversationFacts]:
    if connection.vendor == "postgresql":
        # One array parameter instead of a thousand placeholders: client-side binding spent
        # longer splitting that query text than PostgreSQL spent answering it. JSON arrives as
        # text; json, not orjson, decodes it, as JSONField does: exact integers beyond 64 bits.
        rows = [
            (pk, ext, version, tags and json.loads(tags), metadata and json.loads(metadata), *rest)
            for pk, ext, version, tags, metadata, *rest in rawsql.fetchall(sql.CONVERSATION_FACTS, [conversation_ids])
        ]
        score_rows = rawsql.fetchall(sql.JUDGE_SCORE_FACTS, [conversation_ids])
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


def _queue_uses_signals(queue: Queue) -> bool:
    try:
        return sampling.rules_use_signals(sampling.rules_parse(queue.sampling))
    except ValueError:  # broken rules fail that queue's own sampling, recorded there
        return False


def _with_signals(facts: list[sampling.ConversationFacts], queues: list[Queue]) -> list[sampling.ConversationFacts]:
    """The facts with each conversation's signals, when a queue's rules name one: one query for
    the whole batch (ids as one array on PostgreSQL), none when no rule asks."""
    if not facts or not any(_queue_uses_signals(q) for q in queues):
        return facts
    return _signals_attach(facts)


def _signals_attach(facts: list[sampling.ConversationFacts]) -> list[sampling.ConversationFacts]:
    ids = [f.id for f in facts]
    if connection.vendor == "postgresql":
        rows = rawsql.fetchall(sql.SIGNAL_FACTS, [ids])
    else:
        rows = list(
            ConversationSignal.objects.filter(conversation_id__in=ids).values_list("conversation_id", "kind", "source")
        )
    found: dict[int, set[tuple[str, str]]] = {}
    for cid, kind, source in rows:
        found.setdefault(cid, set()).add((kind, source))
    return [dataclasses.replace(f, signals=frozenset(found[f.id])) if f.id in found else f for f in facts]


def conversations_sample(
    *, project_id: int, conversation_ids: list[int], source: str = "rule", now: dt.datetime | None = None
) -> int:
    """Run every active queue's sampling rules over these conversations; returns items added.
    Each queue is sampled in a transaction of its own (its budget counters are locked for that
    long only). Safe to repeat: items are unique per (queue, conversation) and budgets count
    only the rows really inserted. `now` pins the clock (budget day and pacing) for tests.
    The outbox (sampling_outbox.py) does the same per queue, and remembers which are done."""
    queues = sampling_queues(project_id=project_id)
    if not queues or not conversation_ids:
        return 0
    facts = _with_signals(_facts_for(conversation_ids), queues)
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


# The preview reads this many of the project's newest conversations: enough for a rate of 1%
# to show a hundred, few enough to decide in well under a second.
PREVIEW_CONVERSATIONS = 10_000
PREVIEW_EXAMPLES = 5


@dataclass(frozen=True)
class SamplingPreview:
    considered: int
    sampled: int
    days: int  # calendar days (project time) from the oldest conversation considered to the newest
    examples: tuple[tuple[int, str], ...]  # (id, external id) of a few sampled, newest first

    @property
    def share(self) -> float:
        return self.sampled / self.considered if self.considered else 0.0

    @property
    def percent(self) -> float:
        return round(100 * self.share, 1)

    @property
    def per_day(self) -> float:
        return self.sampled / self.days if self.days else 0.0


def sampling_preview(
    *,
    project: Project,
    rules: list[sampling.SamplingRule],
    max_per_day: int | None,
    queue_id: int | None = None,
    limit: int = PREVIEW_CONVERSATIONS,
) -> SamplingPreview:
    """What these rules would have sampled of the project's newest `limit` conversations, by
    the sampler's own decision (`sampling.candidate_for`: the same hash, conditions and rates)
    and daily budgets (`builder.admitted_within_budgets`, without the pacing within a day). A
    read, kept beside the sampler whose facts loading it shares. A queue not yet created has no
    id for the hash: 0 stands in, so which conversations are shown differs from what the new
    queue will draw, not how many. Rules use their own rates (the budget controller's is not
    applied) and an uncertainty rule without `mean_uncertainty` the default."""
    rows = list(
        Conversation.objects.filter(project_id=project.pk).order_by("-id").values_list("pk", "occurred_at")[:limit]
    )
    if not rows:
        return SamplingPreview(0, 0, 0, ())
    facts = _facts_for([pk for pk, _ in rows])
    if sampling.rules_use_signals(rules):
        facts = _signals_attach(facts)
    day_of = {pk: sampling.budget_time(at, project.timezone).date() for pk, at in rows}
    candidates = [
        (day_of[f.id], c) for f in facts if (c := sampling.candidate_for(queue_id or 0, rules, f)) is not None
    ]
    admitted = builder.admitted_within_budgets(candidates, max_per_day=max_per_day)
    days = (max(day_of.values()) - min(day_of.values())).days + 1
    external = {f.id: f.external_id for f in facts}
    newest = sorted((c.conversation_id for c in admitted), reverse=True)[:PREVIEW_EXAMPLES]
    return SamplingPreview(
        considered=len(rows),
        sampled=len(admitted),
        days=days,
        examples=tuple((cid, external[cid]) for cid in newest),
    )


def sampling_queues(*, project_id: int, queue_ids: list[int] | None = None) -> list[Queue]:
    """The project's active queues that have sampling rules (only those of `queue_ids`, when
    given), with their project, in id order: samplers that meet on several queues take their
    budget locks queue by queue in the same order, so they wait for each other instead of
    deadlocking."""
    queues = Queue.objects.filter(project_id=project_id, is_active=True).exclude(sampling=[])
    if queue_ids is not None:
        queues = queues.filter(pk__in=queue_ids)
    return list(queues.select_related("project").order_by("pk"))


def error_text(error: BaseException) -> str:
    """An error as stored for operators: bounded, and without NUL (PostgreSQL refuses it)."""
    return f"{type(error).__name__}: {error}"[:1000].replace("\x00", "")


def queue_sampling_failed(*, queue_id: int, error: BaseException) -> None:
    """Log a queue's sampling failure and record it on the queue: a count, the last error and
    when, shown by the queue's API and page. _queue_sample's own transaction was rolled back,
    so nothing of the failed attempt is kept."""
    logger.error("sampling failed for queue %s", queue_id, exc_info=error)
    try:
        with transaction.atomic():  # a savepoint inside the caller's: a failed write leaves it usable
            Queue.objects.filter(pk=queue_id).update(
                sampling_failures=F("sampling_failures") + 1,
                sampling_error=error_text(error),
                sampling_error_at=timezone.now(),
            )
    except DatabaseError:
        logger.exception("could not record the sampling failure of queue %s", queue_id)


def queue_sampling_given_up(*, queue_ids: list[int], conversations: int, error: str) -> None:
    """Record on each queue that `conversations` owed to it were given up after the outbox's
    last retry: counted with the time (the queue's sampling health), and logged. The queue's
    backfill (restarted by a rules change) can still reach them."""
    logger.error(
        "sampling gave up on %s conversations for queues %s after the last retry: %s", conversations, queue_ids, error
    )
    Queue.objects.filter(pk__in=queue_ids).update(
        sampling_given_up=F("sampling_given_up") + conversations, sampling_given_up_at=timezone.now()
    )


def _queue_sample(*, queue: Queue, facts: list[sampling.ConversationFacts], source: str, now: dt.datetime) -> int:
    # The budget controller's rate replaces the uniform rules' (budgets.rules_in_force).
    rules = budgets.rules_in_force(queue, sampling.rules_parse(queue.sampling))
    rules = _with_mean_uncertainty(queue, rules, now)
    candidates = [c for f in facts if (c := sampling.candidate_for(queue.pk, rules, f)) is not None]
    if not candidates:
        return 0
    # Priority sampling on the hash: when a budget is short, the lowest hashes win, so which
    # conversations get in never depends on arrival order within a batch.
    candidates.sort(key=lambda c: c.u)
    local_now = sampling.budget_time(now, queue.project.timezone)
    limit = budgets.project_limit_for(queue)
    keys = sorted(_budget_keys(queue, candidates, limit))
    with transaction.atomic():
        # Lock order: the queue's counters in key order, then the project's counter (last).
        counters = lock_objects.sampling_counters_lock(queue_id=queue.pk, keys=keys, day=local_now.date())
        project_counter = (
            lock_objects.project_budget_counter_lock(project_id=queue.project_id, day=local_now.date())
            if limit is not None
            else None
        )
        # Read after taking the counters: a sampler that held them has committed its items by
        # now, so they are not counted as candidates (or admitted) a second time.
        existing = _in_queue(queue.pk, [c.conversation_id for c in candidates])
        fresh = [c for c in candidates if c.conversation_id not in existing]
        added = _admit_and_insert(
            queue=queue,
            rules=rules,
            candidates=fresh,
            counters=counters,
            local_now=local_now,
            source=source,
            now=now,
            limit=limit,
            project_counter=project_counter,
        )
        for counter in counters.values():
            counter.save(update_fields=["candidates", "admitted"])
        if project_counter is not None:
            project_counter.save(update_fields=["candidates", "admitted"])
    return added


# An uncertainty rule's reference is the judge's mean uncertainty over this many days before
# the sampling day: stable through a day (so re-sampling a conversation the same day decides
# the same), following the judge as it drifts.
MEAN_UNCERTAINTY_DAYS = 7


def _with_mean_uncertainty(
    queue: Queue, rules: list[sampling.SamplingRule], now: dt.datetime
) -> list[sampling.SamplingRule]:
    """Uncertainty rules that leave out mean_uncertainty get the judge's recent mean (1 -
    confidence) on the project: one aggregate per such rule, none for other queues."""
    out = []
    day_start = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for rule in rules:
        if rule.weighting == "uncertainty" and rule.mean_uncertainty is None and rule.condition is not None:
            scores = JudgeScore.objects.filter(
                conversation__project_id=queue.project_id,
                judge=rule.condition.judge,
                confidence__isnull=False,
                created_at__gte=day_start - dt.timedelta(days=MEAN_UNCERTAINTY_DAYS),
                created_at__lt=day_start,
            )
            if rule.condition.criterion is not None:
                scores = scores.filter(criterion=rule.condition.criterion)
            mean = scores.aggregate(mean=Avg("confidence"))["mean"]
            if mean is not None:
                rule = rule.model_copy(update={"mean_uncertainty": min(1.0, max(0.0, 1.0 - mean))})
        out.append(rule)
    return out


def _in_queue(queue_id: int, conversation_ids: list[int]) -> set[int]:
    """Which of these conversations the queue already holds."""
    if connection.vendor == "postgresql":
        return {cid for (cid,) in rawsql.fetchall(sql.IN_QUEUE, [queue_id, conversation_ids])}
    return set(
        QueueItem.objects.filter(queue_id=queue_id, conversation_id__in=conversation_ids).values_list(
            "conversation_id", flat=True
        )
    )


def _budget_keys(queue: Queue, candidates: list[sampling.Candidate], limit: budgets.ProjectLimit | None) -> set[str]:
    keys = {f"rule:{m.index}" for c in candidates for m in c.passing if m.rule.max_per_day}
    if queue.max_per_day:
        keys.add("queue")
    if limit is not None:
        # The queue's part of the project budget: its own candidates and admitted, so the
        # thinning the project budget caused in this queue can be undone like any other.
        keys.add("project")
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
    limit: budgets.ProjectLimit | None = None,
    project_counter: ProjectBudgetCounter | None = None,
) -> int:
    """Admit candidates within the per-rule, per-queue and project daily budgets (paced over
    the project's day), insert them, and count against the budgets only the rows really
    inserted. The caller holds the counters' locks and saves them."""
    for c in candidates:
        for key in _budget_keys(queue, [c], limit):
            counters[key].candidates += 1
    room = {
        key: max(0, sampling.pacing_allowance(_limit_for(key, queue, rules, limit), local_now) - counter.admitted)
        for key, counter in counters.items()
    }
    if limit is not None and project_counter is not None:
        # The queue's share and what the project total has left today, whichever is smaller.
        project_counter.candidates += len(candidates)
        total_room = sampling.pacing_allowance(limit.total, local_now) - project_counter.admitted
        room["project"] = max(0, min(room["project"], total_room))
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
                    if key == "project" and project_counter is not None:
                        project_counter.admitted += 1
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
    # Budgets every admission spends, whatever its rule: the queue's and the project's.
    whole = tuple(key for key in ("queue", "project") if key in room)
    for c in candidates:
        if any(room[key] <= 0 for key in whole):
            refused.append(c)
            continue
        for m in c.passing:
            key = f"rule:{m.index}"
            if m.rule.max_per_day and room[key] <= 0:
                continue
            keys = ((key,) if m.rule.max_per_day else ()) + whole
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


def _limit_for(
    key: str, queue: Queue, rules: list[sampling.SamplingRule], limit: budgets.ProjectLimit | None = None
) -> int:
    if key == "queue":
        return int(queue.max_per_day or 0)
    if key == "project":
        return limit.share if limit is not None else 0
    return int(rules[int(key.split(":", 1)[1])].max_per_day or 0)
