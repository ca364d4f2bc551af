"""Shared fixtures: tenants, people in each role, and API clients authenticated as them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from reviewapp import services
from reviewapp.models import Organization, Project
from tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
    have_redis = bool(os.environ.get("REDIS_URL"))
    have_chromium = os.path.exists(CHROMIUM)
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        if "celery_worker" in item.keywords and not have_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis and a Celery worker (set REDIS_URL)"))
        if "browser" in item.keywords and not have_chromium:
            item.add_marker(pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM}"))


@pytest.fixture(autouse=True)
def _isolated_state(settings) -> None:
    # Throttle counters live in the cache; a fresh cache per test keeps the auth throttle from
    # leaking between tests. Tasks run in-process unless a test asks for the real worker.
    cache.clear()
    # The default hasher (PBKDF2) costs ~0.2 s a password: throttle tests log in dozens of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from reviewapp.celery import app

    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def org(db) -> Organization:
    return OrganizationFactory(slug="acme", name="Acme Air")


@pytest.fixture
def other_org(db) -> Organization:
    return OrganizationFactory(slug="globex", name="Globex Retail")


@pytest.fixture
def project(org) -> Project:
    return ProjectFactory(organization=org, slug="support", name="Support agent")


@pytest.fixture
def other_project(other_org) -> Project:
    return ProjectFactory(organization=other_org, slug="shop", name="Shop agent")


@pytest.fixture
def member(org) -> Callable[..., object]:
    """member("annotator") -> a user with that role in `org` (another org with organization=)."""

    def make(role: str, *, organization: Organization | None = None, username: str | None = None):
        user = UserFactory(**({"username": username} if username else {}))
        MembershipFactory(user=user, organization=organization or org, role=role)
        return user

    return make


@pytest.fixture
def api_client_for(org, member) -> Callable[..., APIClient]:
    """api_client_for("engineer") -> an APIClient with a personal token for a new user."""

    def make(role: str, *, organization: Organization | None = None) -> APIClient:
        target = organization or org
        user = member(role, organization=target)
        issued = services.personal_token_create(user=user, organization=target)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
        client.user = user  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
def browser_for(member) -> Callable[..., Client]:
    """browser_for("engineer") -> a signed-in Django test Client for a new member of `org`
    (another org with organization=, a set username with username=), the user as `.user`."""

    def make(role: str, *, username: str | None = None, organization: Organization | None = None) -> Client:
        user = member(role, username=username, organization=organization)
        client = Client()
        client.force_login(user)
        client.user = user  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
def agent_client(project) -> APIClient:
    """An APIClient holding a project API key for `project`."""
    issued = services.api_key_create(project=project, name="agent")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    client.api_key = issued.record  # type: ignore[attr-defined]
    client.raw_key = issued.raw  # type: ignore[attr-defined]
    return client


@pytest.fixture
def other_agent_client(other_project) -> APIClient:
    issued = services.api_key_create(project=other_project, name="other agent")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    return client


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


pytest_plugins = ["tests.celery_worker"]


@pytest.fixture
def staff(org):
    """Staff, admin of acme only, holding every model permission: in the admin tests only the
    organization scoping stands between them and another tenant's rows."""
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(user=user, organization=org, role="admin")
    user.user_permissions.set(Permission.objects.all())
    return user


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client
