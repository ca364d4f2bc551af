"""Reads for labeling, organization first: another tenant's ids are simply not found."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, F, Func, Max, Min, OuterRef, Q, QuerySet, TextField, Value, Window
from django.db.models.functions import RowNumber, TruncDate, TruncWeek
from django.utils import timezone

from labeling import budget_controller, rubric, sampling, sql
from labeling.models import (
    AgreementSnapshot,
    Assignment,
    AssignmentStatus,
    ItemStatus,
    Label,
    LabelSchema,
    LabelSchemaVersion,
    PairwiseItem,
    ProjectBudget,
    ProjectBudgetCounter,
    Queue,
    QueueItem,
    QueueKind,
    RateChange,
    SamplingCounter,
)
from reviewapp import rawsql, validation
from reviewapp.errors import NotFound
from reviewapp.models import Conversation, Organization, Project, Role

if TYPE_CHECKING:
    from labeling.agreement import CodedRatings

MANAGER_ROLES = {Role.ENGINEER, Role.ADMIN}


def project_has_sampling_queues(*, project_id: int) -> bool:
    return Queue.objects.filter(project_id=project_id, is_active=True).exclude(sampling=[]).exists()


def label_schema_list(*, organization: Organization) -> QuerySet[LabelSchema]:
    return LabelSchema.objects.filter(organization=organization).select_related("project", "latest_version")


def label_schema_get(*, organization: Organization, schema_id: int) -> LabelSchema:
    schema = label_schema_list(organization=organization).filter(pk=schema_id).first()
    if schema is None:
        raise NotFound("Label schema not found.")
    return schema


def conversations_in_project(
    *, project: Project, ids: Iterable[int] = (), external_ids: Iterable[str] = ()
) -> tuple[set[int], dict[str, int]]:
    """Which of these conversation ids belong to the project, and the id of each of these
    external ids found in it. At most two queries, however many are asked for: adding items
    or gold checks by hand names conversations either way."""
    ids, external_ids = list(ids), list(external_ids)
    found = Conversation.objects.filter(project=project, pk__in=ids).values_list("pk", flat=True) if ids else []
    by_external = (
        Conversation.objects.filter(project=project, external_id__in=external_ids).values_list("external_id", "pk")
        if external_ids
        else []
    )
    return set(found), dict(by_external)


def queue_can_work(*, queue: Queue, user: AbstractBaseUser, role: str) -> bool:
    """Engineers and admins may work any queue of their organization; others need to be named
    on the queue, or (when nobody is named) hold its assignee role."""
    if role in MANAGER_ROLES:
        return True
    if hasattr(queue, "names_anyone"):  # annotated by queue_get_for_worker: no query
        return queue.names_caller if queue.names_anyone else role == queue.assignee_role
    # .all(), not values_list(): it uses queue_list_for_worker's prefetch, so listing queues
    # costs the same few queries however many queues there are.
    named = [u.pk for u in queue.assignees.all()]
    if named:
        return user.pk in named
    return role == queue.assignee_role


def queue_list(*, organization: Organization) -> QuerySet[Queue]:
    return Queue.objects.filter(organization=organization).select_related("project", "schema")


def queue_list_for_worker(*, organization: Organization, user: AbstractBaseUser, role: str) -> list[Queue]:
    queues = queue_list(organization=organization).filter(is_active=True).prefetch_related("assignees")
    return [q for q in queues if queue_can_work(queue=q, user=user, role=role)]


def queue_get(*, organization: Organization, queue_id: int) -> Queue:
    queue = queue_list(organization=organization).filter(pk=queue_id).first()
    if queue is None:
        raise NotFound("Queue not found.")
    return queue


def queue_get_for_worker(*, organization: Organization, queue_id: int, user: AbstractBaseUser, role: str) -> Queue:
    """A queue the caller may work. One they may not work looks missing (404), like another
    tenant's, so queue ids leak nothing."""
    # One hand-written query on the claim path (every claim calls this): the queue, its
    # project, its rubric and latest version (the claim answers with it), and whether anyone,
    # and the caller, is named on it. The ORM equivalent cost ~2 ms to compile.
    if not validation.is_id(queue_id):  # raw SQL ahead: an id beyond 64 bits is simply missing
        raise NotFound("Queue not found.")
    row = rawsql.fetchone(sql.WORKER_QUEUE, {"org": organization.pk, "queue": queue_id, "user": user.pk})
    if row is None:
        raise NotFound("Queue not found.")
    queue, project, schema, version = rawsql.instances(row[2:], Queue, Project, LabelSchema, LabelSchemaVersion)
    queue.project = project
    if not queue_can_work(queue=_worker_queue_assemble(row, queue, schema, version), user=user, role=role):
        raise NotFound("Queue not found.")
    return queue


