"""Golden datasets over the API: create, promote final labels (by hand and by rule), edit,
freeze immutable versions, tag and compare them; tenants and roles."""

from __future__ import annotations

import pytest

from evaluation import dataset_items, services_datasets
from evaluation.models import Dataset, DatasetItem, DatasetVersion, DatasetVersionItem
from labeling.models import Label
from tests.evaluation.factories_datasets import dataset_with_items, final_items, freeze
from tests.labeling.factories import add_items, make_queue


@pytest.fixture
def engineer(api_client_for):
    return api_client_for("engineer")


@pytest.fixture
def annotator(member):
    return member("annotator", username="ann")


@pytest.fixture
def queue(project):
    return make_queue(project, name="Support QA")


def _create(client, **body):
    return client.post("/api/v1/datasets", {"project": "support", "name": "Refunds", **body}, format="json")


def test_create_and_read_a_dataset(engineer, project):
    response = _create(engineer, gate_pass_rate=0.9, gate_mode="confident", description="Refund questions")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Refunds"
    assert body["project"] == "support"
    assert (body["gate_pass_rate"], body["gate_critical_pass_rate"], body["gate_mode"]) == (0.9, 1.0, "confident")
    assert engineer.get(f"/api/v1/datasets/{body['id']}").json() == body
    assert [d["id"] for d in engineer.get("/api/v1/datasets?project=support").json()] == [body["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gate_pass_rate": 1.5}, "gate_pass_rate"),
        ({"gate_critical_pass_rate": -0.1}, "gate_critical_pass_rate"),
        ({"gate_confidence": 1}, "gate_confidence"),
        ({"gate_mode": "lenient"}, "gate_mode"),
        ({"name": ""}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"promotion_rules": [{"queue": "Nope"}]}, "promotion_rules[0].queue"),
        (
            {"promotion_rules": [{"queue": "Support QA", "if": {"agreement": "most"}}]},
            "promotion_rules[0].if.agreement",
        ),
    ],
)
def test_bad_settings_are_400_naming_the_field(engineer, queue, body, field):
    response = _create(engineer, **body)

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not Dataset.objects.exists()


def test_names_are_unique_per_project(engineer, project):
    assert _create(engineer).status_code == 201
    again = _create(engineer)

    assert again.status_code == 400
    assert again.json()["errors"] == {"name": ["A dataset of this name exists in the project."]}
    other = engineer.post("/api/v1/datasets", {"project": "support", "name": "Other"}, format="json").json()
    clash = engineer.patch(f"/api/v1/datasets/{other['id']}", {"name": "Refunds"}, format="json")
    assert clash.status_code == 400
    assert clash.json()["errors"] == {"name": ["A dataset of this name exists in the project."]}


