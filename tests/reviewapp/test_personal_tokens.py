"""Personal tokens end when the owner's password changes (by any path) or their membership is
removed; people list and revoke their own tokens, admins their organization's, in the browser
and over the API. Another organization's token is a 404."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp import services
from reviewapp.models import AuditEvent, Membership, PersonalToken, UserCredentials
from reviewapp.tokens import token_hash
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory

User = get_user_model()


def _api(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _issue(user, organization, name: str = "") -> tuple[PersonalToken, APIClient]:
    issued = services.personal_token_create(user=user, organization=organization, name=name)
    return issued.record, _api(issued.raw)


# --- password changes -----------------------------------------------------------------------


def test_set_password_and_save_anywhere_ends_the_users_tokens(member, org):
    alice = member("engineer", username="alice")
    bob = member("engineer", username="bob")
    _, alice_client = _issue(alice, org)
    _, bob_client = _issue(bob, org)
    assert alice_client.get("/api/v1/me").status_code == 200

    # What the admin's password form, a shell or a third-party view would do.
    alice.set_password("a-new-password-for-alice")
    alice.save()

    assert alice_client.get("/api/v1/me").status_code == 401
    assert bob_client.get("/api/v1/me").status_code == 200
    assert [t.status for t in PersonalToken.objects.filter(user=alice)] == ["password changed"]
    # A token issued after the change works.
    _, fresh = _issue(alice, org)
    assert fresh.get("/api/v1/me").status_code == 200


def test_the_changepassword_command_ends_the_users_tokens(member, org, monkeypatch):
    alice = member("engineer", username="alice")
    _, client = _issue(alice, org)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "another-long-password-42")

    call_command("changepassword", "alice", stdout=StringIO())

    assert client.get("/api/v1/me").status_code == 401


def test_django_s_password_change_form_ends_the_users_tokens(member, org):
    alice = member("engineer", username="alice")
    _, client = _issue(alice, org)

    form = PasswordChangeForm(
        alice,
        {
            "old_password": DEFAULT_PASSWORD,
            "new_password1": "brand-new-password-77",
            "new_password2": "brand-new-password-77",
        },
    )
    assert form.is_valid(), form.errors
    form.save()

    assert client.get("/api/v1/me").status_code == 401


def test_add_member_with_a_password_revokes_the_users_tokens(member, org):
    alice = member("engineer", username="alice")
    token, client = _issue(alice, org)

    call_command("add_member", "acme", "alice", "engineer", "--password", "yet-another-password-9", stdout=StringIO())

    assert client.get("/api/v1/me").status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.status == "revoked"


def test_a_superuser_changing_a_password_in_the_admin_ends_the_tokens(member, org):
    alice = member("engineer", username="alice")
    _, client = _issue(alice, org)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(root)

    response = browser.post(
        reverse("admin:auth_user_password_change", args=[alice.pk]),
        {"password1": "admin-set-password-31", "password2": "admin-set-password-31"},
    )

    assert response.status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_logging_in_with_the_same_password_keeps_the_tokens(member, org):
    alice = member("engineer", username="alice")
    _, client = _issue(alice, org)

    assert Client().post("/login/", {"username": "alice", "password": DEFAULT_PASSWORD}).status_code == 302

    assert client.get("/api/v1/me").status_code == 200


# --- memberships --------------------------------------------------------------------------------


def test_removing_a_membership_revokes_the_tokens_for_that_organization_only(member, org, other_org):
    alice = member("engineer", username="alice")
    MembershipFactory(user=alice, organization=other_org, role="engineer")
    acme_token, acme_client = _issue(alice, org)
    globex_token, globex_client = _issue(alice, other_org)
    admin_user = member("admin", username="boss")

    services.membership_remove(membership=Membership.objects.get(user=alice, organization=org), actor=admin_user)

    assert acme_client.get("/api/v1/me").status_code == 401
    assert globex_client.get("/api/v1/me").status_code == 200
    acme_token.refresh_from_db()
    globex_token.refresh_from_db()
    assert acme_token.revoked_at is not None
    assert globex_token.revoked_at is None
    event = AuditEvent.objects.get(kind="membership.removed")
    assert (event.organization_id, event.actor_user_id) == (org.pk, admin_user.pk)
    assert event.data == {"username": "alice", "user_id": alice.pk, "role": "engineer", "tokens_revoked": 1}


def test_a_token_stays_dead_when_the_person_is_added_back(member, org):
    alice = member("engineer", username="alice")
    _, client = _issue(alice, org)

    # Even a raw delete (no service) followed by re-adding does not revive the old token.
    Membership.objects.filter(user=alice, organization=org).delete()
    services.membership_add(organization=org, username="alice", role="engineer")

    assert client.get("/api/v1/me").status_code == 401
    _, fresh = _issue(alice, org)
    assert fresh.get("/api/v1/me").status_code == 200


def test_deleting_a_membership_in_the_admin_revokes_its_tokens(member, org):
    alice = member("engineer", username="alice")
    token, _ = _issue(alice, org)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(root)
    membership = Membership.objects.get(user=alice, organization=org)

    response = browser.post(reverse("admin:reviewapp_membership_delete", args=[membership.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(kind="membership.removed").count() == 1


def test_the_admin_bulk_delete_of_memberships_revokes_their_tokens(member, org):
    alice = member("engineer", username="alice")
    bob = member("annotator", username="bob")
    tokens = [_issue(alice, org)[0], _issue(bob, org)[0]]
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    ids = list(Membership.objects.filter(user__in=[alice, bob]).values_list("pk", flat=True))

    response = _browser(root).post(
        reverse("admin:reviewapp_membership_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )

    assert response.status_code == 302
    assert not Membership.objects.filter(pk__in=ids).exists()
    assert [PersonalToken.objects.get(pk=t.pk).revoked_at is not None for t in tokens] == [True, True]
    assert AuditEvent.objects.filter(kind="membership.removed").count() == 2


# --- the browser page -------------------------------------------------------------------------


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_tokens_page_lists_my_tokens_and_not_others(member, org):
    alice = member("engineer", username="alice")
    bob = member("engineer", username="bob")
    mine, _ = _issue(alice, org, name="laptop script")
    theirs, _ = _issue(bob, org, name="bob's")

    response = _browser(alice).get("/settings/tokens/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-token="{mine.pk}"' in html
    assert "laptop script" in html
    assert mine.prefix in html
    assert f'data-token="{theirs.pk}"' not in html
    assert "organization-tokens" not in html


def test_i_revoke_my_own_token_in_the_browser(member, org):
    alice = member("engineer", username="alice")
    token, client = _issue(alice, org)

    response = _browser(alice).post(f"/settings/tokens/{token.pk}/revoke")

    assert response.status_code == 302
    assert response["Location"] == "/settings/tokens/"
    assert client.get("/api/v1/me").status_code == 401
    event = AuditEvent.objects.get(kind="personal_token.revoked")
    assert (event.actor_user_id, event.subject_id, event.data) == (
        alice.pk,
        str(token.pk),
        {"prefix": token.prefix, "owner_id": alice.pk},
    )


def test_a_non_admin_cannot_revoke_someone_elses_token(member, org):
    alice = member("engineer", username="alice")
    bob = member("engineer", username="bob")
    token, client = _issue(bob, org)

    response = _browser(alice).post(f"/settings/tokens/{token.pk}/revoke")

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert client.get("/api/v1/me").status_code == 200
    assert not AuditEvent.objects.filter(kind="personal_token.revoked").exists()


def test_an_admin_sees_and_revokes_anyone_s_token_in_the_organization(member, org):
    boss = member("admin", username="boss")
    bob = member("engineer", username="bob")
    token, client = _issue(bob, org)

    page = _browser(boss).get("/settings/tokens/").content.decode()
    response = _browser(boss).post(f"/settings/tokens/{token.pk}/revoke")

    assert "organization-tokens" in page
    assert f'data-token="{token.pk}"' in page
    assert response.status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_an_admin_cannot_revoke_another_organizations_token(member, org, other_org):
    boss = member("admin", username="boss")
    outsider = member("engineer", username="outsider", organization=other_org)
    token, client = _issue(outsider, other_org)

    page = _browser(boss).get("/settings/tokens/").content.decode()
    response = _browser(boss).post(f"/settings/tokens/{token.pk}/revoke")

    assert f'data-token="{token.pk}"' not in page
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert client.get("/api/v1/me").status_code == 200


def test_revoking_needs_a_post(member, org):
    alice = member("engineer", username="alice")
    token, _ = _issue(alice, org)

    assert _browser(alice).get(f"/settings/tokens/{token.pk}/revoke").status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


# --- the API ----------------------------------------------------------------------------------


def test_the_api_lists_my_tokens_in_this_organization(member, org, other_org):
    alice = member("engineer", username="alice")
    MembershipFactory(user=alice, organization=other_org, role="engineer")
    current, client = _issue(alice, org, name="ci")
    _issue(alice, other_org)
    _issue(member("engineer", username="bob"), org)

    response = client.get("/api/v1/auth/tokens")

    assert response.status_code == 200
    body = response.json()
    assert [(t["id"], t["username"], t["organization"], t["name"], t["prefix"], t["status"]) for t in body] == [
        (current.pk, "alice", "acme", "ci", current.prefix, "active")
    ]


def test_only_an_admin_lists_the_organizations_tokens(member, org, other_org):
    boss = member("admin", username="boss")
    bob = member("engineer", username="bob")
    bob_token, bob_client = _issue(bob, org)
    boss_token, boss_client = _issue(boss, org)
    _issue(member("engineer", username="outsider", organization=other_org), other_org)

    everyone = boss_client.get("/api/v1/auth/tokens?scope=organization")
    denied = bob_client.get("/api/v1/auth/tokens?scope=organization")

    assert everyone.status_code == 200
    assert sorted(t["id"] for t in everyone.json()) == sorted([bob_token.pk, boss_token.pk])
    assert denied.status_code == 403


def test_the_api_revokes_my_token_and_404s_anyone_elses(member, org, other_org):
    alice = member("engineer", username="alice")
    bob = member("engineer", username="bob")
    spare, spare_client = _issue(alice, org)
    _, client = _issue(alice, org)
    bobs, bob_client = _issue(bob, org)
    outsider_token, _ = _issue(member("admin", username="outsider", organization=other_org), other_org)

    assert client.delete(f"/api/v1/auth/tokens/{bobs.pk}").status_code == 404
    assert client.delete(f"/api/v1/auth/tokens/{outsider_token.pk}").status_code == 404
    assert client.delete(f"/api/v1/auth/tokens/{spare.pk}").status_code == 204

    assert spare_client.get("/api/v1/me").status_code == 401
    assert bob_client.get("/api/v1/me").status_code == 200
    assert client.get("/api/v1/me").status_code == 200
    assert set(PersonalToken.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)) == {spare.pk}


def test_an_admin_revokes_anyone_s_token_in_the_organization_over_the_api(member, org, other_org):
    _, boss_client = _issue(member("admin", username="boss"), org)
    bobs, bob_client = _issue(member("engineer", username="bob"), org)
    outsider_token, outsider_client = _issue(member("engineer", username="out", organization=other_org), other_org)

    assert boss_client.delete(f"/api/v1/auth/tokens/{outsider_token.pk}").status_code == 404
    assert boss_client.delete(f"/api/v1/auth/tokens/{bobs.pk}").status_code == 204

    assert bob_client.get("/api/v1/me").status_code == 401
    assert outsider_client.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize("method", ["get", "delete"])
def test_a_project_key_cannot_use_the_token_api(agent_client, method):
    url = "/api/v1/auth/tokens" if method == "get" else "/api/v1/auth/tokens/1"

    assert getattr(agent_client, method)(url).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_epoch_migration_keeps_live_tokens_and_ends_those_whose_password_had_changed():
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils.crypto import salted_hmac

    before = [("reviewapp", "0004_conversation_project_id_index")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldUser = old.get_model("auth", "User")
    OldOrganization = old.get_model("reviewapp", "Organization")
    OldMembership = old.get_model("reviewapp", "Membership")
    OldToken = old.get_model("reviewapp", "PersonalToken")

    def fingerprint(password_hash: str) -> str:  # what 0002..0004 stored
        return salted_hmac("reviewapp.tokens.password_fingerprint", password_hash, algorithm="sha256").hexdigest()

    acme = OldOrganization.objects.create(slug="acme", name="Acme")
    alice = OldUser.objects.create(username="alice", password=make_password(DEFAULT_PASSWORD))
    OldMembership.objects.create(user=alice, organization=acme, role="engineer", created_at="2026-01-01T00:00:00Z")
    raws = {"live": "rat_live-token", "stale": "rat_stale-token"}
    for name, raw in raws.items():
        OldToken.objects.create(
            user=alice,
            organization=acme,
            name=name,
            prefix=raw[:12],
            token_hash=token_hash(raw),
            password_fingerprint=fingerprint(alice.password if name == "live" else make_password("an-older-one")),
        )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert _api(raws["live"]).get("/api/v1/me").status_code == 200
    assert _api(raws["stale"]).get("/api/v1/me").status_code == 401
    assert dict(PersonalToken.objects.values_list("name", "credentials_epoch")) == {"live": 0, "stale": -1}
    assert {t.name: t.status for t in PersonalToken.objects.all()} == {"live": "active", "stale": "password changed"}


# --- hash upgrades are not password changes ----------------------------------------------------


class _PBKDF2Few(PBKDF2PasswordHasher):
    iterations = 1_000  # PBKDF2 with few iterations keeps the tests fast


class _PBKDF2More(PBKDF2PasswordHasher):
    iterations = 2_000


def _sign_in(username: str, password: str = DEFAULT_PASSWORD) -> int:
    return Client().post("/login/", {"username": username, "password": password}).status_code


def test_a_hasher_upgrade_at_sign_in_keeps_the_tokens(member, org, settings):
    alice = member("engineer", username="alice")  # hashed with MD5 (tests/conftest.py)
    token, client = _issue(alice, org)
    md5_hash = User.objects.get(pk=alice.pk).password

    # A deployment moves to a new preferred hasher: Django rehashes at the next sign-in.
    settings.PASSWORD_HASHERS = [
        f"{__name__}._PBKDF2Few",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert _sign_in("alice") == 302

    upgraded = User.objects.get(pk=alice.pk).password
    assert md5_hash.startswith("md5$")
    assert upgraded.startswith("pbkdf2_sha256$1000$")  # the rehash really happened
    assert client.get("/api/v1/me").status_code == 200
    assert PersonalToken.objects.get(pk=token.pk).status == "active"


def test_an_iteration_change_at_sign_in_keeps_the_tokens(member, org, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}._PBKDF2Few"]
    alice = member("engineer", username="alice")
    _, client = _issue(alice, org)
    assert User.objects.get(pk=alice.pk).password.startswith("pbkdf2_sha256$1000$")

    settings.PASSWORD_HASHERS = [f"{__name__}._PBKDF2More"]
    response = APIClient().post(
        "/api/v1/auth/token", {"username": "alice", "password": DEFAULT_PASSWORD}, format="json"
    )

    assert response.status_code == 201
    assert User.objects.get(pk=alice.pk).password.startswith("pbkdf2_sha256$2000$")
    assert client.get("/api/v1/me").status_code == 200
    # ... and a real change afterwards still ends both tokens.
    alice = User.objects.get(pk=alice.pk)
    alice.set_password("a-new-password-for-alice")
    alice.save()
    assert client.get("/api/v1/me").status_code == 401
    assert _api(response.json()["token"]).get("/api/v1/me").status_code == 401


def test_the_admin_turning_password_sign_in_off_ends_the_tokens(member, org):
    alice = member("engineer", username="alice")
    token, client = _issue(alice, org)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(root)

    response = browser.post(
        reverse("admin:auth_user_password_change", args=[alice.pk]), {"usable_password": "false", "unset-password": "1"}
    )

    assert response.status_code == 302
    assert User.objects.get(pk=alice.pk).has_usable_password() is False
    assert client.get("/api/v1/me").status_code == 401
    assert PersonalToken.objects.get(pk=token.pk).status == "password changed"


def test_a_script_made_unusable_password_ends_the_tokens_but_other_saves_do_not(member, org):
    alice = member("engineer", username="alice")
    _, client = _issue(alice, org)
    alice.first_name = "Alice"
    alice.save()
    assert client.get("/api/v1/me").status_code == 200

    alice.set_unusable_password()
    alice.save()

    assert client.get("/api/v1/me").status_code == 401
    # Still without a password: saving the person again ends nothing more, and a token issued
    # now (an account provisioned by a script signs in no other way) works.
    _, fresh = _issue(alice, org)
    alice.last_name = "Liddell"
    alice.save()
    assert fresh.get("/api/v1/me").status_code == 200


def test_a_person_provisioned_without_a_password_has_working_tokens(org):
    membership = services.membership_add(organization=org, username="robot", role="engineer")
    assert membership.user.has_usable_password() is False

    issued = services.personal_token_create(user=membership.user, organization=org)

    assert _api(issued.raw).get("/api/v1/me").status_code == 200
    assert issued.record.status == "active"


def test_two_password_changes_move_the_epoch_twice_and_a_new_token_lives(member, org):
    alice = member("engineer", username="alice")
    start = services.user_credentials_epoch_bump(user=alice)
    for password in ["first-new-password-1", "second-new-password-2"]:
        alice.set_password(password)
        alice.save(update_fields=["password"])

    token, client = _issue(alice, org)

    assert UserCredentials.objects.get(user=alice).epoch == start + 2
    assert token.credentials_epoch == start + 2
    assert client.get("/api/v1/me").status_code == 200


def test_the_hook_is_required_at_start_up(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.AUTH_PASSWORD_VALIDATORS = [{"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}]

    with pytest.raises(SystemCheckError, match=r"reviewapp\.E002"):
        call_command("check", stdout=StringIO(), stderr=StringIO())