def _worker_queue_assemble(row: tuple, queue: Queue, schema: LabelSchema, version: LabelSchemaVersion | None) -> Queue:
    """Wire up a queue read by the worker lookups: its rubric and latest version, and the two
    assignee flags the row starts with (for queue_can_work)."""
    schema.latest_version = version
    queue.schema = schema
    queue.names_anyone, queue.names_caller = bool(row[0]), bool(row[1])
    return queue


# A count walks every item of the queue (about 200 ms at a million); the queue list asks for
# each queue's on every load. Big queues' counts are therefore cached briefly; small ones (where
# a test or a person expects to see their own click) are always exact.
COUNTS_CACHE_MIN_ITEMS = 50_000
COUNTS_CACHE_SECONDS = 30


def queue_counts(*, queue: Queue) -> dict[str, int]:
    key = f"labeling:queue-counts:{queue.pk}"
    counts = cache.get(key)
    if counts is None:
        counts = _queue_counts_now(queue)
        if counts["total"] >= COUNTS_CACHE_MIN_ITEMS:
            cache.set(key, counts, COUNTS_CACHE_SECONDS)
    return counts


def _queue_counts_now(queue: Queue) -> dict[str, int]:
    # One pass over the queue's rows: leased_count (kept under the item lock) says whether an
    # item is leased, instead of a lookup of its live assignments per item. A lease that ran
    # out counts as in progress until the sweeper returns it (within a minute).
    row = QueueItem.objects.filter(queue=queue, is_gold=False).aggregate(**_COUNT_AGGREGATES)
    return {k: int(v or 0) for k, v in row.items()}


_OPEN = Q(status=ItemStatus.OPEN)
_COUNT_AGGREGATES = {
    "pending": Count("pk", filter=_OPEN & Q(labels_done=0, leased_count=0)),
    "in_progress": Count("pk", filter=_OPEN & (Q(labels_done__gt=0) | Q(leased_count__gt=0))),
    "needs_review": Count("pk", filter=Q(status=ItemStatus.NEEDS_REVIEW)),
    "completed": Count("pk", filter=Q(status=ItemStatus.COMPLETED)),
    "dropped": Count("pk", filter=Q(status=ItemStatus.DROPPED)),
    "total": Count("pk"),
}


def queue_counts_many(*, queues: list[Queue]) -> dict[int, dict[str, int]]:
    """queue_counts of several queues: the cached ones from one cache read, the others from one
    grouped pass (the queue list asks for every queue it shows)."""
    keys = {f"labeling:queue-counts:{q.pk}": q.pk for q in queues}
    counts: dict[int, dict[str, int]] = {keys[k]: v for k, v in cache.get_many(list(keys)).items()}
    missing = [q.pk for q in queues if q.pk not in counts]
    if missing:
        empty = {name: 0 for name in ("pending", "in_progress", "needs_review", "completed", "dropped", "total")}
        fresh = {pk: dict(empty) for pk in missing}
        for row in (
            QueueItem.objects.filter(queue_id__in=missing, is_gold=False)
            .values("queue_id")
            .order_by()
            .annotate(**_COUNT_AGGREGATES)
        ):
            queue_id = row.pop("queue_id")
            fresh[queue_id] = {k: int(v or 0) for k, v in row.items()}
        big = {f"labeling:queue-counts:{pk}": c for pk, c in fresh.items() if c["total"] >= COUNTS_CACHE_MIN_ITEMS}
        if big:
            cache.set_many(big, COUNTS_CACHE_SECONDS)
        counts.update(fresh)
    return counts


