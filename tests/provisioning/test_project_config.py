"""A project's configuration as one document: read (GET), applied (POST, the command, the
form), idempotent, dry-run, errors naming their place, tenants and roles, and 100 projects
provisioned from one document that each work end to end."""

from __future__ import annotations

import copy
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from escalations import services as escalation_services
from escalations.models import Action, LadderVersion, PolicyVersion
from evaluation import services as evaluation_services
from evaluation.models import CalibrationBar
from labeling import services as labeling_services
from labeling.models import LabelSchema, LabelSchemaVersion, ProjectBudget, Queue, QueueItem
from provisioning import selectors, services
from reviewapp import services as core_services
from reviewapp.models import AuditEvent, Project
from reviewapp.principal import Principal
from tests.factories import ConversationFactory, ProjectFactory, conversation_payload
from tests.labeling.factories import make_queue, make_schema

FINANCE = {"name": "finance", "tiers": [{"role": "admin", "timeout_seconds": 1800, "approvals_required": 2}]}
RULES = [
    {
        "name": "small refunds",
        "if": {"action": "refund", "args": [{"path": "amount", "op": "<", "value": 100}]},
        "then": "approve",
    },
    {"name": "big refunds", "if": {"action": "refund"}, "then": "escalate", "ladder": "finance"},
]
CONTROLLER = {"enabled": True, "judge": "gpt-judge", "criterion": "correctness", "base_rate": 0.5}
SAMPLING = ({"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "thumbs down"}, {"rate": 0.0})


def _url(project) -> str:
    return f"/api/v1/projects/{project.slug}/config"


@pytest.fixture
def source(project):
    """A configured project: rubric (two versions), a queue sampling thumbs-down, ladders, a
    two-version policy, a budget with a share, a bar, a time zone and frustration terms."""
    schema = make_schema(project)
    labeling_services.label_schema_version_create(
        schema=schema,
        rubric_in=_rubric(schema.name, "v2", schema.latest_version.questions),
        user=None,
    )
    queue = make_queue(project, schema, sampling=SAMPLING, backfill_days=0, priority=3, gold_rate=0.1)
    make_queue(project, schema, name="Second look", annotations_per_item=2)
    escalation_services.ladder_version_create(principal=None, project=project, data=FINANCE)
    escalation_services.policy_version_create(principal=None, project=project, data={"rules": RULES[1:]})
    escalation_services.policy_version_create(principal=None, project=project, data={"rules": RULES})
    admin = Principal(organization=project.organization, role="admin")
    labeling_services.project_budget_set(principal=admin, project=project, daily_items=500, shares={str(queue.pk): 0.5})
    labeling_services.queue_budget_controller_set(principal=admin, queue=queue, data=CONTROLLER)
    evaluation_services.bar_set(project=project, values={"kappa": 0.7, "webhook_url": "https://hooks.example.com/x"})
    core_services.project_timezone_set(project=project, time_zone="Europe/Paris")
    core_services.project_frustration_terms_set(project=project, terms=["Useless bot"])
    return project


def _rubric(name, instructions, questions):
    from labeling import rubric

    return rubric.Rubric.model_validate({"name": name, "instructions": instructions, "questions": questions})


def _doc(project) -> dict:
    return selectors.project_config(organization=project.organization, project=project)


def _rows() -> dict[str, int]:
    models = (Project, LabelSchema, LabelSchemaVersion, Queue, LadderVersion, PolicyVersion, ProjectBudget)
    return {m.__name__: m.objects.count() for m in (*models, CalibrationBar, AuditEvent)}


def test_get_answers_the_whole_configuration_keyed_by_names(source, api_client_for):
    response = api_client_for("engineer").get(_url(source))

    assert response.status_code == 200
    doc = response.json()
    assert (doc["kind"], doc["version"]) == ("reviewapp/project-config", 1)
    assert doc["project"] == {"timezone": "Europe/Paris", "frustration_terms": ["useless bot"]}
    assert [r["name"] for r in doc["rubrics"]] == ["Support quality"]
    assert doc["rubrics"][0]["instructions"] == "v2"
    queue = next(q for q in doc["queues"] if q["name"] == "Support QA")
    assert queue["rubric"] == "Support quality" and queue["priority"] == 3 and queue["gold_rate"] == 0.1
    assert queue["sampling"][0] == {"name": "thumbs down", "rate": 1.0, "if": {"feedback_rating": "down"}}
    assert {k: queue["budget_controller"][k] for k in CONTROLLER} == CONTROLLER
    assert [ladder["name"] for ladder in doc["ladders"]] == ["default", "finance"]
    assert [r["name"] for r in doc["policy"]["rules"]] == ["small refunds", "big refunds"]
    assert doc["budget"] == {"daily_items": 500, "shares": {"Support QA": 0.5}}
    assert doc["calibration_bar"]["kappa"] == 0.7
    # Names, never ids: no "id" key anywhere, and the budget's shares are keyed by the queue's name
    # (checked above), not its primary key.
    assert '"id"' not in json.dumps(doc)


def test_round_trip_to_a_new_project_then_a_second_apply_changes_nothing(source, api_client_for):
    admin = api_client_for("admin")
    doc = admin.get(_url(source)).json()
    target = ProjectFactory(organization=source.organization, slug="copy")

    first = admin.post(_url(target), doc, format="json")

    assert first.status_code == 200, first.json()
    assert first.json()["summary"]["created"] == 1 + 2 + 2 + 1 + 1  # rubric, queues, ladders, policy, budget
    assert admin.get(_url(target)).json() == doc
    before = _rows()
    second = admin.post(_url(target), doc, format="json")
    assert second.status_code == 200
    assert {c["change"] for c in second.json()["changes"]} == {"unchanged"}
    assert _rows() == before  # no new version, not even an audit event


def test_a_change_makes_new_versions_and_updates_settings_leaving_the_rest(source):
    doc = _doc(source)
    doc["rubrics"][0]["instructions"] = "v3"
    doc["policy"]["rules"] = doc["policy"]["rules"][:1]
    doc["ladders"][1]["tiers"][0]["timeout_seconds"] = 600
    queue = next(q for q in doc["queues"] if q["name"] == "Support QA")
    queue["priority"] = 9
    queue["sampling"] = [{"rate": 0.5}]
    doc["calibration_bar"]["tnr"] = 0.8

    result = services.project_config_apply(principal=None, project=source, data=doc)

    changes = {(c.object, c.name): (c.change, c.fields) for c in result.changes}
    assert changes[("rubric", "Support quality")] == ("new_version", ["instructions"])
    assert changes[("policy", "policy")] == ("new_version", ["rules"])
    assert changes[("ladder", "finance")] == ("new_version", ["tiers"])
    assert changes[("ladder", "default")] == ("unchanged", [])
    assert changes[("queue", "Support QA")] == ("changed", ["priority", "sampling"])
    assert changes[("queue", "Second look")] == ("unchanged", [])
    assert changes[("calibration_bar", "calibration_bar")] == ("changed", ["tnr"])
    assert LabelSchema.objects.get(project=source).latest_version.version == 3
    assert PolicyVersion.objects.filter(project=source).count() == 3
    assert Queue.objects.get(project=source, name="Support QA").sampling == [{"rate": 0.5}]
    assert _doc(source) == doc


def test_a_section_left_out_is_left_alone(source):
    before = _doc(source)

    result = services.project_config_apply(
        principal=None, project=source, data={"kind": "reviewapp/project-config", "version": 1, "queues": []}
    )

    assert result.changes == []
    assert _doc(source) == before


def test_dry_run_answers_the_diff_and_writes_nothing(source, api_client_for):
    admin = api_client_for("admin")
    doc = admin.get(_url(source)).json()
    doc["project"]["timezone"] = "Asia/Tokyo"
    target = ProjectFactory(organization=source.organization, slug="copy")
    before = _rows()

    response = admin.post(_url(target) + "?dry_run=1", doc, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["dry_run"] is True
    assert body["summary"]["created"] == 7
    assert body["changes"][0] == {
        "path": "project",
        "object": "project",
        "name": "copy",
        "change": "changed",
        "fields": ["timezone", "frustration_terms"],
    }
    assert _rows() == before
    target.refresh_from_db()
    assert target.timezone == "UTC"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["queues"][1]["sampling"].append({"rate": 2}), "queues[1].sampling[2].rate"),
        (lambda d: d["queues"][0].update(lease_seconds=5), "queues[0].lease_seconds"),
        (lambda d: d["queues"][0].update(rubric="Nope"), "queues[0].rubric"),
        (lambda d: d["rubrics"][0]["questions"][0].update(type="colour"), "rubrics[0].questions[0].type"),
        (lambda d: d["policy"]["rules"][1].update(ladder="nowhere"), "policy.rules[1].ladder"),
        (lambda d: d["ladders"][1]["tiers"][0].update(timeout_seconds=1), "ladders[1].tiers[0].timeout_seconds"),
        (lambda d: d["budget"]["shares"].update({"Ghost queue": 0.1}), "budget.shares.Ghost queue"),
        (lambda d: d["calibration_bar"].update(kappa=3), "calibration_bar.kappa"),
        (lambda d: d["project"].update(timezone="Mars/Olympus"), "project.timezone"),
        (lambda d: d["project"].update(frustration_terms=["ok", "\x00"]), "project.frustration_terms[1]"),
        (lambda d: d.update(kind="something else"), "kind"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["queues"].append(dict(d["queues"][0])), "queues[2].name"),
        (lambda d: d["queues"][0].update(kind="triage"), "queues[0].kind"),
        # Labeling's own rule: a pairwise queue's rubric asks only pairwise questions.
        (lambda d: d["queues"][0].update(kind="pairwise"), "queues[0].kind"),
    ],
)
def test_errors_name_the_place_in_the_document_and_nothing_is_applied(source, api_client_for, mutate, path):
    admin = api_client_for("admin")
    doc = admin.get(_url(source)).json()
    target = ProjectFactory(organization=source.organization, slug="copy")
    bad = copy.deepcopy(doc)
    mutate(bad)
    before = _rows()

    response = admin.post(_url(target), bad, format="json")

    assert response.status_code == 400, response.json()
    assert path in response.json()["errors"], response.json()
    assert _rows() == before


