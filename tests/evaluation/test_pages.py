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
from labeling.models import Queue
from reviewapp.models import AuditEvent, ConversationSignal
from tests.evaluation.factories import calibration_queue
from tests.labeling.factories import add_items

pytestmark = pytest.mark.django_db

INDEX = "/evaluation/"
PAGE = "/evaluation/calibration/"
ADD = "/evaluation/calibration/trust-rule"
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
HOSTILE = '<script>alert("j")</script>'


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


def test_page_shows_the_figures_and_readings_from_known_numbers(browser_for, project):
    # 40 human passes (36 judged pass), 40 human fails (4 judged pass): TPR = TNR = 0.9.
    make_pairs(project, {(True, True): 36, (False, True): 4, (True, False): 4, (False, False): 36})
    page = browser_for("engineer").get(PAGE, {"project": "support", "judge": "gpt"}).content.decode()
    assert "The judge passes 10% of answers humans fail, and fails 10% of answers humans pass (80 pairs)." in page
    # kappa = (0.9 - 0.5) / 0.5 = 0.8: substantial ends below 0.8.
    assert "Agreement beyond chance is almost perfect (kappa 0.80" in page
    assert "Meets the bar" in page and "meets the bar" in page
    assert page.count("<svg") == 2


def test_too_few_pairs_names_what_is_missing(browser_for, project):
    make_pairs(project, {(True, True): 50, (False, False): 10})
    page = browser_for("engineer").get(PAGE, {"project": "support"}).content.decode()
    assert "Too few pairs: 35 human fails are needed to show TNR &gt;= 0.90 (there are 10)." in page
    index = browser_for("engineer").get(INDEX).content.decode()
    assert "too few pairs" in index


def test_hostile_judge_and_criterion_names_are_escaped(browser_for, project):
    make_pairs(
        project,
        {(True, True): 40, (False, False): 40},
        judge=HOSTILE,
        criterion=HOSTILE,
        confidence=lambda i, jp, hp: 0.95,
    )
    for path, params in ((INDEX, {}), (PAGE, {"judge": HOSTILE})):
        html = browser_for("engineer").get(path, {"project": "support", **params}).content.decode()
        assert HOSTILE not in html
        assert (
            "&lt;script&gt;alert(&quot;j&quot;)&lt;/script&gt;" in html
            or "&lt;script&gt;alert(&#x27;" in html
            or "&lt;script&gt;" in html
        )
        assert "style=" not in html and "<style" not in html
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag, tag


def test_filters_are_bounded(browser_for, project):
    assert browser_for("engineer").get(PAGE, {"project": "support", "judge": "x" * 101}).status_code == 400


def test_query_counts_are_pinned(browser_for, project, django_assert_num_queries):
    make_pairs(project, {(True, True): 40, (False, False): 40}, confidence=lambda i, jp, hp: 0.9)
    client = browser_for("engineer")
    client.get(PAGE)  # session and caches warm
    # The signed-in page's own (session, user, memberships, the nav) plus projects, bar, pairs,
    # questions, the judge-only count, the signals aggregate and the queues: none per pair. A
    # group under selectors.ROWS_BELOW judged pairs (these have 80) reads its pairs once more, in
    # labelling order, for PPI++'s cross-fitted folds: one query per small group.
    with django_assert_num_queries(13):
        assert client.get(PAGE, {"project": "support"}).status_code == 200
    make_pairs(project, {(True, True): 40, (False, False): 40}, judge="claude")
    with django_assert_num_queries(15):  # one more (small) judge: its judge-only count and its pairs
        assert client.get(PAGE, {"project": "support"}).status_code == 200


