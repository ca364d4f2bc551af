"""What the API answers, as typed dataclasses, and the args digest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Statuses the server may answer. Anything but PENDING is a decision; only APPROVED runs.
PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"


def args_digest(action: str, args: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an action and its args, as the server computes
    it: keys sorted, no spaces, non-ASCII kept as UTF-8."""
    canonical = json.dumps({"action": action, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _datetime(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        # Python before 3.11 does not read a trailing "Z".
        return dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        # A person may come back as an object; keep its name.
        return str(value.get("username") or value.get("name") or "")
    return str(value)


@dataclass(frozen=True)
class ActionResult:
    """An action as the server sees it.

    `final_args` are the args to run once approved (an approver may have edited them) and
    `args_digest` their digest; `comment` is the approver's words; `due_at` and `tier` say
    where a pending action is on its ladder. `raw` is the whole answer, for fields this
    version of the client does not know yet."""

    id: int
    status: str
    action: str = ""
    external_id: str = ""
    decided_by: str = ""
    reason: str = ""
    matched_rule: str = ""
    policy_version: int | None = None
    final_args: dict[str, Any] | None = None
    args_digest: str = ""
    comment: str = ""
    due_at: dt.datetime | None = None
    tier: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActionResult:
        if not isinstance(data, dict) or _int(data.get("id")) is None or not isinstance(data.get("status"), str):
            raise ValueError(f"Not an action: {data!r:.200}")
        final_args = data.get("final_args")
        return cls(
            id=data["id"],
            status=data["status"],
            action=_str(data.get("action")),
            external_id=_str(data.get("external_id")),
            decided_by=_str(data.get("decided_by")),
            reason=_str(data.get("reason")),
            matched_rule=_str(data.get("matched_rule")),
            policy_version=_int(data.get("policy_version")),
            final_args=final_args if isinstance(final_args, dict) else None,
            args_digest=_str(data.get("args_digest")),
            comment=_str(data.get("comment")),
            due_at=_datetime(data.get("due_at")),
            tier=_int(data.get("tier")),
            raw=data,
        )

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @property
    def approved(self) -> bool:
        return self.status == APPROVED

    def digest_ok(self, action: str) -> bool:
        """True when approved with `final_args` whose digest, for `action`, is `args_digest`."""
        return (
            self.approved
            and self.final_args is not None
            and bool(self.args_digest)
            and (not self.action or self.action == action)
            and args_digest(action, self.final_args) == self.args_digest
        )


@dataclass(frozen=True)
class ConversationResult:
    """One conversation of a `log_conversations` call: `created`, or `duplicate` when that
    `external_id` was stored before (its new judge scores and feedback are still added)."""

    external_id: str
    id: int
    status: str


@dataclass(frozen=True)
class JudgeScoreResult:
    """One score of an `add_judge_scores` call: `created` or `duplicate`."""

    external_id: str
    conversation_id: int
    judge: str
    criterion: str
    status: str
