"""The budget controller: the pure policy, and the daily run against a fake calibration
provider registered through labeling's registry, with an injected clock."""

from __future__ import annotations

import datetime as dt

import pytest

from labeling import budget_controller as bc
from labeling import services, tasks
from labeling.models import QueueItem, RateChange
from labeling.services import budgets
from reviewapp.models import AuditEvent
from reviewapp.principal import Principal
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue

T0 = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _settings(**kw) -> bc.ControllerSettings:
    return bc.ControllerSettings(enabled=True, judge="gpt-judge", criterion="correctness", base_rate=0.5, **kw)


def _history(days: int, status: str = "ok", lower: float = 0.8, version: str = "v1", start=T0):
    return tuple(bc.CalibrationPoint(start + i * DAY, status, lower, 0.6, version) for i in range(days + 1))


def _decide(rate: float, history, now, **kw) -> bc.Decision:
    settings = kw.pop("settings", _settings())
    return bc.decide(
        bc.ControllerInput(now=now, settings=settings, current_rate=rate, history=history, known_version="v1", **kw)
    )


# --- the pure policy --------------------------------------------------------------------------


def test_steps_down_only_after_a_full_trusted_window():
    history = _history(40)
    assert _decide(0.5, history, T0 + 29 * DAY).changed is False  # window not covered yet
    d = _decide(0.5, history, T0 + 30 * DAY)
    assert (d.rate, d.changed) == (0.4, True)
    assert "stepped down" in d.reason
    # A fresh window must pass since that change.
    assert _decide(0.4, history, T0 + 40 * DAY, last_change_at=T0 + 30 * DAY).changed is False
    assert _decide(0.4, history, T0 + 60 * DAY, last_change_at=T0 + 30 * DAY).rate == 0.32


def test_an_interval_touching_the_bar_or_too_few_pairs_holds():
    low = list(_history(35))
    low[10] = bc.CalibrationPoint(low[10].at, "ok", 0.6, 0.6, "v1")  # lower bound not above the bar
    assert _decide(0.5, tuple(low), T0 + 35 * DAY).changed is False
    few = list(_history(35))
    few[20] = bc.CalibrationPoint(few[20].at, "too_few", None, 0.6, "v1")
    d = _decide(0.5, tuple(few), T0 + 35 * DAY)
    assert (d.rate, d.changed) == (0.5, False)


def test_below_bar_goes_back_to_the_base_rate_at_once():
    history = (*_history(5), bc.CalibrationPoint(T0 + 6 * DAY, "below_bar", 0.4, 0.6, "v1"))
    d = _decide(0.05, history, T0 + 6 * DAY, last_change_at=T0 + 5 * DAY)
    assert (d.rate, d.changed) == (0.5, True)
    assert "below the bar" in d.reason


def test_a_new_judge_version_goes_back_to_the_base_rate_at_once():
    history = (*_history(5), bc.CalibrationPoint(T0 + 6 * DAY, "ok", 0.9, 0.6, "v2"))
    d = _decide(0.05, history, T0 + 6 * DAY, last_change_at=T0 + 5 * DAY)
    assert (d.rate, d.changed, d.judge_version) == (0.5, True, "v2")
    assert "v1 to v2" in d.reason


def test_never_below_the_floor_rate_or_the_daily_minimum():
    history = _history(400)
    # 1% floor: 0.0105 * 0.8 would be 0.0084.
    d = _decide(0.0105, history, T0 + 100 * DAY)
    assert d.rate == 0.01
    assert _decide(0.01, history, T0 + 200 * DAY).changed is False
    # 20 a day out of 1,000 conversations a day: the floor is 2%.
    d = _decide(0.021, history, T0 + 100 * DAY, daily_volume=1000)
    assert d.rate == 0.02
    # Traffic fell: a rate below the daily minimum is raised to it.
    d = _decide(0.02, history, T0 + 100 * DAY, daily_volume=200, last_change_at=T0 + 99 * DAY)
    assert (d.rate, d.changed) == (0.1, True)


def test_a_pinned_rate_and_an_unknown_calibration_hold():
    pinned = _settings(pinned_rate=0.2)
    assert _decide(0.5, _history(40), T0 + 40 * DAY, settings=pinned).changed is False
    below = (bc.CalibrationPoint(T0, "below_bar", 0.1, 0.6, "v9"),)
    assert _decide(0.05, below, T0 + DAY, settings=pinned).changed is False
    d = _decide(0.5, None, T0 + 40 * DAY)
    assert (d.changed, d.reason) == (False, "calibration unknown: holding the rate")


def test_settings_are_bounded():
    for bad in ({"enabled": True}, {"enabled": True, "judge": "j", "step": 1.5}, {"floor_rate": 0}, {"x": 1}):
        with pytest.raises(ValueError):
            bc.settings_parse(bad)
    assert bc.settings_parse({}).enabled is False
    assert bc.share_limit(100, None) == 100
    assert bc.share_limit(100, 0.001) == 1


# --- the daily run --------------------------------------------------------------------------


class FakeCalibration:
    def __init__(self) -> None:
        self.points: list[bc.CalibrationPoint] = []
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return [p for p in self.points if kwargs["since"] <= p.at <= kwargs["until"]]


@pytest.fixture
def calibration():
    fake = FakeCalibration()
    services.calibration_provider_register(fake)
    yield fake
    services.calibration_provider_clear()


def _controlled_queue(project, **settings):
    queue = make_queue(project, sampling=({"rate": 0.3}, {"rate": 1.0, "if": {"tags_any": ["vip"]}}), backfill_days=0)
    body = {"enabled": True, "judge": "gpt-judge", "criterion": "correctness", "base_rate": 0.5, **settings}
    return services.queue_budget_controller_set(
        principal=Principal(organization=project.organization, role="admin"), queue=queue, data=body
    )


