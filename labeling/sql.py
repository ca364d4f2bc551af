"""labeling's hand-written SQL: every statement, in one place, built from the models.

Tables and columns come from `_meta` (`rawsql.Table`), choice values from the models'
TextChoices (`rawsql.literal`), so a renamed field or choice changes the statement instead of
leaving it stale; tests/test_sql.py prepares every statement here against the migrated schema
on PostgreSQL, so a migration that breaks one fails CI. Statements are run by
`reviewapp.rawsql` (prepared on PostgreSQL, through Django's execute wrappers) from the
functions that own them: row locks and the claim in lock_objects.py, the worker lookups in
selectors.py, sampling's fact loading in services/sampling.py.

Module-level UPPER_CASE names are statements (or dicts of variants of one); `claimable` is the
one definition of an item a person may take, shared by the statements and the ORM's claim.
Only names from the models and these constants are interpolated, never a value from outside.
"""
# ruff: noqa: S608 - every interpolation below is a model's own table, column or choice value

from __future__ import annotations

from django.db import connection

from labeling.models import Assignment, AssignmentStatus, ItemStatus, Label, LabelSchema, LabelSchemaVersion
from labeling.models import Queue as QueueModel
from labeling.models import QueueItem as QueueItemModel
from reviewapp.models import Conversation, ConversationSignal, JudgeScore, Project
from reviewapp.rawsql import Table, columns, literal

Q = Table(QueueModel)
I = Table(QueueItemModel)  # noqa: E741 - the item table, as its alias `i` reads below
A = Table(Assignment)
L = Table(Label)
S = Table(LabelSchema)
V = Table(LabelSchemaVersion)
N = Table(QueueModel.assignees.through)
C = Table(Conversation)
P = Table(Project)
J = Table(JudgeScore)
G = Table(ConversationSignal)


def claimable(i: str) -> str:
    """An item (alias `i`) that still takes a lease: open, and its labels done plus its live
    leases short of the labels it needs. Checked on the item row itself, so a claimer that
    skipped a locked row and meets it again re-checks the values its lock holder committed
    (PostgreSQL re-evaluates the row under FOR UPDATE). The claim statement, the "is anything
    left" probe and the ORM claim (SQLite, skipped items) all use this one definition."""
    return (
        f"{i}.{I.status} = {literal(ItemStatus.OPEN)}"
        f" AND {i}.{I.labels_needed} > {i}.{I.labels_done} + {i}.{I.leased_count}"
    )


# --- the item and assignment locks (lock_objects.item_relock, assignment_and_label_lock) -------

# Every label and skip takes this lock: the item's columns, reloaded under FOR UPDATE.
ITEM_RELOCK = f"SELECT {columns(QueueItemModel, 'i')} FROM {I} i WHERE i.{I.id} = %s" + (
    " FOR UPDATE" if connection.features.has_select_for_update else ""
)

# A person's assignment on an item (locked) and their label on it, if any.
ASSIGNMENT_AND_LABEL = f"""
SELECT {columns(Assignment, "a")}, {columns(Label, "l")}
FROM {A} a
LEFT JOIN {L} l ON l.{L.item} = a.{A.item} AND l.{L.user} = a.{A.user}
WHERE a.{A.item} = %s AND a.{A.user} = %s
""" + (" FOR UPDATE OF a" if connection.features.has_select_for_update_of else "")


# --- the claim (lock_objects.claim_precheck, claim_unlock, item_lease_next) ---------------------

_ACTIVE = literal(AssignmentStatus.ACTIVE)

