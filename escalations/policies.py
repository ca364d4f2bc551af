"""Policies and escalation ladders: validation of the stored data and the policy's decision.
Pure (no ORM, no Django): dataclasses in and out, tested without a database.

Policy JSON: `{"rules": [rule, ...], "default_ladder": "default"}`, where a rule is
`{"name": ..., "if": {...}, "then": "approve" | "reject" | "escalate", "ladder": ..., "reason": ...}`.
`if` keys, all optional and ANDed (an empty `if` matches every action):

- `action`, `agent_version`: globs (`fnmatchcase`: case-sensitive `*`, `?`, `[...]`).
- `confidence_below` / `confidence_at_least` (0..1): a missing confidence counts as the lowest,
  so it matches `confidence_below` and never `confidence_at_least` (fail safe).
- `risk_tags_any`: at least one of the action's risk tags is in the list.
- `args`: `[{"path": "customer.id", "op": ">", "value": 200}]`. A path walks objects by key and
  lists by index (`items.0.price`); a key containing a dot cannot be addressed. Ops:
  `== != > >= < <= in contains`. Values are compared with their JSON type: a boolean is not a
  number, and a number is never equal to a string. A missing path or a type mismatch means the
  condition does not match, for every op (`!=` included). Ordering ops compare two numbers or
  two strings (by code point); `in`: the arg is one of the rule's list; `contains`: the arg is a
  string containing the rule's string, or a list holding the rule's value.
- `velocity`: `[{"window": {"of": "sum", "path": "amount", "by": "end_user_id",
  "seconds": 86400, "action": "refund*"}, "op": ">", "value": 1000}]`: the sum of an args path
  (or the count, `"of": "count"`, no path) over the actions of the same end user (or agent
  version, or the whole project) within the window. `action` is a glob of the action names
  counted; without it, only actions of the same name as the one evaluated count. The total
  INCLUDES the action being evaluated (when its name is counted): the callback returns the
  earlier actions' sum or count and this module adds this action's own value (0 when its path
  is missing or not a number) or 1. So with `sum > 1000`, a third $400 refund to one customer
  in a day goes to a human. An action with no `end_user_id` has an unknown, unbounded total
  for a `by: end_user_id` window (an unknown customer is treated as risky): `>`, `>=` and `!=`
  match, `<`, `<=` and `==` do not, and the callback is not called. The callback is called
  only once a rule's other conditions matched (it is a database query), at most once per
  distinct window per evaluation, and its exceptions propagate (the caller fails closed).

Rules are evaluated in order; the first that matches decides. When none matches the action
escalates to `default_ladder` (fail safe). Evaluation is a loop over rules and their conditions:
linear, never recursive on the input, cheap conditions first. Within one decision, glob results,
path lookups and `contains` results are shared between rules, and a list arg becomes a set
once, so a long arg from the agent is not rescanned by every rule.

Ladder JSON: `{"name": "finance", "tiers": [{"role": "approver", "timeout_seconds": 900},
{"users": ["lead", "cfo"], "timeout_seconds": 3600, "approvals_required": 2}],
"timeout_outcome": "reject", "notify_webhook_url": "https://hooks.slack.com/..."}`. Past the
last tier's timeout the action gets `timeout_outcome`, which can only be `reject`: an action
nobody decided fails closed.

Every bound below is checked by `policy_validate`/`ladder_validate`, whose `PolicyInvalid`
names the exact field (`rules[1].if.args[0].op`, `tiers[0].timeout_seconds`).
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

# Bounds. A policy is read on every action request, so its size bounds the decision's cost:
# 200 rules x (20 args + 5 velocity) conditions is the worst case evaluation.
MAX_RULES = 200
MAX_ARG_CONDITIONS = 20
MAX_VELOCITY_CONDITIONS = 5
MAX_NAME = 100  # a rule's name; Action.matched_rule holds 200
MAX_GLOB = 200
MAX_PATH = 200
MAX_PATH_DEPTH = 16
MAX_REASON = 500  # copied into Action.reason (1,000)
MAX_RISK_TAGS = 50
MAX_RISK_TAG = 100
MAX_IN_VALUES = 200
MAX_STRING_VALUE = 1000
MAX_WINDOW_SECONDS = 90 * 86400  # the velocity indexes are scanned over at most this range
MAX_LADDER_NAME = 100  # LadderVersion.name, PolicyVersion.default_ladder
MAX_TIERS = 10
MAX_TIER_USERS = 50
MAX_USERNAME = 150  # Django's username length
MIN_TIER_TIMEOUT = 60
MAX_TIER_TIMEOUT = 30 * 86400
MAX_APPROVALS = 5
MAX_WEBHOOK_URL = 2000  # LadderVersion.notify_webhook_url
# JSON numbers outside 64 bits have no column or client that keeps them exact.
_INT_LIMIT = 2**63

OUTCOMES = ("approve", "reject", "escalate")
ROLES = ("annotator", "approver", "engineer", "admin")
ARG_OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "contains")
VELOCITY_OPS = ("==", "!=", ">", ">=", "<", "<=")
VELOCITY_OF = ("sum", "count")
VELOCITY_BY = ("end_user_id", "agent_version", "project")
DEFAULT_LADDER = "default"
NO_MATCH_REASON = "No rule matched; escalated to the default ladder"

_ORDERING = frozenset({">", ">=", "<", "<="})
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_LADDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_USERNAME = re.compile(r"[\w.@+-]+")  # Django's UnicodeUsernameValidator
_SAFE_KEY = re.compile(r"[A-Za-z0-9_]{1,50}")


class PolicyInvalid(ValueError):
    """Refused policy or ladder data. `field` is the path of the offending value
    (`rules[1].if.args[0].op`), `message` says what is wrong with it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LadderInvalid(PolicyInvalid):
    pass


