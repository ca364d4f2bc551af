"""Locks escalations takes. Callers say in their docstring which lock they must hold."""

from __future__ import annotations

from django.db import connection

from escalations import sql
from reviewapp import rawsql


def velocity_keys_lock(*, project_id: int, by_values: dict[str, str]) -> None:
    """Take, until the transaction ends, the advisory locks of the velocity windows an action
    is about to be counted in (one per dimension: its end user, its agent version, the
    project), in key order. PostgreSQL only: SQLite transactions start with BEGIN IMMEDIATE,
    so writers already take turns there."""
    if connection.vendor != "postgresql" or not by_values:
        return
    rawsql.execute(sql.VELOCITY_LOCK_SQL, [sql.velocity_lock_keys(project_id=project_id, by_values=by_values)])
