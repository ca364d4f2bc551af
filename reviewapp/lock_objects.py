"""Row locks for the core. Every function that locks must run inside transaction.atomic(); the
caller holds the lock until its transaction ends."""

from __future__ import annotations

from reviewapp.models import Membership, Role


def organization_admins_lock(*, organization_id: int) -> list[int]:
    """Lock the organization's admin memberships and return their ids. Two changes that would
    each leave one admin (two admins demoting each other at once) take turns here, and the
    second, having waited, reads the admins that are left: PostgreSQL re-checks a locked row
    against `role = admin` after the first commits."""
    return list(
        Membership.objects.filter(organization_id=organization_id, role=Role.ADMIN)
        .order_by("pk")
        .select_for_update(of=("self",))
        .values_list("pk", flat=True)
    )
