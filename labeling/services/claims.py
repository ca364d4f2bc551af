"""Claims: leasing the next item to a person, and leases running out."""

from __future__ import annotations

import contextlib
import datetime as dt
import time

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling import lock_objects, sampling
from labeling.models import Assignment, AssignmentStatus, ItemEvent, Queue, QueueItem, SkipPolicy
from reviewapp import validation

# Expired leases a claim returns to the pool on its way; the beat sweeper does the rest.
EXPIRE_ON_CLAIM = 50
_CLAIM_ATTEMPTS = 3
# A claim that finds only locked work waits 20, 40, 60 ms for it before answering "nothing".
_BUSY_RETRIES = 3
_BUSY_WAIT_SECONDS = 0.02
_BUSY = object()  # _item_claim_once: work is left, but it was all locked just now


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