def user_queue_progress_many(*, queues: list[Queue], user: AbstractBaseUser) -> dict[int, dict[str, int]]:
    """user_queue_progress for several queues in one grouped query."""
    progress = {q.pk: {"done": 0, "skipped": 0, "leased": 0} for q in queues}
    rows = (
        Assignment.objects.filter(queue_id__in=list(progress), user=user)
        .values("queue_id")
        .order_by()
        .annotate(**_progress_aggregates())
    )
    for row in rows:
        queue_id = row.pop("queue_id")
        progress[queue_id] = {k: int(v or 0) for k, v in row.items()}
    return progress


def _progress_aggregates() -> dict[str, Count]:
    return {
        "done": Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED)),
        "skipped": Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
        "leased": Count("pk", filter=Q(status=AssignmentStatus.ACTIVE, lease_expires_at__gt=timezone.now())),
    }


def user_queue_progress(*, queue: Queue, user: AbstractBaseUser) -> dict[str, int]:
    row = Assignment.objects.filter(queue=queue, user=user).aggregate(**_progress_aggregates())
    return {k: int(v or 0) for k, v in row.items()}


def item_get(*, organization: Organization, item_id: int) -> QueueItem:
    item = (
        QueueItem.objects.filter(organization=organization, pk=item_id)
        .select_related(
            "queue", "queue__schema", "queue__schema__latest_version", "conversation", "conversation__project"
        )
        .first()
    )
    if item is None:
        raise NotFound("Item not found.")
    return item


def item_with_conversation(*, item: QueueItem, queue: Queue) -> QueueItem:
    """Attach the queue already loaded (with its rubric) and the conversation to a freshly
    claimed item: one hand-written query instead of item_get's six-table join."""
    item.queue = queue
    if QueueItem.conversation.is_cached(item):  # the PostgreSQL claim statement brings it
        return item
    row = rawsql.fetchone(sql.ITEM_CONVERSATION, {"id": item.conversation_id, "org": item.organization_id})
    if row is None:
        raise NotFound("Item not found.")
    conversation, project = rawsql.instances(row, Conversation, Project)
    conversation.project = project
    item.conversation = conversation
    return item


def item_get_for_worker(*, organization: Organization, item_id: int, user: AbstractBaseUser, role: str) -> QueueItem:
    """item_get for someone working the item's queue, plus the access check, in one
    hand-written query: every label, skip and draft calls it."""
    if not validation.is_id(item_id):  # raw SQL ahead: an id beyond 64 bits is simply missing
        raise NotFound("Item not found.")
    row = rawsql.fetchone(sql.WORKER_ITEM, {"org": organization.pk, "item": item_id, "user": user.pk})
    if row is None:
        raise NotFound("Item not found.")
    item, queue, schema, version, conversation, project = rawsql.instances(
        row[2:], QueueItem, Queue, LabelSchema, LabelSchemaVersion, Conversation, Project
    )
    conversation.project = project
    item.queue, item.conversation = _worker_queue_assemble(row, queue, schema, version), conversation
    if not queue_can_work(queue=queue, user=user, role=role):
        raise NotFound("Item not found.")
    return item


def lease_held(*, queue: Queue, user: AbstractBaseUser) -> Assignment | None:
    """The live lease this person holds in the queue (the one a claim would give back: the
    oldest), with its item; None when they hold none. A read: showing the labeling page
    never leases."""
    return (
        Assignment.objects.filter(
            queue=queue, user=user, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=timezone.now()
        )
        .select_related("item")
        .order_by("leased_at", "pk")
        .first()
    )


def assignment_for(*, item: QueueItem, user: AbstractBaseUser) -> Assignment | None:
    return Assignment.objects.filter(item=item, user=user).first()


def label_for(*, item: QueueItem, user: AbstractBaseUser) -> Label | None:
    return Label.objects.filter(item=item, user=user).first()


def item_labels(*, item: QueueItem) -> QuerySet[Label]:
    return Label.objects.filter(item=item).select_related("user", "schema_version").order_by("id")


def review_items(*, queue: Queue, limit: int = 50) -> QuerySet[QueueItem]:
    return QueueItem.objects.filter(queue=queue, status=ItemStatus.NEEDS_REVIEW).select_related("conversation")[:limit]


