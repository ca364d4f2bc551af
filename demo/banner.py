"""The demo logins that `serve` and `devserver` print beside the address they serve."""

from __future__ import annotations

from demo.scenarios import DEMO_ORG, DEMO_PASSWORD, DEMO_USERS, RETAIL_ORG, RETAIL_USERS
from reviewapp.models import Organization


def demo_logins() -> list[str]:
    """Nothing until `seed_demo` has made the demo organization."""
    if not Organization.objects.filter(slug=DEMO_ORG).exists():
        return []
    lines = [f"Demo logins for organization '{DEMO_ORG}' (password for each: {DEMO_PASSWORD}):"]
    retail_roles = dict(RETAIL_USERS)
    for username, role in DEMO_USERS:
        notes = [f"{retail_roles[username]} in '{RETAIL_ORG}' too"] if username in retail_roles else []
        if username == "admin":
            notes.append("staff for /admin/")
        extra = f"  ({'; '.join(notes)})" if notes else ""
        lines.append(f"  {username:<10} {role:<10}{extra}".rstrip())
    return lines