# Before a claim: a live lease this person holds in the queue (other than `exclude`), and
# whether any lease in the queue has expired.
CLAIM_PRECHECK = f"""
SELECT (SELECT a.{A.id} FROM {A} a
        WHERE a.{A.queue} = %(queue)s AND a.{A.user} = %(user)s AND a.{A.status} = {_ACTIVE}
          AND a.{A.lease_expires_at} > %(now)s AND a.{A.item} <> %(exclude)s
        ORDER BY a.{A.leased_at}, a.{A.id} LIMIT 1),
       EXISTS (SELECT 1 FROM {A} e
               WHERE e.{A.queue} = %(queue)s AND e.{A.status} = {_ACTIVE} AND e.{A.lease_expires_at} <= %(now)s)
"""
# One person's claims in one queue take turns on this advisory lock (a hash of the pair: two
# pairs sharing a hash merely take turns too). Without it, the held-lease check and the lease
# are two statements, and one person claiming 20 times at once got up to four leases. The ids
# are cast where the key is built: the FROM clause is typed first, and the same parameters are
# compared with bigint columns above.
_CLAIM_LOCK_KEY = (
    "hashtextextended('labeling.item_claim:' || %(queue)s::bigint::text || ':' || %(user)s::bigint::text, 0)"
)
# The wait for the lock is bounded (lock_objects.CLAIM_LOCK_TIMEOUT_MS, %(lock_timeout)s) with
# lock_timeout for this statement only: set_config(..., true) lasts until the transaction ends,
# which for a bare statement is the statement, and inside a caller's transaction the last call
# puts the caller's value back. Each function takes an argument from the one before
# (`|| left(.., 0)`, `+ 0 * ..`) so PostgreSQL must call them in this order; OFFSET 0 keeps the
# saved value from being inlined and read after the change.
_CLAIM_LOCK_FROM = f"""
FROM (SELECT current_setting('lock_timeout') AS before OFFSET 0) saved
CROSS JOIN LATERAL set_config('lock_timeout', %(lock_timeout)s::text || left(saved.before, 0), true) AS bounded
CROSS JOIN LATERAL {{fn}}({_CLAIM_LOCK_KEY} + 0 * length(bounded)) AS locked
CROSS JOIN LATERAL set_config('lock_timeout', saved.before || left(locked::text, 0), true) AS restored
"""
CLAIM_PRECHECK_LOCKED = {
    scope: CLAIM_PRECHECK + _CLAIM_LOCK_FROM.format(fn=fn)
    for scope, fn in (("session", "pg_advisory_lock"), ("transaction", "pg_advisory_xact_lock"))
}
CLAIM_UNLOCK = f"SELECT pg_advisory_unlock({_CLAIM_LOCK_KEY})"

# The claim as one statement on PostgreSQL: pick the next item this person may take (walking the
# partial index queue_item_claim), take a slot on it and record the lease, and return the item
# with its conversation and project. One round trip instead of three ORM queries: the claim
# path is the hottest in labeling and Django's query compilation cost more than PostgreSQL's
# work. The `held` guard repeats the precheck with this statement's fresh snapshot.
_LEASE_NEXT = f"""
WITH pick AS (
    SELECT i.{I.id} FROM {I} i {{relax}}
    WHERE i.{I.queue} = %(queue)s AND i.{I.is_gold} = %(gold)s AND {claimable("i")}
      AND NOT EXISTS (SELECT 1 FROM {A} a WHERE a.{A.item} = i.{I.id} AND a.{A.user} = %(user)s)
      AND NOT EXISTS (SELECT 1 FROM {A} held
                      WHERE held.{A.queue} = %(queue)s AND held.{A.user} = %(user)s
                        AND held.{A.status} = {_ACTIVE}
                        AND held.{A.lease_expires_at} > %(now)s AND held.{A.item} <> %(exclude)s)
    ORDER BY i.{I.priority} DESC, i.{I.id}
    LIMIT 1
    FOR UPDATE OF i SKIP LOCKED
), taken AS (
    UPDATE {I} q SET {I.leased_count} = q.{I.leased_count} + 1
    FROM pick WHERE q.{I.id} = pick.{I.id}
    RETURNING {columns(QueueItemModel, "q")}
), lease AS (
    INSERT INTO {A} ({A.organization}, {A.queue}, {A.item}, {A.user}, {A.status}, {A.leased_at},
        {A.lease_expires_at}, {A.finished_at}, {A.draft_answers}, {A.skip_reason})
    SELECT taken.{I.organization}, taken.{I.queue}, taken.{I.id}, %(user)s, {_ACTIVE}, %(now)s, %(until)s,
        NULL, '{{}}'::jsonb, ''
    FROM taken
    RETURNING {A.id}, {A.item}
)
SELECT lease.{A.id}, taken.*, {columns(Conversation, "c")}, {columns(Project, "p")}
FROM lease
JOIN taken ON taken.{I.id} = lease.{A.item}
JOIN {C} c ON c.{C.id} = taken.{I.conversation}
JOIN {P} p ON p.{P.id} = c.{C.project}
"""
# A lease is soft state: should the server crash before its commit reaches disk, the claim is
# simply undone (the item back in the pool, the person's label answered 409 "claim it first").
# So a claim made outside any caller's transaction commits asynchronously: it does not wait
# for the WAL flush, which on a busy disk took hundreds of milliseconds. set_config(..., true)
# lasts until the end of this statement's own transaction; labels stay fully durable.
LEASE_NEXT = _LEASE_NEXT.replace("{relax}", "")
LEASE_NEXT_RELAXED = _LEASE_NEXT.replace("{relax}", ", (SELECT set_config('synchronous_commit', 'off', true)) AS relax")

