"""The calibration pages: who may open them, tenants, the figures and readings they show, hostile
judge and criterion names escaped, query counts pinned, signals against labels, and the trust
preset added to a queue through the service."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from evaluation import selectors
from evaluation.models import CalibrationPair, PairKind
from labeling.models import Queue, QueueItem
from reviewapp.models import AuditEvent, ConversationSignal
from tests.evaluation.factories import calibration_queue
from tests.labeling.factories import add_items

pytestmark = pytest.mark.django_db

INDEX = "/evaluation/"
PAGE = "/evaluation/calibration/"
ADD = "/evaluation/calibration/trust-rule"
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
HOSTILE = '<script>alert("j")</script>'


@pytest.fixture
def browser_for(member):
    def make(role: str, *, organization=None) -> Client:
        user = member(role, organization=organization)
        client = Client()
        client.force_login(user)
        client.user = user  # type: ignore[attr-defined]
        return client

    return make


def make_pairs(project, cells: dict[tuple[bool, bool], int], *, judge="gpt", criterion="correctness", confidence=None):
    """Pairs with these (judge_pass, human_pass) counts, one queue item each, a week apart in
    two halves; `confidence(i, judge_pass, human_pass)` gives each its judge confidence."""
    queue = calibration_queue(project)
    total = sum(cells.values())
    items = add_items(queue, total)
    rows, i = [], 0
    for (jp, hp), count in cells.items():
        for _ in range(count):
            item = items[i]
            rows.append(
                CalibrationPair(
                    organization=project.organization,
                    project=project,
                    kind=PairKind.JUDGE,
                    conversation=item.conversation,
                    queue_item=item,
                    judge=judge,
                    judge_version="v1",
                    criterion=criterion,
                    judge_pass=jp,
                    human_pass=hp,
                    judge_confidence=None if confidence is None else confidence(i, jp, hp),
                    labeled_at=T0 + dt.timedelta(days=7 * (i % 2)),
                )
            )
            i += 1
    CalibrationPair.objects.bulk_create(rows)
    return queue, items


@pytest.mark.parametrize("path", [INDEX, PAGE])
@pytest.mark.parametrize(("role", "status"), [("engineer", 200), ("admin", 200), ("approver", 403), ("annotator", 403)])
def test_engineers_and_admins_only(browser_for, project, path, role, status):
    assert browser_for(role).get(path).status_code == status


@pytest.mark.parametrize("path", [INDEX, PAGE])
def test_signed_out_goes_to_login_and_another_tenants_project_is_404(browser_for, project, other_project, path):
    answer = Client().get(path)
    assert answer.status_code == 302 and "/login/" in answer["Location"]
    assert browser_for("engineer").get(path, {"project": "shop"}).status_code == 404


def test_another_tenants_pairs_are_not_shown(browser_for, project, other_project, other_org):
    make_pairs(other_project, {(True, True): 40, (False, False): 40}, judge="theirs")
    page = browser_for("engineer").get(PAGE, {"project": "support"}).content.decode()
    assert "theirs" not in page and "No calibration pairs match" in page
    index = browser_for("engineer").get(INDEX).content.decode()
    assert "theirs" not in index and "No calibration pairs yet" in index