def test_signals_are_measured_against_human_labels(project):
    make_pairs(project, {(True, True): 6, (False, False): 4}, judge="a")
    # The same items judged by a second judge: one human verdict per conversation and criterion.
    CalibrationPair.objects.bulk_create(
        CalibrationPair(
            organization=project.organization,
            project=project,
            kind=PairKind.JUDGE,
            conversation=p.conversation,
            queue_item=p.queue_item,
            judge="b",
            judge_version="v1",
            criterion=p.criterion,
            judge_pass=p.judge_pass,
            human_pass=p.human_pass,
            labeled_at=p.labeled_at,
        )
        for p in CalibrationPair.objects.filter(judge="a")
    )
    # Frustration on 2 passes and 3 fails; rephrased (by the agent and derived) on one fail.
    fails = [p.conversation_id for p in CalibrationPair.objects.filter(judge="a", human_pass=False)]
    passes = [p.conversation_id for p in CalibrationPair.objects.filter(judge="a", human_pass=True)]
    rows = [(c, "frustration", "derived") for c in passes[:2] + fails[:3]]
    rows += [(fails[0], "rephrased", "agent"), (fails[0], "rephrased", "derived")]
    ConversationSignal.objects.bulk_create(
        ConversationSignal(conversation_id=c, project=project, kind=k, source=s) for c, k, s in rows
    )
    found = selectors.signal_failure_rates(
        organization=project.organization, project=project, filters=selectors.Filters()
    )
    assert found["all"]["n"] == 10 and found["all"]["fails"] == 4
    assert found["kinds"]["frustration"]["n"] == 5 and found["kinds"]["frustration"]["fails"] == 3
    assert found["kinds"]["frustration"]["fail_rate"]["value"] == pytest.approx(0.6)
    assert found["kinds"]["rephrased"] == {**found["kinds"]["rephrased"], "n": 1, "fails": 1}
    assert found["kinds"]["gave_up"]["n"] == 0 and found["kinds"]["gave_up"]["fail_rate"]["value"] is None
    # Another tenant sees nothing of it.
    assert (
        selectors.signal_failure_rates(
            organization=project.organization, project=project, filters=selectors.Filters(judge="zzz")
        )["all"]["n"]
        == 0
    )


def _post_rule(client, queue, **fields):
    data = {"project": "support", "queue": queue.pk, "judge": "gpt", "criterion": "correctness", "threshold": "0.8",
            "rate": "1", "confirm": "yes", **fields}  # fmt: skip
    return client.post(ADD, data)


def test_trust_rule_is_added_through_the_service(browser_for, project, django_capture_on_commit_callbacks):
    queue, _ = make_pairs(project, {(True, True): 40, (False, False): 40}, confidence=lambda i, jp, hp: 0.9)
    Queue.objects.filter(pk=queue.pk).update(sampling=[{"rate": 0.1}])
    client = browser_for("engineer")
    generation = Queue.objects.get(pk=queue.pk).backfill_generation
    with django_capture_on_commit_callbacks() as callbacks:
        answer = _post_rule(client, queue)
    assert answer.status_code == 302
    queue.refresh_from_db()
    assert queue.sampling == [
        {"rate": 0.1},
        {
            "name": "judge unsure",
            "rate": 1.0,
            "if": {"judge": "gpt", "criterion": "correctness", "confidence_below": 0.8},
        },
    ]
    assert queue.backfill_generation == generation + 1 and callbacks  # the backfill restarts
    assert AuditEvent.objects.filter(kind="calibration.trust_rule_added").count() == 1
    # The same rule again is refused and changes nothing.
    _post_rule(client, queue)
    assert len(Queue.objects.get(pk=queue.pk).sampling) == 2


@pytest.mark.parametrize(
    ("fields", "why"),
    [({"confirm": ""}, "unconfirmed"), ({"threshold": "1.5"}, "bad threshold"), ({"threshold": "nan"}, "nan"),
     ({"judge": "x" * 101}, "long judge"), ({"rate": "0"}, "zero rate")],
)  # fmt: skip
def test_trust_rule_refusals_change_nothing(browser_for, project, fields, why):
    queue, _ = make_pairs(project, {(True, True): 4})
    answer = _post_rule(browser_for("engineer"), queue, **fields)
    assert answer.status_code == 302, why
    assert Queue.objects.get(pk=queue.pk).sampling == queue.sampling, why
    assert not AuditEvent.objects.filter(kind="calibration.trust_rule_added").exists()


def test_trust_rule_roles_and_tenants(browser_for, project, other_project, other_org):
    queue, _ = make_pairs(project, {(True, True): 4})
    theirs, _ = make_pairs(other_project, {(True, True): 4})
    assert _post_rule(browser_for("annotator"), queue).status_code == 403
    assert _post_rule(browser_for("approver"), queue).status_code == 403
    assert _post_rule(browser_for("engineer"), theirs).status_code == 404
    assert _post_rule(browser_for("engineer", organization=other_org), queue, project="shop").status_code == 404
    assert Queue.objects.get(pk=queue.pk).sampling == queue.sampling
    assert Queue.objects.get(pk=theirs.pk).sampling == theirs.sampling
