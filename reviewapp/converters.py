"""URL converters. `<id:...>` is a primary key in a path: ASCII digits within 1 .. 2**63-1.
Anything else does not match the route (a 404), so an id beyond 64 bits never reaches the
hand-written SQL behind the view (an OverflowError on SQLite). Importing registers it."""

from __future__ import annotations

from django.urls import register_converter

from reviewapp import validation


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not validation.ID_MIN <= number <= validation.ID_MAX:
            raise ValueError(value)  # Django: no match
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(IdConverter, "id")
