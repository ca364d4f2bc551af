"""A queue's kind as queue_create takes it from any caller (a configuration document, the admin):
only labeling's kinds, and a pairwise queue only over a rubric of pairwise questions."""

from __future__ import annotations

import pytest

from labeling import pairwise
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
