"""Reads for webhooks and notifications, tenant first. (Apart from selectors.py, which the
action work owns; they may be merged.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from escalations.models import Action, DeliveryAttempt, WebhookDelivery, WebhookSecret
from reviewapp.errors import NotFound
from reviewapp.models import Membership, Role
from reviewapp.principal import AGENT, CAPABILITIES

if TYPE_CHECKING:
    from escalations.policies import Tier
    from reviewapp.models import Organization, Project

# Roles that may decide at all; a tier narrows them further.
_DECIDING_ROLES = sorted(role for role, caps in CAPABILITIES.items() if role != AGENT and "actions.decide" in caps)


def secret_state(secret: WebhookSecret, now: Any = None) -> str:
    """`current` (signs first), `expiring` (still signs until expires_at), `expired`, `revoked`."""
    now = now or timezone.now()
    if secret.revoked_at is not None:
        return "revoked"
    if secret.expires_at is None:
        return "current"
    return "expiring" if secret.expires_at > now else "expired"


def webhook_secret_list(*, organization: Organization, project: Project | None = None) -> QuerySet[WebhookSecret]:
    """Every secret of the organization's projects (or one project's), newest first per project."""
    secrets = WebhookSecret.objects.filter(organization=organization).select_related("project")
    if project is not None:
        secrets = secrets.filter(project=project)
    return secrets.order_by("project__slug", "-id")


def action_deliveries(
    *, organization: Organization, action_id: int, project: Project | None = None
) -> list[WebhookDelivery]:
    """An action's deliveries with their attempts (two queries besides the action's lookup).
    `project` narrows to one project (an agent's key sees its own project only); an action
    elsewhere is not found."""
    actions = Action.objects.filter(organization=organization, pk=action_id)
    if project is not None:
        actions = actions.filter(project=project)
    if not actions.exists():
        raise NotFound("Action not found.")
    return list(
        WebhookDelivery.objects.filter(organization=organization, action_id=action_id)
        .order_by("id")
        .prefetch_related(Prefetch("attempt_rows", queryset=DeliveryAttempt.objects.order_by("number")))
    )


def tier_recipients(*, organization: Organization | int, tier: Tier) -> list[Any]:
    """The people who may decide at `tier` (its `users`, by username, or its `role`, where
    admins may always decide too) and have an e-mail address: active members of the
    organization whose role may decide at all. Ordered by id."""
    organization_id = organization if isinstance(organization, int) else organization.pk
    memberships = Membership.objects.filter(
        organization_id=organization_id, role__in=_DECIDING_ROLES, user__is_active=True
    ).exclude(user__email="")
    usernames = list(tier.users)
    role = tier.role
    if usernames:
        username_field = get_user_model().USERNAME_FIELD
        memberships = memberships.filter(**{f"user__{username_field}__in": usernames})
    elif role:
        memberships = memberships.filter(role__in={role, Role.ADMIN.value})
    else:
        return []
    return [m.user for m in memberships.select_related("user").order_by("user_id")]