# --- Policy dataclasses ---------------------------------------------------------------------


# The JSON type of a decoded scalar, by exact type: comparisons only happen within one kind,
# so True is not 1 and 1 is not "1". Anything else (lists, objects, null) is no scalar.
_SCALAR_KINDS: dict[type, str] = {bool: "boolean", int: "number", float: "number", str: "string"}


def _compile_test(op: str, want: Any) -> Callable[[Any], bool]:
    """The test an args condition applies to the value found at its path, built once per
    condition: the evaluation loop then costs one call per condition."""
    kinds = _SCALAR_KINDS
    if op == "in":
        members = frozenset((kinds.get(type(v)), v) for v in want)

        def test_in(got: Any) -> bool:
            kind = kinds.get(type(got))
            return kind is not None and (kind, got) in members

        return test_in
    want_kind = kinds.get(type(want))
    if op == "contains":

        def test_contains(got: Any) -> bool:
            if type(got) is str:
                return want_kind == "string" and want in got
            return type(got) is list and any(item == want and kinds.get(type(item)) == want_kind for item in got)

        return test_contains
    compare = _COMPARE[op]
    if want_kind == "number":
        return lambda got: (type(got) is int or type(got) is float) and compare(got, want)
    want_type = type(want)  # str, or bool for == and !=
    return lambda got: type(got) is want_type and compare(got, want)


@dataclass(frozen=True)
class ArgCondition:
    path: str
    op: str
    value: Any  # a scalar; a tuple of scalars for `in`
    # Derived once, for evaluation: the path's segments, the compiled test, and for `contains`
    # the (kind, value) looked up in a list's member set.
    _segments: tuple[str, ...] = field(init=False, repr=False, compare=False, hash=False)
    _test: Callable[[Any], bool] = field(init=False, repr=False, compare=False, hash=False)
    _contains: tuple[str | None, Any] | None = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_segments", tuple(self.path.split(".")))
        object.__setattr__(self, "_test", _compile_test(self.op, self.value))
        contains = (_SCALAR_KINDS.get(type(self.value)), self.value) if self.op == "contains" else None
        object.__setattr__(self, "_contains", contains)

    def __reduce__(self) -> tuple[Any, tuple[str, str, Any]]:
        # Pickle (a cache) without the compiled test, a closure; it is rebuilt on load.
        return (ArgCondition, (self.path, self.op, self.value))


@dataclass(frozen=True)
class VelocityWindow:
    of: str  # "sum" | "count"
    path: str | None  # args path summed (sum only)
    by: str  # "end_user_id" | "agent_version" | "project"
    seconds: int  # 1 .. 90 days
    action: str | None  # glob of the action names counted; None: the evaluated action's name


@dataclass(frozen=True)
class VelocityCondition:
    window: VelocityWindow
    op: str
    value: float


