"""Reads for labeling, organization first: another tenant's ids are simply not found."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from labeling import rubric
from labeling.models import (
    Assignment,
    AssignmentStatus,
    ItemStatus,
    Label,
    LabelSchema,
    LabelSchemaVersion,
    Queue,
    QueueItem,
)
from reviewapp import rawsql, validation
from reviewapp.errors import NotFound
from reviewapp.models import Conversation, Organization, Project, Role

if TYPE_CHECKING:
    from labeling.agreement import QuestionRatings

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
    row = rawsql.fetchone(_WORKER_QUEUE_SQL, {"org": organization.pk, "queue": queue_id, "user": user.pk})
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


_WORKER_QUEUE_SQL = f"""
SELECT EXISTS (SELECT 1 FROM labeling_queue_assignees n WHERE n.queue_id = q.id),
       EXISTS (SELECT 1 FROM labeling_queue_assignees n WHERE n.queue_id = q.id AND n.user_id = %(user)s),
       {rawsql.columns(Queue, "q")}, {rawsql.columns(Project, "p")}, {rawsql.columns(LabelSchema, "s")},
       {rawsql.columns(LabelSchemaVersion, "v")}
FROM labeling_queue q
JOIN reviewapp_project p ON p.id = q.project_id
JOIN labeling_labelschema s ON s.id = q.schema_id
LEFT JOIN labeling_labelschemaversion v ON v.id = s.latest_version_id
WHERE q.id = %(queue)s AND q.organization_id = %(org)s
"""  # noqa: S608 - only the models' own column names are interpolated


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
    open_ = Q(status=ItemStatus.OPEN)
    row = QueueItem.objects.filter(queue=queue, is_gold=False).aggregate(
        pending=Count("pk", filter=open_ & Q(labels_done=0, leased_count=0)),
        in_progress=Count("pk", filter=open_ & (Q(labels_done__gt=0) | Q(leased_count__gt=0))),
        needs_review=Count("pk", filter=Q(status=ItemStatus.NEEDS_REVIEW)),
        completed=Count("pk", filter=Q(status=ItemStatus.COMPLETED)),
        dropped=Count("pk", filter=Q(status=ItemStatus.DROPPED)),
        total=Count("pk"),
    )
    return {k: int(v or 0) for k, v in row.items()}


def user_queue_progress(*, queue: Queue, user: AbstractBaseUser) -> dict[str, int]:
    row = Assignment.objects.filter(queue=queue, user=user).aggregate(
        done=Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED)),
        skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
        leased=Count("pk", filter=Q(status=AssignmentStatus.ACTIVE, lease_expires_at__gt=timezone.now())),
    )
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
    row = rawsql.fetchone(_CONVERSATION_SQL, {"id": item.conversation_id, "org": item.organization_id})
    if row is None:
        raise NotFound("Item not found.")
    conversation, project = rawsql.instances(row, Conversation, Project)
    conversation.project = project
    item.conversation = conversation
    return item


_CONVERSATION_SQL = f"""
SELECT {rawsql.columns(Conversation, "c")}, {rawsql.columns(Project, "p")}
FROM reviewapp_conversation c JOIN reviewapp_project p ON p.id = c.project_id
WHERE c.id = %(id)s AND c.organization_id = %(org)s
"""  # noqa: S608 - only the models' own column names are interpolated


def item_get_for_worker(*, organization: Organization, item_id: int, user: AbstractBaseUser, role: str) -> QueueItem:
    """item_get for someone working the item's queue, plus the access check, in one
    hand-written query: every label, skip and draft calls it."""
    if not validation.is_id(item_id):  # raw SQL ahead: an id beyond 64 bits is simply missing
        raise NotFound("Item not found.")
    row = rawsql.fetchone(_WORKER_ITEM_SQL, {"org": organization.pk, "item": item_id, "user": user.pk})
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


_WORKER_ITEM_SQL = f"""
SELECT EXISTS (SELECT 1 FROM labeling_queue_assignees n WHERE n.queue_id = q.id),
       EXISTS (SELECT 1 FROM labeling_queue_assignees n WHERE n.queue_id = q.id AND n.user_id = %(user)s),
       {rawsql.columns(QueueItem, "i")}, {rawsql.columns(Queue, "q")}, {rawsql.columns(LabelSchema, "s")},
       {rawsql.columns(LabelSchemaVersion, "v")}, {rawsql.columns(Conversation, "c")}, {rawsql.columns(Project, "p")}
