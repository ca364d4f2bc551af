"""The engineer's builder pages: rubrics (create, edit as a new version, preview, history with
a diff), queues (create, settings, sampling rules with their preview, pause and resume).
Engineers and admins only; another organization's rubric or queue is a 404."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from labeling.models import LabelSchema, LabelSchemaVersion, Queue
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue, make_schema

HX = {"HTTP_HX_REQUEST": "true"}
XSS = "<script>window.__xss=1</script>"


def _rubric_post(project_slug: str = "support", *, name: str = "Refund QA", op: str = "save", **extra) -> dict:
    data = {
        "op": op,
        "project": project_slug,
        "name": name,
        "instructions": "Judge the **refund**.",
        "q-count": "2",
        "q-0-key": "correct",
        "q-0-type": "single_choice",
        "q-0-label": "Was the refund right?",
        "q-0-required": "1",
        "q-0-options": "yes\nno",
        "q-0-passing_options": "yes",
        "q-0-judge_criterion": "refund_correct",
        "q-0-judge_pass_labels": "pass, ok",
        "q-1-key": "tone",
        "q-1-type": "rating",
        "q-1-label": "Tone",
        "q-1-min": "1",
        "q-1-max": "5",
        "q-1-passing_min": "4",
        "q-1-judge_pass_threshold": "0.7",
    }
    data.update(extra)
    return data


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_builder_pages_render_for_engineers_and_admins(project, browser_for, role):
    schema = make_schema(project)
    queue = make_queue(project, schema=schema)
    client = browser_for(role)
    for url in (
        "/labeling/build/",
        "/labeling/rubrics/new",
        f"/labeling/rubrics/{schema.pk}/",
        f"/labeling/rubrics/{schema.pk}/edit",
        "/labeling/queues/new",
        f"/labeling/queues/{queue.pk}/settings",
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("role", ["annotator", "approver"])
def test_builder_pages_are_refused_to_annotators_and_approvers(project, browser_for, role):
    schema = make_schema(project)
    queue = make_queue(project, schema=schema)
    client = browser_for(role)
    for url in ("/labeling/build/", "/labeling/rubrics/new", f"/labeling/rubrics/{schema.pk}/edit"):
        assert client.get(url).status_code == 403, url
    assert client.post("/labeling/rubrics/new", _rubric_post()).status_code == 403
    assert client.post(f"/labeling/queues/{queue.pk}/active", {"active": "0"}).status_code == 403
    assert LabelSchema.objects.count() == 1
    assert Queue.objects.get(pk=queue.pk).is_active is True


def test_another_organizations_rubric_and_queue_are_404(other_project, browser_for):
    schema = make_schema(other_project)
    queue = make_queue(other_project, schema=schema)
    client = browser_for("engineer")
    assert client.get(f"/labeling/rubrics/{schema.pk}/edit").status_code == 404
    assert client.get(f"/labeling/rubrics/{schema.pk}/").status_code == 404
    assert client.post(f"/labeling/rubrics/{schema.pk}/edit", _rubric_post()).status_code == 404
    assert client.get(f"/labeling/queues/{queue.pk}/settings").status_code == 404
    assert client.post(f"/labeling/queues/{queue.pk}/active", {"active": "0"}).status_code == 404
    assert client.post("/labeling/queues/sampling-preview", {"queue": queue.pk, "r-count": "0"}).status_code == 404
    assert schema.versions.count() == 1
    assert Queue.objects.get(pk=queue.pk).is_active is True


# --- rubrics -----------------------------------------------------------------------------------------


def test_creating_a_rubric_in_the_browser_makes_version_one(project, browser_for):
    client = browser_for("engineer")
    response = client.post("/labeling/rubrics/new", _rubric_post())
    schema = LabelSchema.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/labeling/rubrics/{schema.pk}/"
    version = schema.latest_version
    assert (schema.name, schema.project_id, version.version) == ("Refund QA", project.pk, 1)
    assert version.created_by == client.user
    assert version.instructions == "Judge the **refund**."
    assert version.questions == [
        {
            "key": "correct",
            "type": "single_choice",
            "label": "Was the refund right?",
            "help": "",
            "required": True,
            "options": ["yes", "no"],
            "roles": [],
            "judge_criterion": "refund_correct",
            "judge_pass_labels": ["pass", "ok"],
            "passing_options": ["yes"],
        },
        {
            "key": "tone",
            "type": "rating",
            "label": "Tone",
            "help": "",
            "required": False,
            "options": [],
            "min": 1,
            "max": 5,
            "roles": [],
            "judge_pass_labels": [],
            "judge_pass_threshold": 0.7,
            "passing_options": [],
            "passing_min": 4,
        },
    ]


def test_editing_a_rubric_makes_the_next_version_and_the_history_shows_the_diff(project, browser_for):
    schema = make_schema(project)
    client = browser_for("engineer")
    page = client.get(f"/labeling/rubrics/{schema.pk}/edit").content.decode()
    assert 'value="quality"' in page and "Saving makes version 2" in page

    data = _rubric_post(name="Support quality")
    response = client.post(f"/labeling/rubrics/{schema.pk}/edit", data)
    assert response.status_code == 302
    schema.refresh_from_db()
    assert schema.latest_version.version == 2
    assert [q["key"] for q in schema.latest_version.questions] == ["correct", "tone"]
    assert LabelSchemaVersion.objects.filter(schema=schema).count() == 2

    history = client.get(f"/labeling/rubrics/{schema.pk}/").content.decode()
    assert "Changes from version 1 to version 2" in history
    for key in ("correct", "tone"):
        assert f'<li class="diff-added"><span class="badge good">added</span> <code>{key}</code>' in history
    for key in ("quality", "helpfulness", "notes"):
        assert f'<li class="diff-removed"><span class="badge bad">removed</span> <code>{key}</code>' in history
    assert "instructions" in history

    # The same document again is no new version.
    client.post(f"/labeling/rubrics/{schema.pk}/edit", data)
    assert LabelSchemaVersion.objects.filter(schema=schema).count() == 2


def test_invalid_rubric_shows_the_error_beside_the_field_and_writes_nothing(project, browser_for):
    client = browser_for("engineer")
    response = client.post(
        "/labeling/rubrics/new", _rubric_post(**{"q-0-options": "only one", "q-1-max": "1", "q-1-min": "x"})
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert LabelSchema.objects.count() == 0
    # Each error sits in the fieldset of its question, right after its field.
    options_at = page.index('name="q-0-options"')
    passing_at = page.index('name="q-0-passing_options"')
    assert page.index("choice questions need at least two options", options_at) < passing_at
    min_at = page.index('name="q-1-min"')
    assert page.index("Enter a whole number.", min_at) < page.index('name="q-1-max"')
    # What was typed is kept.
    assert "only one</textarea>" in page


def test_builder_buttons_add_move_and_remove_questions(project, browser_for):
    client = browser_for("engineer")
    page = client.post("/labeling/rubrics/new", _rubric_post(op="down-0")).content.decode()
    assert page.index('value="tone"') < page.index('value="correct"')
    page = client.post("/labeling/rubrics/new", _rubric_post(op="add")).content.decode()
    assert 'name="q-count" value="3"' in page and 'name="q-2-key"' in page
    page = client.post("/labeling/rubrics/new", _rubric_post(op="remove-0")).content.decode()
    assert 'name="q-count" value="1"' in page and 'value="correct"' not in page
    assert LabelSchema.objects.count() == 0


def test_rubric_preview_renders_the_labeling_form_with_markdown_instructions(project, browser_for):
    client = browser_for("engineer")
    data = _rubric_post(instructions="Judge the **refund**. " + XSS, **{"q-0-label": XSS})
    page = client.post("/labeling/rubrics/preview", data, **HX).content.decode()
    assert "<strong>refund</strong>" in page
    assert XSS not in page and "&lt;script&gt;" in page
    assert 'name="a-correct"' in page and 'name="a-tone"' in page


def test_hostile_rubric_and_queue_names_are_escaped(project, browser_for):
    schema = make_schema(project, name=XSS, questions=[{"key": "q", "type": "text", "label": XSS, "help": XSS}])
    queue = make_queue(project, schema=schema, name=XSS, description=XSS)
    client = browser_for("engineer")
    for url in (
        "/labeling/build/",
        f"/labeling/rubrics/{schema.pk}/",
        f"/labeling/rubrics/{schema.pk}/edit",
        f"/labeling/queues/{queue.pk}/settings",
        "/labeling/queues/new",
    ):
        page = client.get(url).content.decode()
        assert XSS not in page and "&lt;script&gt;" in page, url


# --- queues ----------------------------------------------------------------------------------------


def _queue_post(**extra) -> dict:
    data = {
        "op": "save",
        "name": "Refunds",
        "description": "",
        "annotations_per_item": "2",
        "max_extra_annotations": "1",
        "priority": "3",
        "lease_seconds": "900",
        "assignee_role": "annotator",
        "skip_policy": "others",
        "backfill_days": "7",
        "gold_rate": "0.1",
        "is_active": "on",
        "max_per_day": "",
        "r-count": "1",
        "r-0-name": "refunds",
        "r-0-rate": "1",
        "r-0-if_tags_any": "refund",
    }
    data.update(extra)
    return data


def test_create_a_queue_in_the_browser(project, browser_for):
    schema = make_schema(project)
    client = browser_for("engineer")
    response = client.post("/labeling/queues/new", _queue_post(schema=str(schema.pk)))
    queue = Queue.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/labeling/queues/{queue.pk}/settings"
    assert (queue.name, queue.schema_id, queue.annotations_per_item, queue.priority) == ("Refunds", schema.pk, 2, 3)
    assert (queue.lease_seconds, queue.backfill_days, queue.gold_rate) == (900, 7, 0.1)
    assert queue.sampling == [{"name": "refunds", "rate": 1.0, "if": {"tags_any": ["refund"]}}]


def test_edit_queue_settings_and_sampling_rules(project, browser_for, member):
    queue = make_queue(project)
    annotator = member("annotator")
    client = browser_for("admin")
    data = _queue_post(
        name="Renamed",
        assignees=[str(annotator.pk)],
        max_per_day="50",
        **{"r-0-strategy": "uncertainty", "r-0-if_judge": "gpt", "r-0-rate": "0.2", "r-0-if_tags_any": ""},
    )
    response = client.post(f"/labeling/queues/{queue.pk}/settings", data)
    assert response.status_code == 302
    queue.refresh_from_db()
    assert (queue.name, queue.annotations_per_item, queue.max_per_day) == ("Renamed", 2, 50)
    assert list(queue.assignees.values_list("pk", flat=True)) == [annotator.pk]
    assert queue.sampling == [{"name": "refunds", "rate": 0.2, "if": {"judge": "gpt"}, "strategy": "uncertainty"}]


def test_invalid_sampling_rule_shows_the_error_beside_the_field_and_writes_nothing(project, browser_for):
    queue = make_queue(project, sampling=({"rate": 0.5},))
    client = browser_for("engineer")
    data = _queue_post(**{"r-0-rate": "2", "r-0-if_signal_source": "agent", "r-0-if_metadata": "[1]"})
    response = client.post(f"/labeling/queues/{queue.pk}/settings", data)
    assert response.status_code == 400
    page = response.content.decode()
    rate_at = page.index('name="r-0-rate"')
    assert page.index("less than or equal to 1", rate_at) < page.index('name="r-0-strategy"')
    assert page.index("Enter a JSON object", page.index('name="r-0-if_metadata"')) < page.index(
        'name="r-0-if_feedback_rating"'
    )
    queue.refresh_from_db()
    assert (queue.name, queue.sampling) == ("Support QA", [{"rate": 0.5}])


def test_invalid_setting_shows_the_error_beside_the_field(project, browser_for):
    queue = make_queue(project)
    client = browser_for("engineer")
    response = client.post(f"/labeling/queues/{queue.pk}/settings", _queue_post(lease_seconds="5", name=""))
    assert response.status_code == 400
    page = response.content.decode()
    lease_at, role_at = page.index('name="lease_seconds"'), page.index('name="assignee_role"')
    assert page.index("Ensure this value is greater than or equal to 30", lease_at) < role_at
    queue.refresh_from_db()
    assert (queue.name, queue.lease_seconds) == ("Support QA", 600)


def test_pause_and_resume_a_queue(project, browser_for):
    queue = make_queue(project)
    client = browser_for("engineer")
    assert client.post(f"/labeling/queues/{queue.pk}/active", {"active": "0"}).status_code == 302
    queue.refresh_from_db()
    assert queue.is_active is False
    assert "paused" in client.get("/labeling/build/").content.decode()
    client.post(f"/labeling/queues/{queue.pk}/active", {"active": "1", "next": "build"})
    queue.refresh_from_db()
    assert queue.is_active is True


def test_sampling_preview_counts_against_a_hand_computed_case(project, browser_for):
    """20 conversations over 5 days, 2 of each day's 4 tagged "refund". A rule taking every
    refund samples 10 of 20 (50%), 2 a day; with 1 a day at most, 5 (25%), 1 a day."""
    start = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0) - dt.timedelta(days=10)
    for day in range(5):
        for n in range(4):
            ConversationFactory(
                project=project,
                external_id=f"c-{day}-{n}",
                occurred_at=start + dt.timedelta(days=day, minutes=n),
                tags=["refund"] if n < 2 else [],
            )
    queue = make_queue(project)
    client = browser_for("engineer")
    data = {"queue": queue.pk, "r-count": "1", "r-0-rate": "1", "r-0-if_tags_any": "refund"}
    page = client.post("/labeling/queues/sampling-preview", data, **HX).content.decode()
    assert "would have sampled <strong>10</strong> of the last 20 conversations (50.0%)" in page
    assert "about <strong>2</strong> a day over 5 days" in page
    assert page.count('href="/conversations/') == 5

    page = client.post("/labeling/queues/sampling-preview", {**data, "max_per_day": "1"}, **HX).content.decode()
    assert "would have sampled <strong>5</strong> of the last 20 conversations (25.0%)" in page
    assert "about <strong>1</strong> a day" in page

    page = client.post("/labeling/queues/sampling-preview", {**data, "r-0-max_per_day": "1"}, **HX).content.decode()
    assert "<strong>5</strong> of the last 20" in page

    page = client.post("/labeling/queues/sampling-preview", {**data, "r-0-rate": "0"}, **HX).content.decode()
    assert "<strong>0</strong> of the last 20 conversations (0.0%)" in page
