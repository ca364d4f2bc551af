"""Daily calibration snapshots: the budget controller's history end to end (pairs -> snapshot
status -> rate), and the below-bar webhook, sent once per change through the core's guarded
sender to a local receiver."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from evaluation import selectors, services
from evaluation.models import CalibrationBar, CalibrationPair, CalibrationSnapshot, CalibrationStatus, PairKind
from labeling import services as labeling_services
from labeling.models import RateChange
from reviewapp.principal import Principal
from tests.escalations.receiver import receiver
from tests.evaluation.factories import add_items, calibration_queue

D0 = dt.date(2025, 3, 10)
DAY = dt.timedelta(days=1)


def _at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


def _pairs(queue, day: dt.date, rows: list[tuple[bool, bool]], version: str = "v1") -> None:
    """One pair per (judge_pass, human_pass), labelled at noon of `day`."""
    items = add_items(queue, len(rows))[-len(rows) :]  # add_items lists every item of the queue
    CalibrationPair.objects.bulk_create(
        CalibrationPair(
            organization=queue.organization,
            project=queue.project,
            kind=PairKind.JUDGE,
            conversation_id=item.conversation_id,
            queue_item=item,
            judge="gpt",
            judge_version=version,
            criterion="correctness",
            question_key="quality",
            judge_pass=jp,
            human_pass=hp,
            inclusion_probability=1.0,
            labeled_at=_at(day),
        )
        for item, (jp, hp) in zip(items, rows, strict=True)
    )


AGREEING = [(True, True)] * 40 + [(False, False)] * 40
# The judge passes everything: it fails none of what people fail.
LENIENT = [(True, True)] * 40 + [(True, False)] * 40


@pytest.fixture
def provider():
    """Evaluation's provider, as EvaluationConfig.ready registers it (other tests replace it)."""
    labeling_services.calibration_provider_register(selectors.calibration_readings)
    yield
    labeling_services.calibration_provider_register(selectors.calibration_readings)


def test_the_app_registers_its_provider_at_start_up(provider):
    from django.apps import apps

    labeling_services.calibration_provider_clear()
    apps.get_app_config("evaluation").ready()
    from labeling.services import budgets

    assert budgets._providers == [selectors.calibration_readings]


@pytest.mark.django_db
def test_a_snapshot_figures_the_week_of_pairs_against_the_bar(project):
    queue = calibration_queue(project)
    _pairs(queue, D0 - 6 * DAY, AGREEING)
    _pairs(queue, D0 - 7 * DAY, LENIENT)  # a day before the week: not counted
    assert services.calibration_snapshots_take(day=D0) == 1
    snap = CalibrationSnapshot.objects.get()
    assert (snap.day, snap.n, snap.status, snap.cleared, snap.judge_version) == (D0, 80, "ok", True, "v1")
    # The tightest figure: TPR and TNR are 40/40, Wilson's lower bound 40 / (40 + 1.96^2).
    assert snap.lower == pytest.approx(40 / (40 + 1.959964**2), abs=1e-4)
    assert snap.lower_bar == 0.9
    assert snap.figures["tnr"]["value"] == 1.0 and snap.bar == {"kappa": 0.6, "tpr": 0.9, "tnr": 0.9}
    # A rerun rewrites the same row.
    services.calibration_snapshots_take(day=D0)
    assert CalibrationSnapshot.objects.count() == 1
    readings = selectors.calibration_readings(
        project_id=project.pk, judge="gpt", criterion="correctness", since=_at(D0 - 9 * DAY), until=_at(D0 + DAY)
    )
    assert [(p.at, p.status, p.judge_version) for p in readings] == [(_at(D0 + DAY, 0), "ok", "v1")]
    assert (
        selectors.calibration_readings(
            project_id=project.pk, judge="gpt", criterion="", since=_at(D0), until=_at(D0 + DAY)
        )
        is None
    )


@pytest.mark.django_db
def test_too_few_pairs_and_another_projects_pairs(project, other_project):
    queue = calibration_queue(project)
    _pairs(queue, D0, AGREEING[:30] + AGREEING[-30:])
    other = calibration_queue(other_project)
    _pairs(other, D0, LENIENT)
    services.calibration_snapshots_take(day=D0)
    mine = CalibrationSnapshot.objects.get(project=project)
    theirs = CalibrationSnapshot.objects.get(project=other_project)
    assert (mine.status, mine.n, theirs.status) == ("too_few", 60, "below_bar")


@pytest.mark.django_db
def test_the_controller_steps_down_on_ok_snapshots_and_back_up_at_once_below_the_bar(project, provider):
    queue = calibration_queue(project, sampling=({"rate": 0.3},), backfill_days=0)
    admin = Principal(organization=project.organization, role="admin")
    # No criterion named: the controller follows the queue's rubric question's judge_criterion.
    queue = labeling_services.queue_budget_controller_set(
        principal=admin,
        queue=queue,
        data={"enabled": True, "judge": "gpt", "base_rate": 0.5, "window_days": 3, "floor_per_day": 0},
    )
    RateChange.objects.filter(queue=queue).update(at=_at(D0 - 30 * DAY))
    _pairs(queue, D0 - 6 * DAY, AGREEING)
    for back in range(6, -1, -1):
        services.calibration_snapshots_take(day=D0 - back * DAY)
    assert set(CalibrationSnapshot.objects.values_list("status", flat=True)) == {"ok"}

    decision = labeling_services.queue_budget_control(queue_id=queue.pk, now=_at(D0 + DAY, 1))
    queue.refresh_from_db()
    assert (decision.changed, queue.controlled_rate, queue.controller_judge_version) == (True, 0.4, "v1"), decision

    # The judge turns lenient: the next day's snapshot is below the bar, and the rate goes back
    # to the base rate at once (no window to wait for).
    _pairs(queue, D0 + DAY, LENIENT)
    services.calibration_snapshots_take(day=D0 + DAY)
    assert CalibrationSnapshot.objects.get(day=D0 + DAY).status == "below_bar"
    decision = labeling_services.queue_budget_control(queue_id=queue.pk, now=_at(D0 + 2 * DAY, 1))
    queue.refresh_from_db()
    assert queue.controlled_rate == 0.5
    assert decision.reason == "agreement below the bar: back to the base rate"
    assert list(RateChange.objects.filter(queue=queue).order_by("at").values_list("old_rate", "new_rate")) == [
        (None, 0.5),
        (0.5, 0.4),
        (0.4, 0.5),
    ]


