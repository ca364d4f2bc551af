"""Seeding the demo tenants: their people, projects and conversations (from `demo.scenarios`),
then labeling's rubric and queues (`demo.labeling`). Every write goes through the apps' services."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from demo.scenarios import (
    DEMO_ORG,
    DEMO_ORG_NAME,
    DEMO_PASSWORD,
    DEMO_PROJECT,
    DEMO_USERS,
    RETAIL_ORG,
    RETAIL_ORG_NAME,
    RETAIL_PROJECT,
    RETAIL_USERS,
    DemoConversation,
    airline_conversations,
    retail_conversations,
)
from reviewapp import selectors, services
from reviewapp.ingest_schemas import ConversationIn, attach_raw_messages
from reviewapp.models import Conversation, Organization, Project

# The ingest service checks duplicates with one query per 500 ids; a batch of that size is one
# duplicate query and one insert per table.
INGEST_BATCH = 500


@dataclass
class ProjectSeedResult:
    label: str
    total: int = 0
    created: int = 0
    skipped: int = 0


@dataclass
class DemoSeedResult:
    projects: list[ProjectSeedResult] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def demo_seed(
    *,
    seed: int = 7,
    conversations: int = 3000,
    retail_conversations_count: int = 200,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoSeedResult:
    """Create (or complete) both demo tenants. Safe to run again: people and projects are
    get-or-create, and conversations already stored under the same external_id are skipped."""
    started = time.monotonic()
    say = progress or (lambda _message: None)
    reference = (now or timezone.now()).replace(second=0, microsecond=0)
    result = DemoSeedResult()

    airline = services.organization_create(slug=DEMO_ORG, name=DEMO_ORG_NAME)
    support = services.project_create(
        organization=airline,
        slug=DEMO_PROJECT,
        name="Customer support",
        description="Customer-support agent for Demo Airline: refunds, bookings, flight changes, baggage, loyalty.",
    )
    for username, role in DEMO_USERS:
        _member_ensure(organization=airline, username=username, role=role, password=DEMO_PASSWORD)
    result.warnings.extend(_demo_admin_make_staff(username="admin"))

    retail = services.organization_create(slug=RETAIL_ORG, name=RETAIL_ORG_NAME)
    shop = services.project_create(
        organization=retail,
        slug=RETAIL_PROJECT,
        name="Shop returns",
        description="Returns and order-status agent for Demo Retail.",
    )
    for username, role in RETAIL_USERS:
        # The users exist by now: keep their password, only add the membership.
        _member_ensure(organization=retail, username=username, role=role, password=None)

    result.projects.append(
        _ingest(
            project=support,
            items=airline_conversations(seed=seed, count=conversations, reference=reference),
            count=conversations,
            say=say,
        )
    )
    result.projects.append(
        _ingest(
            project=shop,
            items=retail_conversations(seed=seed, count=retail_conversations_count, reference=reference),
            count=retail_conversations_count,
            say=say,
        )
    )
    result.seconds = time.monotonic() - started
    return result


def _member_ensure(*, organization: Organization, username: str, role: str, password: str | None) -> None:
    """membership_add unless the user already has this role (and the demo password): a re-run
    then writes no audit event and hashes no password it does not have to."""
    user = get_user_model().objects.filter(username=username).first()
    if user is not None:
        membership = selectors.membership_get(user=user, organization=organization)
        if membership is not None and membership.role == role and (password is None or user.check_password(password)):
            return
    services.membership_add(organization=organization, username=username, role=role, password=password)


def _demo_admin_make_staff(*, username: str) -> list[str]:
    """Staff with every reviewapp and labeling model permission, so /admin/ works, scoped by the admin's
    organization memberships. Not a superuser: a superuser would see every tenant.

    There is no service for staff flags; this is demo set-up on a user the seeder just made."""
    user = get_user_model().objects.get(username=username)
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["reviewapp", "labeling"]))
    if user.is_superuser:
        return [f"User '{username}' already existed as a superuser and was left so: it sees every tenant."]
    return []


def _ingest(
    *, project: Project, items: Iterator[DemoConversation], count: int, say: Callable[[str], None]
) -> ProjectSeedResult:
    label = f"{project.organization.slug}/{project.slug}"
    # Skipping stored ids is not needed for correctness (ingest would report them as
    # duplicates) but keeps a re-run, which `make run` does every time, at a second or two.
    stored = set(Conversation.objects.filter(project=project).values_list("external_id", flat=True))
    pending = [item.payload for item in items if item.payload["external_id"] not in stored]
    outcome = ProjectSeedResult(label=label, total=count, skipped=count - len(pending))
    if outcome.skipped:
        say(f"  {label}: {outcome.skipped} of {count} conversations already stored")
    for start in range(0, len(pending), INGEST_BATCH):
        batch = pending[start : start + INGEST_BATCH]
        models = [ConversationIn.model_validate(payload) for payload in batch]
        # The generator's dicts are what validation just accepted: store them as they are
        # instead of dumping every pydantic message again.
        attach_raw_messages(models, batch)
        results = services.conversations_ingest(project=project, conversations=models)
        outcome.created += sum(1 for r in results if r.status == "created")
        say(f"  {label}: {start + len(batch)}/{len(pending)} conversations ingested")
    return outcome
