"""Two admins demoting each other at once on PostgreSQL: one wins, the other is refused, and
the organization keeps an admin. Each change locks the organization's admin rows, so the second
waits for the first and then counts the admins that are left."""

from __future__ import annotations

import pytest

from reviewapp import lock_objects, services
from reviewapp.errors import ValidationFailed
from reviewapp.models import Membership
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_until_blocked
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("second", ["demote", "remove"])
def test_two_admins_leaving_at_once_leave_one_admin(monkeypatch, second):
    organization = OrganizationFactory(slug="race")
    alice = MembershipFactory(user=UserFactory(username="alice"), organization=organization, role="admin")
    bob = MembershipFactory(user=UserFactory(username="bob"), organization=organization, role="admin")
    hold = hold_call(monkeypatch, lock_objects, "organization_admins_lock", thread="first")
    results: dict = {}

    def demote(membership):
        return lambda: services.membership_role_set(
            membership=Membership.objects.select_related("user", "organization").get(pk=membership.pk),
            role="engineer",
        )

    def remove(membership):
        return lambda: services.membership_remove(
            membership=Membership.objects.select_related("user", "organization").get(pk=membership.pk)
        )

    first = start_thread("first", demote(alice), results)
    try:
        hold.wait_inside()  # alice's demotion holds the admin rows, counted two admins
        other = start_thread("second", (demote if second == "demote" else remove)(bob), results)
        wait_until_blocked(count=1)  # bob's change waits on those rows
        assert "second" not in results
    finally:
        hold.release()
    join_all(first, other)

    assert not isinstance(results["first"], BaseException), results
    assert isinstance(results["second"], ValidationFailed)
    assert dict(Membership.objects.filter(organization=organization).values_list("user__username", "role")) == {
        "alice": "engineer",
        "bob": "admin",
    }
