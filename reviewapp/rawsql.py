"""Model instances from hand-written SQL, for the few hot read paths (authentication on every
API request, the claim) where compiling an ORM query costs more than PostgreSQL spends
answering it. Everything else uses the ORM.

`columns(Model, "t")` lists a model's concrete columns under a table alias, in field order;
`instance(Model, values)` builds the instance from that slice of a row, running each value
through the field's database converters (JSON columns arrive as text, as the ORM expects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def columns(model: type[Model], alias: str) -> str:
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(f.column)}" for f in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def _converters(field: Any) -> list:
    # The backend's first (SQLite returns naive datetimes, PostgreSQL JSON as text), then the
    # field's own: the order the ORM applies them in.
    return connection.ops.get_db_converters(field.cached_col) + field.get_db_converters(connection)


def instance(model: type[M], values: Sequence[Any]) -> M:
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        for convert in _converters(field):
            value = convert(value, field.cached_col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def instances(row: Sequence[Any], *models: type[Model]) -> list[Model]:
    """Split a row selected as `columns(A, ...), columns(B, ...), ...` into an A, a B, ..."""
    out, start = [], 0
    for model in models:
        out.append(instance(model, row[start : start + width(model)]))
        start += width(model)
    return out
