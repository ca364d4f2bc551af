"""The Django admin: every core model's pages load for a superuser; a staff organization admin
sees and edits only their own organization's rows."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from reviewapp import services
from reviewapp.models import AuditEvent, Conversation, JudgeScore, Membership, Project
from tests.factories import ConversationFactory, JudgeScoreFactory, MembershipFactory, UserFactory

CORE_MODELS = [model for model in admin.site._registry if model._meta.app_label in {"reviewapp", "auth"}]


def _url(model, action: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{action}", args=args)


@pytest.fixture
def populated(project, other_project):
    """One row of every core model in each organization."""
    rows = {}
    for p in (project, other_project):
        conversation = ConversationFactory(project=p, external_id=f"{p.slug}-conv")
        JudgeScoreFactory(conversation=conversation)
        user = MembershipFactory(organization=p.organization, role="engineer").user
        services.personal_token_create(user=user, organization=p.organization)
        services.api_key_create(project=p, name=f"{p.slug}-key")
        rows[p.organization.slug] = conversation
    Group.objects.create(name="reviewers")
    return rows


@pytest.fixture
def superuser_client(db) -> Client:
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def org_admin_client(org, member) -> Client:
    """Staff, admin of acme only, with the model permissions the admin site requires."""
    user = member("admin", username="acme-admin")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    codenames = [
        f"{action}_{model}"
        for model in ["conversation", "judgescore", "project", "membership", "apikey", "auditevent", "organization"]
        for action in ["view", "change", "add"]
    ]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", CORE_MODELS, ids=lambda m: m._meta.label)
def test_every_core_changelist_loads_for_a_superuser(superuser_client, populated, model):
    response = superuser_client.get(_url(model, "changelist"))

    assert response.status_code == 200


@pytest.mark.parametrize("model", CORE_MODELS, ids=lambda m: m._meta.label)
def test_every_core_change_page_loads_for_a_superuser(superuser_client, populated, model):
    obj = model._default_manager.order_by("pk").first()

    response = superuser_client.get(_url(model, "change", obj.pk))

    assert response.status_code == 200


@pytest.mark.parametrize("model", CORE_MODELS, ids=lambda m: m._meta.label)
def test_every_core_add_page_loads_or_is_refused_for_a_superuser(superuser_client, db, model):
    response = superuser_client.get(_url(model, "add"))

    # Keys, tokens and audit events are never created in the admin (the raw key is shown once),
    # nor conversations and judge scores (ingestion writes them and hands them to sampling).
    never_added = {"apikey", "personaltoken", "auditevent", "conversation", "judgescore"}
    expected = 403 if model._meta.model_name in never_added else 200
    assert response.status_code == expected


def test_conversation_search_and_filters_load(superuser_client, populated):
    response = superuser_client.get(_url(Conversation, "changelist") + "?q=support-conv&feedback_rating__exact=up")

    assert response.status_code == 200


def test_the_audit_trail_cannot_be_edited_or_deleted_even_by_a_superuser(superuser_client, populated):
    event = AuditEvent.objects.first()

    response = superuser_client.post(_url(AuditEvent, "delete", event.pk), {"post": "yes"})

    assert response.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_a_staff_org_admin_sees_only_their_organizations_conversations(org_admin_client, populated):
    response = org_admin_client.get(_url(Conversation, "changelist"))

    assert response.status_code == 200
    assert [c.external_id for c in response.context["cl"].result_list] == ["support-conv"]


def test_a_staff_org_admin_sees_only_their_organizations_rows_of_every_model(org_admin_client, populated, org):
    for model in [Project, Membership, JudgeScore, AuditEvent]:
        response = org_admin_client.get(_url(model, "changelist"))
        assert response.status_code == 200
        rows = list(response.context["cl"].result_list)
        assert rows, model
        for row in rows:
            organization_id = row.conversation.organization_id if model is JudgeScore else row.organization_id
            assert organization_id == org.pk, model


def test_a_staff_org_admin_cannot_open_another_organizations_conversation(org_admin_client, populated):
    foreign = populated["globex"]

    response = org_admin_client.get(_url(Conversation, "change", foreign.pk))

    # The admin treats rows outside the queryset as missing.
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def _project_form(project: Project, **overrides: object) -> dict:
    return {
        "organization": project.organization_id,
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "timezone": project.timezone,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        **overrides,
    }


INVALID_CHOICE = ["Select a valid choice. That choice is not one of the available choices."]


def test_a_staff_org_admin_edits_their_own_project(org_admin_client, populated):
    own = Project.objects.get(slug="support")

    response = org_admin_client.post(_url(Project, "change", own.pk), _project_form(own, name="Renamed"))

    assert response.status_code == 302
    own.refresh_from_db()
    assert own.name == "Renamed"


def test_the_admin_refuses_a_project_time_zone_zoneinfo_does_not_know(org_admin_client, populated):
    own = Project.objects.get(slug="support")

    response = org_admin_client.post(_url(Project, "change", own.pk), _project_form(own, timezone="Mars/Olympus"))

    assert response.status_code == 200
    assert "Unknown time zone" in response.context["adminform"].form.errors["timezone"][0]
    own.refresh_from_db()
    assert own.timezone == "UTC"


def test_a_staff_org_admin_cannot_move_a_project_into_another_organization(org_admin_client, populated, other_org):
    own = Project.objects.get(slug="support")

    response = org_admin_client.post(
        _url(Project, "change", own.pk), _project_form(own, organization=other_org.pk, name="Renamed")
    )

    # The organization (and slug) are read-only once the project exists: the posted one is ignored.
    assert response.status_code == 302
    own.refresh_from_db()
    assert (own.organization.slug, own.slug, own.name) == ("acme", "support", "Renamed")


def test_adding_a_project_in_the_admin_goes_through_the_service(org_admin_client, populated, org):
    response = org_admin_client.post(
        _url(Project, "add"),
        {
            "organization": org.pk,
            "slug": "refunds",
            "name": "Refunds",
            "description": "",
            "timezone": "Europe/Paris",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
        },
    )

    assert response.status_code == 302
    project = Project.objects.get(organization=org, slug="refunds")
    assert (project.name, project.timezone) == ("Refunds", "Europe/Paris")


def test_a_time_zone_change_in_the_admin_is_audited(org_admin_client, populated):
    own = Project.objects.get(slug="support")

    response = org_admin_client.post(_url(Project, "change", own.pk), _project_form(own, timezone="Asia/Tokyo"))

    assert response.status_code == 302
    own.refresh_from_db()
    assert own.timezone == "Asia/Tokyo"
    event = AuditEvent.objects.get(kind="project.timezone_set")
    assert event.data == {"from": "UTC", "to": "Asia/Tokyo"}


def test_a_staff_org_admin_cannot_grant_themselves_a_role_in_another_organization(
    org_admin_client, populated, other_org
):
    user = Membership.objects.get(user__username="acme-admin").user
    form = {"user": user.pk, "role": "admin", "created_at_0": "2026-01-01", "created_at_1": "00:00:00"}

    response = org_admin_client.post(_url(Membership, "add"), {**form, "organization": other_org.pk})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"organization": INVALID_CHOICE}
    assert list(Membership.objects.filter(user=user).values_list("organization__slug", flat=True)) == ["acme"]


def test_a_staff_org_admin_only_offers_their_own_organization(org_admin_client, populated):
    response = org_admin_client.get(_url(Project, "add"))

    choices = response.context["adminform"].form.fields["organization"].queryset
    assert [o.slug for o in choices] == ["acme"]


def test_a_staff_user_who_is_not_an_org_admin_sees_no_rows(populated, member, org):
    user = member("engineer", username="staff-engineer")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.set(Permission.objects.filter(codename="view_conversation"))
    client = Client()
    client.force_login(user)

    response = client.get(_url(Conversation, "changelist"))

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
