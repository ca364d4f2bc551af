"""/api/v1/label-schemas: rubrics are created, listed, read and edited into new versions."""

from __future__ import annotations

import pytest

from labeling.models import Label, LabelSchema, LabelSchemaVersion
from tests.labeling.factories import QUESTIONS, add_items, make_queue, make_schema

RUBRIC = {
    "project": "support",
    "name": "Support quality",
    "instructions": "Judge the **final** answer.",
    "questions": [
        {
            "key": "quality",
            "type": "single_choice",
            "label": "Was the answer right?",
            "options": ["good", "bad"],
            "required": True,
            "judge_criterion": "correctness",
        },
        {"key": "stars", "type": "rating", "label": "How helpful?", "min": 1, "max": 5, "required": False},
        {"key": "bad_turn", "type": "turn", "label": "Which turn went wrong?", "required": False},
    ],
}

STORED_QUESTIONS = [
    {
        "key": "quality",
        "type": "single_choice",
        "label": "Was the answer right?",
        "help": "",
        "required": True,
        "options": ["good", "bad"],
        "roles": [],
        "judge_criterion": "correctness",
    },
    {
        "key": "stars",
        "type": "rating",
        "label": "How helpful?",
        "help": "",
        "required": False,
        "options": [],
        "min": 1,
        "max": 5,
        "roles": [],
        "judge_criterion": None,
    },
    {
        "key": "bad_turn",
        "type": "turn",
        "label": "Which turn went wrong?",
        "help": "",
        "required": False,
        "options": [],
        "roles": ["assistant"],
        "judge_criterion": None,
    },
]


@pytest.fixture
def engineer(api_client_for):
    return api_client_for("engineer")


def test_engineer_creates_a_rubric_and_reads_it_back(engineer, project):
    created = engineer.post("/api/v1/label-schemas", RUBRIC, format="json")

    assert created.status_code == 201
    body = created.json()
    schema = LabelSchema.objects.get()
    assert body == {
        "id": schema.pk,
        "name": "Support quality",
        "project": "support",
        "version": 1,
        "version_id": schema.latest_version_id,
        "instructions": "Judge the **final** answer.",
        "questions": STORED_QUESTIONS,
        "created_at": body["created_at"],
    }
    assert engineer.get("/api/v1/label-schemas").json() == [body]
    detail = engineer.get(f"/api/v1/label-schemas/{schema.pk}").json()
    assert detail["schema"] == body
    assert [(v["version"], v["questions"]) for v in detail["versions"]] == [(1, STORED_QUESTIONS)]


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (
            {"questions": [{"key": "quality", "type": "single_choice", "label": "Right?"}]},
            {"questions[0].options": ["choice questions need at least two options"]},
        ),
        (
            {"questions": [QUESTIONS[0], {"key": "stars", "type": "rating", "label": "Stars", "min": 1}]},
            {"questions[1].max": ["rating questions need min and max"]},
        ),
        (
            {"questions": [QUESTIONS[0], QUESTIONS[0]]},
            {"questions": ["question keys must be unique; repeated: quality"]},
        ),
        (
            {"name": "", "questions": []},
            {
                "name": ["String should have at least 1 character"],
                "questions": ["List should have at least 1 item after validation, not 0"],
            },
        ),
        ({"colour": "red"}, {"colour": ["Extra inputs are not permitted"]}),
    ],
)
def test_an_invalid_rubric_is_400_naming_the_field_and_nothing_is_stored(engineer, project, change, errors):
    response = engineer.post("/api/v1/label-schemas", {**RUBRIC, **change}, format="json")

    assert response.status_code == 400
    assert response.json() == {"message": "Invalid rubric.", "errors": errors}
    assert LabelSchema.objects.count() == 0


def test_a_personal_token_must_name_a_project_of_its_own_organization(engineer, project, other_project):
    missing = engineer.post("/api/v1/label-schemas", {k: v for k, v in RUBRIC.items() if k != "project"}, format="json")
    foreign = engineer.post("/api/v1/label-schemas", {**RUBRIC, "project": "shop"}, format="json")

    assert (missing.status_code, missing.json()["errors"]) == (
        400,
        {"project": ["This field is required with a personal token."]},
    )
    assert (foreign.status_code, foreign.json()["errors"]) == (
        400,
        {"project": ["No project 'shop' in this organization."]},
    )
    assert LabelSchema.objects.count() == 0


