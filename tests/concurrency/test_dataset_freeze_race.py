"""Two freezes of one dataset at once on PostgreSQL: each takes the dataset's row lock, so the
second waits for the first and then takes the next number; both versions hold the whole
working set."""

from __future__ import annotations

import pytest

from evaluation import lock_objects, services_datasets
from evaluation.models import Dataset, DatasetVersion
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_until_blocked
from tests.evaluation.factories_datasets import dataset_with_items
from tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_freezes_at_once_get_distinct_numbers(monkeypatch):
    organization = OrganizationFactory(slug="race")
    project = ProjectFactory(organization=organization, slug="support")
    annotator = UserFactory(username="ann")
    MembershipFactory(user=annotator, organization=organization, role="annotator")
    dataset = dataset_with_items(project, annotator, 3)
    hold = hold_call(monkeypatch, lock_objects, "dataset_lock", thread="first")
    results: dict = {}

    def freeze():
        return services_datasets.dataset_version_freeze(dataset=Dataset.objects.get(pk=dataset.pk))

    first = start_thread("first", freeze, results)
    try:
        hold.wait_inside()  # the first freeze holds the dataset row, before it picks a number
        second = start_thread("second", freeze, results)
        wait_until_blocked(count=1)  # the second waits on that row
        assert "second" not in results
    finally:
        hold.release()
    join_all(first, second)

    assert not isinstance(results["first"], BaseException), results
    assert not isinstance(results["second"], BaseException), results
    assert (results["first"].number, results["second"].number) == (1, 2)
    versions = DatasetVersion.objects.filter(dataset=dataset).order_by("number")
    assert [(v.number, v.item_count, v.items.count()) for v in versions] == [(1, 3, 3), (2, 3, 3)]
    assert versions[0].content_hash == versions[1].content_hash
