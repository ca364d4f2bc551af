"""A minimal private stand-in for escalations/policies.py (being written in parallel), with its
interface, so the services and API can be tested before it lands. Tests only; removed once the
real module is merged."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class PolicyInvalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class LadderInvalid(PolicyInvalid):
    pass


@dataclass(frozen=True)
class ArgCondition:
    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class VelocityWindow:
    of: str
    path: str | None
    by: str
    seconds: int
    action: str | None


@dataclass(frozen=True)
class VelocityCondition:
    window: VelocityWindow
    op: str
    value: float


@dataclass(frozen=True)
class Rule:
    index: int
    name: str
    action: str | None
    confidence_below: float | None
    confidence_at_least: float | None
    risk_tags_any: tuple[str, ...]
    agent_version: str | None
    args: tuple[ArgCondition, ...]
    velocity: tuple[VelocityCondition, ...]
    outcome: str
    ladder: str | None
    reason: str


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
    ladder: str | None
    rule_index: int | None
    rule_name: str
    reason: str
    explanation: tuple[dict, ...]


@dataclass(frozen=True)
class Tier:
    role: str | None
    users: tuple[str, ...]
    timeout_seconds: int
    approvals_required: int


@dataclass(frozen=True)
class Ladder:
    name: str
    tiers: tuple[Tier, ...]
    timeout_outcome: str
    notify_webhook_url: str


OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "contains")


def _window(data: dict, where: str) -> VelocityWindow:
    if data.get("of") not in ("sum", "count"):
        raise PolicyInvalid(f"{where}.of", "sum or count")
    if data.get("by") not in ("end_user_id", "agent_version", "project"):
        raise PolicyInvalid(f"{where}.by", "end_user_id, agent_version or project")
    return VelocityWindow(data["of"], data.get("path"), data["by"], int(data["seconds"]), data.get("action"))


def policy_validate(data: Any) -> Policy:
    if not isinstance(data, dict):
        raise PolicyInvalid("body", "Send an object.")
    unknown = set(data) - {"rules", "default_ladder"}
    if unknown:
        raise PolicyInvalid(sorted(unknown)[0], "Unknown key.")
    rules = data.get("rules")
    if not isinstance(rules, list):
        raise PolicyInvalid("rules", "A list.")
    out = []
    for i, r in enumerate(rules):
        if not isinstance(r, dict):
            raise PolicyInvalid(f"rules[{i}]", "An object.")
        cond = r.get("if", {})
        args = []
        for j, a in enumerate(cond.get("args", [])):
            if a.get("op") not in OPS:
                raise PolicyInvalid(f"rules[{i}].if.args[{j}].op", "Unknown op.")
            args.append(ArgCondition(a["path"], a["op"], a["value"]))
        velocity = [
            VelocityCondition(_window(v["window"], f"rules[{i}].if.velocity[{k}].window"), v["op"], v["value"])
            for k, v in enumerate(cond.get("velocity", []))
        ]
        if r.get("then") not in ("approve", "reject", "escalate"):
            raise PolicyInvalid(f"rules[{i}].then", "approve, reject or escalate")
        out.append(
            Rule(
                i,
                r.get("name") or f"rules[{i}]",
                cond.get("action"),
                cond.get("confidence_below"),
                cond.get("confidence_at_least"),
                tuple(cond.get("risk_tags_any", ())),
                cond.get("agent_version"),
                tuple(args),
                tuple(velocity),
                r["then"],
                r.get("ladder"),
                r.get("reason", ""),
            )
        )
    return Policy(tuple(out), data.get("default_ladder", "default"))


def policy_to_json(policy: Policy) -> dict:
    rules = []
    for r in policy.rules:
        cond: dict[str, Any] = {}
        for key in ("action", "confidence_below", "confidence_at_least", "agent_version"):
            if getattr(r, key) is not None:
                cond[key] = getattr(r, key)
        if r.risk_tags_any:
            cond["risk_tags_any"] = list(r.risk_tags_any)
        if r.args:
            cond["args"] = [{"path": a.path, "op": a.op, "value": a.value} for a in r.args]
        if r.velocity:
            cond["velocity"] = [
                {"window": {k: v for k, v in vars(c.window).items() if v is not None}, "op": c.op, "value": c.value}
                for c in r.velocity
            ]
        rule = {"name": r.name, "if": cond, "then": r.outcome, "reason": r.reason}
        if r.ladder:
            rule["ladder"] = r.ladder
        rules.append(rule)
    return {"rules": rules, "default_ladder": policy.default_ladder}


def policy_from_json(data: dict) -> Policy:
    return policy_validate(data)


def arg_lookup(args: dict, path: str) -> tuple[bool, Any]:
    current: Any = args
    for seg in path.split("."):
        if isinstance(current, dict) and seg in current:
            current = current[seg]
        elif isinstance(current, list) and seg.isascii() and seg.isdigit() and int(seg) < len(current):
            current = current[int(seg)]
        else:
            return False, None
    return True, current


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _compare(observed: Any, op: str, value: Any) -> bool:
    if op == "==":
        return observed == value
    if op == "!=":
        return observed != value
    if op == "in":
        return observed in value
    if op == "contains":
        return value in observed if isinstance(observed, str | list) else False
    if not ((_number(observed) and _number(value)) or (isinstance(observed, str) and isinstance(value, str))):
        return False
    return {">": observed > value, ">=": observed >= value, "<": observed < value, "<=": observed <= value}[op]


def policy_evaluate(
    policy: Policy, facts: ActionFacts, velocity: Callable[[VelocityWindow, ActionFacts], float]
) -> Verdict:
    for r in policy.rules:
        explanation: list[dict] = []
        if r.action is not None and not fnmatch.fnmatchcase(facts.action, r.action):
            continue
        if r.confidence_below is not None and not (facts.confidence is None or facts.confidence < r.confidence_below):
            continue
        if r.confidence_at_least is not None and not (
            facts.confidence is not None and facts.confidence >= r.confidence_at_least
        ):
            continue
        if r.risk_tags_any and not set(r.risk_tags_any) & set(facts.risk_tags):
            continue
        if r.agent_version is not None and not fnmatch.fnmatchcase(facts.agent_version, r.agent_version):
            continue
        ok = True
        for a in r.args:
            found, observed = arg_lookup(facts.args, a.path)
            if not found or not _compare(observed, a.op, a.value):
                ok = False
                break
            explanation.append({"condition": f"args.{a.path} {a.op} {a.value!r}", "observed": observed})
        if not ok:
            continue
        for c in r.velocity:
            w = c.window
            if w.by == "end_user_id" and not facts.end_user_id:
                explanation.append({"condition": "velocity", "observed": "unknown end user"})
                continue
            total = velocity(w, facts)
            if w.of == "count":
                total += 1
            else:
                found, own = arg_lookup(facts.args, w.path or "")
                total += own if found and _number(own) else 0
            if not _compare(total, c.op, c.value):
                ok = False
                break
            explanation.append({"condition": f"{w.of} {c.op} {c.value}", "observed": total})
        if not ok:
            continue
        ladder = (r.ladder or policy.default_ladder) if r.outcome == "escalate" else None
        return Verdict(r.outcome, ladder, r.index, r.name, r.reason, tuple(explanation))
    return Verdict("escalate", policy.default_ladder, None, "", "No rule matched; escalated to the default ladder", ())


def velocity_windows(policy: Policy) -> tuple[VelocityWindow, ...]:
    seen: dict[VelocityWindow, None] = {}
    for r in policy.rules:
        for c in r.velocity:
            seen[c.window] = None
    return tuple(seen)


def ladder_validate(data: Any) -> Ladder:
    if not isinstance(data, dict):
        raise LadderInvalid("body", "Send an object.")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise LadderInvalid("name", "Required.")
    tiers = data.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise LadderInvalid("tiers", "At least one tier.")
    out = []
    for i, t in enumerate(tiers):
        seconds = t.get("timeout_seconds")
        if type(seconds) is not int or not 60 <= seconds <= 30 * 86400:
            raise LadderInvalid(f"tiers[{i}].timeout_seconds", "60 .. 30 days.")
        out.append(Tier(t.get("role"), tuple(t.get("users", ())), seconds, t.get("approvals_required", 1)))
    if data.get("timeout_outcome", "reject") != "reject":
        raise LadderInvalid("timeout_outcome", "Only reject: fail closed.")
    return Ladder(data["name"], tuple(out), "reject", data.get("notify_webhook_url", ""))


def ladder_to_json(ladder: Ladder) -> dict:
    tiers = []
    for t in ladder.tiers:
        tier: dict[str, Any] = {"timeout_seconds": t.timeout_seconds, "approvals_required": t.approvals_required}
        if t.role:
            tier["role"] = t.role
        else:
            tier["users"] = list(t.users)
        tiers.append(tier)
    return {
        "name": ladder.name,
        "tiers": tiers,
        "timeout_outcome": ladder.timeout_outcome,
        "notify_webhook_url": ladder.notify_webhook_url,
    }


def ladder_from_json(data: dict) -> Ladder:
    return ladder_validate(data)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def args_digest(action: str, args: dict) -> str:
    return hashlib.sha256(canonical_json({"action": action, "args": args})).hexdigest()


del math