# Whether the queue holds an item this person could take, locked or not: asked only after a
# SKIP LOCKED claim came back empty, to tell "nothing left" from "all of it locked just now".
CLAIMABLE_EXISTS = f"""
SELECT EXISTS (
    SELECT 1 FROM {I} i
    WHERE i.{I.queue} = %(queue)s AND NOT i.{I.is_gold} AND {claimable("i")}
      AND NOT EXISTS (SELECT 1 FROM {A} a WHERE a.{A.item} = i.{I.id} AND a.{A.user} = %(user)s)
)
"""


# --- sampling (services/sampling.py) ------------------------------------------------------------

# One array parameter instead of a thousand placeholders: client-side binding spent longer
# splitting that query text than PostgreSQL spent answering it.
CONVERSATION_FACTS = f"""
SELECT c.{C.id}, c.{C.external_id}, c.{C.agent_version}, c.{C.tags}, c.{C.metadata}, c.{C.feedback_rating},
       c.{C.user_rephrased}, c.{C.escalated_by_user}
FROM {C} c WHERE c.{C.id} = ANY(%s) ORDER BY c.{C.id}
"""
JUDGE_SCORE_FACTS = f"""
SELECT s.{J.conversation}, s.{J.judge}, s.{J.criterion}, s.{J.score}, s.{J.confidence}
FROM {J} s WHERE s.{J.conversation} = ANY(%s)
"""
# The signals of these conversations, for queues whose rules name one.
SIGNAL_FACTS = f"""
SELECT g.{G.conversation}, g.{G.kind}, g.{G.source}
FROM {G} g WHERE g.{G.conversation} = ANY(%s)
"""
# Which of these conversations a queue already holds.
IN_QUEUE = f"SELECT i.{I.conversation} FROM {I} i WHERE i.{I.queue} = %s AND i.{I.conversation} = ANY(%s)"


# --- the worker lookups (selectors.py) ----------------------------------------------------------

# Whether anyone, and the caller, is named on the queue (for queue_can_work).
_NAMED = f"""EXISTS (SELECT 1 FROM {N} n WHERE n.{N.queue} = q.{Q.id}),
       EXISTS (SELECT 1 FROM {N} n WHERE n.{N.queue} = q.{Q.id} AND n.{N.user} = %(user)s)"""

# A queue on the claim path: with its project, rubric and latest version.
WORKER_QUEUE = f"""
SELECT {_NAMED},
       {columns(QueueModel, "q")}, {columns(Project, "p")}, {columns(LabelSchema, "s")},
       {columns(LabelSchemaVersion, "v")}
FROM {Q} q
JOIN {P} p ON p.{P.id} = q.{Q.project}
JOIN {S} s ON s.{S.id} = q.{Q.schema}
LEFT JOIN {V} v ON v.{V.id} = s.{S.latest_version}
WHERE q.{Q.id} = %(queue)s AND q.{Q.organization} = %(org)s
"""

# An item with everything a label, skip or draft needs: queue, rubric, conversation, project.
WORKER_ITEM = f"""
SELECT {_NAMED},
       {columns(QueueItemModel, "i")}, {columns(QueueModel, "q")}, {columns(LabelSchema, "s")},
       {columns(LabelSchemaVersion, "v")}, {columns(Conversation, "c")}, {columns(Project, "p")}
FROM {I} i
JOIN {Q} q ON q.{Q.id} = i.{I.queue}
JOIN {S} s ON s.{S.id} = q.{Q.schema}
LEFT JOIN {V} v ON v.{V.id} = s.{S.latest_version}
JOIN {C} c ON c.{C.id} = i.{I.conversation}
JOIN {P} p ON p.{P.id} = c.{C.project}
WHERE i.{I.id} = %(item)s AND i.{I.organization} = %(org)s
"""

# A freshly claimed item's conversation and project (SQLite's claim does not bring them).
ITEM_CONVERSATION = f"""
SELECT {columns(Conversation, "c")}, {columns(Project, "p")}
FROM {C} c JOIN {P} p ON p.{P.id} = c.{C.project}
WHERE c.{C.id} = %(id)s AND c.{C.organization} = %(org)s
"""
