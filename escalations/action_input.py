"""An action request as an agent sends it, checked field by field. Pure: no ORM, no Django.

Everything here comes from an agent (and, through `args` and `reasoning`, from its end users), so
every field is bounded where it enters and a refusal names the field (`risk_tags[3]`). What is
refused, and why:

- `external_id`: required, text of 1..255 characters (the column; it is the idempotency key).
- `action`: required, 1..100 characters, a letter or digit first, then letters, digits and
  `_ . : / -` (tool names of every agent framework fit; policy globs match on it, so `*`, `?`
  and `[` in a name would make rules ambiguous).
- `args`: a JSON object (default `{}`), at most 32 levels deep and 64 KB as canonical JSON (the
  approver's page shows it whole; the policy reads paths of up to 16 segments). Its numbers are
  normalised to what PostgreSQL's jsonb gives back (`json_numbers_normalise`), so the args
  stored, digested, compared for idempotency and answered are one value on either database.
- `confidence`: a finite number from 0 to 1, or null/absent (absent is treated as the lowest
  confidence by the policy: fail safe). `true` is not a number.
- `risk_tags`: at most 20 distinct-or-not strings of 1..64 characters.
- `reasoning`: text, at most 20,000 characters.
- `end_user_id`, `conversation_external_id`: text, at most 255 characters.
- `agent_version`: text, at most 100 characters.
- `callback_url`: empty, or a URL the webhook sender may call (outbound.url_problem): `http` or
  `https`, a host, no `user:password@`, no whitespace or control characters, at most 2,000
  characters, and, unless WEBHOOK_ALLOW_PRIVATE_HOSTS, not `localhost` nor an IP literal that
  is not global unicast (a name is resolved and checked at each send, not here).
- Any other key is refused, naming it (a misspelt `confidense` must not pass silently).

Text anywhere may not hold NUL or unpaired surrogates (validation.check_json; PostgreSQL cannot
store them). The idempotency check compares these normalised fields in `FIELDS` order and names
the first that differs.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from reviewapp import outbound, validation
from reviewapp.validation import InputError

EXTERNAL_ID_MAX = 255
ACTION_MAX = 100
ACTION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
ARGS_MAX_DEPTH = 32
ARGS_MAX_BYTES = 65_536
RISK_TAGS_MAX = 20
RISK_TAG_MAX = 64
REASONING_MAX = 20_000
END_USER_ID_MAX = 255
CONVERSATION_EXTERNAL_ID_MAX = 255
AGENT_VERSION_MAX = 100
CALLBACK_URL_MAX = 2000

# The request's fields in the order a 409 names the first that differs (external_id is the key).
FIELDS = (
    "action",
    "args",
    "confidence",
    "risk_tags",
    "reasoning",
    "end_user_id",
    "conversation_external_id",
    "agent_version",
    "callback_url",
)
# Keys the API accepts besides FIELDS: the key itself, and the project a person's token names.
_ALLOWED = frozenset({"external_id", "project", *FIELDS})


@dataclass(frozen=True)
class ActionInput:
    external_id: str
    action: str
    args: dict[str, Any]
    confidence: float | None
    risk_tags: tuple[str, ...]
    reasoning: str
    end_user_id: str
    conversation_external_id: str
    agent_version: str
    callback_url: str


def _text(data: dict[str, Any], key: str, *, max_length: int, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise InputError("This field is required.", key)
        return ""
    if not isinstance(value, str):
        raise InputError("Must be text.", key)
    if required and not value.strip():
        raise InputError("May not be blank.", key)
    if len(value) > max_length:
        raise InputError(f"At most {max_length} characters; got {len(value)}.", key)
    return value


def _action_name(data: dict[str, Any]) -> str:
    name = _text(data, "action", max_length=ACTION_MAX, required=True)
    if not ACTION_PATTERN.fullmatch(name):
        raise InputError(
            "A letter or digit, then letters, digits and _ . : / - (no spaces or glob characters).", "action"
        )
    return name


def _args(data: dict[str, Any]) -> dict[str, Any]:
    args = data.get("args")
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise InputError("Must be a JSON object.", "args")
    # Already checked (NUL, surrogates, finite numbers, depth) with the whole body in
    # action_input_parse, the only caller: one level deeper there is the same bound here.
    args = json_numbers_normalise(args)
    try:
        size = len(orjson.dumps(args))
    except TypeError:  # an integer beyond 64 bits (json_loads keeps those exact): the slow way
        size = len(_stdlib_dumps(args))
    if size > ARGS_MAX_BYTES:
        raise InputError(f"At most {ARGS_MAX_BYTES} bytes as JSON; got {size}.", "args")
    return args


# From here Python writes a float with an exponent (repr(1e16) == "1e+16"); jsonb stores numbers
# as numeric and writes those back as integers (10000000000000000), which Python reads as int.
# Below it, an integral float keeps its ".0" in jsonb ("5.0" stays 5.0).
FLOAT_AS_INT_FROM = 1e16


def json_numbers_normalise(value: Any) -> Any:
    """`value` (checked JSON: bounded depth, finite numbers) with its numbers as PostgreSQL's
    jsonb gives them back, so SQLite (which keeps the text Python wrote) agrees: a float of
    magnitude 1e16 or more becomes the integer its decimal form names (`1e16` ->
    10000000000000000, `1.5e300` -> 15 followed by 299 zeros: the digits of repr, not the
    float's binary expansion), and -0.0 becomes 0.0 (numeric has no negative zero). Other
    numbers are already what jsonb answers. A new structure where something changed."""
    if isinstance(value, float):
        if value == 0.0:
            return 0.0
        if abs(value) >= FLOAT_AS_INT_FROM:
            return int(decimal.Decimal(repr(value)))
        return value
    if isinstance(value, dict):
        return {k: json_numbers_normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_numbers_normalise(v) for v in value]
    return value


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _confidence(data: dict[str, Any]) -> float | None:
    value = data.get("confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError("Must be a number from 0 to 1.", "confidence")
    if isinstance(value, int) and value not in (0, 1):  # also keeps 10**400 away from float()
        raise InputError("Must be a number from 0 to 1.", "confidence")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InputError("Must be a number from 0 to 1.", "confidence")
    return number


def _risk_tags(data: dict[str, Any]) -> tuple[str, ...]:
    tags = data.get("risk_tags")
    if tags is None:
        return ()
    if not isinstance(tags, list):
        raise InputError("Must be a list of text.", "risk_tags")
    if len(tags) > RISK_TAGS_MAX:
        raise InputError(f"At most {RISK_TAGS_MAX} tags; got {len(tags)}.", "risk_tags")
    for index, tag in enumerate(tags):
        where = f"risk_tags[{index}]"
        if not isinstance(tag, str):
            raise InputError("Must be text.", where)
        if not tag or len(tag) > RISK_TAG_MAX:
            raise InputError(f"From 1 to {RISK_TAG_MAX} characters.", where)
    return tuple(tags)


def _callback_url(data: dict[str, Any], *, allow_private: bool) -> str:
    url = _text(data, "callback_url", max_length=CALLBACK_URL_MAX)
    # The webhook sender's own rules (outbound.py), checked again before every send with the
    # addresses the host resolves to.
    problem = outbound.url_problem(url, allow_private=allow_private) if url else None
    if problem is not None:
        raise InputError(problem, "callback_url")
    return url


def action_input_parse(data: Any, *, allow_private_callbacks: bool = False) -> ActionInput:
    """The request body (decoded JSON) as an ActionInput; raises InputError naming the field.
    `allow_private_callbacks`: settings.WEBHOOK_ALLOW_PRIVATE_HOSTS (a receiver on a laptop)."""
    if not isinstance(data, dict):
        raise InputError("Send a JSON object.", "body")
    unknown = sorted(str(k) for k in data if k not in _ALLOWED)
    if unknown:
        raise InputError(f"Unknown field; the fields are: {', '.join(sorted(_ALLOWED))}.", unknown[0])
    # Whatever door the data came through (the API's parser checks too): no NUL, no surrogate,
    # nothing non-finite, bounded depth, before any field is looked at.
    validation.check_json(data, max_depth=ARGS_MAX_DEPTH + 1)
    return ActionInput(
        external_id=_text(data, "external_id", max_length=EXTERNAL_ID_MAX, required=True),
        action=_action_name(data),
        args=_args(data),
        confidence=_confidence(data),
        risk_tags=_risk_tags(data),
        reasoning=_text(data, "reasoning", max_length=REASONING_MAX),
        end_user_id=_text(data, "end_user_id", max_length=END_USER_ID_MAX),
        conversation_external_id=_text(data, "conversation_external_id", max_length=CONVERSATION_EXTERNAL_ID_MAX),
        agent_version=_text(data, "agent_version", max_length=AGENT_VERSION_MAX),
        callback_url=_callback_url(data, allow_private=allow_private_callbacks),
    )


def _canonical(value: Any) -> bytes:
    # Sorted keys, no spaces: two args equal as JSON compare equal whatever their key order, and
    # 1, 1.0 and true stay three different values (Python's == says 1 == 1.0 == True).
    return _stdlib_dumps(value)


def first_difference(stored: ActionInput, sent: ActionInput) -> str | None:
    """The first field (FIELDS order) whose value differs between two requests with the same
    external_id, or None when they are the same request."""
    for name in FIELDS:
        a, b = getattr(stored, name), getattr(sent, name)
        if name == "args":
            if _canonical(a) != _canonical(b):
                return name
        elif name == "confidence":
            if (a is None) != (b is None) or (a is not None and float(a) != float(b)):
                return name
        elif a != b:
            return name
    return None
