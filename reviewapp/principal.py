"""Who is calling: a person acting in one organization, or an agent's project key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from reviewapp.models import ApiKey, Organization, PersonalToken, Project

AGENT = "agent"

# What each role may do. Capabilities are checked in one place (permissions.py); later apps add
# theirs here so the role matrix stays readable in one table.
# Escalations: `actions.request` asks (agents; people test from the API), `actions.read` sees
# actions, `actions.decide` may vote where a ladder tier admits the person (the tier narrows
# it further), `escalations.manage` writes policies and ladders, `webhooks.manage` creates and
# rotates signing secrets. `projects.manage` changes a project's settings (its time zone, its
# frustration terms). Labeling: `budgets.manage` sets a project's daily labeling budget and a
# queue's budget controller (pins its rate); engineers read them with `labeling.manage`.
# Evaluation: `evaluation.read` sees calibration, `evaluation.manage` sets a project's bar.
# `members.manage` adds people to the organization, changes their roles and removes them.
# Golden datasets: `datasets.read` sees datasets, items, versions and runs (a CI job's project key
# too), `datasets.write` creates and edits them, promotes items and freezes versions, `datasets.run`
# posts an agent version's results for the release gate, `datasets.export` downloads a version
# (CI holds a project key for these).
_PEOPLE = {"organization.read"}
_LABELERS = _PEOPLE | {"labeling.work"}
_APPROVERS = _PEOPLE | {"actions.read", "actions.decide"}
_ENGINEERS = _LABELERS | {
    "conversations.ingest",
    "conversations.read",
    "labeling.manage",
    "actions.request",
    "actions.read",
    "escalations.manage",
    "evaluation.read",
    "datasets.read",
    "datasets.run",
    "datasets.write",
    "datasets.export",
}
CAPABILITIES: dict[str, frozenset[str]] = {
    AGENT: frozenset(
        {
            "conversations.ingest",
            "conversations.read",
            "actions.request",
            "actions.read",
            "datasets.read",
            "datasets.run",
            "datasets.export",
        }
    ),
    "annotator": frozenset(_LABELERS),
    "approver": frozenset(_APPROVERS),
    "engineer": frozenset(_ENGINEERS),
    "admin": frozenset(
        _ENGINEERS
        | _APPROVERS
        | {
            "api_keys.manage",
            "members.manage",
            "tokens.manage",
            "webhooks.manage",
            "projects.manage",
            "budgets.manage",
            "evaluation.manage",
        }
    ),
}


@dataclass(frozen=True)
class Principal:
    organization: Organization
    role: str
    user: AbstractBaseUser | None = None
    api_key: ApiKey | None = None
    token: PersonalToken | None = None
    project: Project | None = field(default=None)

    def can(self, capability: str) -> bool:
        return capability in CAPABILITIES.get(self.role, frozenset())

    @property
    def is_agent(self) -> bool:
        return self.api_key is not None


class AgentUser:
    """Stands in for `request.user` when an agent calls with a project key. It is not a Django
    user and owns no session; it exists so DRF and throttles see an authenticated caller."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.username = f"key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username
