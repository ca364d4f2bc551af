"""Statistics snapshots: agreement and annotator figures stored per queue with their "as of"
time, refreshed in the background."""

from __future__ import annotations

import datetime as dt
import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labeling.models import AgreementSnapshot, Queue, SnapshotState

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
