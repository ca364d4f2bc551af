"""An organization keeps at least one admin: the last one can be neither demoted nor removed,
by the services, `add_member`, or the admin (which says so before saving)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from reviewapp import services
from reviewapp.errors import ValidationFailed
from reviewapp.models import AuditEvent, Membership, PersonalToken
from tests.factories import UserFactory


def _membership(user, org) -> Membership:
    return Membership.objects.select_related("user", "organization").get(user=user, organization=org)


def _roles(org) -> dict[str, str]:
    return dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))


def test_the_last_admin_cannot_be_demoted(member, org):
    alice = member("admin", username="alice")
    member("engineer", username="bob")

    with pytest.raises(ValidationFailed) as refused:
        services.membership_role_set(membership=_membership(alice, org), role="engineer")

    assert refused.value.status_code == 400
    assert refused.value.errors == {
        "role": ["Cannot demote alice: they are the organization's last admin. Make someone else admin first."]
    }
    assert _roles(org) == {"alice": "admin", "bob": "engineer"}
    assert not AuditEvent.objects.filter(kind="membership.set").exists()


def test_an_admin_can_be_demoted_while_another_remains(member, org, other_org):
    alice = member("admin", username="alice")
    bob = member("admin", username="bob")
    member("admin", organization=other_org, username="carol")  # another organization's admins do not count

    services.membership_role_set(membership=_membership(alice, org), role="annotator")

    assert _roles(org) == {"alice": "annotator", "bob": "admin"}
    with pytest.raises(ValidationFailed):
        services.membership_role_set(membership=_membership(bob, org), role="annotator")
    assert _roles(org) == {"alice": "annotator", "bob": "admin"}
    # Setting the last admin's role to admin again is no change, and allowed.
    services.membership_role_set(membership=_membership(bob, org), role="admin")


def test_the_last_admin_cannot_be_removed_and_keeps_their_tokens(member, org):
    alice = member("admin", username="alice")
    token = services.personal_token_create(user=alice, organization=org).record

    with pytest.raises(ValidationFailed) as refused:
        services.membership_remove(membership=_membership(alice, org))

    assert refused.value.errors == {
        "membership": ["Cannot remove alice: they are the organization's last admin. Make someone else admin first."]
    }
    assert _roles(org) == {"alice": "admin"}
    assert PersonalToken.objects.get(pk=token.pk).revoked_at is None
    assert not AuditEvent.objects.filter(kind="membership.removed").exists()


def test_removing_one_of_two_admins_works(member, org):
    alice = member("admin", username="alice")
    member("admin", username="bob")

    services.membership_remove(membership=_membership(alice, org))

    assert _roles(org) == {"bob": "admin"}


def test_add_member_cannot_demote_the_last_admin(member, org):
    member("admin", username="alice")

    with pytest.raises(CommandError, match="last admin"):
        call_command("add_member", org.slug, "alice", "annotator", stdout=StringIO(), stderr=StringIO())

    assert _roles(org) == {"alice": "admin"}


@pytest.fixture
def superuser_browser(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_the_admin_says_so_on_the_role_form(member, org, superuser_browser):
    alice = member("admin", username="alice")
    membership = _membership(alice, org)

    response = superuser_browser.post(
        reverse("admin:reviewapp_membership_change", args=[membership.pk]), {"role": "engineer"}
    )

    assert response.status_code == 200  # the form again, with the error
    assert "last admin" in response.content.decode()
    assert _roles(org) == {"alice": "admin"}


def test_the_admin_will_not_delete_the_last_admin(member, org, superuser_browser):
    alice = member("admin", username="alice")
    bob = member("engineer", username="bob")
    last = _membership(alice, org)

    page = superuser_browser.get(reverse("admin:reviewapp_membership_delete", args=[last.pk]))
    posted = superuser_browser.post(reverse("admin:reviewapp_membership_delete", args=[last.pk]), {"post": "yes"})
    bulk = superuser_browser.post(
        reverse("admin:reviewapp_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [last.pk, _membership(bob, org).pk], "post": "yes"},
    )

    assert "alice is the last admin of" in page.content.decode()
    assert posted.status_code == 403 or "last admin" in posted.content.decode()
    assert "last admin" in bulk.content.decode()
    assert _roles(org) == {"alice": "admin", "bob": "engineer"}
