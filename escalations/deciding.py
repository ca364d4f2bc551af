"""Who may decide an action at a tier, and what an approver's edit changed. Pure: no ORM, no
Django; the decision services (services/decisions.py) and the inbox (selectors_inbox.py) ask
here, so the API, the browser and the inbox cannot disagree on who may decide.

Eligibility: a person may decide at a tier when the tier names them (`users`, by username,
compared exactly as Django compares usernames) or, at a role tier, when their role in the
organization is the tier's role. Admins may always decide at role tiers: an admin can do
whatever an approver can, and an escalation must never be stuck because the one role that may
answer is away. A tier that names users admits only those users (an admin is not one of them
unless named): naming people is how a ladder asks for specific eyes. On top of the tier, the
person's role must hold the `actions.decide` capability (checked by the caller, who has the
role table).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from escalations import policies

ADMIN = "admin"


class TierLike(Protocol):
    role: str | None
    users: tuple[str, ...]


def tiers_from_stored(tiers: list[dict[str, Any]] | None) -> tuple[policies.Tier, ...]:
    """The tiers of a stored ladder version (`LadderVersion.tiers`, validated when saved by
    policies.ladder_validate), read by the policy module's own reader."""
    return policies.ladder_from_json({"name": "", "tiers": tiers or []}).tiers


def tier_admits(tier: TierLike, *, username: str, role: str) -> bool:
    """Whether the tier lets this person decide (named, or holding the tier's role; admins at
    any role tier). The capability check (`actions.decide`) is the caller's."""
    if username and username in tier.users:
        return True
    return bool(tier.role) and (role == tier.role or role == ADMIN)


def may_decide(tier: TierLike, *, username: str, role: str, can_decide: bool) -> bool:
    """tier_admits, for a person whose role holds `actions.decide`."""
    return can_decide and tier_admits(tier, username=username, role=role)


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1 from 1.0 from true (Python's == does not), as the args
    digest does: the agent runs what the digest names, so a change of type is a change."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict | list):
        return json.dumps(a, sort_keys=True, ensure_ascii=False) == json.dumps(b, sort_keys=True, ensure_ascii=False)
    return bool(a == b)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def args_diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What an approver's edit changed, as `[{"path": "amount", "from": 450, "to": 400}, ...]`.

    Objects are compared key by key (paths like `customer.id`, the notation of policy args
    conditions); anything else (numbers, text, lists) is compared whole. A key only in `after`
    has no "from", a key only in `before` no "to". Keys in sorted order, so the same edit
    always gives the same list. Iterative: args are depth-bounded, but nothing recurses on
    input."""
    changes: list[dict[str, Any]] = []
    stack: list[tuple[str, Any, Any]] = [("", before, after)]
    while stack:
        path, old, new = stack.pop()
        if isinstance(old, dict) and isinstance(new, dict):
            # Pushed in reverse so that keys come out in sorted order.
            for key in sorted(old.keys() | new.keys(), reverse=True):
                stack.append((_join(path, key), old.get(key, _MISSING), new.get(key, _MISSING)))
            continue
        if old is _MISSING:
            changes.append({"path": path, "to": new})
        elif new is _MISSING:
            changes.append({"path": path, "from": old})
        elif not _same(old, new):
            changes.append({"path": path, "from": old, "to": new})
    return changes