@pytest.mark.django_db
def test_a_window_not_all_ok_holds_the_rate(project, provider):
    queue = calibration_queue(project, sampling=({"rate": 0.3},), backfill_days=0)
    admin = Principal(organization=project.organization, role="admin")
    labeling_services.queue_budget_controller_set(
        principal=admin,
        queue=queue,
        data={"enabled": True, "judge": "gpt", "criterion": "correctness", "base_rate": 0.5, "window_days": 3},
    )
    RateChange.objects.filter(queue=queue).update(at=_at(D0 - 30 * DAY))
    _pairs(queue, D0 - 1 * DAY, AGREEING[:30] + AGREEING[-30:])  # too few for the bar
    for back in range(4, -1, -1):
        services.calibration_snapshots_take(day=D0 - back * DAY)
    decision = labeling_services.queue_budget_control(queue_id=queue.pk, now=_at(D0 + DAY, 1))
    assert decision.changed is False
    queue.refresh_from_db()
    assert queue.controlled_rate == 0.5


# --- the below-bar alert -----------------------------------------------------------------------


@pytest.fixture
def private_hosts(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.SITE_URL = "https://review.example.com"


@pytest.mark.django_db
def test_a_drop_below_the_bar_posts_once_per_change(project, private_hosts, django_capture_on_commit_callbacks):
    queue = calibration_queue(project)
    with receiver([200]) as r:
        services.bar_set(project=project, values={"webhook_url": r.url})
        _pairs(queue, D0, AGREEING)
        with django_capture_on_commit_callbacks(execute=True):
            services.calibration_snapshots_take(day=D0)
        assert r.requests == []  # ok: nothing to tell
        _pairs(queue, D0 + DAY, LENIENT)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.calibration_snapshots_take(day=D0 + DAY)
        assert len(callbacks) == 1
        assert len(r.requests) == 1
        body = json.loads(r.requests[0].body)
        assert {k: body[k] for k in ("event", "project", "judge", "criterion", "judge_version", "status", "n")} == {
            "event": "calibration.below_bar",
            "project": project.slug,
            "judge": "gpt",
            "criterion": "correctness",
            "judge_version": "v1",
            "status": "below_bar",
            "n": 160,
        }
        assert body["figures"]["tnr"]["value"] == 0.5 and body["bar"]["tnr"] == 0.9
        assert body["link"] == (
            f"https://review.example.com/api/v1/calibration?project={project.slug}"
            "&judge=gpt&criterion=correctness&judge_version=v1"
        )
        status = CalibrationStatus.objects.get()
        assert status.status == "below_bar" and status.notified_at is not None and status.alert_attempts == 1
        # The same day again, the next day still below, a redelivered task: nothing more is sent.
        with django_capture_on_commit_callbacks(execute=True):
            services.calibration_snapshots_take(day=D0 + DAY)
            services.calibration_snapshots_take(day=D0 + 2 * DAY)
        assert services.calibration_alert_send(status_id=status.pk) is None
        assert len(r.requests) == 1
        # Back to ok, then below again: a new change, told once more.
        _pairs(queue, D0 + 9 * DAY, AGREEING)
        with django_capture_on_commit_callbacks(execute=True):
            services.calibration_snapshots_take(day=D0 + 9 * DAY)
        assert CalibrationStatus.objects.get().status == "ok"
        _pairs(queue, D0 + 10 * DAY, LENIENT)
        with django_capture_on_commit_callbacks(execute=True):
            services.calibration_snapshots_take(day=D0 + 10 * DAY)
        assert len(r.requests) == 2


@pytest.mark.django_db
def test_a_failed_alert_is_retried_by_the_sweep_and_a_private_host_is_refused_by_default(
    project, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    queue = calibration_queue(project)
    with receiver([500, 200]) as r:
        services.bar_set(project=project, values={"webhook_url": r.url})
        _pairs(queue, D0, LENIENT)
        with django_capture_on_commit_callbacks(execute=True):
            services.calibration_snapshots_take(day=D0)
        status = CalibrationStatus.objects.get()
        assert (len(r.requests), status.notified_at, status.alert_error) == (1, None, "HTTP 500")
        with django_capture_on_commit_callbacks(execute=True):
            assert services.calibration_alerts_sweep() == 1
        status.refresh_from_db()
        assert len(r.requests) == 2 and status.notified_at is not None and status.alert_attempts == 2
        assert services.calibration_alerts_sweep() == 0

        # Without the test setting, the guard refuses the loopback receiver: nothing reaches it.
        settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
        CalibrationStatus.objects.filter(pk=status.pk).update(notified_at=None, alert_attempts=0)
        result = services.calibration_alert_send(status_id=status.pk)
        assert result is not None and result.error.startswith("refused")
        assert len(r.requests) == 2
    assert CalibrationBar.objects.get(project=project).webhook_url == r.url