def test_editing_a_rubric_adds_a_version_and_labels_keep_the_version_they_were_made_with(
    engineer, api_client_for, project
):
    schema = make_schema(project)
    queue = make_queue(project, schema, annotations_per_item=2)
    [item] = add_items(queue, 1)
    first, second = api_client_for("annotator"), api_client_for("annotator")
    assert first.post(f"/api/v1/queues/{queue.pk}/claim").json()["schema"]["version"] == 1
    first.post(f"/api/v1/items/{item.pk}/labels", {"answers": {"quality": "good"}}, format="json")

    edited = engineer.post(
        f"/api/v1/label-schemas/{schema.pk}/versions",
        {
            "name": "Support quality v2",
            "questions": [*QUESTIONS, {"key": "polite", "type": "boolean", "label": "Polite?"}],
        },
        format="json",
    )

    assert edited.status_code == 201
    v2 = LabelSchemaVersion.objects.get(schema=schema, version=2)
    assert (edited.json()["version"], edited.json()["version_id"], edited.json()["name"]) == (
        2,
        v2.pk,
        "Support quality v2",
    )
    assert [v["version"] for v in engineer.get(f"/api/v1/label-schemas/{schema.pk}").json()["versions"]] == [1, 2]
    claim = second.post(f"/api/v1/queues/{queue.pk}/claim").json()
    assert (claim["schema"]["version"], claim["schema"]["version_id"]) == (2, v2.pk)
    missing_new_question = second.post(
        f"/api/v1/items/{item.pk}/labels", {"answers": {"quality": "good"}}, format="json"
    )
    assert missing_new_question.json()["errors"] == {"answers.polite": ["This question is required."]}
    second.post(f"/api/v1/items/{item.pk}/labels", {"answers": {"quality": "good", "polite": True}}, format="json")
    assert dict(Label.objects.values_list("user__username", "schema_version__version")) == {
        first.user.username: 1,
        second.user.username: 2,
    }
    labels = engineer.get(f"/api/v1/items/{item.pk}").json()["labels"]
    assert [(lab["user"], lab["schema_version"]) for lab in labels] == [
        (first.user.username, 1),
        (second.user.username, 2),
    ]


def test_an_invalid_edit_is_400_and_leaves_the_rubric_as_it_was(engineer, project):
    schema = make_schema(project)

    response = engineer.post(
        f"/api/v1/label-schemas/{schema.pk}/versions",
        {"name": "Renamed", "questions": [{"key": "q", "type": "rating", "label": "Q", "min": 3, "max": 1}]},
        format="json",
    )

    assert (response.status_code, response.json()["errors"]) == (400, {"questions[0].max": ["min must be below max"]})
    schema.refresh_from_db()
    assert (schema.name, schema.latest_version.version, schema.versions.count()) == ("Support quality", 1, 1)


def test_another_organizations_rubric_is_not_found_and_not_changed(engineer, project, other_project):
    ours = make_schema(project)
    theirs = make_schema(other_project, name="Globex rubric")

    listed = engineer.get("/api/v1/label-schemas").json()
    read = engineer.get(f"/api/v1/label-schemas/{theirs.pk}")
    missing = engineer.get("/api/v1/label-schemas/999999")
    edit = engineer.post(f"/api/v1/label-schemas/{theirs.pk}/versions", {**RUBRIC, "name": "Hijacked"}, format="json")

    assert [s["id"] for s in listed] == [ours.pk]
    assert read.status_code == missing.status_code == edit.status_code == 404
    assert read.json() == missing.json() == edit.json() == {"message": "Label schema not found.", "errors": {}}
    theirs.refresh_from_db()
    assert (theirs.name, theirs.versions.count()) == ("Globex rubric", 1)


@pytest.mark.parametrize("role", ["annotator", "approver"])
def test_only_engineers_and_admins_manage_rubrics(api_client_for, project, role):
    schema = make_schema(project)
    client = api_client_for(role)

    responses = [
        client.get("/api/v1/label-schemas"),
        client.post("/api/v1/label-schemas", RUBRIC, format="json"),
        client.get(f"/api/v1/label-schemas/{schema.pk}"),
        client.post(f"/api/v1/label-schemas/{schema.pk}/versions", RUBRIC, format="json"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert responses[1].json() == {"message": "Your role may not do this.", "errors": {}}
    assert (LabelSchema.objects.count(), LabelSchemaVersion.objects.count()) == (1, 1)


def test_an_agents_project_key_may_not_touch_rubrics(agent_client, project):
    schema = make_schema(project)

    responses = [
        agent_client.get("/api/v1/label-schemas"),
        agent_client.post("/api/v1/label-schemas", RUBRIC, format="json"),
        agent_client.post(f"/api/v1/label-schemas/{schema.pk}/versions", RUBRIC, format="json"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert (LabelSchema.objects.count(), LabelSchemaVersion.objects.count()) == (1, 1)


def test_an_admin_creates_rubrics_too(api_client_for, project):
    response = api_client_for("admin").post("/api/v1/label-schemas", RUBRIC, format="json")

    assert response.status_code == 201
    assert LabelSchema.objects.get().name == "Support quality"