def test_promote_final_items_with_lineage(engineer, project, queue, annotator, member):
    items = final_items(
        queue,
        annotator,
        [{"quality": "good", "notes": "fine"}, {"quality": "bad"}],
        messages=[
            {"role": "user", "content": "Where is my refund?"},
            {"role": "assistant", "content": "Issued Monday."},
        ],
    )
    dataset = _create(engineer).json()

    response = engineer.post(
        f"/api/v1/datasets/{dataset['id']}/items",
        {
            "items": [
                {"queue_item": items[0].pk, "critical": True, "tags": ["refunds", "refunds"]},
                {"queue_item": items[1].pk},
            ]
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    added = response.json()["added"]
    assert response.json()["existing"] == []
    first = added[0]
    conversation = items[0].conversation
    key = dataset_items.key_for_conversation(conversation.external_id)
    assert first["key"] == key
    assert first["input_messages"] == [{"role": "user", "content": "Where is my refund?"}]
    assert first["reference_output"] == {"role": "assistant", "content": "Issued Monday."}
    assert first["expected_labels"] == {"quality": "good", "notes": "fine"}
    assert (first["critical"], first["tags"], first["split"]) == (True, ["refunds"], dataset_items.split_for(key))
    label = Label.objects.get(item=items[0])
    assert first["lineage"] == {
        "queue": "Support QA",
        "queue_id": items[0].queue_id,
        "queue_item": items[0].pk,
        "conversation_id": conversation.pk,
        "external_id": conversation.external_id,
        "agent_version": "v1",
        "label_ids": [label.pk],
        "annotators": ["ann"],
        "reviewer": None,
        "final_source": "single",
        "made_by": "human",
        "rubric": {"name": "Support quality", "version": 1},
        "reference": "agent",
        "completed_at": items[0].completed_at.isoformat(),
    }
    assert first["content_hash"] == dataset_items.content_hash(key, first)
    assert added[1]["critical"] is False


def test_an_item_is_not_added_twice(engineer, queue, annotator):
    items = final_items(queue, annotator, [{"quality": "good"}, {"quality": "good"}])
    dataset = _create(engineer).json()
    url = f"/api/v1/datasets/{dataset['id']}/items"
    engineer.post(url, {"items": [{"queue_item": items[0].pk}]}, format="json")

    again = engineer.post(
        url,
        {"items": [{"queue_item": items[0].pk}, {"queue_item": items[1].pk}, {"queue_item": items[1].pk}]},
        format="json",
    )

    assert again.status_code == 200
    assert [i["queue_item"] for i in again.json()["added"]] == [items[1].pk]
    assert [i["queue_item"] for i in again.json()["existing"]] == [items[0].pk]
    assert DatasetItem.objects.count() == 2


def test_an_item_without_a_final_label_is_400_naming_it(engineer, project, queue, annotator, other_project):
    done = final_items(queue, annotator, [{"quality": "good"}])[0]
    open_item = add_items(queue, 1)[-1]
    foreign = add_items(make_queue(other_project), 1)[0]
    dataset = _create(engineer).json()

    response = engineer.post(
        f"/api/v1/datasets/{dataset['id']}/items",
        {
            "items": [
                {"queue_item": done.pk},
                {"queue_item": open_item.pk},
                {"queue_item": foreign.pk},
            ]
        },
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["items[1].queue_item"] == ["This item has no final label yet."]
    assert errors["items[2].queue_item"] == ["No such item in this project."]
    assert "items[0].queue_item" not in errors
    assert not DatasetItem.objects.exists()


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"tags": ["x"] * 21}, "items[0].tags"),
        ({"tags": ["x" * 65]}, "items[0].tags[0]"),
        ({"key": "bad key"}, "items[0].key"),
        ({"critical": "maybe"}, "items[0].critical"),
        ({"queue_item": 0}, "items[0].queue_item"),
        ({"queue_item": 2**63}, "items[0].queue_item"),
    ],
)
def test_item_inputs_are_bounded(engineer, queue, annotator, entry, field):
    item = final_items(queue, annotator, [{"quality": "good"}])[0]
    dataset = _create(engineer).json()

    response = engineer.post(
        f"/api/v1/datasets/{dataset['id']}/items", {"items": [{"queue_item": item.pk, **entry}]}, format="json"
    )

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()


def test_a_correction_in_the_rubric_is_the_reference(engineer, project, annotator):
    from tests.labeling.factories import make_schema

    schema = make_schema(
        project,
        [
            {"key": "quality", "type": "single_choice", "label": "Right?", "options": ["good", "bad"]},
            {"key": "corrected_answer", "type": "text", "label": "Better answer", "required": False},
        ],
        name="With corrections",
    )
    queue = make_queue(project, schema, name="Corrections")
    item = final_items(queue, annotator, [{"quality": "bad", "corrected_answer": "Refunds take 5 days."}])[0]
    dataset = _create(engineer).json()

    added = engineer.post(
        f"/api/v1/datasets/{dataset['id']}/items", {"items": [{"queue_item": item.pk}]}, format="json"
    ).json()["added"][0]

    assert added["reference_output"] == {"role": "assistant", "content": "Refunds take 5 days."}
    assert added["lineage"]["reference"] == "correction"


