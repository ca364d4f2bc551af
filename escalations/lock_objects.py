"""Row locks for escalations. Every function that locks must run inside transaction.atomic();
the caller holds the lock until its transaction ends.

Lock order: an action's row, then nothing else of it (votes, events and claims are written
under the action's lock, never locked themselves), so deciders, claimers and the timeout sweep
queue on one row and cannot deadlock. The sweep takes many actions at once, in (due_at, id)
order, and skips the ones someone holds.

An action request takes advisory locks, not row locks: one per velocity window dimension it is
counted in (velocity_keys_lock), in key order, before it inserts its row.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import prefetch_related_objects

from escalations import sql
from escalations.models import Action, ActionStatus
from reviewapp import rawsql
from reviewapp.models import Organization


def action_lock(*, organization: Organization, action_id: int) -> Action | None:
    """Lock one action of the organization (None when it is not the organization's: a 404),
    with its ladder version loaded. A second decider waits here until the first commits, then
    reads the row as the first left it.

    Only the ladder is joined: it never changes. A row that was locked when this statement
    started is re-read at its newest version once the lock is granted, but rows joined to it
    are not (a LEFT JOIN to the decider stays as it was: none), so people are loaded after."""
    return (
        Action.objects.filter(organization=organization, pk=action_id)
        .select_related("ladder")
        .select_for_update(of=("self",))
        .first()
    )


def due_actions_lock(*, now: dt.datetime, limit: int) -> list[Action]:
    """Lock up to `limit` pending actions whose tier is due, oldest due first, skipping any that
    another transaction holds (a decision in progress, another sweeper). Over the partial index
    action_pending_due. PostgreSQL re-checks the WHERE clause on the newest version of each row
    it locks, so an action decided while this statement ran is not taken; a row it skipped
    stays due and the next sweep takes it. The project and the people (claimer, decider)
    come loaded: the sweep's events and notifications read no row per action."""
    actions = list(
        Action.objects.filter(status=ActionStatus.PENDING, due_at__lte=now)
        # The ladder version is immutable and an action never changes project: safe to join.
        .select_related("ladder", "project")
        .order_by("due_at", "id")
        .select_for_update(skip_locked=True, of=("self",))[:limit]
    )
    # The people are loaded after the lock, one query for the chunk (not one per action in
    # the sweep's events and notifications): a claim can change while this statement waits
    # to re-check a row, and a joined row would not be re-read (see action_lock).
    prefetch_related_objects(actions, "claimed_by", "decided_by_user")
    return actions


def velocity_keys_lock(*, project_id: int, by_values: dict[str, str]) -> None:
    """Take, until the transaction ends, the advisory locks of the velocity windows an action
    is about to be counted in (one per dimension: its end user, its agent version, the
    project), in key order. PostgreSQL only: SQLite transactions start with BEGIN IMMEDIATE,
    so writers already take turns there."""
    if connection.vendor != "postgresql" or not by_values:
        return
    rawsql.execute(sql.VELOCITY_LOCK_SQL, [sql.velocity_lock_keys(project_id=project_id, by_values=by_values)])
