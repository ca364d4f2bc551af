"""Django's PostgreSQL backend with a health check that costs no round trip on an idle
connection.

With CONN_HEALTH_CHECKS, Django checks a reused connection at the start of every request by
sending `SELECT 1` and waiting for the answer: one round trip more on every request, the
agents' action requests included (bench/RESULTS.md, "Actions"). A connection that is idle
between requests has nothing to read: the server only writes to it on its own when it ends it
(a restart, pg_terminate_backend, an idle timeout: an error message, then end of file) or for a
LISTEN notification, which this app does not use. So: an idle connection whose socket has
nothing to read is usable, without asking; anything else (data waiting, a transaction left
open, a closed or broken connection) gets Django's own check. A peer that vanished without a
word (a cut network) is not seen here, nor by `SELECT 1` before its TCP timeout: the request's
first statement fails and Django closes the connection when the request ends, as before.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base

try:
    from psycopg.pq import TransactionStatus
except ImportError:  # psycopg2: Django's check only
    TransactionStatus = None


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None:
            return False
        if TransactionStatus is not None and _idle_and_quiet(conn):
            return True
        return super().is_usable()


def _idle_and_quiet(conn) -> bool:
    try:
        if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
            return False
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except Exception:  # anything unexpected: let Django's check decide
        return False
