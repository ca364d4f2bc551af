"""GET /api/v1/calibration, /calibration/agent and GET/PUT /calibration/bar: figures are the
stats module's on the same arrays, tenant-scoped, bounded."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from evaluation import selectors, stats
from evaluation.models import CalibrationBar, CalibrationPair, PairKind
from labeling.models import QueueItem
from reviewapp.models import AuditEvent
from tests.evaluation.factories import calibration_queue, score
from tests.factories import ConversationFactory
from tests.labeling.factories import add_items

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
# (judge_pass, human_pass, inclusion probability, confidence), two weeks apart.
ROWS = [
    (True, True, 0.5, 0.9),
    (True, True, 1.0, 0.8),
    (True, False, 0.25, 0.6),
    (False, False, 0.5, 0.7),
    (False, True, 1.0, 0.55),
    (True, True, 0.5, 0.95),
    (False, False, 0.25, 0.85),
]


@pytest.fixture
def pairs(project):
    queue = calibration_queue(project)
    items = add_items(queue, len(ROWS))
    for index, (item, (jp, hp, p, conf)) in enumerate(zip(items, ROWS, strict=True)):
        QueueItem.objects.filter(pk=item.pk).update(inclusion_probability=p)
        score(
            project,
            item.conversation,
            judge="gpt",
            judge_version="v1",
            criterion="correctness",
            label="pass" if jp else "fail",
            confidence=conf,
        )
        CalibrationPair.objects.create(
            organization=project.organization,
            project=project,
            kind=PairKind.JUDGE,
            conversation=item.conversation,
            queue_item=item,
            judge="gpt",
            judge_version="v1",
            criterion="correctness",
            question_key="quality",
            judge_label="pass" if jp else "fail",
            judge_confidence=conf,
            judge_pass=jp,
            human_pass=hp,
            human_answer="good" if hp else "bad",
            inclusion_probability=p,
            labeled_at=T0 + dt.timedelta(days=3 * index),
        )
    # Judged but never labelled: counts in the judge-only pass rate only.
    for passed in (True, True, False):
        conversation = ConversationFactory(project=project)
        score(
            project,
            conversation,
            judge="gpt",
            judge_version="v1",
            criterion="correctness",
            label="PASS" if passed else "fail",
        )
    return items


def test_figures_are_the_stats_modules_on_the_same_arrays(api_client_for, project, pairs):
    response = api_client_for("engineer").get("/api/v1/calibration", {"project": project.slug})

    assert response.status_code == 200
    [group] = response.json()["judges"]
    jp = np.array([r[0] for r in ROWS])
    hp = np.array([r[1] for r in ROWS])
    p = np.array([r[2] for r in ROWS])
    w = stats.horvitz_thompson_weights(p)
    conf = np.array([r[3] for r in ROWS])
    all_judged = np.array([True, True, True, False, False, True, False, True, True, False])
    assert (group["judge"], group["criterion"], group["judge_version"], group["n"]) == ("gpt", "correctness", "v1", 7)
    assert group["binary"] == selectors._jsonable(stats.binary_agreement(jp, hp, w))
    assert group["confidence"] == selectors._jsonable(stats.confidence_calibration(conf, jp == hp, w))
    assert group["pass_rate"] == selectors._jsonable(stats.pass_rate_estimates(np.sort(all_judged)[::-1], jp, hp, p))
    assert group["scores"] is None  # labels, no numeric scores
    assert group["status"] == stats.bar_status(stats.binary_agreement(jp, hp, w))
    assert [point["week"] for point in group["trend"]] == ["2025-03-03", "2025-03-10", "2025-03-17"]
    assert [point["n"] for point in group["trend"]] == [3, 2, 2]


def test_filters_narrow_the_pairs_and_bad_params_are_400_naming_the_field(api_client_for, project, pairs):
    client = api_client_for("engineer")

    assert client.get("/api/v1/calibration", {"project": project.slug, "judge_version": "v2"}).json()["judges"] == []
    since = client.get("/api/v1/calibration", {"project": project.slug, "since": "2025-03-10T00:00:00Z"})
    assert since.json()["judges"][0]["n"] == 4
    bad = client.get("/api/v1/calibration", {"project": project.slug, "judge": "x" * 101, "since": "yesterday"})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"judge", "since"}
    assert client.get("/api/v1/calibration").status_code == 400


def test_another_tenants_project_is_not_found_and_its_pairs_never_show(api_client_for, project, other_project, pairs):
    other_engineer = api_client_for("engineer", organization=other_project.organization)

    response = other_engineer.get("/api/v1/calibration", {"project": project.slug})
    assert response.status_code == 400 and "project" in response.json()["errors"]
    own = other_engineer.get("/api/v1/calibration", {"project": other_project.slug})
    assert own.status_code == 200 and own.json()["judges"] == []


def test_annotators_and_agents_may_not_read_calibration(api_client_for, agent_client, project, pairs):
    assert api_client_for("annotator").get("/api/v1/calibration", {"project": project.slug}).status_code == 403
    assert agent_client.get("/api/v1/calibration", {"project": project.slug}).status_code == 403


def test_the_bar_defaults_then_admins_set_it_bounded_and_audited(api_client_for, project):
    admin = api_client_for("admin")
    url = f"/api/v1/calibration/bar?project={project.slug}"

    assert admin.get(url).json() == {"kappa": 0.6, "tpr": 0.9, "tnr": 0.9, "webhook_url": "", "updated_at": None}
    refused = admin.put(url, {"kappa": 1.5, "tnr": "x"}, format="json")
    assert refused.status_code == 400 and set(refused.json()["errors"]) == {"kappa", "tnr"}
    assert not CalibrationBar.objects.exists()

    done = admin.put(url, {"kappa": 0.7, "webhook_url": "https://hooks.example.com/judge"}, format="json")
    assert done.status_code == 200
    assert (done.json()["kappa"], done.json()["tpr"], done.json()["webhook_url"]) == (
        0.7,
        0.9,
        "https://hooks.example.com/judge",
    )
    event = AuditEvent.objects.get(kind="calibration.bar_set")
    assert (event.data["before"]["kappa"], event.data["after"]["kappa"]) == (0.6, 0.7)
    assert api_client_for("engineer").put(url, {"kappa": 0.1}, format="json").status_code == 403
    assert CalibrationBar.objects.get().kappa == 0.7


def test_the_bar_changes_the_status_figures_compare_against(api_client_for, project, pairs):
    admin = api_client_for("admin")
    admin.put(f"/api/v1/calibration/bar?project={project.slug}", {"kappa": 0.0, "tpr": 0.0, "tnr": 0.0}, format="json")

    [group] = admin.get("/api/v1/calibration", {"project": project.slug}).json()["judges"]

    jp = np.array([r[0] for r in ROWS])
    hp = np.array([r[1] for r in ROWS])
    w = stats.horvitz_thompson_weights(np.array([r[2] for r in ROWS]))
    expected = stats.bar_status(stats.binary_agreement(jp, hp, w), kappa_bar=0.0, tpr_bar=0.0, tnr_bar=0.0)
    assert group["status"] == expected


def test_agent_calibration_per_action(api_client_for, project, other_project):
    confidences = [0.9, 0.8, 0.3, 0.95, 0.4]
    approved = [True, True, False, True, True]
    for index, (conf, ok) in enumerate(zip(confidences, approved, strict=True)):
        CalibrationPair.objects.create(
            organization=project.organization,
            project=project,
            kind=PairKind.AGENT_ACTION,
            action_id=index + 1,
            judge="agent",
            criterion="refund",
            judge_confidence=conf,
            human_pass=ok,
            labeled_at=T0,
        )
    CalibrationPair.objects.create(
        organization=other_project.organization,
        project=other_project,
        kind=PairKind.AGENT_ACTION,
        action_id=99,
        judge="agent",
        criterion="refund",
        judge_confidence=0.1,
        human_pass=False,
        labeled_at=T0,
    )

    response = api_client_for("engineer").get(
        "/api/v1/calibration/agent", {"project": project.slug, "action": "refund"}
    )

    [row] = response.json()["actions"]
    conf, ok = np.array(confidences), np.array(approved)
    assert (row["action"], row["n"]) == ("refund", 5)
    assert row["approval_rate"]["value"] == 0.8
    assert row["approval_rate"]["interval"] == selectors._jsonable(stats.wilson(4, 5))
    assert row["confidence"] == selectors._jsonable(stats.confidence_calibration(conf, ok))
    assert row["trust"] == selectors._jsonable(stats.trust_threshold(conf, ok))