def review_item_next(*, queue: Queue, after: QueueItem) -> QueueItem | None:
    """The item to review after `after`: the next one waiting in id order, else the first one
    waiting (items sent to review behind the reviewer are not skipped)."""
    waiting = QueueItem.objects.filter(queue=queue, status=ItemStatus.NEEDS_REVIEW).exclude(pk=after.pk).order_by("id")
    return waiting.filter(pk__gt=after.pk).first() or waiting.first()


def item_answers_many(*, item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every label's answers of each item, in label order: one query for a page of items."""
    answers: dict[int, list[dict[str, Any]]] = {pk: [] for pk in item_ids}
    for item_id, given in Label.objects.filter(item_id__in=item_ids).order_by("id").values_list("item_id", "answers"):
        answers[item_id].append(given if isinstance(given, dict) else {})
    return answers


def review_overlap_counts(*, queue: Queue) -> dict[str, int]:
    """Why nothing may be waiting for review: how many items have two or more labels, and of
    those how many were agreed on, ruled on by a reviewer, or wait for one more annotator."""
    overlap = Q(labels_done__gte=2, is_gold=False)
    row = QueueItem.objects.filter(queue=queue).aggregate(
        overlap=Count("pk", filter=overlap),
        agreed=Count("pk", filter=overlap & Q(final_source="agreement")),
        reviewed=Count("pk", filter=overlap & Q(final_source="review")),
        waiting=Count("pk", filter=overlap & Q(status=ItemStatus.OPEN)),
    )
    return {k: int(v or 0) for k, v in row.items()}


def queue_labels_per_day(*, queue: Queue, since: dt.datetime) -> dict[dt.date, int]:
    """Labels made per day (in the current time zone) since `since`. A label made since then
    was also updated since then, so the (queue, updated_at) index bounds the rows read to the
    window, however old the queue."""
    rows = (
        Label.objects.filter(queue=queue, updated_at__gte=since, created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .order_by()
        .annotate(n=Count("pk"))
    )
    return {row["day"]: row["n"] for row in rows}


def queue_agreement_per_week(*, queue: Queue, since: dt.datetime) -> dict[dt.date, tuple[int, int]]:
    """Per week (from Monday) since `since`: (agreed, decided) over the items with two or more
    labels completed that week, agreed by their labels or ruled on by a reviewer. Cheap where
    the snapshot is not: it counts item rows through the (queue, status) index, reading no
    label, so the page can draw the trend between snapshot refreshes."""
    rows = (
        QueueItem.objects.filter(
            queue=queue,
            status=ItemStatus.COMPLETED,
            is_gold=False,
            labels_done__gte=2,
            completed_at__gte=since,
            final_source__in=["agreement", "review"],
        )
        .annotate(week=TruncWeek("completed_at"))
        .values("week")
        .order_by()
        .annotate(agreed=Count("pk", filter=Q(final_source="agreement")), decided=Count("pk"))
    )
    return {_as_date(row["week"]): (row["agreed"], row["decided"]) for row in rows}


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def queue_questions(*, queue: Queue) -> list[rubric.Question]:
    version = queue.schema.latest_version
    return rubric.questions_from_json(version.questions if version else [])


# --- statistics (agreement and annotators) ----------------------------------------------------

# Labels are fetched from a server-side cursor in chunks of this many rows, so memory holds one
# chunk of Python tuples and the compact arrays, never a million row objects.
_STATS_CHUNK = 20_000
# Cohen's kappa of an annotator pair on fewer shared items than this is noise (its standard
# error is about 0.3 at ten items), so the pair is listed without it.
PAIR_KAPPA_MIN_ITEMS = 10
STATS_BOOTSTRAP = 200


class _AnswerJson(Func):
    """One answer of `answers` as JSON text ('"good"', '3', 'true', '["a", "b"]'), NULL when
    absent: unambiguous where the ->> text form makes the option "3" and the rating 3 alike."""

    output_field = TextField()

    def __init__(self, key: str) -> None:
        super().__init__(F("answers"), Value(key))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s)::text", arg_joiner=" -> ", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # SQLite's -> (3.38+) returns JSON text too; a plain key is read as the path $.key.
        return self.as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=" -> ", **extra)


