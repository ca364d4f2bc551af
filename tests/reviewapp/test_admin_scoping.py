"""Every ModelAdmin, driven as a staff admin of one organization (acme) while another
organization (globex) has a row of every model: nothing of globex may show or be written.

The tests walk `admin.site._registry`, so a model registered later is covered without
being named here."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import checks
from django.db import models
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from escalations import services as escalation_services
from escalations.models import Action, LadderVersion, PolicyVersion
from evaluation.models import (
    CalibrationBar,
    CalibrationPair,
    CalibrationStatus,
    Dataset,
    DatasetItem,
    DatasetVersion,
    DatasetVersionItem,
)
from labeling import services as labeling_services
from labeling.models import (
    Assignment,
    ItemComment,
    ItemEvent,
    Label,
    LabelSchema,
    Queue,
    QueueItem,
    SamplingCounter,
)
from reviewapp import services
from reviewapp.admin_scoping import (
    OrganizationScopedAdmin,
    SuperuserOnlyAdmin,
    check_admin_scoping,
    organization_path,
    unscoped_admin_problems,
)
from reviewapp.models import (
    ApiKey,
    AuditEvent,
    Conversation,
    Feedback,
    JudgeScore,
    Membership,
    Organization,
    PersonalToken,
    Project,
)
from tests.evaluation.factories_datasets import make_frozen_dataset
from tests.factories import ConversationFactory, JudgeScoreFactory, MembershipFactory, UserFactory
from tests.labeling.factories import make_queue, make_schema

User = get_user_model()
REGISTRY = list(admin.site._registry.items())
SCOPED = [(model, model_admin) for model, model_admin in REGISTRY if isinstance(model_admin, OrganizationScopedAdmin)]
SUPERUSER_ONLY = [model for model, model_admin in REGISTRY if isinstance(model_admin, SuperuserOnlyAdmin)]


def _ids(value: Any) -> str:
    return value._meta.label


SCOPED_PARAMS = [pytest.param(model, model_admin, id=model._meta.label) for model, model_admin in SCOPED]


def _url(model: type[models.Model], action: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{action}", args=args)


def _tenant(organization: Organization, prefix: str) -> dict[type[models.Model], models.Model]:
    """One row of every registered tenant model in `organization`, names starting `prefix`."""
    project = Project.objects.create(organization=organization, slug=f"{prefix}-proj", name=f"{prefix} project")
    annotator = MembershipFactory(
        organization=organization, role="annotator", user=UserFactory(username=f"{prefix}-annotator")
    ).user
    conversation = ConversationFactory(project=project, external_id=f"{prefix}-conv")
    score = JudgeScoreFactory(conversation=conversation, judge=f"{prefix}-judge", criterion=f"{prefix}-criterion")
    Feedback.objects.create(conversation=conversation, comment=f"{prefix} feedback", fingerprint=f"{prefix}-fp")
    services.api_key_create(project=project, name=f"{prefix}-key")
    services.personal_token_create(user=annotator, organization=organization, name=f"{prefix}-token")
    schema = make_schema(project, name=f"{prefix} rubric")
    queue = make_queue(project, schema, name=f"{prefix} queue", assignee_ids=(annotator.pk,))
    labeling_services.queue_items_add(queue=queue, conversation_ids=[conversation.pk], user=None)
    item = QueueItem.objects.get(queue=queue)
    labeling_services.item_claim(queue=queue, user=annotator)
    labeling_services.item_comment_add(item=item, user=annotator, body=f"{prefix} comment")
    labeling_services.label_submit(item=item, user=annotator, answers={"quality": "good"})
    SamplingCounter.objects.create(queue=queue, key=f"{prefix}-rule", day=dt.date(2026, 1, 1), candidates=3, admitted=1)
    escalation_services.ladder_version_create(
        principal=None,
        project=project,
        data={"name": f"{prefix}-ladder", "tiers": [{"role": "approver", "timeout_seconds": 600}]},
    )
    escalation_services.policy_version_create(
        principal=None, project=project, data={"rules": [{"then": "escalate", "ladder": f"{prefix}-ladder"}]}
    )
    action, _ = escalation_services.action_request(
        principal=None,
        project=project,
        data={
            "external_id": f"{prefix}-action",
            "action": "refund",
            "conversation_external_id": conversation.external_id,
        },
    )
    pair = CalibrationPair.objects.create(
        organization=organization,
        project=project,
        conversation=conversation,
        queue_item=item,
        judge=f"{prefix}-judge",
        criterion=f"{prefix}-criterion",
        judge_pass=True,
        human_pass=True,
        labeled_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    bar = CalibrationBar.objects.create(organization=organization, project=project)
    status = CalibrationStatus.objects.create(
        organization=organization,
        project=project,
        judge=f"{prefix}-judge",
        criterion=f"{prefix}-criterion",
        status="ok",
    )
    dataset = make_frozen_dataset(project, ConversationFactory(project=project), name=f"{prefix} golden")
    version = dataset.versions.get()
    return {
        Organization: organization,
        Project: project,
        User: annotator,
        Membership: Membership.objects.get(organization=organization, user=annotator),
        ApiKey: ApiKey.objects.get(project=project),
        PersonalToken: PersonalToken.objects.get(user=annotator),
        Conversation: conversation,
        JudgeScore: score,
        AuditEvent: AuditEvent.objects.filter(organization=organization).first(),
        LabelSchema: schema,
        Queue: queue,
        QueueItem: item,
        Assignment: Assignment.objects.get(item=item),
        Label: Label.objects.get(item=item),
        ItemEvent: ItemEvent.objects.filter(item=item).first(),
        ItemComment: ItemComment.objects.get(item=item),
        SamplingCounter: SamplingCounter.objects.get(queue=queue),
        Feedback: Feedback.objects.get(conversation=conversation),
        Action: action,
        PolicyVersion: PolicyVersion.objects.get(project=project),
        LadderVersion: LadderVersion.objects.get(project=project, name=f"{prefix}-ladder"),
        CalibrationPair: pair,
        CalibrationBar: bar,
        CalibrationStatus: status,
        Dataset: dataset,
        DatasetItem: dataset.items.get(),
        DatasetVersion: version,
        DatasetVersionItem: version.items.get(),
    }


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # Every user here is made with a password; the production hasher costs most of the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tenants(org, other_org) -> dict[str, dict[type[models.Model], models.Model]]:
    Group.objects.create(name="globex-group")
    return {"own": _tenant(org, "acme"), "foreign": _tenant(other_org, "globex")}


def _foreign_pks(tenants: dict, model: type[models.Model]) -> set[Any]:
    obj = tenants["foreign"].get(model)
    return {obj.pk} if obj is not None else set()


def _choice_fields(form: forms.Form) -> dict[str, forms.ModelChoiceField]:
    return {name: f for name, f in form.fields.items() if isinstance(f, forms.ModelChoiceField)}


def _forms_of(response: Any) -> list[forms.Form]:
    found = [response.context["adminform"].form]
    for inline in response.context.get("inline_admin_formsets", []):
        found.extend(inline.formset.forms)
        found.append(inline.formset.empty_form)
    return found


# --- the registry ------------------------------------------------------------------------------


def test_every_registered_admin_is_scoped_or_superuser_only():
    assert unscoped_admin_problems(admin.site) == []
    assert {m._meta.label for m in SUPERUSER_ONLY} == {"auth.User", "auth.Group"}


def test_the_system_check_refuses_an_admin_registered_without_scoping():
    site = admin.AdminSite(name="probe")
    site.register(Project, admin.ModelAdmin)
    site.register(Organization, OrganizationScopedAdmin)

    assert unscoped_admin_problems(site) == ["reviewapp.Project: ModelAdmin is not an OrganizationScopedAdmin"]
    assert check_admin_scoping() == []


def test_the_system_check_reports_a_problem_as_an_error(monkeypatch):
    site = admin.AdminSite(name="probe")
    site.register(Project, admin.ModelAdmin)
    monkeypatch.setattr(admin, "site", site)

    errors = check_admin_scoping()

    assert [(e.level, e.id) for e in errors] == [(checks.ERROR, "reviewapp.E001")]


def test_organization_paths_are_derived_from_foreign_keys():
    paths = {model._meta.label: organization_path(model) for model, _ in SCOPED}

    assert paths == {
        "reviewapp.Organization": "pk",
        "reviewapp.Project": "organization",
        "reviewapp.Membership": "organization",
        "reviewapp.ApiKey": "organization",
        "reviewapp.PersonalToken": "organization",
        "reviewapp.Conversation": "organization",
        "reviewapp.JudgeScore": "conversation__organization",
        "reviewapp.AuditEvent": "organization",
        "labeling.LabelSchema": "organization",
        "labeling.Queue": "organization",
        "labeling.QueueItem": "organization",
        "labeling.Assignment": "organization",
        "labeling.Label": "organization",
        "labeling.ItemEvent": "organization",
        "labeling.ItemComment": "item__organization",
        "labeling.SamplingCounter": "queue__organization",
        "escalations.Action": "organization",
        "escalations.PolicyVersion": "organization",
        "escalations.LadderVersion": "organization",
        "evaluation.CalibrationPair": "organization",
        "evaluation.CalibrationBar": "organization",
        "evaluation.CalibrationStatus": "organization",
        "evaluation.Dataset": "organization",
        "evaluation.DatasetItem": "organization",
        "evaluation.DatasetVersion": "organization",
        "evaluation.DatasetVersionItem": "version__organization",
    }


def test_the_fixture_has_a_foreign_row_for_every_registered_model(tenants):
    missing = [model._meta.label for model, _ in REGISTRY if model not in tenants["foreign"] and model is not Group]

    assert missing == []


# --- every scoped admin as acme's staff admin -----------------------------------------------


@pytest.mark.parametrize(("model", "model_admin"), SCOPED_PARAMS)
def test_the_changelist_shows_no_foreign_rows_or_filter_choices(staff_client, tenants, model, model_admin):
    response = staff_client.get(_url(model, "changelist"))

    assert response.status_code == 200
    rows = {row.pk for row in response.context["cl"].result_list}
    assert tenants["own"][model].pk in rows
    assert rows.isdisjoint(_foreign_pks(tenants, model))
    for spec in response.context["cl"].filter_specs:
        related = getattr(getattr(spec, "field", None), "related_model", None)
        if related is not None:
            offered = {pk for pk, _ in spec.lookup_choices}
            assert offered.isdisjoint(_foreign_pks(tenants, related)), (spec.title, offered)
    assert "globex" not in response.content.decode().lower()


@pytest.mark.parametrize(("model", "model_admin"), SCOPED_PARAMS)
def test_the_change_page_of_an_own_row_offers_no_foreign_choices(staff_client, tenants, model, model_admin):
    response = staff_client.get(_url(model, "change", tenants["own"][model].pk))

    assert response.status_code == 200
    for form in _forms_of(response):
        for name, field in _choice_fields(form).items():
            foreign = _foreign_pks(tenants, field.queryset.model)
            assert not field.queryset.filter(pk__in=foreign).exists(), (form.prefix, name)
    assert "globex" not in response.content.decode().lower()


@pytest.mark.parametrize(("model", "model_admin"), SCOPED_PARAMS)
def test_the_add_page_offers_no_foreign_choices(staff_client, tenants, model, model_admin):
    response = staff_client.get(_url(model, "add"))

    if response.status_code == 403:
        return  # this admin adds nothing (credentials, history, rows the services write)
    assert response.status_code == 200
    form = response.context["adminform"].form
    for name, field in _choice_fields(form).items():
        foreign = _foreign_pks(tenants, field.queryset.model)
        assert not field.queryset.filter(pk__in=foreign).exists(), name
    assert "globex" not in response.content.decode().lower()


@pytest.mark.parametrize("action", ["change", "delete", "history"])
@pytest.mark.parametrize(("model", "model_admin"), SCOPED_PARAMS)
def test_a_foreign_row_is_missing(staff_client, tenants, model, model_admin, action):
    foreign = tenants["foreign"][model]
    before = model._default_manager.count()

    get = staff_client.get(_url(model, action, foreign.pk))
    post = staff_client.post(_url(model, action, foreign.pk), {"post": "yes"})

    for response in (get, post):
        # A row outside the queryset is "missing" (a redirect to the index); an admin that
        # cannot delete at all refuses first.
        if response.status_code == 302:
            assert response["Location"] == reverse("admin:index")
        else:
            assert response.status_code in (403, 404)
    assert model._default_manager.count() == before
    assert model._default_manager.filter(pk=foreign.pk).exists()


def _post_data(response: Any) -> dict[str, Any]:
    """What the browser would send back for the page's forms, unchanged."""
    data: dict[str, Any] = {}
    for form in [response.context["adminform"].form]:
        _form_data(form, data)
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        management = formset.management_form
        for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"):
            data[f"{formset.prefix}-{name}"] = management.initial.get(name, management[name].value())
        data[f"{formset.prefix}-TOTAL_FORMS"] = len(formset.initial_forms)
        for form in formset.initial_forms:
            _form_data(form, data)
    return data


