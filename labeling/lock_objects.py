"""Row locks for labeling. Every function here must run inside transaction.atomic(); the
caller holds the lock until its transaction ends."""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef

from labeling.models import Assignment, AssignmentStatus, ItemStatus, Queue, QueueItem


def item_lock(*, item_id: int) -> QueueItem:
    return QueueItem.objects.select_for_update(of=("self",)).select_related("queue").get(pk=item_id)


def claimable_item_lock(
    *, queue: Queue, user_id: int, skipped_by_user: bool = False, gold: bool = False
) -> QueueItem | None:
    """Lock the next item this person may take: open, a label slot free, and never handed to
    them before (or, with `skipped_by_user`, only items they skipped earlier). One indexed
    statement; SKIP LOCKED lets concurrent claimers pass each other instead of queueing."""
    mine = Assignment.objects.filter(item=OuterRef("pk"), user_id=user_id)
    qs = QueueItem.objects.filter(
        queue=queue, status=ItemStatus.OPEN, is_gold=gold, labels_needed__gt=F("labels_done") + F("leased_count")
    )
    if skipped_by_user:
        qs = qs.filter(Exists(mine.filter(status=AssignmentStatus.SKIPPED)))
    else:
        qs = qs.filter(~Exists(mine))
    return qs.order_by("-priority", "id").select_for_update(skip_locked=True, of=("self",)).first()


def expired_leases_lock(*, queue_id: int | None, now, limit: int) -> list[tuple[int, int]]:
    """(assignment id, item id) of leases past expiry, locked; rows another transaction is
    already expiring are skipped rather than waited for."""
    qs = Assignment.objects.filter(status=AssignmentStatus.ACTIVE, lease_expires_at__lte=now)
    if queue_id is not None:
        qs = qs.filter(queue_id=queue_id)
    return list(qs.order_by("item_id", "pk").select_for_update(skip_locked=True).values_list("pk", "item_id")[:limit])