class _Coder(dict):
    """JSON text of an answer -> provisional code (first-seen order); -1 for a missing answer.
    Texts that decode to the same answer (a multi-choice list in another order) share a code."""

    def __init__(self) -> None:
        super().__init__({None: -1, "null": -1})
        self.value_codes: dict[Any, int] = {}

    def __missing__(self, text: str) -> int:
        from labeling.agreement import normalise

        value = normalise(json.loads(text))
        code = -1 if value is None else self.value_codes.setdefault(value, len(self.value_codes))
        self[text] = code
        return code


@dataclass(frozen=True)
class LabelArrays:
    """Every label of a queue as parallel arrays, sorted by (item, user)."""

    item: npt.NDArray[np.int64]
    user: npt.NDArray[np.int64]
    time_ms: npt.NDArray[np.int64]  # -1 when not recorded
    gold: npt.NDArray[np.bool_]  # on a gold item (with gold answers)
    gold_correct: npt.NDArray[np.bool_]  # on a gold item, and every comparable answer matches
    questions: list[CodedRatings]  # non-gold labels only; annotator = position in `annotators`
    annotators: list[int]  # user ids by position


def queue_label_arrays(*, queue: Queue) -> LabelArrays:
    """One pass over the queue's labels: item, user, time spent and, per comparable question,
    the answer encoded as a small integer (ordinal questions in scale order)."""
    from labeling.agreement import CodedRatings, normalise, question_categories

    questions = [q for q in queue_questions(queue=queue) if q.comparable]
    gold_answers = {
        pk: answers
        for pk, answers in QueueItem.objects.filter(queue=queue, is_gold=True).values_list("pk", "gold_answers")
        if answers
    }
    columns = {f"answer_{i}": _AnswerJson(q.key) for i, q in enumerate(questions)}
    rows = (
        Label.objects.filter(queue=queue)
        .order_by()
        .annotate(**columns)
        .values_list("item_id", "user_id", "time_spent_ms", *columns)
        .iterator(chunk_size=_STATS_CHUNK)
    )
    coders = [_Coder() for _ in questions]
    parts: list[list[np.ndarray]] = [[] for _ in range(3 + len(questions))]
    while chunk := list(itertools.islice(rows, _STATS_CHUNK)):
        columns_of = list(zip(*chunk, strict=True))
        parts[0].append(np.array(columns_of[0], dtype=np.int64))
        parts[1].append(np.array(columns_of[1], dtype=np.int64))
        parts[2].append(np.array([-1 if t is None else t for t in columns_of[2]], dtype=np.int64))
        for i, coder in enumerate(coders):
            parts[3 + i].append(np.array([coder[text] for text in columns_of[3 + i]], dtype=np.int32))
    item, user, time_ms, *provisional = (np.concatenate(p) if p else np.zeros(0, dtype=np.int64) for p in parts)
    annotators = np.unique(user)
    position = np.searchsorted(annotators, user)
    order = np.argsort(item * max(len(annotators), 1) + position, kind="stable")
    item, user, time_ms, position = item[order], user[order], time_ms[order], position[order]
    gold_ids = np.array(sorted(gold_answers), dtype=np.int64)
    gold = np.isin(item, gold_ids)
    gold_correct = gold.copy()

    coded = []
    for q, coder, codes in zip(questions, coders, provisional, strict=True):
        codes = codes[order]
        by_code = {code: value for value, code in coder.value_codes.items()}
        used = np.unique(codes[~gold & (codes >= 0)])
        level, categories = question_categories(q.level, q.categories(), (by_code[int(c)] for c in used))
        final = {c: i for i, c in enumerate(categories)}
        # Provisional -> final code; values seen only on gold items get codes past the categories.
        remap = np.array([final.get(by_code[c], len(categories) + c) for c in range(len(by_code))] + [-1])
        codes = remap[codes]  # -1 indexes the appended -1: missing stays missing
        keep = ~gold & (codes >= 0)
        coded.append(CodedRatings(q.key, level, categories, item[keep], position[keep], codes[keep]))
        # Gold: the label's answer must equal the gold answer (both missing counts as equal).
        expected = {
            pk: (
                -1
                if (value := normalise((answers or {}).get(q.key))) is None
                else final.get(value, len(categories) + coder.value_codes.get(value, len(by_code)))
            )
            for pk, answers in gold_answers.items()
        }
        gold_rows = np.flatnonzero(gold)
        gold_correct[gold_rows] &= codes[gold_rows] == np.array(
            [expected[int(i)] for i in item[gold_rows]], dtype=np.int64
        )
    return LabelArrays(item, user, time_ms, gold, gold_correct, coded, annotators.tolist())


