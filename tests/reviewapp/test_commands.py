"""Provisioning commands: usable in scripts, the value a script needs is the last stdout line."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from reviewapp.models import ApiKey, Conversation, Membership, Organization, Project
from reviewapp.tokens import token_hash
from tests.factories import conversation_payload

User = get_user_model()


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def test_create_org_prints_the_slug_and_is_idempotent(db):
    out, _ = _run("create_org", "acme", "--name", "Acme Air")

    assert _last_line(out) == "acme"
    assert list(Organization.objects.values_list("slug", "name")) == [("acme", "Acme Air")]

    again, _ = _run("create_org", "acme", "--name", "Renamed")

    assert _last_line(again) == "acme"
    assert list(Organization.objects.values_list("slug", "name")) == [("acme", "Acme Air")]


def test_create_org_names_it_after_the_slug_by_default(db):
    _run("create_org", "globex")

    assert Organization.objects.get().name == "globex"


def test_create_project_prints_the_slug_and_is_idempotent(db):
    _run("create_org", "acme")

    out, _ = _run("create_project", "acme", "support", "--name", "Support agent")
    again, _ = _run("create_project", "acme", "support")

    assert _last_line(out) == _last_line(again) == "support"
    assert list(Project.objects.values_list("organization__slug", "slug", "name")) == [
        ("acme", "support", "Support agent")
    ]


def test_create_project_in_an_unknown_org_fails_and_says_how_to_fix_it(db):
    with pytest.raises(CommandError, match=r"No organization 'nope'\. Create it with: manage.py create_org nope"):
        _run("create_project", "nope", "support")

    assert Project.objects.count() == 0


def test_add_member_creates_the_user_with_a_password_and_prints_the_username(db):
    _run("create_org", "acme")

    out, _ = _run("add_member", "acme", "alice", "engineer", "--password", "s3cret-pass", "--email", "a@example.com")

    assert _last_line(out) == "alice"
    user = User.objects.get(username="alice")
    assert user.check_password("s3cret-pass")
    assert user.email == "a@example.com"
    assert list(Membership.objects.values_list("user__username", "organization__slug", "role")) == [
        ("alice", "acme", "engineer")
    ]
    token = APIClient().post("/api/v1/auth/token", {"username": "alice", "password": "s3cret-pass"}, format="json")
    assert token.json()["role"] == "engineer"


def test_add_member_again_changes_the_role_and_keeps_the_password(db):
    _run("create_org", "acme")
    _run("add_member", "acme", "alice", "engineer", "--password", "s3cret-pass")

    out, _ = _run("add_member", "acme", "alice", "admin")

    assert _last_line(out) == "alice"
    assert User.objects.count() == 1
    assert User.objects.get().check_password("s3cret-pass")
    assert list(Membership.objects.values_list("role", flat=True)) == ["admin"]


def test_add_member_without_a_password_creates_a_user_who_cannot_log_in(db):
    _run("create_org", "acme")

    _run("add_member", "acme", "bob", "annotator")

    assert User.objects.get(username="bob").has_usable_password() is False


def test_add_member_to_a_second_org_keeps_the_first_membership(db):
    _run("create_org", "acme")
    _run("create_org", "globex")

    _run("add_member", "acme", "alice", "engineer")
    _run("add_member", "globex", "alice", "approver")

    assert sorted(Membership.objects.values_list("organization__slug", "role")) == [
        ("acme", "engineer"),
        ("globex", "approver"),
    ]


def test_add_member_with_an_unknown_role_fails(db):
    _run("create_org", "acme")

    with pytest.raises(CommandError, match="invalid choice: 'owner'"):
        _run("add_member", "acme", "alice", "owner")

    assert User.objects.count() == 0


def test_add_member_to_an_unknown_org_fails(db):
    with pytest.raises(CommandError, match="No organization 'nope'"):
        _run("add_member", "nope", "alice", "engineer")

    assert User.objects.count() == 0


def test_create_api_key_prints_only_the_raw_key_on_stdout_and_it_works(db):
    _run("create_org", "acme")
    _run("create_project", "acme", "support")

    out, err = _run("create_api_key", "acme", "support", "--name", "prod-agent")

    raw = _last_line(out)
    assert out == raw + "\n"
    key = ApiKey.objects.get()
    assert (key.name, key.project.slug, key.token_hash) == ("prod-agent", "support", token_hash(raw))
    assert err == f"Key 'prod-agent' for acme/support (prefix {key.prefix}). Store it now.\n"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.post("/api/v1/conversations", conversation_payload(), format="json").status_code == 201
    assert Conversation.objects.get().ingested_by_key_id == key.pk


def test_create_api_key_makes_a_new_key_each_time(db):
    _run("create_org", "acme")
    _run("create_project", "acme", "support")

    first, _ = _run("create_api_key", "acme", "support")
    second, _ = _run("create_api_key", "acme", "support")

    assert _last_line(first) != _last_line(second)
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["cli", "cli"]


def test_create_api_key_for_an_unknown_project_fails_and_says_how_to_fix_it(db):
    _run("create_org", "acme")

    with pytest.raises(
        CommandError, match=r"No project 'nope' in 'acme'\. Create it with: manage.py create_project acme nope"
    ):
        _run("create_api_key", "acme", "nope")

    assert ApiKey.objects.count() == 0
