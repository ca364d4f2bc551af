"""Bounds for everything that comes in from outside: integers to their column, JSON to a
depth, no NUL, no NaN or infinity. Pure (no ORM): the JSON parser, the ingest endpoint, the
serializers, the services and the browser views all check with these, so one input cannot be
refused by one door and accepted by another.

Why these bounds: PostgreSQL cannot store U+0000 in text or jsonb (a DataError, a 500) while
SQLite stores it; JSON has no NaN or infinity and PostgreSQL's jsonb refuses them; Python's
json recurses once per nesting level, so a deep document is a RecursionError (a 500) when it
is encoded for storage; and an integer beyond its column is a DataError on PostgreSQL, an
OverflowError on SQLite, or, bound to a prepared statement, silently wrapped.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import orjson

from reviewapp.errors import ValidationFailed

# Integer columns, by Django field type. The same bounds on every backend (SQLite would take
# 64 bits anywhere): behaviour must not depend on the database.
SMALL = (-32_768, 32_767)
INTEGER = (-(2**31), 2**31 - 1)
BIG = (-(2**63), 2**63 - 1)
POSITIVE_SMALL = (0, 32_767)
POSITIVE = (0, 2**31 - 1)
POSITIVE_BIG = (0, 2**63 - 1)
ID_MIN, ID_MAX = 1, 2**63 - 1  # BigAutoField primary keys

COLUMN_BOUNDS: dict[str, tuple[int, int]] = {
    "SmallIntegerField": SMALL,
    "IntegerField": INTEGER,
    "BigIntegerField": BIG,
    "PositiveSmallIntegerField": POSITIVE_SMALL,
    "PositiveIntegerField": POSITIVE,
    "PositiveBigIntegerField": POSITIVE_BIG,
    "AutoField": (1, 2**31 - 1),
    "SmallAutoField": (1, 32_767),
    "BigAutoField": (ID_MIN, ID_MAX),
}

# Deep enough for any real rubric answer, sampling condition or agent metadata; shallow
# enough that every recursive consumer downstream (json.dumps, templates, pydantic) is safe.
MAX_JSON_DEPTH = 64
_PATH_MAX = 300
_DIGITS = re.compile(r"[0-9]+")
# orjson reads an integer literal outside -2**63 .. 2**64-1 as a float, so a float at or past
# these bounds may have been such an integer (a float literal there, 1e30, merely costs an
# exact re-decode). As floats the literals just past them round onto the bounds themselves.
_INT_FLOAT_MIN = float(-(2**63))
_INT_FLOAT_MAX = float(2**64)


class InputError(ValidationFailed):
    """Refused input: a 400 whose `errors` name the offending field (`metadata.a[3]`), or
    `body` for the document as a whole."""

    def __init__(self, message: str, path: str = "", *, detail: str | None = None):
        if len(path) > _PATH_MAX:  # sixty-four levels of long keys: keep the answer small
            path = path[:_PATH_MAX] + "…"
        super().__init__(message, errors={path or "body": [detail or message]})
        self.path = path


def is_id(value: Any) -> bool:
    """A value a primary key column can hold (and raw SQL may be given)."""
    return type(value) is int and ID_MIN <= value <= ID_MAX


def parse_int(text: Any, *, field: str, min: int, max: int) -> int:
    """An integer from a query string, form field or URL part: ASCII digits with an optional
    leading minus, within [min, max]. `"²".isdigit()` is true and `int("١٢")` is 12; neither
    is what a client means, so only 0-9 count. Raises InputError naming `field`."""
    raw = str(text).strip() if text is not None else ""
    digits = raw[1:] if raw.startswith("-") else raw
    # Length first: int() on a huge digit string is quadratic (and limited in Python 3.11+).
    if not digits or len(digits) > 20 or not _DIGITS.fullmatch(digits):
        raise InputError("Send a whole number.", field)
    value = int(raw)
    if not min <= value <= max:
        raise InputError(f"Must be from {min} to {max}.", field)
    return value


def parse_int_or_none(text: Any, *, field: str, min: int, max: int) -> int | None:
    """parse_int, with an absent or empty value meaning None."""
    if text is None or str(text).strip() == "":
        return None
    return parse_int(text, field=field, min=min, max=max)


def check_int(value: Any, *, field: str, bounds: tuple[int, int]) -> None:
    """An integer already parsed (a service argument) must fit its column."""
    if type(value) is not int or not bounds[0] <= value <= bounds[1]:
        raise InputError(f"Must be a whole number from {bounds[0]} to {bounds[1]}.", field)


def check_text(value: str, *, field: str) -> None:
    if "\x00" in value:
        raise InputError("Text may not contain NUL (U+0000) characters.", field)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _text_problem(text: str) -> str | None:
    """NUL, or an unpaired surrogate (`"\\ud800"` decodes to one in the stdlib's JSON): neither can
    be stored in PostgreSQL text or jsonb, so both would be a 500 at the database."""
    if "\x00" in text:
        return "Text may not contain NUL (U+0000) characters."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "Text must be valid Unicode (no unpaired surrogate escapes such as \\ud800)."
    return None


def json_problem(value: Any, *, path: str = "", max_depth: int = MAX_JSON_DEPTH) -> InputError | None:
    """The first problem in a decoded JSON value, or None: nesting deeper than `max_depth`, a
    NUL in a string or key, a NaN or infinite float, or something JSON cannot hold. Iterative
    (an explicit stack), so any depth is checked in linear time without recursing. A node's
    path is kept as (its parent's, its key) and spelled out only for the problem found: most
    values have none, and formatting every node's path was most of the walk."""
    stack: list[tuple[Any, Any, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, str):
            if (message := _text_problem(node)) is not None:
                return InputError(message, _path(where))
        elif isinstance(node, bool) or node is None or isinstance(node, int):
            continue
        elif isinstance(node, float):
            if not math.isfinite(node):
                return InputError("Numbers must be finite (no NaN or infinity).", _path(where))
        elif isinstance(node, dict | list | tuple):
            if depth >= max_depth:
                return InputError(f"Nested too deeply; at most {max_depth} levels.", _path(where))
            items: Iterator[tuple[Any, Any]] = iter(node.items()) if isinstance(node, dict) else enumerate(node)
            children = []
            for key, child in items:
                if isinstance(node, dict):
                    if not isinstance(key, str):
                        return InputError("Object keys must be text.", _path(where))
                    if (message := _text_problem(key)) is not None:
                        return InputError(message.replace("Text", "Keys", 1), _path(where))
                children.append((child, (where, key), depth + 1))
            stack.extend(reversed(children))  # depth-first, in document order
        else:
            return InputError(f"Not a JSON value: {type(node).__name__}.", _path(where))
    return None


def _path(where: Any) -> str:
    """The path json_problem kept as nested (parent, key) pairs around the starting path."""
    keys = []
    while isinstance(where, tuple):
        where, key = where
        keys.append(key)
    for key in reversed(keys):
        where = _join(where, key)
    return where


def check_json(value: Any, *, path: str = "", max_depth: int = MAX_JSON_DEPTH) -> None:
    problem = json_problem(value, path=path, max_depth=max_depth)
    if problem is not None:
        raise problem


def _scan(value: Any, max_depth: int) -> tuple[bool, bool]:
    """(whether a decoded value nests at most `max_depth` levels, whether it holds a float that
    may be an integer orjson could not hold exactly). Iterative; leaves are only type-checked,
    which is what makes it cheaper than check_json. Past the depth it stops: check_json then
    refuses the value anyway."""
    if type(value) is not dict and type(value) is not list:
        return True, type(value) is float and (value >= _INT_FLOAT_MAX or value <= _INT_FLOAT_MIN)
    big = False
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth >= max_depth:
            return False, big
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, depth + 1))
            elif kind is float and (child >= _INT_FLOAT_MAX or child <= _INT_FLOAT_MIN):
                big = True
    return True, big


# A JSON string literal (escapes included), to blank out before counting brackets.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def _nesting(raw: bytes) -> int:
    """How deeply a JSON document nests, from its bytes: linear, no recursion, no decoding."""
    brackets = _STRING.sub(b"", raw).translate(None, delete=bytes(b for b in range(256) if not _STEP[b]))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _stdlib_loads(raw: bytes, max_depth: int) -> Any:
    """The slow, exact decode: integers of any size kept, NaN, infinity and `1e400` decoded
    (as floats) so that check_json can name where they are. The nesting is measured first, so
    the stdlib's recursion is never deep."""
    # Twice the limit: deep enough for check_json to name where the limit is passed, and still
    # far from the stdlib's recursion limit.
    if _nesting(raw) > 2 * max_depth:
        raise InputError(f"Nested too deeply; at most {max_depth} levels.", "body")
    try:
        value = json.loads(raw, parse_constant=float)
    except ValueError as exc:  # malformed, or an integer past Python's 4,300-digit limit
        raise InputError("Malformed JSON.", "body", detail=str(exc)) from exc
    check_json(value, max_depth=max_depth)
    return value


def json_loads(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a JSON document from outside, bounded. Raises InputError naming the path of the
    first problem (`metadata.a[3]`; `body` when the document itself is broken).

    orjson decodes without recursing in Python and stops at 1,024 levels, so a deeply nested
    body costs linear time and no stack; the decoded value is then checked (depth, NUL,
    non-finite). orjson reads integers beyond 64 bits as floats and refuses `1e400` and NaN
    without saying where: such a body is decoded again with the stdlib, which keeps integers
    exact and lets the check name the field, after a linear count of its nesting."""
    raw = body.encode() if isinstance(body, str) else body
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc) or "depth" in str(exc):
            raise InputError(f"Nested too deeply; at most {max_depth} levels.", "body") from exc
        return _stdlib_loads(raw, max_depth)
    # orjson never yields NaN or infinity, and refuses raw control characters, so a NUL can only
    # come from a `\u0000` escape: without one, only the depth is left to check, which walks
    # containers and type-checks leaves (a fifth of orjson's own time on an ingest batch, the
    # full check twice it). The same walk finds floats that may be integers beyond 64 bits:
    # only those send the body through the exact decode, not digit runs inside strings.
    shallow, big = _scan(value, max_depth)
    if b"\\u0000" in raw or not shallow:
        check_json(value, max_depth=max_depth)
    if big:
        return _stdlib_loads(raw, max_depth)
    return value


__all__ = [
    "BIG",
    "COLUMN_BOUNDS",
    "ID_MAX",
    "ID_MIN",
    "INTEGER",
    "MAX_JSON_DEPTH",
    "POSITIVE",
    "POSITIVE_BIG",
    "POSITIVE_SMALL",
    "SMALL",
    "InputError",
    "check_int",
    "check_json",
    "check_text",
    "is_id",
    "json_loads",
    "json_problem",
    "parse_int",
    "parse_int_or_none",
]