def queue_statistics(*, queue: Queue) -> tuple[dict[str, Any], int]:
    """Agreement and per-annotator figures of a queue, and how many labels they rest on. The
    labels are read once (queue_label_arrays); counts per annotator come from SQL aggregates."""
    from labeling import agreement

    arrays = queue_label_arrays(queue=queue)
    report = agreement.coded_report(
        arrays.questions,
        arrays.annotators,
        bootstrap=STATS_BOOTSTRAP,
        seed=queue.pk,
        kappa_min_items=PAIR_KAPPA_MIN_ITEMS,
    )
    with_others = report.pop("agreement_with_others")
    return {"agreement": report, "annotators": _annotator_rows(queue, arrays, with_others)}, len(arrays.item)


def _annotator_rows(queue: Queue, arrays: LabelArrays, with_others: dict[Any, float | None]) -> list[dict[str, Any]]:
    now = timezone.now()
    per_user: dict[int, dict[str, Any]] = {}
    assignments = (
        Assignment.objects.filter(queue=queue)
        .order_by()
        .values("user_id")
        .annotate(
            done=Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED)),
            skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
            leased=Count("pk", filter=Q(status=AssignmentStatus.ACTIVE, lease_expires_at__gt=now)),
        )
    )
    for row in assignments:
        per_user[row["user_id"]] = {k: row[k] for k in ("user_id", "done", "skipped", "leased")}
    spans = {
        row["user_id"]: row
        for row in Label.objects.filter(queue=queue)
        .order_by()
        .values("user_id")
        .annotate(n=Count("pk"), first=Min("created_at"), last=Max("created_at"))
    }
    for user_id in spans:
        per_user.setdefault(user_id, {"user_id": user_id, "done": 0, "skipped": 0, "leased": 0})
    names = dict(get_user_model().objects.filter(pk__in=list(per_user)).values_list("pk", "username"))
    medians = _median_seconds(arrays.user, arrays.time_ms)
    golds = _gold_hits(arrays.user, arrays.gold, arrays.gold_correct)
    out = []
    for user_id, row in per_user.items():
        span = spans.get(user_id)
        hours = (span["last"] - span["first"]).total_seconds() / 3600 if span and span["n"] > 1 else 0
        hits, total = golds.get(user_id, (0, 0))
        row |= {
            "username": names.get(user_id, f"user {user_id}"),
            "median_seconds": medians.get(user_id),
            "labels_per_hour": round(span["n"] / hours, 1) if hours > 0 else None,
            "agreement_with_others": with_others.get(user_id),
            "gold_accuracy": round(hits / total, 3) if total else None,
            "gold_items": total,
        }
        out.append(row)
    return sorted(out, key=lambda r: (r["username"], r["user_id"]))


def _median_seconds(user: np.ndarray, time_ms: np.ndarray) -> dict[int, float]:
    known = time_ms >= 0
    user, time_ms = user[known], time_ms[known]
    if not len(user):
        return {}
    order = np.lexsort((time_ms, user))
    user, time_ms = user[order], time_ms[order]
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    ends = np.r_[starts[1:], len(user)]
    out = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        middle = (start + end - 1) / 2
        value = (time_ms[int(np.floor(middle))] + time_ms[int(np.ceil(middle))]) / 2
        out[int(user[start])] = round(float(value) / 1000, 1)
    return out


def _gold_hits(user: np.ndarray, gold: np.ndarray, correct: np.ndarray) -> dict[int, tuple[int, int]]:
    users, inverse = np.unique(user[gold], return_inverse=True)
    totals = np.bincount(inverse, minlength=len(users))
    hits = np.bincount(inverse, weights=correct[gold].astype(np.float64), minlength=len(users))
    return {int(u): (int(h), int(t)) for u, h, t in zip(users, hits, totals, strict=True)}


def agreement_snapshot_get(*, queue: Queue) -> AgreementSnapshot | None:
    return AgreementSnapshot.objects.filter(queue=queue).first()


