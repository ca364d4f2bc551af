"""The members page: an admin adds people (an account that exists, or a new one with a
password), changes roles and removes them through the audited services; the last admin is
kept; nobody else may open it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from reviewapp.models import AuditEvent, Membership
from tests.factories import UserFactory

XSS = "<script>window.__xss=1</script>"


@pytest.fixture
def admin_client(member):
    user = member("admin", username="boss")
    client = Client()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("role", ["annotator", "approver", "engineer"])
def test_members_page_is_for_admins_only(org, member, role):
    client = Client()
    client.force_login(member(role))
    target = member("annotator")
    membership = Membership.objects.get(user=target)
    assert client.get("/settings/members/").status_code == 403
    assert client.post("/settings/members/", {"identifier": "newbie", "role": "admin"}).status_code == 403
    assert client.post(f"/settings/members/{membership.pk}/role", {"role": "admin"}).status_code == 403
    assert client.post(f"/settings/members/{membership.pk}/remove").status_code == 403
    membership.refresh_from_db()
    assert membership.role == "annotator"
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_another_organizations_membership_is_404(admin_client, other_org, member):
    outsider = member("annotator", organization=other_org)
    membership = Membership.objects.get(user=outsider)
    assert admin_client.post(f"/settings/members/{membership.pk}/role", {"role": "admin"}).status_code == 404
    assert admin_client.post(f"/settings/members/{membership.pk}/remove").status_code == 404
    membership.refresh_from_db()
    assert membership.role == "annotator"


def test_add_an_existing_account_by_email(admin_client, org, other_org, member):
    person = UserFactory(username="ada", email="Ada@Example.com")
    response = admin_client.post("/settings/members/", {"identifier": "ada@example.com", "role": "engineer"})
    assert response.status_code == 302
    assert Membership.objects.get(user=person, organization=org).role == "engineer"
    event = AuditEvent.objects.get(kind="membership.set", organization=org)
    assert event.data == {"username": "ada", "role": "engineer"}


def test_an_existing_accounts_password_is_never_set_from_here(admin_client, org):
    person = UserFactory(username="ada")
    person.set_password("theirs-and-only-theirs")
    person.save()
    response = admin_client.post(
        "/settings/members/", {"identifier": "ada", "role": "annotator", "password": "Taken-over-123"}
    )
    assert response.status_code == 400
    assert "leave the password empty" in response.content.decode()
    person.refresh_from_db()
    assert person.check_password("theirs-and-only-theirs")
    assert not Membership.objects.filter(user=person, organization=org).exists()


def test_create_a_new_account_with_a_password(admin_client, org):
    response = admin_client.post(
        "/settings/members/",
        {"identifier": "newbie", "email": "new@example.com", "role": "annotator", "password": "Long-enough-pass-42"},
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "new@example.com" and user.check_password("Long-enough-pass-42")
    assert Membership.objects.get(user=user, organization=org).role == "annotator"
    assert Client().login(username="newbie", password="Long-enough-pass-42")


def test_bad_input_is_shown_beside_the_field_and_writes_nothing(admin_client, org):
    response = admin_client.post("/settings/members/", {"identifier": "nobody@example.com", "role": "annotator"})
    assert response.status_code == 400
    page = response.content.decode()
    assert page.index("No account has this email", page.index('name="identifier"')) < page.index('name="role"')
    response = admin_client.post("/settings/members/", {"identifier": "x y", "role": "annotator"})
    assert response.status_code == 400
    response = admin_client.post("/settings/members/", {"identifier": "fresh", "role": "annotator", "password": "123"})
    assert response.status_code == 400
    assert 'name="password"' in response.content.decode()
    assert not get_user_model().objects.filter(username__in=["x y", "fresh"]).exists()
    assert Membership.objects.filter(organization=org).count() == 1


def test_change_a_role_and_remove_someone(admin_client, org, member):
    person = member("annotator", username="ana")
    membership = Membership.objects.get(user=person)
    assert admin_client.post(f"/settings/members/{membership.pk}/role", {"role": "engineer"}).status_code == 302
    membership.refresh_from_db()
    assert membership.role == "engineer"
    assert admin_client.post(f"/settings/members/{membership.pk}/remove").status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(kind="membership.removed", organization=org).count() == 1


def test_the_last_admin_is_neither_demoted_nor_removed(admin_client, org):
    mine = Membership.objects.get(user=admin_client.user)
    page = admin_client.get("/settings/members/").content.decode()
    assert "the last admin: make someone else admin first" in page
    response = admin_client.post(f"/settings/members/{mine.pk}/role", {"role": "engineer"})
    assert response.status_code == 400 and "last admin" in response.content.decode()
    response = admin_client.post(f"/settings/members/{mine.pk}/remove")
    assert response.status_code == 400 and "last admin" in response.content.decode()
    mine.refresh_from_db()
    assert mine.role == "admin"


def test_hostile_names_are_escaped(admin_client, org, member):
    person = UserFactory(username="evil", email="evil@example.com", first_name=XSS)
    Membership.objects.create(user=person, organization=org, role="annotator")
    response = admin_client.post("/settings/members/", {"identifier": XSS, "role": "annotator"})
    page = response.content.decode()
    assert XSS not in page and "&lt;script&gt;" in page
