"""Running hand-written SQL for the few hot paths (authentication on every API request, the
claim, the label) where compiling an ORM query cost more than PostgreSQL spends answering it.
Everything else uses the ORM. The statements themselves live in each app's `sql.py`.

`fetchone`/`fetchall`/`execute` run a statement. On PostgreSQL they use a server-side prepared
statement: each connection (kept CONN_MAX_AGE seconds) parses and plans a statement once, and
afterwards only executes it; planning the claim's joins took longer than running them.
Elsewhere they run through Django's cursor. Either way the statement goes through Django's
cursor wrapper, so `connection.execute_wrappers` (APM, debug tools), query logging and counting,
the broken-transaction check and Django's exception classes all apply.

`insert`/`update` write rows with each field's own value preparation (`get_db_prep_save`), for
the label's writes; an integer its column cannot hold is refused (a 400 naming the field), on
every backend, as the ORM's own bounds would.

Building statements (in `sql.py`) from the models rather than literals, so a renamed table,
column or choice is a changed statement, never a stale one: `Table(Model)` is the model's
quoted table (`str(T)`) and columns (`T.queue` is the column of the field `queue`, `queue_id`);
`columns(Model, "t")` lists a model's concrete columns under a table alias, in field order;
`literal(Choice.VALUE)` is a choice value as an SQL string literal (kept literal, not a
parameter, so a prepared statement's generic plan still matches a partial index on it).
`instance(Model, values)` builds the instance from a row's slice, running each value through
the field's database converters (JSON columns arrive as text, as the ORM expects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Model

from reviewapp import validation

M = TypeVar("M", bound=Model)


def columns(model: type[Model], alias: str) -> str:
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(f.column)}" for f in model._meta.concrete_fields)


class Table:
    """A model's table and columns, quoted, for building a statement: `f"FROM {T} t WHERE
    t.{T.queue} = %s"`. An unknown field name raises (FieldDoesNotExist) when the statement is
    built, at import."""

    __slots__ = ("_model",)

    def __init__(self, model: type[Model]) -> None:
        self._model = model

    def __str__(self) -> str:
        return connection.ops.quote_name(self._model._meta.db_table)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return connection.ops.quote_name(self._model._meta.get_field(name).column)


def literal(value: str) -> str:
    """A choice value (a model's TextChoices member) as an SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


_CONVERTERS: dict[tuple[str, type[Model]], list[tuple[int, list, Any]]] = {}


def _converters(model: type[Model]) -> list[tuple[int, list, Any]]:
    """(position, converters, column) for the fields that need converting: the backend's
    converters first (SQLite returns naive datetimes, PostgreSQL JSON as text), then the
    field's own, the order the ORM applies them in. Worked out once per model."""
    key = (connection.vendor, model)
    if key not in _CONVERTERS:
        found = []
        for position, field in enumerate(model._meta.concrete_fields):
            col = field.cached_col
            converters = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
            if converters:
                found.append((position, converters, col))
        _CONVERTERS[key] = found
    return _CONVERTERS[key]


def instance(model: type[M], values: Sequence[Any]) -> M:
    if len(values) != width(model):
        raise ValueError(f"{model.__name__} has {width(model)} columns, the row slice {len(values)}")
    values = list(values)
    for position, converters, col in _converters(model):
        value = values[position]
        for convert in converters:
            value = convert(value, col, connection)
        values[position] = value
    return model.from_db(connection.alias, [f.attname for f in model._meta.concrete_fields], values)


def instances(row: Sequence[Any], *models: type[Model]) -> list[Any]:
    """Split a row selected as `columns(A, ...), columns(B, ...), ...` into an A, a B, ...;
    None for a model whose slice has no primary key (a LEFT JOIN that found nothing)."""
    out, start = [], 0
    for model in models:
        values = row[start : start + width(model)]
        pk_position = model._meta.concrete_fields.index(model._meta.pk)
        out.append(instance(model, values) if values[pk_position] is not None else None)
        start += width(model)
    return out


def _out_of_range(params: Any) -> bool:
    """Whether a parameter is an integer beyond 64 bits: SQLite raises OverflowError on it and
    PostgreSQL would compare it as numeric. Callers validate ids first (validation.is_id); this
    makes a forgotten check an error, never a silent mismatch."""
    values = params.values() if isinstance(params, dict) else params
    for value in values or ():
        if isinstance(value, list | tuple):
            if _out_of_range(value):
                return True
        elif type(value) is int and not validation.BIG[0] <= value <= validation.BIG[1]:
            return True
    return False


class _PreparingCursor(psycopg.Cursor):
    """A psycopg cursor on Django's connection that prepares every statement it executes
    (server-side binding); wrapped in Django's cursor wrapper like any cursor Django makes.
    Behind a pooler that cannot keep prepared statements, DB_PREPARED_STATEMENTS=0 turns
    preparation off for the whole connection (psycopg ignores `prepare` then)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


def _run(sql: str, params: Any, fetch: str | None) -> Any:
    if _out_of_range(params):
        raise ValueError("an integer parameter does not fit 64 bits")
    # The connection itself, once: `connection` is a proxy that looks it up on every attribute.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with db.cursor() as cur:
            cur.execute(sql, params)
            return getattr(cur, fetch)() if fetch else None
    # Django's cursors bind parameters client-side (no prepared statements); a plain psycopg
    # cursor on the same connection binds them server-side and shares Django's transaction and
    # type adapters (JSON loaded as text, timestamps in UTC). Wrapped the way Django wraps its
    # own cursors (connection._prepare_cursor), so the statement passes through
    # connection.execute_wrappers, is logged and counted when queries are (DEBUG, tests), and
    # raises Django's exception classes (IntegrityError stays IntegrityError).
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = _PreparingCursor(db.connection)
    cursor = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    with cursor:
        cursor.execute(sql, params)
        return getattr(cursor, fetch)() if fetch else None


def fetchone(sql: str, params: Any) -> tuple | None:
    return _run(sql, params, "fetchone")


def fetchall(sql: str, params: Any) -> list[tuple]:
    return _run(sql, params, "fetchall")


def execute(sql: str, params: Any) -> None:
    _run(sql, params, None)


def _prep(model: type[Model], values: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Column names and database values for attname -> value pairs, prepared by each field as
    the ORM would (JSON adapted, datetimes made what the backend stores)."""
    fields = _fields(model)
    qn = connection.ops.quote_name
    names = [qn(fields[name].column) for name in values]
    return names, _prep_values(fields, values)


# Field classes (exactly these, not subclasses, which may prepare differently) whose
# get_db_prep_save answers a value of the listed types, or None, unchanged on every backend:
# for them a hot insert skips the field's preparation chain (a few microseconds each, dozens
# of fields a row). Anything else (JSON, datetimes, other types) is prepared by the field.
_PLAIN: dict[type, tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.SlugField: (str,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.AutoField: (int,),
    models.BigAutoField: (int,),
    models.FloatField: (float,),
    models.BooleanField: (bool,),
}


def _plain_types(field: Any) -> tuple[type, ...]:
    """The types `field` stores as they are (see _PLAIN); a foreign key's are its target's."""
    if type(field) is models.ForeignKey:
        field = field.target_field
    types = _PLAIN.get(type(field), ())
    return (*types, type(None)) if types else ()


_PLAIN_TYPES: dict[Any, tuple[type, ...]] = {}


def _prep_values(fields: dict[str, Any], values: dict[str, Any]) -> list[Any]:
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself: the proxy looks it up on each use
    out = []
    for name, value in values.items():
        field = fields[name]
        kind = type(value)
        if kind is int:
            _check_column_int(field, value)
        plain = _PLAIN_TYPES.get(field)
        if plain is None:
            plain = _PLAIN_TYPES[field] = _plain_types(field)
        out.append(value if kind in plain else field.get_db_prep_save(value, db))
    return out


def values(model: type[Model], row: dict[str, Any], attnames: Sequence[str]) -> list[Any]:
    """A row's values (attname -> value) in the order of `attnames`, prepared as `insert`
    prepares them, for a hand-written INSERT in an app's sql.py."""
    fields = _fields(model)
    return _prep_values(fields, {name: row[name] for name in attnames})


_FIELDS: dict[type[Model], dict[str, Any]] = {}


def _fields(model: type[Model]) -> dict[str, Any]:
    """attname -> field of a model's concrete fields, worked out once per model."""
    if model not in _FIELDS:
        _FIELDS[model] = {f.attname: f for f in model._meta.concrete_fields}
    return _FIELDS[model]


def _check_column_int(field: Any, value: int) -> None:
    """Refuse an integer its column cannot hold, on every backend: bound to a prepared
    statement PostgreSQL wrapped one silently (5,000,000,000 stored as 705,032,704), and
    SQLite would store it whatever the column's declared type."""
    internal = field.get_internal_type()
    if internal == "ForeignKey":
        internal = field.target_field.get_internal_type()
    bounds = validation.COLUMN_BOUNDS.get(internal)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise validation.InputError(f"Must be from {bounds[0]} to {bounds[1]}.", field.attname)


def insert(model: type[Model], rows: Sequence[dict[str, Any]], *, unless_conflict: Sequence[str] = ()) -> list[int]:
    """INSERT rows (attname -> value; every row the same keys) in one statement; returns their
    primary keys in the order the database answers RETURNING (row order on PostgreSQL; SQLite
    does not promise it). For the few hot writes; no signals, no defaults filled in.

    `unless_conflict` names the fields of a unique constraint: a row that would break it is
    skipped (ON CONFLICT ... DO NOTHING, on both backends) and has no key in the answer. On
    PostgreSQL a conflicting row another transaction is still writing makes this wait for that
    transaction's end, then skip (committed) or insert (rolled back)."""
    if not rows:
        return []
    fields = _fields(model)
    names, params = _prep(model, rows[0])
    for row in rows[1:]:
        params.extend(_prep_values(fields, row))
    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(names)}) "  # noqa: S608
        f"VALUES {', '.join([one] * len(rows))}{_on_conflict(model, unless_conflict)} "
        f"RETURNING {connection.ops.quote_name(model._meta.pk.column)}"
    )
    return [pk for (pk,) in fetchall(sql, params)]


def _on_conflict(model: type[Model], fields: Sequence[str]) -> str:
    if not fields:
        return ""
    qn = connection.ops.quote_name
    return f" ON CONFLICT ({', '.join(qn(model._meta.get_field(f).column) for f in fields)}) DO NOTHING"


def update(model: type[Model], pk: int, values: dict[str, Any]) -> None:
    """UPDATE one row by primary key; like QuerySet.update() on plain values."""
    names, prepared = _prep(model, values)
    qn = connection.ops.quote_name
    sql = (
        f"UPDATE {qn(model._meta.db_table)} SET {', '.join(f'{n} = %s' for n in names)} "  # noqa: S608
        f"WHERE {qn(model._meta.pk.column)} = %s"
    )
    execute(sql, [*prepared, pk])