def labels_changed_since(*, queue: Queue, moment: Any) -> bool:
    """Any label of the queue added or edited after `moment` (one probe of label_queue_updated)."""
    return Label.objects.filter(queue=queue, updated_at__gt=moment).exists()


def queue_label_count_at_most(*, queue: Queue, limit: int) -> int:
    """The queue's label count, counted no further than limit + 1: cheap on a huge queue."""
    return Label.objects.filter(queue=queue).order_by()[: limit + 1].count()


def label_list_for_user(*, organization: Organization, user: AbstractBaseUser, queue_ids: list[int]) -> QuerySet[Label]:
    """A person's own labels in these queues, most recently changed first (their "my work"
    page). Filtered by queue and user, so it runs on the label_queue_user index."""
    return (
        Label.objects.filter(organization=organization, user=user, queue_id__in=queue_ids)
        .select_related("queue", "item", "item__conversation")
        .order_by("-updated_at", "-pk")
    )


# "My work" shows each queue's median time over the person's latest labels there, not all of
# them: a long-serving annotator's page reads a bounded number of rows.
MEDIAN_SAMPLE = 1000


def user_time_spent_samples(
    *, organization: Organization, user: AbstractBaseUser, queue_ids: list[int], sample: int = MEDIAN_SAMPLE
) -> dict[int, list[int]]:
    """time_spent_ms of a person's latest `sample` labels in each queue (one query)."""
    latest = Window(RowNumber(), partition_by=[F("queue_id")], order_by=[F("updated_at").desc(), F("pk").desc()])
    rows = (
        Label.objects.filter(organization=organization, user=user, queue_id__in=queue_ids, time_spent_ms__isnull=False)
        .annotate(n=latest)
        .filter(n__lte=sample)
        .values_list("queue_id", "time_spent_ms")
    )
    times: dict[int, list[int]] = {}
    for queue_id, spent in rows:
        times.setdefault(queue_id, []).append(spent)
    return times


def project_budget_usage(
    *, project: Project, queues: Sequence[Queue], now: dt.datetime | None = None
) -> dict[str, Any]:
    """Today's use of the project's budget (in the project's day) in total and per queue, for
    the queue list and the queue API: None fields when the project has no budget."""
    now = now or timezone.now()
    day = sampling.budget_time(now, project.timezone).date()
    budget = ProjectBudget.objects.filter(project=project).first()
    if budget is None:
        return {"daily_items": None, "used": None, "left": None, "queues": {}}
    used_total = (
        ProjectBudgetCounter.objects.filter(project=project, day=day).values_list("admitted", flat=True).first() or 0
    )
    used = dict(
        SamplingCounter.objects.filter(queue__in=[q.pk for q in queues], key="project", day=day).values_list(
            "queue_id", "admitted"
        )
    )
    per_queue = {}
    for q in queues:
        limit = budget_controller.share_limit(budget.daily_items, (budget.shares or {}).get(str(q.pk)))
        spent = used.get(q.pk, 0)
        left = max(0, min(limit - spent, budget.daily_items - used_total))
        per_queue[q.pk] = {"limit": limit, "used": spent, "left": left, "share": (budget.shares or {}).get(str(q.pk))}
    return {
        "daily_items": budget.daily_items,
        "used": used_total,
        "left": max(0, budget.daily_items - used_total),
        "queues": per_queue,
    }


def project_budget_get(*, organization: Organization, project: Project) -> ProjectBudget | None:
    return ProjectBudget.objects.filter(organization=organization, project=project).first()


def queue_rate_changes(*, organization: Organization, queue: Queue, limit: int = 50) -> list[RateChange]:
    """The queue's latest rate changes, newest first."""
    return list(RateChange.objects.filter(organization=organization, queue=queue).order_by("-at", "-id")[:limit])


def queue_budgets_many(*, queues: Sequence[Queue], now: dt.datetime | None = None) -> dict[int, dict[str, Any] | None]:
    """Per queue: today's use of its project's budget ({limit, used, left, share} and the
    project's own used/left), or None when its project has no budget. Two queries a project
    that has one, one query for all the projects."""
    by_project: dict[int, list[Queue]] = {}
    for q in queues:
        by_project.setdefault(q.project_id, []).append(q)
    with_budget = set(
        ProjectBudget.objects.filter(project_id__in=list(by_project)).values_list("project_id", flat=True)
    )
    out: dict[int, dict[str, Any] | None] = {q.pk: None for q in queues}
    for project_id, members in by_project.items():
        if project_id not in with_budget:
            continue
        usage = project_budget_usage(project=members[0].project, queues=members, now=now)
        for q in members:
            out[q.pk] = {**usage["queues"][q.pk], "project_used": usage["used"], "project_left": usage["left"]}
    return out


