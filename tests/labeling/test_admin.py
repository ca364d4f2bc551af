"""Rubrics, queues and memberships written in the Django admin go through the services, with
the API's validation: versions, sampling rules, backfills and audit events happen whichever
way a change is made."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from labeling import services
from labeling.models import LabelSchema, Queue, QueueItem
from reviewapp.models import AuditEvent, Membership
from tests.factories import ConversationFactory, MembershipFactory, UserFactory
from tests.labeling.factories import QUESTIONS, make_queue, make_schema


def _url(model: Any, action: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{action}", args=args)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # Every user here is made with a password; the production hasher costs most of the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


# --- rubrics ---------------------------------------------------------------------------------


def _schema_form(project: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "project": project.pk,
        "name": "Tone",
        "instructions": "Read the **whole** thread.",
        "questions": json.dumps(QUESTIONS[:1]),
        **overrides,
    }


def test_a_rubric_added_in_the_admin_gets_version_1_and_lists_in_the_api(staff_client, project, api_client_for):
    response = staff_client.post(_url(LabelSchema, "add"), _schema_form(project))

    assert response.status_code == 302
    schema = LabelSchema.objects.get(name="Tone")
    version = schema.latest_version
    assert (schema.organization_id, version.version, version.instructions) == (
        project.organization_id,
        1,
        "Read the **whole** thread.",
    )
    assert version.questions == [
        {
            "key": "quality",
            "type": "single_choice",
            "label": "Was the answer right?",
            "help": "",
            "required": True,
            "options": ["good", "bad"],
            "roles": [],
            "judge_criterion": "correctness",
            # How the question meets a judge's verdict (calibration): nothing declared.
            "judge_pass_labels": [],
            "passing_options": [],
        }
    ]
    listed = api_client_for("engineer").get("/api/v1/label-schemas")
    assert listed.status_code == 200
    assert [(s["name"], s["version"]) for s in listed.json()] == [("Tone", 1)]


def test_an_invalid_rubric_is_a_form_error_and_nothing_is_saved(staff_client, project):
    bad = [{"key": "Quality!", "type": "single_choice", "label": "?", "options": []}]

    response = staff_client.post(_url(LabelSchema, "add"), _schema_form(project, questions=json.dumps(bad)))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["questions"]
    assert any(e.startswith("questions[0].key:") for e in errors["questions"])
    assert LabelSchema.objects.count() == 0


def test_json_nested_too_deeply_is_a_form_error(staff_client, project):
    response = staff_client.post(_url(LabelSchema, "add"), _schema_form(project, questions="[" * 100_000))

    assert response.status_code == 200
    assert "questions" in response.context["adminform"].form.errors
    assert LabelSchema.objects.count() == 0


def test_editing_a_rubric_in_the_admin_adds_a_version(staff_client, project):
    schema = make_schema(project)
    data = {
        "name": "Support quality v2",
        "instructions": "New instructions.",
        "questions": json.dumps(QUESTIONS),
        "versions-TOTAL_FORMS": 1,
        "versions-INITIAL_FORMS": 1,
        "versions-MIN_NUM_FORMS": 0,
        "versions-MAX_NUM_FORMS": 1000,
    }

    response = staff_client.post(_url(LabelSchema, "change", schema.pk), data)

    assert response.status_code == 302
    schema.refresh_from_db()
    assert list(schema.versions.order_by("version").values_list("version", "instructions")) == [
        (1, "Judge the **final** answer."),
        (2, "New instructions."),
    ]
    assert (schema.name, schema.latest_version.version) == ("Support quality v2", 2)


def test_saving_a_rubric_unchanged_adds_no_version(staff_client, project):
    schema = make_schema(project)
    version = schema.latest_version
    data = {
        "name": schema.name,
        "instructions": version.instructions,
        "questions": json.dumps(version.questions),
        "versions-TOTAL_FORMS": 1,
        "versions-INITIAL_FORMS": 1,
        "versions-MIN_NUM_FORMS": 0,
        "versions-MAX_NUM_FORMS": 1000,
    }

    response = staff_client.post(_url(LabelSchema, "change", schema.pk), data)

    assert response.status_code == 302
    assert list(schema.versions.values_list("version", flat=True)) == [1]


# --- queues ----------------------------------------------------------------------------------


def _queue_form(project: Any, schema: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "project": project.pk,
        "schema": schema.pk,
        "name": "Thumbs down",
        "description": "",
        "annotations_per_item": 1,
        "max_extra_annotations": 0,
        "priority": 0,
        "lease_seconds": 600,
        "assignee_role": "annotator",
        "skip_policy": "others",
        "sampling": json.dumps([{"name": "down", "rate": 1, "if": {"feedback_rating": "down"}}]),
        "max_per_day": "",
        "backfill_days": 30,
        "gold_rate": 0,
        "is_active": "on",
        **overrides,
    }


def test_a_queue_added_in_the_admin_is_created_by_the_service_and_backfilled(
    staff_client, staff, project, django_capture_on_commit_callbacks
):
    schema = make_schema(project)
    down = ConversationFactory(project=project, feedback_rating="down")
    ConversationFactory(project=project, feedback_rating="up")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(_url(Queue, "add"), _queue_form(project, schema))

    assert response.status_code == 302
    queue = Queue.objects.get(name="Thumbs down")
    assert (queue.organization_id, queue.created_by_id, queue.sampling) == (
        project.organization_id,
        staff.pk,
        [{"name": "down", "rate": 1.0, "if": {"feedback_rating": "down"}}],
    )
    assert queue.backfill_done_at is not None
    assert list(QueueItem.objects.filter(queue=queue).values_list("conversation_id", "source")) == [
        (down.pk, "backfill")
    ]


@pytest.mark.parametrize(
    ("sampling", "message_start"),
    [
        ('{"rate": 1}', "Send a list of rules."),
        ('[{"rate": 2}]', "sampling[0].rate:"),
        ('[{"rate": 1, "if": {"colour": "red"}}]', "sampling[0].if.colour:"),
        ("[not json", "Enter a valid JSON."),
    ],
)
def test_invalid_sampling_rules_are_a_form_error_not_a_saved_queue(staff_client, project, sampling, message_start):
    schema = make_schema(project)

    response = staff_client.post(_url(Queue, "add"), _queue_form(project, schema, sampling=sampling))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["sampling"]
    assert errors["sampling"][0].startswith(message_start)
    assert Queue.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("annotations_per_item", 11), ("lease_seconds", 10), ("backfill_days", 366), ("gold_rate", 1.5)],
)
def test_queue_settings_have_the_apis_bounds(staff_client, project, field, value):
    schema = make_schema(project)

    response = staff_client.post(_url(Queue, "add"), _queue_form(project, schema, **{field: value}))

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert Queue.objects.count() == 0


def test_a_queue_rubric_must_belong_to_the_queues_project(staff_client, project, org):
    from tests.factories import ProjectFactory

    sibling = ProjectFactory(organization=org, slug="sales")
    schema = make_schema(sibling)

    response = staff_client.post(_url(Queue, "add"), _queue_form(project, schema))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"schema": ["Choose a rubric of the queue's project."]}
    assert Queue.objects.count() == 0


def _queue_change_form(queue: Queue, **overrides: Any) -> dict[str, Any]:
    data = _queue_form(queue.project, queue.schema, name=queue.name, sampling=json.dumps(queue.sampling))
    data.pop("project")
    data.pop("schema")
    data["assignees"] = [u.pk for u in queue.assignees.all()]
    return {**data, **overrides}


def test_changing_sampling_in_the_admin_goes_through_the_service_and_backfills_again(
    staff_client, project, django_capture_on_commit_callbacks
):
    queue = make_queue(project)
    up = ConversationFactory(project=project, feedback_rating="up")
    rules = [{"name": "up", "rate": 1, "if": {"feedback_rating": "up"}}]

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            _url(Queue, "change", queue.pk), _queue_change_form(queue, sampling=json.dumps(rules))
        )

    assert response.status_code == 302
    queue.refresh_from_db()
    assert queue.sampling == [{"name": "up", "rate": 1.0, "if": {"feedback_rating": "up"}}]
    assert list(QueueItem.objects.filter(queue=queue).values_list("conversation_id", flat=True)) == [up.pk]


def test_invalid_sampling_on_change_leaves_the_queue_as_it_was(staff_client, project):
    queue = make_queue(project, sampling=({"rate": 0.5},))

    response = staff_client.post(_url(Queue, "change", queue.pk), _queue_change_form(queue, sampling='[{"rate": -1}]'))

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["sampling"]
    queue.refresh_from_db()
    assert queue.sampling == [{"rate": 0.5}]


def test_changing_settings_in_the_admin_keeps_the_backfill(staff_client, project, member):
    annotator = member("annotator", username="ann")
    queue = make_queue(project, sampling=({"rate": 0.5},))
    done_at = queue.backfill_done_at

    response = staff_client.post(
        _url(Queue, "change", queue.pk), _queue_change_form(queue, name="Renamed", priority=5, assignees=[annotator.pk])
    )

    assert response.status_code == 302
    queue.refresh_from_db()
    assert (queue.name, queue.priority, queue.backfill_done_at) == ("Renamed", 5, done_at)
    assert [u.username for u in queue.assignees.all()] == ["ann"]


def test_a_superuser_cannot_name_another_organizations_people_as_assignees(root_client, project, other_org):
    outsider = MembershipFactory(organization=other_org, role="annotator", user=UserFactory(username="outsider")).user
    queue = make_queue(project)

    response = root_client.post(_url(Queue, "change", queue.pk), _queue_change_form(queue, assignees=[outsider.pk]))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"assignees": ["Not in this organization: outsider."]}
    assert list(queue.assignees.all()) == []


def test_a_superuser_cannot_give_a_queue_another_organizations_rubric(root_client, project, other_project):
    foreign = make_schema(other_project, name="Globex rubric")

    response = root_client.post(_url(Queue, "add"), _queue_form(project, foreign))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"schema": ["Belongs to another organization."]}
    assert Queue.objects.count() == 0


def test_the_service_refuses_assignees_from_outside_the_organization(project, other_org):
    outsider = MembershipFactory(organization=other_org, role="annotator").user
    schema = make_schema(project)

    from reviewapp.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as raised:
        services.queue_create(
            project=project, spec=services.QueueSpec(name="q", schema=schema, assignee_ids=(outsider.pk,)), user=None
        )

    assert raised.value.errors == {"assignees": ["Assignees must be members of the queue's organization."]}
    assert Queue.objects.count() == 0


# --- memberships -----------------------------------------------------------------------------


def test_a_role_change_in_the_admin_is_audited(staff_client, staff, org, member):
    user = member("annotator", username="ann")
    membership = Membership.objects.get(user=user, organization=org)

    response = staff_client.post(_url(Membership, "change", membership.pk), {"role": "engineer"})

    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "engineer"
    event = AuditEvent.objects.get(kind="membership.set")
    assert (event.organization_id, event.actor_user_id, event.subject_id, event.data) == (
        org.pk,
        staff.pk,
        str(membership.pk),
        {"username": "ann", "role": "engineer", "previous_role": "annotator"},
    )


def test_removing_a_member_in_the_admin_is_audited(staff_client, staff, org, member):
    user = member("annotator", username="ann")
    membership = Membership.objects.get(user=user, organization=org)

    response = staff_client.post(_url(Membership, "delete", membership.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    event = AuditEvent.objects.get(kind="membership.removed")
    assert (event.organization_id, event.actor_user_id, event.data) == (
        org.pk,
        staff.pk,
        {"username": "ann", "user_id": user.pk, "role": "annotator", "tokens_revoked": 0},
    )


def test_adding_a_member_in_the_admin_goes_through_the_service(root_client, org):
    user = UserFactory(username="newcomer")

    response = root_client.post(_url(Membership, "add"), {"user": user.pk, "organization": org.pk, "role": "annotator"})

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(Membership.objects.filter(user=user).values_list("organization_id", "role")) == [(org.pk, "annotator")]
    assert list(AuditEvent.objects.values_list("kind", "data")) == [
        ("membership.set", {"username": "newcomer", "role": "annotator"})
    ]