def _form_data(form: forms.Form, data: dict[str, Any]) -> None:
    for bound in form:
        field, widget, value = bound.field, bound.field.widget, bound.value()
        if isinstance(widget, RelatedFieldWidgetWrapper):
            widget = widget.widget
        if isinstance(field, forms.ModelMultipleChoiceField):
            data[bound.html_name] = [getattr(v, "pk", v) for v in value or []]
        elif isinstance(widget, forms.MultiWidget):
            parts = value if isinstance(value, list) else widget.decompress(value)
            for index, (part, sub) in enumerate(zip(parts, widget.widgets, strict=True)):
                data[f"{bound.html_name}_{index}"] = sub.format_value(part) or ""
        elif isinstance(field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else getattr(value, "pk", value)


def _stored(obj: models.Model) -> dict[str, Any]:
    fresh = type(obj)._default_manager.get(pk=obj.pk)
    values = model_to_dict(fresh)
    for field in fresh._meta.many_to_many:
        values[field.name] = sorted(getattr(v, "pk", v) for v in values[field.name])
    return values


@pytest.mark.parametrize(("model", "model_admin"), SCOPED_PARAMS)
def test_a_save_that_points_at_foreign_rows_is_refused(staff_client, tenants, model, model_admin):
    own = tenants["own"][model]
    page = staff_client.get(_url(model, "change", own.pk))
    form = page.context["adminform"].form
    fields = {name: f for name, f in _choice_fields(form).items() if _foreign_pks(tenants, f.queryset.model)}
    if not page.context["has_change_permission"]:
        assert staff_client.post(_url(model, "change", own.pk), _post_data(page)).status_code == 403
        return
    baseline = _post_data(page)

    # The page's own data saves: the data below differs from it in one field only.
    saved = staff_client.post(_url(model, "change", own.pk), baseline)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    before = _stored(own)
    for name, field in fields.items():
        foreign = tenants["foreign"][field.queryset.model].pk
        data = {**baseline, name: [foreign] if isinstance(field, forms.ModelMultipleChoiceField) else foreign}

        response = staff_client.post(_url(model, "change", own.pk), data)

        assert response.status_code == 200, name
        assert name in response.context["adminform"].form.errors, name
        assert _stored(own) == before, name
        assert "globex" not in response.content.decode().lower(), name


@pytest.mark.parametrize(("model", "model_admin"), SCOPED_PARAMS)
def test_an_add_that_points_at_foreign_rows_is_refused(staff_client, tenants, model, model_admin):
    page = staff_client.get(_url(model, "add"))
    if page.status_code == 403:
        return
    own = tenants["own"][model]
    form = page.context["adminform"].form
    baseline = _post_data(page)
    for name in form.fields:
        value = getattr(own, name, None)
        if isinstance(value, models.Model):
            baseline[name] = value.pk
    before = model._default_manager.count()
    fields = {name: f for name, f in _choice_fields(form).items() if _foreign_pks(tenants, f.queryset.model)}
    assert fields, "an add form with no related field would test nothing here"
    for name, field in fields.items():
        foreign = tenants["foreign"][field.queryset.model].pk
        data = {**baseline, name: [foreign] if isinstance(field, forms.ModelMultipleChoiceField) else foreign}

        response = staff_client.post(_url(model, "add"), data)

        assert response.status_code == 200, name
        assert name in response.context["adminform"].form.errors, name
        assert model._default_manager.count() == before, name


# --- people ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", SUPERUSER_ONLY, ids=_ids)
def test_superuser_only_admins_refuse_staff_even_with_every_permission(staff_client, tenants, staff, model):
    own = tenants["own"].get(model) or Group.objects.get()

    for url in (_url(model, "changelist"), _url(model, "add"), _url(model, "change", own.pk)):
        assert staff_client.get(url).status_code == 403, url
    response = staff_client.post(_url(model, "change", own.pk), {"username": "renamed", "is_superuser": "on"})
    assert response.status_code == 403
    staff.refresh_from_db()
    assert (staff.is_superuser, own.__class__._default_manager.filter(pk=own.pk).exists()) == (False, True)


def test_the_admin_index_lists_no_people_for_staff(staff_client, tenants):
    response = staff_client.get(reverse("admin:index"))

    labels = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert "User" not in labels
    assert "Group" not in labels
    assert "Queue" in labels


def test_user_choices_are_members_of_the_admins_organizations(staff_client, tenants, staff):
    response = staff_client.get(_url(Queue, "change", tenants["own"][Queue].pk))

    offered = set(response.context["adminform"].form.fields["assignees"].queryset.values_list("username", flat=True))
    assert offered == {"acme-annotator", "acme-staff"}


def test_a_superuser_still_sees_every_organization(tenants):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)

    response = client.get(_url(Project, "changelist"))

    assert {p.slug for p in response.context["cl"].result_list} == {"acme-proj", "globex-proj"}


def test_a_typed_raw_id_of_a_foreign_user_is_refused_without_echoing_it(staff_client, tenants):
    foreign_user = tenants["foreign"][User]
    memberships = Membership.objects.count()

    response = staff_client.post(
        _url(Membership, "add"),
        {"user": foreign_user.pk, "organization": tenants["own"][Organization].pk, "role": "annotator"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "user": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert foreign_user.username not in response.content.decode()
    assert Membership.objects.count() == memberships