FROM labeling_queueitem i
JOIN labeling_queue q ON q.id = i.queue_id
JOIN labeling_labelschema s ON s.id = q.schema_id
LEFT JOIN labeling_labelschemaversion v ON v.id = s.latest_version_id
JOIN reviewapp_conversation c ON c.id = i.conversation_id
JOIN reviewapp_project p ON p.id = c.project_id
WHERE i.id = %(item)s AND i.organization_id = %(org)s
"""  # noqa: S608 - only the models' own column names are interpolated


def assignment_for(*, item: QueueItem, user: AbstractBaseUser) -> Assignment | None:
    return Assignment.objects.filter(item=item, user=user).first()


def label_for(*, item: QueueItem, user: AbstractBaseUser) -> Label | None:
    return Label.objects.filter(item=item, user=user).first()


def item_labels(*, item: QueueItem) -> QuerySet[Label]:
    return Label.objects.filter(item=item).select_related("user", "schema_version").order_by("id")


def review_items(*, queue: Queue, limit: int = 50) -> QuerySet[QueueItem]:
    return QueueItem.objects.filter(queue=queue, status=ItemStatus.NEEDS_REVIEW).select_related("conversation")[:limit]


def queue_questions(*, queue: Queue) -> list[rubric.Question]:
    version = queue.schema.latest_version
    return rubric.questions_from_json(version.questions if version else [])


def agreement_inputs(*, queue: Queue) -> list[QuestionRatings]:
    """Labels of items with two or more labels, keyed by item (never by text), per question."""
    from labeling.agreement import QuestionRatings

    questions = [q for q in queue_questions(queue=queue) if q.comparable]
    multi = QueueItem.objects.filter(queue=queue, labels_done__gte=2, is_gold=False).values("pk")
    ratings: dict[str, dict[int, dict[int, Any]]] = {q.key: defaultdict(dict) for q in questions}
    for item_id, user_id, answers in Label.objects.filter(queue=queue, item_id__in=multi).values_list(
        "item_id", "user_id", "answers"
    ):
        for q in questions:
            value = (answers or {}).get(q.key)
            if value is None:
                continue
            ratings[q.key][item_id][user_id] = tuple(value) if isinstance(value, list) else value
    return [
        QuestionRatings(key=q.key, level=q.level, ratings=dict(ratings[q.key]), categories=q.categories())
        for q in questions
    ]


def queue_agreement(*, queue: Queue, bootstrap: int = 200) -> dict[str, Any]:
    # Imported here: scikit-learn and statsmodels take a second to import, and only this
    # read needs them.
    from labeling import agreement

    return agreement.agreement_report(agreement_inputs(queue=queue), bootstrap=bootstrap, seed=queue.pk)


def confusion_table(*, queue: Queue, question_key: str) -> dict[str, Any]:
    """For items with exactly two labels: how often annotator answer A met answer B."""
    inputs = {q.key: q for q in agreement_inputs(queue=queue)}
    q = inputs.get(question_key)
    if q is None:
        return {"categories": [], "rows": []}
    categories = [c for c in (q.categories or [])] or sorted(
        {v for r in q.ratings.values() for v in r.values()}, key=str
    )
    index = {c: i for i, c in enumerate(categories)}
    table = [[0] * len(categories) for _ in categories]
    for votes in q.ratings.values():
        if len(votes) != 2:
            continue
        a, b = (votes[k] for k in sorted(votes))
        if a in index and b in index:
            table[index[a]][index[b]] += 1
    return {"categories": categories, "rows": table}


def annotator_stats(*, queue: Queue) -> list[dict[str, Any]]:
    """Per assignee: done, skipped, leased, throughput (labels per active hour), median seconds
    per item, agreement with others, gold accuracy."""
    now = timezone.now()
    per_user: dict[int, dict[str, Any]] = {}
    for user_id, username, status, expires in Assignment.objects.filter(queue=queue).values_list(
        "user_id", "user__username", "status", "lease_expires_at"
    ):
        row = per_user.setdefault(
            user_id, {"user_id": user_id, "username": username, "done": 0, "skipped": 0, "leased": 0}
        )
        if status == AssignmentStatus.SUBMITTED:
            row["done"] += 1
        elif status == AssignmentStatus.SKIPPED:
            row["skipped"] += 1
        elif status == AssignmentStatus.ACTIVE and expires > now:
            row["leased"] += 1
    times: dict[int, list[int]] = defaultdict(list)
    spans: dict[int, list] = defaultdict(list)
    gold_hits: dict[int, list[bool]] = defaultdict(list)
    questions = [q for q in queue_questions(queue=queue) if q.comparable]
    for user_id, spent, created, answers, is_gold, gold in Label.objects.filter(queue=queue).values_list(
        "user_id", "time_spent_ms", "created_at", "answers", "item__is_gold", "item__gold_answers"
    ):
        if spent is not None:
            times[user_id].append(spent)
        spans[user_id].append(created)
        if is_gold and gold:
            gold_hits[user_id].append(rubric.answers_agree(questions, [answers or {}, gold]))
    from labeling import agreement

    agree = agreement.annotator_agreement_with_others(agreement_inputs(queue=queue))
    out = []
    for user_id, row in per_user.items():
        stamps = sorted(spans.get(user_id, []))
        hours = (stamps[-1] - stamps[0]).total_seconds() / 3600 if len(stamps) > 1 else 0
        row["median_seconds"] = round(statistics.median(times[user_id]) / 1000, 1) if times.get(user_id) else None
        row["labels_per_hour"] = round(len(stamps) / hours, 1) if hours > 0 else None
        row["agreement_with_others"] = agree.get(user_id)
        hits = gold_hits.get(user_id, [])
        row["gold_accuracy"] = round(sum(hits) / len(hits), 3) if hits else None
        row["gold_items"] = len(hits)
        out.append(row)
    return sorted(out, key=lambda r: r["username"])


def label_list_for_user(*, organization: Organization, user: AbstractBaseUser, queue_ids: list[int]) -> QuerySet[Label]:
    """A person's own labels in these queues, most recently changed first (their "my work"
    page). Filtered by queue and user, so it runs on the label_queue_user index."""
    return (
        Label.objects.filter(organization=organization, user=user, queue_id__in=queue_ids)
        .select_related("queue", "item", "item__conversation")
        .order_by("-updated_at", "-pk")
    )