def test_edit_and_remove_items_and_page_through_them(engineer, project, annotator):
    dataset = dataset_with_items(project, annotator, 3)
    url = f"/api/v1/datasets/{dataset.pk}/items"
    first_page = engineer.get(url + "?limit=2").json()
    assert len(first_page["results"]) == 2
    rest = engineer.get(first_page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    item = first_page["results"][0]

    edited = engineer.patch(f"{url}/{item['id']}", {"critical": True, "tags": ["vip"], "split": "test"}, format="json")

    assert edited.status_code == 200
    body = edited.json()
    assert (body["critical"], body["tags"], body["split"]) == (True, ["vip"], "test")
    assert body["content_hash"] != item["content_hash"]
    assert body["content_hash"] == dataset_items.content_hash(body["key"], body)
    assert engineer.patch(f"{url}/{item['id']}", {"split": "holdout"}, format="json").json()["errors"].keys() == {
        "split"
    }
    assert engineer.delete(f"{url}/{item['id']}").status_code == 204
    assert engineer.delete(f"{url}/{item['id']}").status_code == 404
    assert DatasetItem.objects.filter(dataset=dataset).count() == 2
    assert engineer.get(url + "?cursor=garbage").status_code == 400


def test_a_frozen_version_never_changes(engineer, project, annotator):
    dataset = dataset_with_items(project, annotator, 3)
    response = engineer.post(f"/api/v1/datasets/{dataset.pk}/versions", {"note": "first"}, format="json")
    assert response.status_code == 201, response.json()
    v1 = response.json()
    items = list(DatasetItem.objects.filter(dataset=dataset).order_by("key"))
    assert v1["number"] == 1
    assert v1["item_count"] == 3 and v1["critical_count"] == 0
    assert v1["content_hash"] == dataset_items.version_hash((i.key, i.content_hash) for i in items)
    frozen_before = list(DatasetVersionItem.objects.filter(version__number=1).order_by("key").values())

    url = f"/api/v1/datasets/{dataset.pk}/items"
    engineer.patch(f"{url}/{items[0].pk}", {"critical": True, "tags": ["changed"]}, format="json")
    engineer.delete(f"{url}/{items[1].pk}")

    assert list(DatasetVersionItem.objects.filter(version__number=1).order_by("key").values()) == frozen_before
    again = engineer.get(f"/api/v1/datasets/{dataset.pk}/versions/1").json()
    assert again["content_hash"] == v1["content_hash"]
    assert [i["key"] for i in again["items"]["results"]] == [i.key for i in items]
    v2 = engineer.post(f"/api/v1/datasets/{dataset.pk}/versions", {}, format="json").json()
    assert v2["number"] == 2 and v2["item_count"] == 2 and v2["critical_count"] == 1
    assert v2["content_hash"] != v1["content_hash"]

    compare = engineer.get(f"/api/v1/datasets/{dataset.pk}/versions/1/compare/2").json()
    assert compare == {
        "a": 1,
        "b": 2,
        "added": [],
        "removed": [items[1].key],
        "changed": [{"key": items[0].key, "fields": ["critical", "tags"]}],
    }
    back = engineer.get(f"/api/v1/datasets/{dataset.pk}/versions/2/compare/1").json()
    assert back["added"] == [items[1].key] and back["removed"] == []
    versions = engineer.get(f"/api/v1/datasets/{dataset.pk}/versions").json()
    assert [v["number"] for v in versions] == [2, 1]
    assert engineer.get(f"/api/v1/datasets/{dataset.pk}/versions/3").status_code == 404
    assert engineer.get(f"/api/v1/datasets/{dataset.pk}/versions/99999999999").status_code == 404


def test_freezing_an_empty_dataset_is_400(engineer, project):
    dataset = _create(engineer).json()
    response = engineer.post(f"/api/v1/datasets/{dataset['id']}/versions", {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"items": ["The dataset has no items to freeze."]}
    assert not DatasetVersion.objects.exists()


def test_a_tag_names_one_version_at_most(engineer, project, annotator):
    dataset = dataset_with_items(project, annotator, 2)
    freeze(dataset)
    freeze(dataset)
    base = f"/api/v1/datasets/{dataset.pk}/versions"

    assert engineer.post(f"{base}/1/tags", {"tags": ["prod", "q3"]}, format="json").json()["tags"] == ["prod", "q3"]
    moved = engineer.post(f"{base}/2/tags", {"tags": ["prod"]}, format="json")

    assert moved.status_code == 200
    assert moved.json()["tags"] == ["prod"]
    assert DatasetVersion.objects.get(dataset=dataset, number=1).tags == ["q3"]
    replaced = engineer.put(f"{base}/1/tags", {"tags": ["staging"]}, format="json").json()
    assert replaced["tags"] == ["staging"]
    assert engineer.post(f"{base}/1/tags", {"tags": ["bad\x00"]}, format="json").status_code == 400


def test_promotion_rules_on_demand(engineer, project, queue, annotator):
    items = final_items(queue, annotator, [{"quality": "good"}, {"quality": "bad"}, {"quality": "good"}])
    dataset = _create(
        engineer,
        promotion_rules=[
            {"queue": "Support QA", "if": {"answers": {"quality": "good"}}, "critical": True, "tags": ["auto"]}
        ],
    ).json()
    assert dataset["promotion_rules"] == [
        {
            "queue": "Support QA",
            "if": {"answers": {"quality": "good"}, "agreement": "any"},
            "critical": True,
            "tags": ["auto"],
        }
    ]

    first = engineer.post(f"/api/v1/datasets/{dataset['id']}/promote")
    again = engineer.post(f"/api/v1/datasets/{dataset['id']}/promote")

    assert first.status_code == 200
    assert first.json()["matched"] == 2 and len(first.json()["added"]) == 2 and first.json()["existing"] == 0
    assert again.json() == {"matched": 2, "added": [], "existing": 2}
    promoted = DatasetItem.objects.filter(dataset_id=dataset["id"]).order_by("queue_item_id")
    assert [(i.queue_item_id, i.critical, i.tags) for i in promoted] == [
        (items[0].pk, True, ["auto"]),
        (items[2].pk, True, ["auto"]),
    ]


def test_promotion_rules_run_when_an_item_becomes_final(engineer, project, member, django_capture_on_commit_callbacks):
    from tests.evaluation.factories import label

    queue = make_queue(project, name="Pairs", annotations_per_item=2)
    dataset = _create(
        engineer, promotion_rules=[{"queue": "Pairs", "if": {"answers": {"quality": "good"}, "agreement": "unanimous"}}]
    ).json()
    agreed, split = add_items(queue, 2)
    first, second = member("annotator"), member("annotator")

    with django_capture_on_commit_callbacks(execute=True):
        label(agreed, first, {"quality": "good"})
        label(split, first, {"quality": "good"})
    assert not DatasetItem.objects.exists()  # not final yet
    with django_capture_on_commit_callbacks(execute=True):
        label(agreed, second, {"quality": "good"})
        label(split, second, {"quality": "bad"})

    promoted = list(DatasetItem.objects.filter(dataset_id=dataset["id"]))
    assert [i.queue_item_id for i in promoted] == [agreed.pk]
    assert len(promoted[0].lineage["label_ids"]) == 2
    # A redelivered task adds nothing.
    assert services_datasets.dataset_rules_apply(item_ids=[agreed.pk, split.pk]) == 0


def test_roles_and_tenants(api_client_for, agent_client, other_agent_client, project, annotator, other_org, member):
    dataset = dataset_with_items(project, annotator, 1)
    freeze(dataset)
    base = f"/api/v1/datasets/{dataset.pk}"

    # A project key (CI) reads its own project's datasets and versions, and writes nothing.
    assert agent_client.get(base).status_code == 200
    assert agent_client.get(f"{base}/versions/1").status_code == 200
    assert [d["id"] for d in agent_client.get("/api/v1/datasets").json()] == [dataset.pk]
    assert agent_client.post(f"{base}/versions", {}, format="json").status_code == 403
    assert api_client_for("annotator").get(base).status_code == 403
    assert api_client_for("approver").get("/api/v1/datasets").status_code == 403
    assert api_client_for("admin").post(f"{base}/versions", {}, format="json").status_code == 201

    # Another organization, or another project's key: missing.
    outsider = api_client_for("engineer", organization=other_org)
    assert outsider.get(base).status_code == 404
    assert outsider.patch(base, {"name": "x"}, format="json").status_code == 404
    assert outsider.get(f"{base}/versions/1/compare/1").status_code == 404
    assert outsider.get("/api/v1/datasets").json() == []
    assert other_agent_client.get(base).status_code == 404
    from tests.factories import ProjectFactory

    ProjectFactory(organization=project.organization, slug="sales")
    from reviewapp import services as core_services

    sales_key = core_services.api_key_create(project=project.organization.projects.get(slug="sales"), name="ci").raw
    from rest_framework.test import APIClient

    sales = APIClient()
    sales.credentials(HTTP_AUTHORIZATION=f"Bearer {sales_key}")
    assert sales.get(base).status_code == 404
    assert Dataset.objects.get(pk=dataset.pk).name == "Golden"
