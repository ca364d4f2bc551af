"""Row locks for labeling, and the claim path, which locks as it leases. Every function that
locks must run inside transaction.atomic(); the caller holds the lock until its transaction
ends. Lock order everywhere: the item first, then its assignments. The hand-written
statements these run are in labeling/sql.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection
from django.db.models import BooleanField, Exists, OuterRef
from django.db.models.expressions import RawSQL

from labeling import sql
from labeling.models import (
    Assignment,
    AssignmentStatus,
    Label,
    LabelSchema,
    ProjectBudgetCounter,
    Queue,
    QueueItem,
    SamplingBatch,
    SamplingCounter,
)
from reviewapp import rawsql
from reviewapp.errors import ApplicationError
from reviewapp.models import Conversation, Project

logger = logging.getLogger(__name__)


def item_relock(item: QueueItem) -> QueueItem:
    """Lock an item the caller already loaded and reload its columns in place (another request
    may have changed its counters meanwhile), keeping the queue, rubric and conversation loaded
    with it. One hand-written statement: every label and skip takes this lock."""
    row = rawsql.fetchone(sql.ITEM_RELOCK, [item.pk])
    if row is None:
        raise QueueItem.DoesNotExist(f"Item {item.pk} is gone.")
    fresh = rawsql.instance(QueueItem, row)
    for field in QueueItem._meta.concrete_fields:
        setattr(item, field.attname, getattr(fresh, field.attname))
    return item


def assignment_and_label_lock(*, item_id: int, user_id: int) -> tuple[Assignment | None, Label | None]:
    """This person's assignment on the item (locked) and their label on it, if any, in one
    statement. Call it holding the item's lock. A label is only ever made under an
    assignment, so a person with no assignment has no label either."""
    row = rawsql.fetchone(sql.ASSIGNMENT_AND_LABEL, [item_id, user_id])
    if row is None:
        return None, None
    assignment, label = rawsql.instances(row, Assignment, Label)
    return assignment, label


# The claimable-item predicate of labeling/sql.py, over the ORM query's own table name (the base
# table's alias), so the ORM claim and the claim statement cannot disagree on what is claimable.
_CLAIMABLE = RawSQL(sql.claimable(str(rawsql.Table(QueueItem))), (), output_field=BooleanField())  # noqa: S611


def claimable_item_lock(
    *, queue: Queue, user_id: int, skipped_by_user: bool = False, gold: bool = False
) -> QueueItem | None:
    """Lock the next item this person may take: open, a label slot free, and never handed to
    them before (or, with `skipped_by_user`, only items they skipped earlier). One indexed
    statement; SKIP LOCKED lets concurrent claimers pass each other instead of queueing."""
    mine = Assignment.objects.filter(item=OuterRef("pk"), user_id=user_id)
    qs = QueueItem.objects.filter(_CLAIMABLE, queue=queue, is_gold=gold)
    if skipped_by_user:
        qs = qs.filter(Exists(mine.filter(status=AssignmentStatus.SKIPPED)))
    else:
        qs = qs.filter(~Exists(mine))
    return qs.order_by("-priority", "id").select_for_update(skip_locked=True, of=("self",)).first()


# A claim holds the lock for a handful of statements (milliseconds). A wait this long means the
# lock was left behind: a session lock taken through a transaction-mode pooler stays on a
# server connection that the unlock never reached (DB_SESSION_LOCKS), and without a bound
# every later claim of that person in that queue waited forever, holding a web worker. The
# statement bounds its own wait (sql.CLAIM_PRECHECK_LOCKED).
CLAIM_LOCK_TIMEOUT_MS = 10_000
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout

# Set once an unlock finds the lock missing from its session: this process's statements reach
# different server sessions (a pooler in transaction mode), so session locks would be left
# behind. Its claims take transaction-level locks from then on, as with DB_SESSION_LOCKS=0.
_session_locks_failed = False


class ClaimLockTimeout(Exception):
    """The claim lock was not free within CLAIM_LOCK_TIMEOUT_MS."""


def session_locks_usable() -> bool:
    """Whether a claim outside a transaction may take the session-level claim lock."""
    return settings.DB_SESSION_LOCKS and not _session_locks_failed


def claim_precheck(
    *, queue_id: int, user_id: int, exclude_item_id: int | None, now: dt.datetime, lock: str | None = None
) -> tuple[int | None, bool]:
    """Before a claim, in one indexed read: the id of a live lease this person already holds in
    the queue (other than `exclude_item_id`), and whether any lease in the queue has expired and
    should go back to the pool first.

    With `lock` ("session" or "transaction", PostgreSQL) the same statement first takes this
    person's claim lock for the queue, waiting at most CLAIM_LOCK_TIMEOUT_MS (else
    ClaimLockTimeout, holding nothing; inside a transaction, that transaction is then aborted);
    a "session" lock must be given back with claim_unlock. The answer is read from the
    statement's snapshot, taken before a wait for the lock: after waiting, a lease the previous
    holder just made may be missing here, so the lease statement checks again
    (item_lease_next's `held` guard)."""
    params = {
        "queue": queue_id,
        "user": user_id,
        "now": connection.ops.adapt_datetimefield_value(now),
        "exclude": exclude_item_id or 0,
    }
    if not lock:
        held, expired = rawsql.fetchone(sql.CLAIM_PRECHECK, params)
        return held, bool(expired)
    params["lock_timeout"] = str(CLAIM_LOCK_TIMEOUT_MS)
    try:
        held, expired = rawsql.fetchone(sql.CLAIM_PRECHECK_LOCKED[lock], params)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise ClaimLockTimeout(f"claim lock for queue {queue_id}, user {user_id}") from exc
        raise
    return held, bool(expired)


def claim_unlock(*, queue_id: int, user_id: int, taken: bool = True) -> None:
    """Give back the session claim lock claim_precheck took. Call it after the lease committed,
    and on every way out after a locked precheck was sent, errors included (`taken=False` when
    that precheck failed: the lock may or may not have been taken, and a session lock outlives
    its statement's failure)."""
    try:
        (released,) = rawsql.fetchone(sql.CLAIM_UNLOCK, {"queue": queue_id, "user": user_id})
    except DatabaseError:
        # The connection failed under us: close it, and the session and its locks end with it.
        logger.exception("claim lock: unlock failed, closing the database connection")
        connection.close()
        return
    if taken and not released:
        global _session_locks_failed
        _session_locks_failed = True
        logger.error(
            "claim lock: the unlock found no lock in this database session, so the lock was taken in"
            " another one and stays there (a pooler in transaction mode?). This process now takes"
            " transaction-level claim locks; set DB_SESSION_LOCKS=0."
        )


@contextlib.contextmanager
def claim_lock(
    *, queue_id: int, user_id: int, exclude_item_id: int | None, now: dt.datetime, scope: str | None
) -> Iterator[tuple[int | None, bool]]:
    """The precheck, taking this person's claim lock for the queue in `scope` (None: no lock,
    SQLite), and its answer for the body. A session lock is given back when the body ends,
    however it ends, and also when the precheck itself failed after it may have locked.

    A session lock not free in time (ClaimLockTimeout) is logged and the claim goes on without
    it: a lock left on another server session must not shut a person out of a queue until
    that session ends. Going on risks only what the lock prevents, two claims of one person at
    the same instant both leasing. Inside a transaction the timeout aborted it, so the claim
    ends with a 503."""
    taken = False
    try:
        try:
            answer = claim_precheck(
                queue_id=queue_id, user_id=user_id, exclude_item_id=exclude_item_id, now=now, lock=scope
            )
            taken = scope == "session"
        except ClaimLockTimeout:
            logger.error(
                "claim lock: waited %d ms for queue %s, user %s; a session lock left behind by a"
                " transaction-mode pooler? (DB_SESSION_LOCKS)",
                CLAIM_LOCK_TIMEOUT_MS,
                queue_id,
                user_id,
            )
            if scope != "session":
                raise ApplicationError(
                    "Another claim of yours in this queue is still in progress; try again in a moment.", status=503
                ) from None
            scope = None  # nothing to give back
            answer = claim_precheck(queue_id=queue_id, user_id=user_id, exclude_item_id=exclude_item_id, now=now)
        yield answer
    finally:
        if scope == "session":
            claim_unlock(queue_id=queue_id, user_id=user_id, taken=taken)


def item_lease_next(
    *, queue: Queue, user_id: int, gold: bool, now: dt.datetime, until: dt.datetime, exclude_item_id: int | None
) -> Assignment | None:
    """PostgreSQL only: lock the next claimable item, add one to its leased_count and create the
    person's active assignment, in one statement (atomic on its own). Returns the assignment
    with its item, and the item's conversation, attached; None when nothing is left for them,
    or when they hold a live lease in the queue other than `exclude_item_id` (the `held`
    guard). Call it holding this person's claim lock (claim_precheck): the guard then sees every
    lease their earlier claims made, and one person holds one live lease in the queue at most
    (two with the browser's prefetch). Without the lock a concurrent claim by the same person can raise IntegrityError
    on (item, user); the caller retries."""
    params = {
        "queue": queue.pk,
        "gold": gold,
        "user": user_id,
        "now": now,
        "until": until,
        "exclude": exclude_item_id or 0,
    }
    # Inside a caller's transaction the setting would outlive this statement: keep it durable.
    row = rawsql.fetchone(sql.LEASE_NEXT if connection.in_atomic_block else sql.LEASE_NEXT_RELAXED, params)
    if row is None:
        return None
    item, conversation, project = rawsql.instances(row[1:], QueueItem, Conversation, Project)
    conversation.project = project
    item.queue, item.conversation = queue, conversation
    assignment = Assignment(
        id=row[0],
        organization_id=item.organization_id,
        queue=queue,
        item=item,
        user_id=user_id,
        status=AssignmentStatus.ACTIVE,
        leased_at=now,
        lease_expires_at=until,
        draft_answers={},
    )
    assignment._state.adding = False
    assignment._state.db = connection.alias
    return assignment


def claimable_item_exists(*, queue_id: int, user_id: int) -> bool:
    """Whether the queue holds an item this person could take, locked or not (no lock taken).
    Asked only after a SKIP LOCKED claim came back empty, to tell "nothing left" from "all
    of it locked this instant"."""
    return bool(rawsql.fetchone(sql.CLAIMABLE_EXISTS, {"queue": queue_id, "user": user_id})[0])


def expired_leases_lock(*, item_ids: list[int], now: dt.datetime) -> list[tuple[int, int]]:
    """Lock the given items in id order, then return (assignment id, item id) of their leases
    that are still past expiry. Items first, then assignments: the order label_submit,
    item_skip and the claim take them in, so an expiry racing a late label cannot deadlock."""
    list(QueueItem.objects.filter(pk__in=item_ids).order_by("pk").select_for_update().values_list("pk", flat=True))
    qs = Assignment.objects.filter(item_id__in=item_ids, status=AssignmentStatus.ACTIVE, lease_expires_at__lte=now)
    return list(qs.order_by("item_id", "pk").select_for_update().values_list("pk", "item_id"))


def sampling_counters_lock(*, queue_id: int, keys: list[str], day: dt.date) -> dict[str, SamplingCounter]:
    """The queue's budget counters for `day`, created if missing, locked in key order (queues
    are sampled in id order, so every sampler locks (queue, key) ascending and none deadlock).
    Call it inside the transaction that spends the budget; it holds the locks until it ends."""
    if not keys:
        return {}
    SamplingCounter.objects.bulk_create(
        [SamplingCounter(queue_id=queue_id, key=key, day=day) for key in sorted(keys)], ignore_conflicts=True
    )
    locked = SamplingCounter.objects.filter(queue_id=queue_id, key__in=keys, day=day).order_by("key")
    return {counter.key: counter for counter in locked.select_for_update(of=("self",))}


def sampling_batch_claim(*, batch_id: int) -> SamplingBatch | None:
    """Lock a recorded sampling batch, or None if it is gone (done) or another worker holds it
    (SKIP LOCKED: that worker will finish or, failing, leave it for the sweeper). The caller
    samples and deletes it inside the same transaction."""
    return SamplingBatch.objects.filter(pk=batch_id).select_for_update(skip_locked=True, of=("self",)).first()


def project_budget_counter_lock(*, project_id: int, day: dt.date) -> ProjectBudgetCounter:
    """The project's budget counter for `day`, created if missing, locked. Lock order: after the
    queue's own counters (sampling_counters_lock). Every sampler of the project takes it last,
    so it is held the shortest time of all its locks (it is the row all the project's queues
    meet on), and no sampler holds it while waiting for a queue's counters: no deadlock."""
    ProjectBudgetCounter.objects.bulk_create(
        [ProjectBudgetCounter(project_id=project_id, day=day)], ignore_conflicts=True
    )
    return ProjectBudgetCounter.objects.select_for_update(of=("self",)).get(project_id=project_id, day=day)


def label_schema_lock(*, schema_id: int) -> LabelSchema:
    """The rubric, locked: a new version and a new pairwise queue over it take this lock, so
    each sees the other (the pairwise queue the version must suit, the version the queue's
    rubric check reads)."""
    return LabelSchema.objects.select_for_update(of=("self",)).select_related("latest_version").get(pk=schema_id)
