"""A queue's kind as queue_create takes it from any caller (a configuration document, the admin):
only labeling's kinds, and a pairwise queue only over a rubric of pairwise questions, which a
new version of the rubric (API, browser editor, admin) must keep."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from labeling import pairwise, rubric, services
from labeling.models import Queue, QueueKind
from reviewapp.errors import ValidationFailed
from tests.labeling.factories import make_queue, make_schema


@pytest.mark.parametrize("kind", ["triage", ""])
def test_an_unknown_kind_is_refused_naming_kind(project, kind):
    with pytest.raises(ValidationFailed) as refused:
        make_queue(project, kind=kind)
    assert list(refused.value.errors) == ["kind"]
    assert not Queue.objects.exists()


def test_a_pairwise_queue_over_an_ordinary_rubric_is_refused(project):
    with pytest.raises(ValidationFailed) as refused:
        make_queue(project, kind=QueueKind.PAIRWISE)
    assert list(refused.value.errors) == ["kind"]
    assert not Queue.objects.exists()


def test_a_pairwise_queue_over_pairwise_questions_is_made(project):
    schema = make_schema(project, [pairwise.question("overall", "Which is better?")], name="A or B")

    queue = make_queue(project, schema, kind=QueueKind.PAIRWISE)

    assert Queue.objects.get(pk=queue.pk).kind == QueueKind.PAIRWISE


# --- a new version of a pairwise queue's rubric ------------------------------------------------

PAIRWISE = pairwise.question("overall", "Which is better?")
YES_NO = {"key": "safe", "type": "single_choice", "label": "Safe?", "options": ["yes", "no"]}
FREE_TEXT = {"key": "why", "type": "text", "label": "Why?"}


@pytest.fixture
def compared(project):
    """A pairwise queue over a rubric of one pairwise question (version 1)."""
    schema = make_schema(project, [PAIRWISE], name="A or B")
    make_queue(project, schema, kind=QueueKind.PAIRWISE, name="v1 vs v2")
    return schema


def _version(schema, questions) -> None:
    services.label_schema_version_create(
        schema=schema, rubric_in=rubric.Rubric.model_validate({"name": "A or B", "questions": questions}), user=None
    )


def _unchanged(schema) -> None:
    first = schema.latest_version_id
    schema.refresh_from_db()
    assert list(schema.versions.values_list("pk", "version")) == [(first, 1)]
    assert schema.latest_version_id == first


def test_non_pairwise_fields_name_the_field_to_change():
    other_options = {**PAIRWISE, "options": ["A better", "B better"]}
    assert pairwise.non_pairwise_fields([PAIRWISE]) == []
    assert pairwise.non_pairwise_fields([PAIRWISE, YES_NO, FREE_TEXT, other_options]) == [
        "questions[1].options",
        "questions[2].type",
        "questions[3].options",
    ]
    assert pairwise.non_pairwise_fields([]) == ["questions"]


def test_a_version_with_a_non_pairwise_question_is_refused_naming_its_field(compared):
    with pytest.raises(ValidationFailed) as refused:
        _version(compared, [PAIRWISE, FREE_TEXT, YES_NO])

    assert refused.value.status_code == 400
    message = f"{pairwise.RUBRIC_RULE} Used by the pairwise queue 'v1 vs v2'."
    assert refused.value.errors == {"questions[1].type": [message], "questions[2].options": [message]}
    _unchanged(compared)


def test_a_pairwise_version_of_a_pairwise_queues_rubric_is_made(compared):
    _version(compared, [PAIRWISE, pairwise.question("tone", "Which is kinder?")])

    compared.refresh_from_db()
    assert compared.latest_version.version == 2


def test_a_rubric_of_label_queues_only_takes_any_question(project):
    schema = make_schema(project, [PAIRWISE], name="A or B")
    make_queue(project, schema)

    _version(schema, [PAIRWISE, FREE_TEXT])

    schema.refresh_from_db()
    assert schema.latest_version.version == 2


def test_the_api_answers_400_naming_the_field(compared, api_client_for):
    answer = api_client_for("engineer").post(
        f"/api/v1/label-schemas/{compared.pk}/versions", {"name": "A or B", "questions": [YES_NO]}, format="json"
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "message": "Invalid rubric.",
        "errors": {"questions[0].options": [f"{pairwise.RUBRIC_RULE} Used by the pairwise queue 'v1 vs v2'."]},
    }
    _unchanged(compared)


def test_the_browser_editor_shows_the_error_beside_the_field(compared, browser_for):
    post = {
        "op": "save",
        "name": "A or B",
        "instructions": "",
        "q-count": "2",
        **{f"q-0-{k}": v for k, v in {"key": "overall", "type": "single_choice", "label": "Which?"}.items()},
        "q-0-options": "\n".join(pairwise.OPTIONS),
        "q-0-required": "1",
        **{f"q-1-{k}": v for k, v in {"key": "safe", "type": "single_choice", "label": "Safe?"}.items()},
        "q-1-options": "yes\nno",
    }

    answer = browser_for("engineer").post(f"/labeling/rubrics/{compared.pk}/edit", post)

    assert answer.status_code == 400
    assert answer.context["rows"][1]["errors"] == {
        "options": [f"{pairwise.RUBRIC_RULE} Used by the pairwise queue 'v1 vs v2'."]
    }
    assert answer.context["rows"][0]["errors"] == {}
    _unchanged(compared)


def test_the_admin_shows_a_form_error(compared, staff_client):
    data = {
        "name": "A or B",
        "instructions": "",
        "questions": json.dumps([PAIRWISE, YES_NO]),
        "versions-TOTAL_FORMS": 1,
        "versions-INITIAL_FORMS": 1,
        "versions-MIN_NUM_FORMS": 0,
        "versions-MAX_NUM_FORMS": 1000,
    }

    answer = staff_client.post(reverse("admin:labeling_labelschema_change", args=[compared.pk]), data)

    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors == {
        "questions": [f"questions[1].options: {pairwise.RUBRIC_RULE} Used by the pairwise queue 'v1 vs v2'."]
    }
    _unchanged(compared)