def queue_last_rate_changes(*, queues: Sequence[Queue]) -> dict[int, RateChange]:
    """The latest rate change of each of these queues that has one (one query)."""
    latest: dict[int, RateChange] = {}
    for change in RateChange.objects.filter(queue__in=[q.pk for q in queues]).order_by("queue_id", "-at", "-id"):
        latest.setdefault(change.queue_id, change)
    return latest


# --- what the core's conversation list and page ask of labeling (registered in receivers.py) ---


def conversation_labeled_rows() -> QuerySet[Label]:
    """Labels of the outer conversation (`OuterRef("pk")` over Conversation), in any queue."""
    return Label.objects.filter(item__conversation=OuterRef("pk"))


def conversation_queued_rows() -> QuerySet[QueueItem]:
    """The outer conversation's items still in a queue (a dropped item has left it)."""
    return QueueItem.objects.filter(conversation=OuterRef("pk")).exclude(status=ItemStatus.DROPPED)


def _answer_pairs(answers: Any) -> list[tuple[str, str]]:
    """(question, answer) as text, for a template that must not look keys up in the dict (a
    question named "items" would shadow dict.items there)."""
    if not isinstance(answers, dict):
        return []
    return [
        (str(key), ", ".join(str(v) for v in value) if isinstance(value, list) else str(value))
        for key, value in answers.items()
    ]


@dataclass(frozen=True)
class ConversationLabeling:
    """One queue item of a conversation, its labels oldest first (each with its answers as
    pairs), and its final answers as pairs."""

    item: QueueItem
    labels: list[tuple[Label, list[tuple[str, str]]]]
    final: list[tuple[str, str]]


def conversation_labeling(*, organization: Organization, conversation_id: int) -> list[ConversationLabeling]:
    """Every queue a conversation of `organization` is in, with who labeled it and the final
    answers; two queries however many queues and labels."""
    items = list(
        QueueItem.objects.filter(organization=organization, conversation_id=conversation_id)
        .select_related("queue", "reviewed_by")
        .order_by("queue__name", "id")
    )
    labels: dict[int, list[Label]] = {}
    for label in (
        Label.objects.filter(organization=organization, item_id__in=[i.pk for i in items])
        .select_related("user")
        .order_by("created_at", "id")
    ):
        labels.setdefault(label.item_id, []).append(label)
    return [
        ConversationLabeling(
            item=item,
            labels=[(label, _answer_pairs(label.answers)) for label in labels.get(item.pk, [])],
            final=_answer_pairs(item.final_answers),
        )
        for item in items
    ]


def pairwise_item_for(*, item: QueueItem) -> PairwiseItem | None:
    """The two sides of an item of a pairwise queue (None for any other queue's item)."""
    if item.queue.kind != QueueKind.PAIRWISE:
        return None
    return PairwiseItem.objects.filter(item=item).first()


@dataclass(frozen=True)
class PairwiseRow:
    """One item of a pairwise queue as the results read it: the side the candidate drew, its
    segments, and the item's final answers (None until agreement or review made them final)."""

    item_id: int
    key: str
    tags: tuple[str, ...]
    candidate_side: str
    status: str
    final_answers: dict[str, Any] | None


def pairwise_rows(*, queue: Queue) -> list[PairwiseRow]:
    rows = (
        PairwiseItem.objects.filter(organization_id=queue.organization_id, item__queue=queue)
        .order_by("item_id")
        .values_list("item_id", "key", "tags", "candidate_side", "item__status", "item__final_answers")
    )
    return [
        PairwiseRow(
            item_id=item_id,
            key=key,
            tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
            candidate_side=side,
            status=status,
            final_answers=final if isinstance(final, dict) else None,
        )
        for item_id, key, tags, side, status, final in rows
    ]
