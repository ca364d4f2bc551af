"""Serializer fields bounded like the columns they end up in (see validation.py). Every input
serializer uses these for integers and JSON, so a value that fits the serializer fits the
database on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from reviewapp import validation


def IdField(**kwargs: Any) -> serializers.IntegerField:
    """A primary key: 1 .. 2**63-1, so it can never overflow the hand-written SQL it reaches."""
    return serializers.IntegerField(min_value=validation.ID_MIN, max_value=validation.ID_MAX, **kwargs)


def ColumnIntegerField(bounds: tuple[int, int], **kwargs: Any) -> serializers.IntegerField:
    """An integer within its column's bounds (validation.INTEGER, POSITIVE, ...), narrowed
    further by min_value/max_value when given."""
    low = max(bounds[0], kwargs.pop("min_value", bounds[0]))
    high = min(bounds[1], kwargs.pop("max_value", bounds[1]))
    return serializers.IntegerField(min_value=low, max_value=high, **kwargs)


def _json_validator(value: Any) -> None:
    problem = validation.json_problem(value)
    if problem is not None:
        where = f" (at {problem.path})" if problem.path else ""
        raise serializers.ValidationError(problem.message + where)


class BoundedJSONField(serializers.JSONField):
    """JSON checked for depth, NUL and non-finite numbers, whatever parser delivered it."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.validators.append(_json_validator)


class BoundedDictField(serializers.DictField):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.validators.append(_json_validator)
