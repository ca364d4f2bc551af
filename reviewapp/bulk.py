"""Bulk inserts for the ingest path, without Django's per-object, per-field overhead.

`bulk_create` builds a model instance per row and runs every value through the field's
`get_db_prep_save`; on PostgreSQL it then sends each column as an array that psycopg escapes in
Python. For a 1,000-conversation batch that costs several times what the database spends
storing the rows. Here rows are plain dicts (attname -> value) and, on PostgreSQL:

- `insert_rows(..., return_ids=True)` takes ids from the table's sequence in one query and
  streams the rows with `COPY` (a unique violation still raises `IntegrityError`);
- `insert_rows(..., ignore_conflicts=True)` sends every row in one JSON document and inserts
  `SELECT ... FROM jsonb_to_recordset(...) ON CONFLICT DO NOTHING` (COPY has no ON CONFLICT);
  with `returning="column"` it answers that column of the rows really inserted (`RETURNING`),
  which is how a caller counts what a conflict dropped.

On SQLite (the embedded default) the rows go through one `executemany` of a single-row
`INSERT` (with `ON CONFLICT DO NOTHING` for `ignore_conflicts`: unlike the `INSERT OR IGNORE`
that `bulk_create` emits there, it skips only unique conflicts and still raises on a NOT NULL or
CHECK violation, as PostgreSQL does), values prepared once per field, JSON with orjson:
`bulk_create` compiled a statement of ~1,000 placeholder groups per batch, which cost four times
the inserts themselves. Ids come from `last_insert_rowid()`: inside a transaction SQLite has one
writer, so a statement's rows get consecutive ids. With `returning`, a plain
`INSERT ... ON CONFLICT DO NOTHING RETURNING` (SQLite 3.35+). Other databases get `bulk_create`
with the same arguments, so the rows stored, the errors raised and the conflicts ignored are the
same on every backend; only the speed differs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connections, models, router

# SQLite caps bound parameters; Django splits bulk_create into batches of this many rows.
_FALLBACK_BATCH = 1000


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which JSONField (stdlib json) accepts.
        return json.dumps(value)


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _values(fields: Sequence[models.Field], row: dict[str, Any]) -> list[Any]:
    return [row[f.attname] if f.attname in row else f.get_default() for f in fields]


def insert_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    return_ids: bool = False,
    ignore_conflicts: bool = False,
    returning: str | None = None,
) -> list[Any]:
    """Insert `rows` (dicts of attname -> value; missing fields take their default) inside the
    caller's transaction. With `return_ids`, answers the new primary keys in row order. With
    `ignore_conflicts` and `returning` (a column name), answers that column of the rows that
    were inserted, in no particular order."""
    if return_ids and ignore_conflicts:
        raise ValueError("ids of rows skipped on conflict cannot be returned")
    if returning is not None and not ignore_conflicts:
        raise ValueError("returning is for ignore_conflicts; use return_ids")
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    if returning is not None and connection.vendor != "postgresql":
        return _insert_returning(connection, model, rows, returning)
    if connection.vendor == "sqlite" and (connection.in_atomic_block or not return_ids):
        return _insert_rows_sqlite(connection, model, rows, return_ids=return_ids, ignore_conflicts=ignore_conflicts)
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        model._default_manager.using(connection.alias).bulk_create(
            objs, batch_size=_FALLBACK_BATCH, ignore_conflicts=ignore_conflicts
        )
        return [obj.pk for obj in objs] if return_ids else []

    fields = _columns(model)
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_fields = {i for i, f in enumerate(fields) if isinstance(f, models.JSONField)}
    with connection.cursor() as cursor:
        if ignore_conflicts:
            # Column types without their length: a too-long value must fail on the table's
            # own column, as it would with bulk_create, not be cut by the record's type.
            record = ", ".join(
                f"{connection.ops.quote_name(f.column)} {f.db_type(connection).split('(')[0]}" for f in fields
            )
            document = [
                {
                    f.column: value.isoformat() if isinstance(value, dt.datetime) else value
                    for f, value in zip(fields, _values(fields, row), strict=True)
                }
                for row in rows
            ]
            suffix = f" RETURNING {connection.ops.quote_name(returning)}" if returning else ""
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 - names from model meta
                f"FROM jsonb_to_recordset(%s::jsonb) AS r({record}) ON CONFLICT DO NOTHING{suffix}",
                [_json_text(document)],
            )
            return [row[0] for row in cursor.fetchall()] if returning else []

        ids: list[int] = []
        if return_ids:
            pk = model._meta.pk
            assert pk is not None
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [model._meta.db_table, pk.column, len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            names = f"{connection.ops.quote_name(pk.column)}, {names}"
        # Django's wrapper does not cover COPY: translate psycopg's errors (a unique violation
        # from a concurrent insert of the same key) into django.db's, as execute() would.
        with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for index, row in enumerate(rows):
                values = _values(fields, row)
                for i in json_fields:
                    values[i] = _json_text(values[i])
                if return_ids:
                    values.insert(0, ids[index])
                copy.write_row(values)
    return ids


def _insert_rows_sqlite(
    connection: Any,
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    return_ids: bool,
    ignore_conflicts: bool,
) -> list[int]:
    """The caller must be in a transaction when it asks for ids (SQLite's write lock then makes
    them consecutive). Values are prepared as the ORM prepares them, except JSON (orjson)."""
    fields = _columns(model)
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_fields = {i for i, f in enumerate(fields) if isinstance(f, models.JSONField)}
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    params = []
    for row in rows:
        values = _values(fields, row)
        for i, f in enumerate(fields):
            if i in json_fields:
                # SQL NULL for None, as JSONField stores it; everything else as JSON text.
                values[i] = None if values[i] is None else _json_text(values[i])
            else:
                values[i] = f.get_db_prep_save(values[i], connection)
        params.append(values)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(fields))}){conflict}",  # noqa: S608
            params,
        )
        if not return_ids:
            return []
        cursor.execute("SELECT last_insert_rowid()")
        last = cursor.fetchone()[0]
    return list(range(last - len(rows) + 1, last + 1))


def _insert_returning(
    connection: Any, model: type[models.Model], rows: Sequence[dict[str, Any]], returning: str
) -> list[Any]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING for databases other than PostgreSQL, in
    batches that stay under the backend's limit on bound parameters."""
    fields = _columns(model)
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    batch = max(1, connection.ops.bulk_batch_size(fields, rows))
    found: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            params = [
                f.get_db_prep_save(value, connection)
                for row in chunk
                for f, value in zip(fields, _values(fields, row), strict=True)
            ]
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([placeholders] * len(chunk))} "  # noqa: S608
                f"ON CONFLICT DO NOTHING RETURNING {connection.ops.quote_name(returning)}",
                params,
            )
            found.extend(row[0] for row in cursor.fetchall())
    return found
