"""The ladder editor's form, pure: no request, no query.

A ladder is edited as a plain form, one row of fields per tier (`t-<i>-<field>`), that becomes
the same JSON body `POST /api/v1/ladders` takes; the page saves it through the same service and
validator. The validator's error paths (`tiers[1].timeout_seconds`) are mapped back to the field
they are shown beside (`t-1-timeout`). Add, move and remove are form buttons (`op`) applied here
to the rows as posted, so the editor works without a script and by keyboard. Also: what changed
from one stored version to the next, in words."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from escalations import policies
from reviewapp import form_rows

# Rows past the validator's own maximum are never read: a post cannot make the page build more.
MAX_TIERS = policies.MAX_TIERS
USERS = "users"  # the `who` choice of a tier that names people rather than a role
UNITS = ("minutes", "seconds")
WHO_CHOICES = (
    ("approver", "Role: approver"),
    ("admin", "Role: admin"),
    ("engineer", "Role: engineer"),
    ("annotator", "Role: annotator"),
    (USERS, "Named users"),
)
TIER_FIELDS = ("who", "users", "timeout", "unit", "approvals")
# A whole number typed into a box; longer than this is no timeout anyone means.
_WHOLE = re.compile(r"\d{1,12}")
_TIER_PATH = re.compile(r"^tiers\[(\d+)\](?:\.([a-z_]+))?(?:\[(\d+)\])?")
_TIER_FIELD_OF = {"role": "who", "users": "users", "timeout_seconds": "timeout", "approvals_required": "approvals"}


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...


def blank_tier() -> dict[str, str]:
    return {"who": "approver", "users": "", "timeout": "60", "unit": "minutes", "approvals": "1"}


def tier_row_from_json(tier: Mapping[str, Any]) -> dict[str, str]:
    """A stored tier as the strings its form row shows: a timeout of whole minutes in minutes."""
    seconds = int(tier.get("timeout_seconds") or 0)
    minutes = seconds and seconds % 60 == 0
    return {
        "who": USERS if tier.get("role") is None else str(tier["role"]),
        "users": "\n".join(str(u) for u in tier.get("users") or []),
        "timeout": str(seconds // 60 if minutes else seconds),
        "unit": "minutes" if minutes else "seconds",
        "approvals": str(tier.get("approvals_required") or 1),
    }


def _count(data: FormData, limit: int) -> int:
    raw = str(data.get("t-count") or "")
    return min(limit, int(raw)) if _WHOLE.fullmatch(raw) else 0


def tier_rows_from_post(data: FormData) -> list[dict[str, str]]:
    return [
        {name: str(data.get(f"t-{i}-{name}", "") or "") for name in TIER_FIELDS} for i in range(_count(data, MAX_TIERS))
    ]


def rows_apply(rows: list[dict[str, str]], op: str) -> list[dict[str, str]]:
    """Apply an editor button (reviewapp.form_rows). A new tier copies the last one's timeout:
    escalation tiers usually share a rhythm."""
    new = blank_tier()
    if rows:
        new["timeout"], new["unit"] = rows[-1]["timeout"], rows[-1]["unit"]
    return form_rows.rows_apply(rows, op, new, MAX_TIERS)


def _usernames(text: str) -> list[str]:
    # A username has no space or comma (the validator's pattern), so either separates them.
    return [name for name in re.split(r"[\s,]+", text) if name]


def ladder_document(
    *, name: str, rows: list[dict[str, str]], timeout_outcome: str, notify_webhook_url: str
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The form as the API's ladder body, and the errors found reading it (a timeout that is no
    whole number, an unknown unit), keyed by form field. Everything else is the validator's."""
    errors: dict[str, list[str]] = {}
    tiers = []
    for i, row in enumerate(rows):
        prefix = f"t-{i}-"
        tier: dict[str, Any] = {}
        if row["who"] == USERS:
            tier["users"] = _usernames(row["users"])
        else:
            tier["role"] = row["who"]
            if row["users"].strip():
                # Both given: the validator says "a role or users, not both" beside `who`.
                tier["users"] = _usernames(row["users"])
        timeout = row["timeout"].strip()
        if row["unit"] not in UNITS:
            errors[prefix + "unit"] = ["Choose minutes or seconds."]
        elif not _WHOLE.fullmatch(timeout):
            errors[prefix + "timeout"] = [f"Enter a whole number of {row['unit']}."]
        else:
            tier["timeout_seconds"] = int(timeout) * (60 if row["unit"] == "minutes" else 1)
        approvals = row["approvals"].strip()
        if approvals:
            if _WHOLE.fullmatch(approvals):
                tier["approvals_required"] = int(approvals)
            else:
                errors[prefix + "approvals"] = ["Enter a whole number."]
        tiers.append(tier)
    document: dict[str, Any] = {"name": name.strip(), "tiers": tiers}
    if timeout_outcome:
        document["timeout_outcome"] = timeout_outcome
    document["notify_webhook_url"] = notify_webhook_url.strip()
    return document, errors