@dataclass(frozen=True)
class Rule:
    index: int
    name: str  # f"rules[{index}]" when the rule has none
    action: str | None
    confidence_below: float | None
    confidence_at_least: float | None
    risk_tags_any: tuple[str, ...]
    agent_version: str | None
    args: tuple[ArgCondition, ...]
    velocity: tuple[VelocityCondition, ...]
    outcome: str
    ladder: str | None  # escalate only; None: the policy's default ladder
    reason: str
    _risk_tags: frozenset[str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_risk_tags", frozenset(self.risk_tags_any))


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    default_ladder: str


@dataclass(frozen=True)
class ActionFacts:
    action: str
    args: dict
    confidence: float | None
    risk_tags: tuple[str, ...]
    agent_version: str
    end_user_id: str


@dataclass(frozen=True)
class Verdict:
    outcome: str
    ladder: str | None  # escalate only
    rule_index: int | None  # None: no rule matched
    rule_name: str  # "" when no rule matched
    reason: str
    # One entry per condition of the deciding rule, with what the action showed:
    # {"condition": "args.amount > 200", "observed": 450}; empty when no rule matched.
    explanation: tuple[dict, ...]


# --- Ladder dataclasses ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    role: str | None  # exactly one of role and users
    users: tuple[str, ...]
    timeout_seconds: int
    approvals_required: int


@dataclass(frozen=True)
class Ladder:
    name: str
    tiers: tuple[Tier, ...]
    timeout_outcome: str
    notify_webhook_url: str


# --- Validation helpers ---------------------------------------------------------------------


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _object(
    data: Any, where: str, allowed: tuple[str, ...], error: type[PolicyInvalid], *, what: str = "an object"
) -> dict:
    if not isinstance(data, dict):
        raise error(where or "body", f"Must be {what}.")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        first = unknown[0]
        safe = isinstance(first, str) and _SAFE_KEY.fullmatch(first)
        shown = ", ".join(repr(k)[:60] for k in unknown[:5])
        raise error(
            _join(where, first) if safe else (where or "body"),
            f"Unknown key {shown}; allowed: {', '.join(allowed)}.",
        )
    return data


def _text(
    value: Any, where: str, error: type[PolicyInvalid], *, max_len: int, min_len: int = 1, what: str = "text"
) -> str:
    if not isinstance(value, str):
        raise error(where, f"Must be {what}.")
    if len(value) > max_len:
        raise error(where, f"At most {max_len} characters.")
    if len(value) < min_len:
        raise error(where, "Must not be empty.")
    if "\x00" in value:
        raise error(where, "Text may not contain NUL (U+0000) characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(where, "Text must be valid Unicode (no unpaired surrogates).") from None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, where: str, error: type[PolicyInvalid], *, low: float | None = None, high: float | None = None):
    if not _is_number(value):
        raise error(where, "Must be a number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise error(where, "Must be finite (no NaN or infinity).")
    if isinstance(value, int) and not -_INT_LIMIT < value < _INT_LIMIT:
        raise error(where, "Must fit in 64 bits.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise error(where, f"Must be from {low} to {high}.")
    return value


def _whole(value: Any, where: str, error: type[PolicyInvalid], *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(where, f"Must be a whole number from {low} to {high}.")
    return value


def _list(value: Any, where: str, error: type[PolicyInvalid], *, max_items: int, min_items: int = 0) -> list:
    if not isinstance(value, list):
        raise error(where, "Must be a list.")
    if len(value) > max_items:
        raise error(where, f"At most {max_items} items.")
    if len(value) < min_items:
        raise error(where, f"At least {min_items} item{'s' if min_items > 1 else ''}.")
    return value


def _glob(value: Any, where: str) -> str:
    return _text(value, where, PolicyInvalid, max_len=MAX_GLOB, what="a glob (text)")


def _path(value: Any, where: str) -> str:
    path = _text(value, where, PolicyInvalid, max_len=MAX_PATH, what="an args path (text)")
    segments = path.split(".")
    if len(segments) > MAX_PATH_DEPTH:
        raise PolicyInvalid(where, f"At most {MAX_PATH_DEPTH} segments.")
    if "" in segments:
        raise PolicyInvalid(where, 'Segments are separated by single dots ("customer.id", "items.0.price").')
    return path


def _ladder_name(value: Any, where: str, error: type[PolicyInvalid]) -> str:
    name = _text(value, where, error, max_len=MAX_LADDER_NAME, what="a ladder name (text)")
    if not _LADDER_NAME.fullmatch(name):
        raise error(where, "Letters, digits, '-' and '_' only, starting with a letter or digit.")
    return name


def _scalar(value: Any, where: str, *, ordering: bool = False) -> Any:
    """A value a condition compares with: text, a finite number, or (not for ordering) a boolean."""
    if isinstance(value, str):
        return _text(value, where, PolicyInvalid, max_len=MAX_STRING_VALUE, min_len=0)
    if _is_number(value):
        return _number(value, where, PolicyInvalid)
    if isinstance(value, bool) and not ordering:
        return value
    raise PolicyInvalid(where, "Must be a number or text." if ordering else "Must be text, a number or a boolean.")


# --- Policy validation ----------------------------------------------------------------------

_RULE_KEYS = ("name", "if", "then", "ladder", "reason")
_IF_KEYS = ("action", "confidence_below", "confidence_at_least", "risk_tags_any", "agent_version", "args", "velocity")
_ARG_KEYS = ("path", "op", "value")
_VELOCITY_KEYS = ("window", "op", "value")
_WINDOW_KEYS = ("of", "path", "by", "seconds", "action")


def _arg_condition(data: Any, where: str) -> ArgCondition:
    _object(data, where, _ARG_KEYS, PolicyInvalid)
    for key in _ARG_KEYS:
        if key not in data:
            raise PolicyInvalid(_join(where, key), "Required.")
    path = _path(data["path"], f"{where}.path")
    op = data["op"]
    if not isinstance(op, str) or op not in ARG_OPS:
        raise PolicyInvalid(f"{where}.op", f"Must be one of {' '.join(ARG_OPS)}.")
    raw, at = data["value"], f"{where}.value"
    value: Any
    if op == "in":
        items = _list(raw, at, PolicyInvalid, max_items=MAX_IN_VALUES, min_items=1)
        value = tuple(_scalar(item, f"{at}[{i}]") for i, item in enumerate(items))
    else:
        value = _scalar(raw, at, ordering=op in _ORDERING)
    return ArgCondition(path=path, op=op, value=value)


def _velocity_condition(data: Any, where: str) -> VelocityCondition:
    _object(data, where, _VELOCITY_KEYS, PolicyInvalid)
    for key in _VELOCITY_KEYS:
        if key not in data:
            raise PolicyInvalid(_join(where, key), "Required.")
    at = f"{where}.window"
    window = _object(data["window"], at, _WINDOW_KEYS, PolicyInvalid)
    for key in ("of", "by", "seconds"):
        if key not in window:
            raise PolicyInvalid(f"{at}.{key}", "Required.")
    of = window["of"]
    if not isinstance(of, str) or of not in VELOCITY_OF:
        raise PolicyInvalid(f"{at}.of", "Must be sum or count.")
    path = window.get("path")
    if of == "sum":
        if path is None:
            raise PolicyInvalid(f"{at}.path", "Required for a sum: the args path to add up.")
        path = _path(path, f"{at}.path")
    elif path is not None:
        raise PolicyInvalid(f"{at}.path", "Only a sum has a path; a count counts actions.")
    by = window["by"]
    if not isinstance(by, str) or by not in VELOCITY_BY:
        raise PolicyInvalid(f"{at}.by", f"Must be one of {', '.join(VELOCITY_BY)}.")
    seconds = _whole(window["seconds"], f"{at}.seconds", PolicyInvalid, low=1, high=MAX_WINDOW_SECONDS)
    action = window.get("action")
    if action is not None:
        action = _glob(action, f"{at}.action")
    op = data["op"]
    if not isinstance(op, str) or op not in VELOCITY_OPS:
        raise PolicyInvalid(f"{where}.op", f"Must be one of {' '.join(VELOCITY_OPS)}.")
    value = _number(data["value"], f"{where}.value", PolicyInvalid)
    return VelocityCondition(
        window=VelocityWindow(of=of, path=path, by=by, seconds=seconds, action=action), op=op, value=value
    )


def _rule(data: Any, index: int) -> Rule:
    where = f"rules[{index}]"
    _object(data, where, _RULE_KEYS, PolicyInvalid)
    if "then" not in data:
        raise PolicyInvalid(f"{where}.then", "Required: approve, reject or escalate.")
    outcome = data["then"]
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise PolicyInvalid(f"{where}.then", "Must be approve, reject or escalate.")
    name = data.get("name")
    name = f"rules[{index}]" if name is None else _text(name, f"{where}.name", PolicyInvalid, max_len=MAX_NAME)
    ladder = data.get("ladder")
    if ladder is not None:
        if outcome != "escalate":
            raise PolicyInvalid(f"{where}.ladder", "Only an escalate rule names a ladder.")
        ladder = _ladder_name(ladder, f"{where}.ladder", PolicyInvalid)
    reason = data.get("reason")
    reason = "" if reason is None else _text(reason, f"{where}.reason", PolicyInvalid, max_len=MAX_REASON, min_len=0)

    at = f"{where}.if"
    cond = _object(data.get("if", {}), at, _IF_KEYS, PolicyInvalid)
    action = cond.get("action")
    if action is not None:
        action = _glob(action, f"{at}.action")
    agent_version = cond.get("agent_version")
    if agent_version is not None:
        agent_version = _glob(agent_version, f"{at}.agent_version")
    below = cond.get("confidence_below")
    if below is not None:
        below = _number(below, f"{at}.confidence_below", PolicyInvalid, low=0, high=1)
    at_least = cond.get("confidence_at_least")
    if at_least is not None:
        at_least = _number(at_least, f"{at}.confidence_at_least", PolicyInvalid, low=0, high=1)
    if below is not None and at_least is not None and at_least >= below:
        raise PolicyInvalid(f"{at}.confidence_at_least", "Must be below confidence_below, or no action can match.")
    tags: tuple[str, ...] = ()
    if cond.get("risk_tags_any") is not None:
        raw_tags = _list(
            cond["risk_tags_any"], f"{at}.risk_tags_any", PolicyInvalid, max_items=MAX_RISK_TAGS, min_items=1
        )
        tags = tuple(
            _text(tag, f"{at}.risk_tags_any[{i}]", PolicyInvalid, max_len=MAX_RISK_TAG)
            for i, tag in enumerate(raw_tags)
        )
    args: tuple[ArgCondition, ...] = ()
    if cond.get("args") is not None:
        raw_args = _list(cond["args"], f"{at}.args", PolicyInvalid, max_items=MAX_ARG_CONDITIONS)
        args = tuple(_arg_condition(item, f"{at}.args[{i}]") for i, item in enumerate(raw_args))
    velocity: tuple[VelocityCondition, ...] = ()
    if cond.get("velocity") is not None:
        raw_velocity = _list(cond["velocity"], f"{at}.velocity", PolicyInvalid, max_items=MAX_VELOCITY_CONDITIONS)
        velocity = tuple(_velocity_condition(item, f"{at}.velocity[{i}]") for i, item in enumerate(raw_velocity))
    return Rule(
        index=index,
        name=name,
        action=action,
        confidence_below=below,
        confidence_at_least=at_least,
        risk_tags_any=tags,
        agent_version=agent_version,
        args=args,
        velocity=velocity,
        outcome=outcome,
        ladder=ladder,
        reason=reason,
    )


def policy_validate(data: Any) -> Policy:
    """Untrusted JSON (already decoded and bounded by the JSON parser) to a Policy.
    Raises PolicyInvalid naming the first bad field."""
    _object(data, "", ("rules", "default_ladder"), PolicyInvalid)
    if "rules" not in data:
        raise PolicyInvalid("rules", "Required: a list of rules (may be empty).")
    rules = _list(data["rules"], "rules", PolicyInvalid, max_items=MAX_RULES)
    default_ladder = data.get("default_ladder")
    default_ladder = (
        DEFAULT_LADDER if default_ladder is None else _ladder_name(default_ladder, "default_ladder", PolicyInvalid)
    )
    return Policy(rules=tuple(_rule(rule, i) for i, rule in enumerate(rules)), default_ladder=default_ladder)


# --- Policy JSON ----------------------------------------------------------------------------


def _window_to_json(window: VelocityWindow) -> dict:
    out: dict[str, Any] = {"of": window.of}
    if window.path is not None:
        out["path"] = window.path
    out["by"] = window.by
    out["seconds"] = window.seconds
    if window.action is not None:
        out["action"] = window.action
    return out


def _rule_to_json(rule: Rule) -> dict:
    cond: dict[str, Any] = {}
    if rule.action is not None:
        cond["action"] = rule.action
    if rule.confidence_below is not None:
        cond["confidence_below"] = rule.confidence_below
    if rule.confidence_at_least is not None:
        cond["confidence_at_least"] = rule.confidence_at_least
    if rule.risk_tags_any:
        cond["risk_tags_any"] = list(rule.risk_tags_any)
    if rule.agent_version is not None:
        cond["agent_version"] = rule.agent_version
    if rule.args:
        cond["args"] = [
            {"path": c.path, "op": c.op, "value": list(c.value) if c.op == "in" else c.value} for c in rule.args
        ]
    if rule.velocity:
        cond["velocity"] = [{"window": _window_to_json(v.window), "op": v.op, "value": v.value} for v in rule.velocity]
    out: dict[str, Any] = {}
    # A default name is not stored: it is the rule's position, which an edit may change.
    if rule.name != f"rules[{rule.index}]":
        out["name"] = rule.name
    out["if"] = cond
    out["then"] = rule.outcome
    if rule.ladder is not None:
        out["ladder"] = rule.ladder
    if rule.reason:
        out["reason"] = rule.reason
    return out


def policy_to_json(policy: Policy) -> dict:
    """The normalised stored form; `policy_validate` accepts it and gives the same Policy."""
    return {"rules": [_rule_to_json(rule) for rule in policy.rules], "default_ladder": policy.default_ladder}


def _rule_from_json(data: dict, index: int) -> Rule:
    cond = data.get("if") or {}
    args = tuple(
        ArgCondition(path=c["path"], op=c["op"], value=tuple(c["value"]) if c["op"] == "in" else c["value"])
        for c in cond.get("args", ())
    )
    velocity = tuple(
        VelocityCondition(
            window=VelocityWindow(
                of=v["window"]["of"],
                path=v["window"].get("path"),
                by=v["window"]["by"],
                seconds=v["window"]["seconds"],
                action=v["window"].get("action"),
            ),
            op=v["op"],
            value=v["value"],
        )
        for v in cond.get("velocity", ())
    )
    return Rule(
        index=index,
        name=data.get("name") or f"rules[{index}]",
        action=cond.get("action"),
        confidence_below=cond.get("confidence_below"),
        confidence_at_least=cond.get("confidence_at_least"),
        risk_tags_any=tuple(cond.get("risk_tags_any", ())),
        agent_version=cond.get("agent_version"),
        args=args,
        velocity=velocity,
        outcome=data["then"],
        ladder=data.get("ladder"),
        reason=data.get("reason") or "",
    )


def policy_from_json(data: dict) -> Policy:
    """The stored form (from `policy_to_json`, already validated) back to a Policy, without
    validating again: this runs on every action request."""
    return Policy(
        rules=tuple(_rule_from_json(rule, i) for i, rule in enumerate(data.get("rules", ()))),
        default_ladder=data.get("default_ladder") or DEFAULT_LADDER,
    )


# --- Evaluation -----------------------------------------------------------------------------


def _lookup(args: Any, segments: tuple[str, ...]) -> tuple[bool, Any]:
    node = args
    for segment in segments:
        if isinstance(node, dict):
            if segment not in node:
                return False, None
            node = node[segment]
        elif isinstance(node, list):
            # ASCII digits only: "²".isdigit() is true and int() reads other scripts' digits.
            if not (segment.isascii() and segment.isdigit()):
                return False, None
            position = int(segment)
            if position >= len(node):
                return False, None
            node = node[position]
        else:
            return False, None
    return True, node


def arg_lookup(args: dict, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path: object keys, list indexes (`items.0.price`)."""
    return _lookup(args, tuple(path.split(".")))


def _contains_holds(
    cond: ArgCondition, got: Any, memo: dict[tuple[str, Any], bool], members_at: dict[str, frozenset]
) -> bool:
    """`contains`, remembered per (path, value) for one evaluation: the arg is the agent's, and
    a long list or text scanned once per condition of every rule would multiply its length by
    the policy's size. A list is turned into a set once per path, so each lookup is O(1)."""
    key = (cond.path, cond._contains)
    hit = memo.get(key)
    if hit is None:
        if type(got) is list:
            members = members_at.get(cond.path)
            if members is None:
                kinds = _SCALAR_KINDS
                members = members_at[cond.path] = frozenset(
                    (kind, item) for item in got if (kind := kinds.get(type(item))) is not None
                )
            hit = cond._contains in members
        else:
            hit = cond._test(got)
        memo[key] = hit
    return hit


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


_OBSERVED_MAX = 500


def _observed(value: Any) -> Any:
    """A value for the explanation (stored on the action and shown to approvers): small values
    as they are, long text cut, big lists and objects summarised."""
    if isinstance(value, str):
        return value if len(value) <= _OBSERVED_MAX else value[:_OBSERVED_MAX] + "…"
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) <= _OBSERVED_MAX:
            return value
        return f"({'list' if isinstance(value, list) else 'object'} of {len(value)} items)"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _describe_window(window: VelocityWindow) -> str:
    what = f"sum of args.{window.path}" if window.of == "sum" else "count"
    actions = f' of actions matching "{window.action}"' if window.action is not None else ""
    return f"{what}{actions} by {window.by} over {window.seconds} s"


def _explain(rule: Rule, facts: ActionFacts, confidence: float | None, totals: list[float]) -> tuple[dict, ...]:
    """The deciding rule's conditions with what the action showed. Built only for the rule that
    decided, so the per-rule loop does no string work."""
    out: list[dict] = []
    if rule.action is not None:
        out.append({"condition": f"action matches {_show(rule.action)}", "observed": _observed(facts.action)})
    if rule.confidence_below is not None:
        entry = {"condition": f"confidence < {_show(rule.confidence_below)}", "observed": confidence}
        if confidence is None:
            entry["note"] = "no confidence given: counted as the lowest"
        out.append(entry)
    if rule.confidence_at_least is not None:
        out.append({"condition": f"confidence >= {_show(rule.confidence_at_least)}", "observed": confidence})
    if rule.risk_tags_any:
        out.append(
            {
                "condition": f"risk_tags any of {_show(list(rule.risk_tags_any))}",
                "observed": [_observed(tag) for tag in facts.risk_tags[:MAX_RISK_TAGS]],
            }
        )
    if rule.agent_version is not None:
        out.append(
            {
                "condition": f"agent_version matches {_show(rule.agent_version)}",
                "observed": _observed(facts.agent_version),
            }
        )
    for cond in rule.args:
        value = list(cond.value) if cond.op == "in" else cond.value
        _, got = _lookup(facts.args, cond._segments)
        out.append({"condition": f"args.{cond.path} {cond.op} {_show(value)}", "observed": _observed(got)})
    for vcond, total in zip(rule.velocity, totals, strict=True):
        entry = {"condition": f"{_describe_window(vcond.window)} {vcond.op} {_show(vcond.value)}"}
        if math.isinf(total):
            entry["observed"] = None
            if vcond.window.by == "end_user_id" and not facts.end_user_id:
                entry["note"] = "no end_user_id: the total is unknown and counted as unbounded"
            else:
                entry["note"] = "the total is past a float's range: counted as unbounded"
        else:
            entry["observed"] = int(total) if float(total).is_integer() else total
        out.append(entry)
    return tuple(out)


def number_as_float(value: int | Decimal) -> float:
    """A number as a float; one past a float's range (an exact integer or decimal of JSON args,
    or their total) as +-inf, where float() raises."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _velocity_total(
    window: VelocityWindow,
    facts: ActionFacts,
    velocity: Callable[[VelocityWindow, ActionFacts], float],
    cache: dict[VelocityWindow, float],
) -> float:
    total = cache.get(window)
    if total is not None:
        return total
    if window.by == "end_user_id" and not facts.end_user_id:
        total = math.inf  # an unknown customer is treated as risky: see the module docstring
    else:
        earlier = float(velocity(window, facts))
        if math.isnan(earlier):
            earlier = math.inf
        own: float = 0
        if window.action is None or fnmatchcase(facts.action, window.action):
            if window.of == "count":
                own = 1
            else:
                assert window.path is not None
                found, got = _lookup(facts.args, tuple(window.path.split(".")))
                if found and isinstance(got, int) and not isinstance(got, bool):
                    # Args may hold integers beyond a float's range (JSON decoding keeps them
                    # exact): math.isfinite() and float addition raise on those, which made
                    # the whole policy unevaluable. Such an amount is off the scale: +-inf.
                    own = number_as_float(got)
                elif found and isinstance(got, float) and math.isfinite(got):
                    own = got
        total = earlier + own
        if math.isnan(total):  # inf + -inf: as an unknown total, treated as risky
            total = math.inf
    cache[window] = total
    return total


def policy_evaluate(
    policy: Policy, facts: ActionFacts, velocity: Callable[[VelocityWindow, ActionFacts], float]
) -> Verdict:
    """The first rule whose conditions all hold decides; none: escalate to the default ladder.

    `velocity(window, facts)` answers the sum (of `window.path`) or count of the EARLIER actions
    in the window (not this one); it is called only for a rule whose other conditions matched,
    once per distinct window."""
    confidence = facts.confidence
    if confidence is not None and not (_is_number(confidence) and math.isfinite(confidence)):
        confidence = None  # not a usable number: treated as missing (the lowest)
    action, agent_version, args, tags = facts.action, facts.agent_version, facts.args, facts.risk_tags
    # Rules repeat conditions (the same glob, the same path), so each glob result and each path
    # lookup is computed once per evaluation.
    action_hits: dict[str, bool] = {}
    version_hits: dict[str, bool] = {}
    found_at: dict[str, tuple[bool, Any]] = {}
    contains_memo: dict[tuple[str, Any], bool] = {}
    members_at: dict[str, frozenset] = {}
    cache: dict[VelocityWindow, float] = {}
    for rule in policy.rules:
        if rule.action is not None:
            hit = action_hits.get(rule.action)
            if hit is None:
                hit = action_hits[rule.action] = fnmatchcase(action, rule.action)
            if not hit:
                continue
        if rule.confidence_below is not None and confidence is not None and confidence >= rule.confidence_below:
            continue
        if rule.confidence_at_least is not None and (confidence is None or confidence < rule.confidence_at_least):
            continue
        if rule.risk_tags_any and rule._risk_tags.isdisjoint(tags):
            continue
        if rule.agent_version is not None:
            hit = version_hits.get(rule.agent_version)
            if hit is None:
                hit = version_hits[rule.agent_version] = fnmatchcase(agent_version, rule.agent_version)
            if not hit:
                continue
        args_hold = True
        for cond in rule.args:
            found = found_at.get(cond.path)
            if found is None:
                found = found_at[cond.path] = _lookup(args, cond._segments)
            if not found[0]:
                args_hold = False
                break
            if cond._contains is None:
                holds = cond._test(found[1])
            else:
                holds = _contains_holds(cond, found[1], contains_memo, members_at)
            if not holds:
                args_hold = False
                break
        if not args_hold:
            continue
        # Velocity last: each distinct window is a database query.
        totals: list[float] = []
        for vcond in rule.velocity:
            total = _velocity_total(vcond.window, facts, velocity, cache)
            if not _COMPARE[vcond.op](total, vcond.value):
                break
            totals.append(total)
        else:
            return Verdict(
                outcome=rule.outcome,
                ladder=(rule.ladder or policy.default_ladder) if rule.outcome == "escalate" else None,
                rule_index=rule.index,
                rule_name=rule.name,
                reason=rule.reason or f"Matched {rule.name}: {rule.outcome}",
                explanation=_explain(rule, facts, confidence, totals),
            )
    return Verdict(
        outcome="escalate",
        ladder=policy.default_ladder,
        rule_index=None,
        rule_name="",
        reason=NO_MATCH_REASON,
        explanation=(),
    )


def velocity_windows(policy: Policy) -> tuple[VelocityWindow, ...]:
    """The distinct velocity windows the policy's rules use, in order of first use."""
    seen: dict[VelocityWindow, None] = {}
    for rule in policy.rules:
        for vcond in rule.velocity:
            seen.setdefault(vcond.window, None)
    return tuple(seen)


# --- Ladders --------------------------------------------------------------------------------

_LADDER_KEYS = ("name", "tiers", "timeout_outcome", "notify_webhook_url")
_TIER_KEYS = ("role", "users", "timeout_seconds", "approvals_required")


def _webhook_url(value: Any, where: str) -> str:
    url = _text(value, where, LadderInvalid, max_len=MAX_WEBHOOK_URL, min_len=0, what="a URL (text)")
    if not url:
        return ""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise LadderInvalid(where, "No spaces or control characters in the URL.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise LadderInvalid(where, "Only http:// and https:// URLs.")
    if "@" in parts.netloc:
        raise LadderInvalid(where, "No user name or password in the URL; put a secret in its path or query.")
    if not parts.hostname:
        raise LadderInvalid(where, "The URL needs a host.")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise LadderInvalid(where, "The port must be a number from 0 to 65535.") from None
    return url


def _tier(data: Any, where: str) -> Tier:
    _object(data, where, _TIER_KEYS, LadderInvalid)
    role, users = data.get("role"), data.get("users")
    if (role is None) == (users is None):
        raise LadderInvalid(where, "Name who decides: either a role or users, not both.")
    names: tuple[str, ...] = ()
    if role is not None:
        if not isinstance(role, str) or role not in ROLES:
            raise LadderInvalid(f"{where}.role", f"Must be one of {', '.join(ROLES)}.")
    else:
        raw = _list(users, f"{where}.users", LadderInvalid, max_items=MAX_TIER_USERS, min_items=1)
        for i, user in enumerate(raw):
            at = f"{where}.users[{i}]"
            name = _text(user, at, LadderInvalid, max_len=MAX_USERNAME, what="a username (text)")
            if not _USERNAME.fullmatch(name):
                raise LadderInvalid(at, "Not a username: letters, digits and @ . + - _ only.")
            if name in names:
                raise LadderInvalid(at, "Listed twice.")
            names += (name,)
    if "timeout_seconds" not in data:
        raise LadderInvalid(f"{where}.timeout_seconds", "Required.")
    timeout = _whole(
        data["timeout_seconds"], f"{where}.timeout_seconds", LadderInvalid, low=MIN_TIER_TIMEOUT, high=MAX_TIER_TIMEOUT
    )
    approvals = data.get("approvals_required")
    approvals = 1 if approvals is None else approvals
    approvals = _whole(approvals, f"{where}.approvals_required", LadderInvalid, low=1, high=MAX_APPROVALS)
    if names and approvals > len(names):
        raise LadderInvalid(
            f"{where}.approvals_required", f"Needs {approvals} distinct approvals but names only {len(names)} users."
        )
    return Tier(role=role, users=names, timeout_seconds=timeout, approvals_required=approvals)


def ladder_validate(data: Any) -> Ladder:
    """Untrusted JSON to a Ladder. Raises LadderInvalid naming the first bad field."""
    _object(data, "", _LADDER_KEYS, LadderInvalid)
    if "name" not in data:
        raise LadderInvalid("name", "Required.")
    name = _ladder_name(data["name"], "name", LadderInvalid)
    if "tiers" not in data:
        raise LadderInvalid("tiers", "Required: 1 to 10 tiers.")
    raw = _list(data["tiers"], "tiers", LadderInvalid, max_items=MAX_TIERS, min_items=1)
    tiers = tuple(_tier(tier, f"tiers[{i}]") for i, tier in enumerate(raw))
    outcome = data.get("timeout_outcome")
    if outcome is not None and outcome != "reject":
        raise LadderInvalid(
            "timeout_outcome",
            "Only reject: an action nobody decided in time fails closed, so it is never approved by default."
            if outcome == "approve"
            else "Must be reject.",
        )
    url = data.get("notify_webhook_url")
    url = "" if url is None else _webhook_url(url, "notify_webhook_url")
    return Ladder(name=name, tiers=tiers, timeout_outcome="reject", notify_webhook_url=url)


def _tier_to_json(tier: Tier) -> dict:
    out: dict[str, Any] = {"role": tier.role} if tier.role is not None else {"users": list(tier.users)}
    out["timeout_seconds"] = tier.timeout_seconds
    out["approvals_required"] = tier.approvals_required
    return out


def ladder_to_json(ladder: Ladder) -> dict:
    return {
        "name": ladder.name,
        "tiers": [_tier_to_json(tier) for tier in ladder.tiers],
        "timeout_outcome": ladder.timeout_outcome,
        "notify_webhook_url": ladder.notify_webhook_url,
    }


def ladder_from_json(data: dict) -> Ladder:
    """The stored form back (trusted: it was validated when stored)."""
    return Ladder(
        name=data["name"],
        tiers=tuple(
            Tier(
                role=t.get("role"),
                users=tuple(t.get("users", ())),
                timeout_seconds=t["timeout_seconds"],
                approvals_required=t.get("approvals_required", 1),
            )
            for t in data["tiers"]
        ),
        timeout_outcome=data.get("timeout_outcome") or "reject",
        notify_webhook_url=data.get("notify_webhook_url") or "",
    )


# --- Canonical JSON and the args digest -----------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not \\u escapes). NaN and infinity refused: JSON has none."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def args_digest(action: str, args: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of the action name and its args: the agent checks
    it runs exactly the args that were approved."""
    return hashlib.sha256(canonical_json({"action": action, "args": args})).hexdigest()


__all__ = [
    "ActionFacts",
    "ArgCondition",
    "Ladder",
    "LadderInvalid",
    "Policy",
    "PolicyInvalid",
    "Rule",
    "Tier",
    "VelocityCondition",
    "VelocityWindow",
    "Verdict",
    "arg_lookup",
    "args_digest",
    "canonical_json",
    "ladder_from_json",
    "ladder_to_json",
    "ladder_validate",
    "policy_evaluate",
    "policy_from_json",
    "policy_to_json",
    "policy_validate",
    "velocity_windows",
]
