"""Two people creating the same new project from a document at once, on PostgreSQL: one gets
the project, the other is told the slug is taken (before, the second took over the first's
project and reported it as created). The second's insert waits on the first's uncommitted row
in the unique index, then fails."""

from __future__ import annotations

import pytest

from provisioning import services
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project
from reviewapp.principal import Principal
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_until_blocked
from tests.factories import OrganizationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DOC = {"kind": "reviewapp/project-config", "version": 1, "project": {"timezone": "Europe/Paris"}}


def test_two_creations_of_one_slug_make_one_project_and_refuse_the_other(monkeypatch):
    organization = OrganizationFactory(slug="race")
    admin = Principal(organization=organization, role="admin")
    # The first holds its new project, uncommitted, while it applies the document.
    hold = hold_call(monkeypatch, services, "_apply_parsed", thread="first", before=True)
    results: dict = {}

    def create(name):
        return lambda: services.project_create_from_config(
            principal=admin, organization=organization, slug="acme", name=name, data=DOC
        )

    first = start_thread("first", create("First"), results)
    try:
        hold.wait_inside()
        second = start_thread("second", create("Second"), results)
        wait_until_blocked(count=1)  # the second's insert waits on the first's row
        assert "second" not in results
    finally:
        hold.release()
    join_all(first, second)

    project, result = results["first"]
    assert (project.name, result.dry_run) == ("First", False)
    assert isinstance(results["second"], ValidationFailed), results["second"]
    assert list(results["second"].errors) == ["slug"]
    assert list(Project.objects.filter(organization=organization).values_list("slug", "name", "timezone")) == [
        ("acme", "First", "Europe/Paris")
    ]
