"""The dataset pages: who may open and change them, tenants, escaping, and the forms calling
the same services as the API."""

from __future__ import annotations

import pytest

from evaluation import services_datasets
from evaluation.models import Dataset, DatasetItem, DatasetVersion
from tests.evaluation.factories_datasets import dataset_with_items, final_items, freeze
from tests.labeling.factories import make_queue

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("d")</script>'


@pytest.fixture
def annotator(member):
    return member("annotator", username="ann")


def test_list_create_and_open_a_dataset(browser_for, project):
    engineer = browser_for("engineer")
    created = engineer.post("/evaluation/datasets/", {"project": "support", "name": HOSTILE})
    dataset = Dataset.objects.get()
    assert created.status_code == 302 and created["Location"] == f"/evaluation/datasets/{dataset.pk}/"

    listing = engineer.get("/evaluation/datasets/?project=support")
    page = engineer.get(f"/evaluation/datasets/{dataset.pk}/")

    for response in (listing, page):
        assert response.status_code == 200
        assert HOSTILE.encode() not in response.content
        assert b"&lt;script&gt;" in response.content
    assert engineer.post("/evaluation/datasets/", {"project": "support", "name": HOSTILE}).status_code == 302
    assert Dataset.objects.count() == 1  # the name is taken: a message, not a second row


def test_items_versions_tags_and_compare_from_the_page(browser_for, project, annotator):
    dataset = dataset_with_items(project, annotator, 2)
    engineer = browser_for("engineer")
    base = f"/evaluation/datasets/{dataset.pk}"
    first, second = DatasetItem.objects.filter(dataset=dataset).order_by("id")

    assert engineer.post(f"{base}/freeze", {"note": "v1"}).status_code == 302
    # Another split than the one its key's hash gave it (which varies with the factories' ids).
    split = "test" if first.split == "dev" else "dev"
    engineer.post(f"{base}/items/{first.pk}/edit", {"critical": "on", "tags": "vip, refunds", "split": split})
    engineer.post(f"{base}/items/{second.pk}/remove")
    engineer.post(f"{base}/freeze")
    engineer.post(f"{base}/versions/2/tags", {"tags": "prod"})

    first.refresh_from_db()
    assert (first.critical, first.tags, first.split) == (True, ["vip", "refunds"], split)
    assert not DatasetItem.objects.filter(pk=second.pk).exists()
    assert [(v.number, v.item_count, v.tags) for v in DatasetVersion.objects.order_by("number")] == [
        (1, 2, []),
        (2, 1, ["prod"]),
    ]
    page = engineer.get(f"{base}/")
    assert b"Freeze a new version" in page.content and b"prod" in page.content and b"ann" in page.content
    # Each version downloads; the gate runs load into the page from their own section.
    for number in (1, 2):
        assert f'action="/evaluation/datasets/{dataset.pk}/versions/{number}/export"'.encode() in page.content
    assert f'hx-get="/evaluation/datasets/{dataset.pk}/runs/section"'.encode() in page.content
    assert engineer.get(f"{base}/runs/section").status_code == 200
    compare = engineer.get(f"{base}/compare?a=1&b=2")
    assert compare.status_code == 200
    assert second.key.encode() in compare.content
    assert b"critical, tags, split" in compare.content
    assert engineer.get(f"{base}/compare?a=1&b=9").status_code == 404
    assert engineer.get(f"{base}/compare?a=x&b=1").status_code == 404


def test_add_to_dataset_from_the_review_page(browser_for, project, annotator):
    queue = make_queue(project, name="Support QA")
    item = final_items(queue, annotator, [{"quality": "good"}])[0]
    dataset = services_datasets.dataset_create(project=project, values={"name": "Golden"})
    engineer = browser_for("engineer")

    review = engineer.get(f"/labeling/items/{item.pk}/review")
    assert f"/evaluation/datasets/add?queue_item={item.pk}".encode() in review.content
    form = engineer.get(f"/evaluation/datasets/add?queue_item={item.pk}")
    assert form.status_code == 200 and b"Golden" in form.content
    added = engineer.post(
        "/evaluation/datasets/add", {"queue_item": item.pk, "dataset": dataset.pk, "critical": "on", "tags": "a"}
    )
    again = engineer.post("/evaluation/datasets/add", {"queue_item": item.pk, "dataset": dataset.pk})

    assert added.status_code == again.status_code == 302
    assert [(i.queue_item_id, i.critical, i.tags) for i in DatasetItem.objects.all()] == [(item.pk, True, ["a"])]
    assert engineer.get("/evaluation/datasets/add?queue_item=999999").status_code == 404
    assert engineer.get("/evaluation/datasets/add?queue_item=abc").status_code == 404


def test_roles_and_tenants_on_the_pages(browser_for, project, annotator, other_org):
    dataset = dataset_with_items(project, annotator, 1)
    freeze(dataset)
    item = dataset.items.get()
    base = f"/evaluation/datasets/{dataset.pk}"

    assert browser_for("annotator").get(f"{base}/").status_code == 403
    assert browser_for("approver").get("/evaluation/datasets/").status_code == 403
    outsider = browser_for("engineer", organization=other_org)
    for method, path in [
        ("get", f"{base}/"),
        ("post", f"{base}/freeze"),
        ("post", f"{base}/items/{item.pk}/remove"),
        ("post", f"{base}/versions/1/tags"),
        ("get", f"{base}/compare?a=1&b=1"),
        ("get", f"/evaluation/datasets/add?queue_item={item.queue_item_id}"),
    ]:
        assert getattr(outsider, method)(path).status_code == 404, path
    assert DatasetItem.objects.filter(pk=item.pk).exists()
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 1