@pytest.fixture
def with_pairwise(source):
    """The source project with a pairwise comparison queue beside its label queues."""
    labeling_services.pairwise_queue_create(
        project=source,
        spec=labeling_services.PairwiseQueueSpec(
            name="v2 against v1", baseline_version="v1", candidate_version="v2", seed=7
        ),
        pairs=[
            labeling_services.PairIn(
                conversation_id=ConversationFactory(project=source).pk,
                key="k",
                baseline_output="old",
                candidate_output="new",
            )
        ],
        user=None,
    )
    return source


def _queue_doc(doc, name) -> dict:
    return next(q for q in doc["queues"] if q["name"] == name)


def test_a_queue_kind_round_trips_and_a_second_apply_changes_nothing(with_pairwise, api_client_for):
    admin = api_client_for("admin")
    doc = admin.get(_url(with_pairwise)).json()
    assert _queue_doc(doc, "v2 against v1")["kind"] == "pairwise"
    assert _queue_doc(doc, "v2 against v1")["rubric"] == "v2 against v1"
    assert _queue_doc(doc, "Support QA")["kind"] == "label"
    target = ProjectFactory(organization=with_pairwise.organization, slug="copy")

    dry = admin.post(_url(target) + "?dry_run=1", doc, format="json")
    first = admin.post(_url(target), doc, format="json")

    assert dry.status_code == 200 and first.status_code == 200, first.json()
    assert dry.json()["changes"] == first.json()["changes"]
    created = {c["name"] for c in first.json()["changes"] if c["object"] == "queue" and c["change"] == "created"}
    assert created == {"Support QA", "Second look", "v2 against v1"}
    assert Queue.objects.get(project=target, name="v2 against v1").kind == "pairwise"
    assert Queue.objects.get(project=target, name="Support QA").kind == "label"
    assert admin.get(_url(target)).json() == doc
    before = _rows()
    second = admin.post(_url(target), doc, format="json")
    assert {c["change"] for c in second.json()["changes"]} == {"unchanged"}
    assert _rows() == before


