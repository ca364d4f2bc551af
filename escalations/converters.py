"""URL converters of escalations. `<ladder:...>` is a ladder's name in a path: as `<str:>` (no
`/`), and no NUL either. PostgreSQL refuses a NUL in a text parameter (a DataError, so a 500)
and no name holds one (policies.py refuses it), so `%00` does not match the route: a 404 that
never reaches the database. Names stored behind the validator's back still reverse (the
ladder pages link every stored version). Importing registers it."""

from __future__ import annotations

from django.urls import register_converter
from django.urls.converters import StringConverter


class LadderNameConverter(StringConverter):
    regex = r"[^/\x00]+"


register_converter(LadderNameConverter, "ladder")
