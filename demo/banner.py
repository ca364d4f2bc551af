"""The demo logins that `serve` and `devserver` print beside the address they serve, and what
each can try."""

from __future__ import annotations

from demo.action_scenarios import ACTION_PREFIX
from demo.scenarios import DEMO_ORG, DEMO_PASSWORD, DEMO_USERS, RETAIL_ORG, RETAIL_USERS
from escalations.models import Action
from reviewapp.models import Organization

_NOTES = {
    "lead": "the finance ladder's four-eyes tier, with cfo",
    "cfo": "the finance ladder's four-eyes tier, with lead",
    "admin": "staff for /admin/",
}

APPROVALS = [
    "Approvals: /escalations/ (agent actions waiting for a decision; the navigation bar counts them)",
    "  as approver: tier 1 of both ladders (mid-sized refunds, unsure agents, vouchers, refunds over $200)",
    "  as admin: tier 2 of the default ladder, and whatever an approver may decide",
    "  as lead or cfo: also tier 2 of the finance ladder, where both must approve (four-eyes);",
    "    one refund there has cfo's approval and waits for lead's",
]


def demo_logins() -> list[str]:
    """Nothing until `seed_demo` has made the demo organization; the approvals part once it
    has seeded the demo actions."""
    organization = Organization.objects.filter(slug=DEMO_ORG).first()
    if organization is None:
        return []
    lines = [f"Demo logins for organization '{DEMO_ORG}' (password for each: {DEMO_PASSWORD}):"]
    retail_roles = dict(RETAIL_USERS)
    for username, role in DEMO_USERS:
        notes = [f"{retail_roles[username]} in '{RETAIL_ORG}' too"] if username in retail_roles else []
        if username in _NOTES:
            notes.append(_NOTES[username])
        extra = f"  ({'; '.join(notes)})" if notes else ""
        lines.append(f"  {username:<10} {role:<10}{extra}".rstrip())
    if Action.objects.filter(organization=organization, external_id__startswith=ACTION_PREFIX).exists():
        lines.extend(APPROVALS)
    return lines