@pytest.mark.parametrize("dry_run", ["0", "1"])
@pytest.mark.parametrize(("name", "kind"), [("v2 against v1", "label"), ("Second look", "pairwise")])
def test_a_queue_kind_never_changes(with_pairwise, api_client_for, name, kind, dry_run):
    admin = api_client_for("admin")
    doc = admin.get(_url(with_pairwise)).json()
    index = next(i for i, q in enumerate(doc["queues"]) if q["name"] == name)
    doc["queues"][index]["kind"] = kind
    for queue in doc["queues"]:
        queue["priority"] = 5  # applied to the queues before this one, then rolled back
    doc["calibration_bar"]["tnr"] = 0.9
    before = _rows()

    response = admin.post(_url(with_pairwise) + f"?dry_run={dry_run}", doc, format="json")

    assert response.status_code == 400, response.json()
    assert list(response.json()["errors"]) == [f"queues[{index}].kind"]
    assert _rows() == before
    assert Queue.objects.get(project=with_pairwise, name=name).kind != kind
    assert not Queue.objects.filter(project=with_pairwise, priority=5).exists()


def test_a_document_without_kinds_keeps_existing_kinds_and_makes_label_queues(with_pairwise):
    doc = _doc(with_pairwise)
    for queue in doc["queues"]:
        del queue["kind"]
    _queue_doc(doc, "Second look")["name"] = "Third look"

    result = services.project_config_apply(principal=None, project=with_pairwise, data=doc)

    changes = {c.name: c.change for c in result.changes if c.object == "queue"}
    assert changes == {"Support QA": "unchanged", "Third look": "created", "v2 against v1": "unchanged"}
    kinds = dict(Queue.objects.filter(project=with_pairwise).values_list("name", "kind"))
    assert kinds == {"Support QA": "label", "Second look": "label", "Third look": "label", "v2 against v1": "pairwise"}