def form_field_for(path: str) -> str:
    """A validator's error path to the form field it belongs beside: `tiers[1].timeout_seconds`
    -> `t-1-timeout`, `tiers[0].users[2]` -> `t-0-users`, `tiers[2]` -> `t-2-who` (who decides:
    a role or users), `tiers` -> `tiers`, `name` -> `name`; the body itself -> `form`."""
    match = _TIER_PATH.match(path)
    if match:
        index, key, _ = match.groups()
        return f"t-{index}-{_TIER_FIELD_OF.get(key or '', 'who')}"
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    return head if head in ("name", "tiers", "timeout_outcome", "notify_webhook_url") else "form"


def _timeout_message(message: str) -> str:
    # The validator counts seconds; the form may have been in minutes.
    if message.startswith("Must be a whole number from"):
        return (
            f"Must be from {policies.MIN_TIER_TIMEOUT // 60} minute to {policies.MAX_TIER_TIMEOUT // 86400} days "
            f"({policies.MIN_TIER_TIMEOUT} to {policies.MAX_TIER_TIMEOUT:,} seconds)."
        )
    return message


def errors_for_form(errors: Mapping[str, list[str]], document: Mapping[str, Any]) -> dict[str, list[str]]:
    """The service's errors keyed by form field. A bad username is named in its message: the
    field holds several."""
    out: dict[str, list[str]] = {}
    tiers = document.get("tiers") if isinstance(document.get("tiers"), list) else []
    for path, messages in errors.items():
        field = form_field_for(path)
        match = _TIER_PATH.match(path)
        shown = list(messages)
        if match and match.group(2) == "timeout_seconds":
            shown = [_timeout_message(m) for m in shown]
        elif match and match.group(2) == "users" and match.group(3) is not None:
            tier, user = int(match.group(1)), int(match.group(3))
            users = tiers[tier].get("users") if tier < len(tiers) and isinstance(tiers[tier], dict) else None
            if isinstance(users, list) and user < len(users):
                shown = [f"“{users[user]}”: {m}" for m in shown]
        out.setdefault(field, []).extend(shown)
    return out


# --- reading a stored version ----------------------------------------------------------------


def duration_text(seconds: int) -> str:
    """Exact, as people read it: 90 s -> "1 min 30 s", 5400 -> "1 h 30 min", 2 days."""
    parts = []
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min"), (1, "s")):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}{'s' if unit == 'day' and amount > 1 else ''}")
    return " ".join(parts) or "0 s"


def who_text(tier: Mapping[str, Any]) -> str:
    if tier.get("role") is not None:
        return f"any {tier['role']}"
    return ", ".join(str(u) for u in tier.get("users") or [])


def tier_text(tier: Mapping[str, Any]) -> str:
    approvals = int(tier.get("approvals_required") or 1)
    return (
        f"{who_text(tier)}; {approvals} approval{'s' if approvals > 1 else ''} "
        f"within {duration_text(int(tier['timeout_seconds']))}"
    )


def _tier_key(tier: Mapping[str, Any]) -> str:
    return json.dumps(tier, sort_keys=True)


def _tier_changes(number: int, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    parts = []
    if who_text(old) != who_text(new):
        parts.append(f"who: {who_text(old)} → {who_text(new)}")
    if old.get("timeout_seconds") != new.get("timeout_seconds"):
        parts.append(
            f"timeout: {duration_text(int(old['timeout_seconds']))} → {duration_text(int(new['timeout_seconds']))}"
        )
    if (old.get("approvals_required") or 1) != (new.get("approvals_required") or 1):
        parts.append(f"approvals: {old.get('approvals_required') or 1} → {new.get('approvals_required') or 1}")
    return f"Tier {number} changed: " + "; ".join(parts)


def ladder_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What changed from one stored version of a ladder to the next, one sentence a change.
    Tiers are matched as a sequence (difflib), so inserting a tier reads as one tier added, not
    as every later tier changed. Numbers are the new version's, or the old one's for a tier
    removed. The webhook URL is a credential: only whether it was set, changed or removed."""
    if old is None:
        return ["First version."]
    out: list[str] = []
    old_tiers, new_tiers = list(old.get("tiers") or []), list(new.get("tiers") or [])
    matcher = difflib.SequenceMatcher(
        a=[_tier_key(t) for t in old_tiers], b=[_tier_key(t) for t in new_tiers], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            out.append(_tier_changes(j1 + k + 1, old_tiers[i1 + k], new_tiers[j1 + k]))
        for i in range(i1 + paired, i2):
            out.append(f"Tier {i + 1} removed: {tier_text(old_tiers[i])}.")
        for j in range(j1 + paired, j2):
            out.append(f"Tier {j + 1} added: {tier_text(new_tiers[j])}.")
    if old.get("timeout_outcome") != new.get("timeout_outcome"):
        out.append(f"On timeout: {old.get('timeout_outcome')} → {new.get('timeout_outcome')}.")
    old_url, new_url = old.get("notify_webhook_url") or "", new.get("notify_webhook_url") or ""
    if old_url != new_url:
        out.append("Notification webhook " + ("set." if not old_url else "removed." if not new_url else "changed."))
    return out or ["No change."]


__all__ = [
    "MAX_TIERS",
    "UNITS",
    "USERS",
    "WHO_CHOICES",
    "blank_tier",
    "duration_text",
    "errors_for_form",
    "form_field_for",
    "ladder_changes",
    "ladder_document",
    "rows_apply",
    "tier_row_from_json",
    "tier_rows_from_post",
    "tier_text",
    "who_text",
]
