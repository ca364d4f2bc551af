"""A new rubric version and a new pairwise queue over the same rubric at once on PostgreSQL:
both take the rubric's row lock, so whichever comes second sees the first, and a pairwise queue
never ends up over a rubric whose latest version asks anything but pairwise questions."""

from __future__ import annotations

import pytest

from labeling import lock_objects, pairwise, rubric, services
from labeling.models import LabelSchemaVersion, Queue, QueueKind
from reviewapp.errors import ValidationFailed
from tests.concurrency.racing import hold_call, join_all, start_thread, wait_until_blocked
from tests.factories import OrganizationFactory, ProjectFactory
from tests.labeling.factories import make_schema

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FREE_TEXT = {"key": "why", "type": "text", "label": "Why?"}


@pytest.mark.parametrize("first", ["version", "queue"])
def test_the_second_of_a_version_and_a_pairwise_queue_is_refused(monkeypatch, first):
    project = ProjectFactory(organization=OrganizationFactory(slug="race"), slug="race")
    schema = make_schema(project, [pairwise.question("overall", "Which is better?")], name="A or B")
    hold = hold_call(monkeypatch, lock_objects, "label_schema_lock", thread=first)
    results: dict = {}
    sides = {
        "version": lambda: services.label_schema_version_create(
            schema=schema,
            rubric_in=rubric.Rubric.model_validate({"name": "A or B", "questions": [FREE_TEXT]}),
            user=None,
        ),
        "queue": lambda: services.queue_create(
            project=project,
            spec=services.QueueSpec(schema=schema, name="v1 vs v2", kind=QueueKind.PAIRWISE),
            user=None,
        ),
    }
    second = "queue" if first == "version" else "version"

    held = start_thread(first, sides[first], results)
    try:
        hold.wait_inside()  # the first holds the rubric's row
        other = start_thread(second, sides[second], results)
        wait_until_blocked(count=1)  # the second waits on it
        assert second not in results
    finally:
        hold.release()
    join_all(held, other)

    assert not isinstance(results[first], BaseException), results
    assert isinstance(results[second], ValidationFailed)
    versions = list(
        LabelSchemaVersion.objects.filter(schema=schema).order_by("version").values_list("version", flat=True)
    )
    assert (versions, Queue.objects.filter(kind=QueueKind.PAIRWISE).count()) == (
        ([1, 2], 0) if first == "version" else ([1], 1)
    )