@pytest.mark.django_db
def test_the_daily_run_steps_down_then_back_up_on_below_bar(project, calibration):
    queue = _controlled_queue(project, window_days=10)
    RateChange.objects.filter(queue=queue).update(at=T0 - 30 * DAY)  # switched on long ago
    calibration.points = list(_history(40, start=T0 - 20 * DAY))
    services.queue_budget_control(queue_id=queue.pk, now=T0)
    queue.refresh_from_db()
    assert (queue.controlled_rate, queue.controller_judge_version) == (0.4, "v1")
    assert calibration.calls[-1]["judge"] == "gpt-judge"
    # The next day: a fresh window has not passed since the change.
    services.queue_budget_control(queue_id=queue.pk, now=T0 + DAY)
    queue.refresh_from_db()
    assert queue.controlled_rate == 0.4
    calibration.points.append(bc.CalibrationPoint(T0 + 2 * DAY, "below_bar", 0.3, 0.6, "v1"))
    services.queue_budget_control(queue_id=queue.pk, now=T0 + 2 * DAY)
    queue.refresh_from_db()
    assert queue.controlled_rate == 0.5
    changes = list(RateChange.objects.filter(queue=queue).order_by("at").values_list("old_rate", "new_rate"))
    assert changes == [(None, 0.5), (0.5, 0.4), (0.4, 0.5)]


@pytest.mark.django_db
def test_the_daily_run_goes_back_up_on_a_new_judge_version(project, calibration):
    queue = _controlled_queue(project, window_days=5)
    RateChange.objects.filter(queue=queue).update(at=T0 - 30 * DAY)
    calibration.points = list(_history(10, start=T0 - 8 * DAY))
    services.queue_budget_control(queue_id=queue.pk, now=T0)
    services.queue_budget_control(queue_id=queue.pk, now=T0 + 6 * DAY)
    queue.refresh_from_db()
    assert queue.controlled_rate == 0.32
    calibration.points.append(bc.CalibrationPoint(T0 + 7 * DAY, "ok", 0.95, 0.6, "v2"))
    decision = services.queue_budget_control(queue_id=queue.pk, now=T0 + 7 * DAY)
    queue.refresh_from_db()
    assert (queue.controlled_rate, queue.controller_judge_version) == (0.5, "v2")
    assert RateChange.objects.filter(queue=queue).first().reason == decision.reason


@pytest.mark.django_db
def test_a_pinned_queue_is_left_alone_and_without_a_provider_the_rate_holds(project, calibration):
    pinned = _controlled_queue(project, window_days=5, pinned_rate=0.05)
    assert services.queue_rate_in_force(pinned) == 0.05
    assert RateChange.objects.get(queue=pinned).reason == "pinned by an admin"
    calibration.points = list(_history(30, start=T0 - 20 * DAY))
    services.queue_budget_control(queue_id=pinned.pk, now=T0)
    assert RateChange.objects.filter(queue=pinned).count() == 1
    pinned.refresh_from_db()
    assert services.queue_rate_in_force(pinned) == 0.05
    services.calibration_provider_clear()
    other = make_queue(project, name="other", sampling=({"rate": 0.3},), backfill_days=0)
    services.queue_budget_controller_set(
        principal=Principal(organization=project.organization, role="admin"),
        queue=other,
        data={"enabled": True, "judge": "gpt-judge", "base_rate": 0.5},
    )
    RateChange.objects.filter(queue=other).update(at=T0 - 300 * DAY)
    decision = services.queue_budget_control(queue_id=other.pk, now=T0)
    assert (decision.changed, decision.reason) == (False, "calibration unknown: holding the rate")
    assert AuditEvent.objects.filter(kind="queue.budget_controller_set").count() == 2


@pytest.mark.django_db
def test_the_controlled_rate_is_the_uniform_rules_rate_and_recorded_as_inclusion_probability(project, calibration):
    queue = _controlled_queue(project)
    services.queue_budget_controller_set(
        principal=Principal(organization=project.organization, role="admin"),
        queue=queue,
        data={"enabled": True, "judge": "gpt-judge", "base_rate": 0.5, "pinned_rate": 0.2},
    )
    ids = [
        ConversationFactory(project=project, external_id=f"c{i}", tags=["vip"] if i < 5 else []).pk for i in range(400)
    ]
    services.conversations_sample(project_id=project.pk, conversation_ids=ids, now=T0)
    uniform = QueueItem.objects.filter(queue=queue, sampling_rule="rule0")
    assert set(uniform.values_list("inclusion_probability", flat=True)) == {0.2}
    assert 40 <= uniform.count() <= 120  # about 0.2 * 395
    # The targeted rule keeps its own rate (every vip conversation sampled).
    assert QueueItem.objects.filter(queue=queue, conversation_id__in=ids[:5]).count() == 5
    assert set(
        QueueItem.objects.filter(queue=queue, conversation_id__in=ids[:5]).values_list(
            "inclusion_probability", flat=True
        )
    ) == {1.0}


@pytest.mark.django_db
def test_the_beat_task_runs_every_opted_in_queue(project, calibration):
    queue = _controlled_queue(project, window_days=5)
    make_queue(project, name="plain", sampling=({"rate": 0.3},), backfill_days=0)
    assert tasks.budget_controllers_run() == 1
    assert len(calibration.calls) == 1
    assert budgets.budget_controller_queue_ids() == [queue.pk]