def test_tenants_and_roles(source, api_client_for, other_org, other_project):
    doc = _doc(source)
    engineer = api_client_for("engineer")
    assert engineer.post(_url(source), doc, format="json").status_code == 403
    for role in ("annotator", "approver"):
        assert api_client_for(role).get(_url(source)).status_code == 403
    stranger = api_client_for("admin", organization=other_org)
    assert stranger.get(_url(source)).status_code == 404
    assert stranger.post(_url(source), doc, format="json").status_code == 404
    assert api_client_for("admin").get(_url(other_project)).status_code == 404


def test_the_command_applies_a_file_and_dry_runs(source, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_doc(source)))
    target = f"{source.organization.slug}/copy"

    out = io.StringIO()
    call_command("project_apply", str(path), target, "--create", "--dry-run", stdout=out)
    assert "Would apply" in out.getvalue() and "created      queue" in out.getvalue()
    assert not Project.objects.filter(slug="copy").exists()

    call_command("project_apply", str(path), target, "--create", stdout=io.StringIO())
    copy_project = Project.objects.get(slug="copy")
    assert _doc(copy_project) == _doc(source)
    out = io.StringIO()
    call_command("project_apply", str(path), target, stdout=out)
    assert "0 created, 0 new version, 0 changed" in out.getvalue()
    with pytest.raises(CommandError, match="No project"):
        call_command("project_apply", str(path), f"{source.organization.slug}/missing", stdout=io.StringIO())


def test_the_form_previews_then_creates_a_project_like_another(source, member, client):
    client.force_login(member("admin"))

    preview = client.post("/projects/new", {"source": source.slug, "slug": "copy", "name": "Copy", "action": "preview"})
    assert preview.status_code == 200
    assert b"to create" in preview.content and b"Support QA" in preview.content
    assert not Project.objects.filter(slug="copy").exists()

    created = client.post("/projects/new", {"source": source.slug, "slug": "copy", "name": "Copy", "action": "create"})
    assert created.status_code == 302
    assert _doc(Project.objects.get(slug="copy")) == _doc(source)
    assert b"copy" in client.get("/projects/").content


def test_the_form_shows_errors_of_a_pasted_document_and_refuses_other_roles(source, member, client):
    client.force_login(member("admin"))
    doc = _doc(source)
    doc["queues"][0]["gold_rate"] = 7
    response = client.post("/projects/new", {"document": json.dumps(doc), "slug": "copy", "action": "create"})
    assert response.status_code == 400
    assert b"queues[0].gold_rate" in response.content
    assert not Project.objects.filter(slug="copy").exists()

    client.force_login(member("engineer"))
    assert client.get("/projects/new").status_code == 403


def test_a_hundred_projects_from_one_document_each_work_end_to_end(source, django_capture_on_commit_callbacks):
    """Each new project samples a thumbs-down conversation, ingested with its own key, into its
    queue by the document's rules, and its policy approves a small refund."""
    doc = _doc(source)
    organization = source.organization
    for n in range(100):
        project, _ = services.project_create_from_config(
            principal=None, organization=organization, slug=f"customer-{n}", name=f"Customer {n}", data=doc
        )
        agent = APIClient()
        agent.credentials(HTTP_AUTHORIZATION=f"Bearer {core_services.api_key_create(project=project, name='a').raw}")
        with django_capture_on_commit_callbacks(execute=True):
            ingested = agent.post(
                "/api/v1/conversations",
                {"conversations": [conversation_payload(f"c-{n}", feedback={"rating": "down"})]},
                format="json",
            )
        assert ingested.status_code == 201, ingested.json()
        acted = agent.post(
            "/api/v1/actions",
            {"external_id": f"a-{n}", "action": "refund", "args": {"amount": 20}, "end_user_id": "u"},
            format="json",
        )
        assert acted.status_code in (200, 201), acted.json()
        assert acted.json()["status"] == "approved" and acted.json()["decided_by"] == "policy"
    assert (
        QueueItem.objects.filter(queue__name="Support QA", queue__project__slug__startswith="customer-").count() == 100
    )
    assert Action.objects.filter(status="approved").count() == 100
