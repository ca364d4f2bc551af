"""The budget controller's policy: how a queue's sampling rate follows its judge's calibration.
Pure (no ORM): settings, a calibration history and the clock in; a rate and a reason out.

"Sample production forever": while the queue's judge stays `ok` with the lower bound of its
agreement interval above the bar for a whole window, the rate steps down one step; when
agreement drops (`below_bar`) or the judge version changes it goes back to the base rate at
once. It never goes below the floor: the larger of a rate (1%) and the rate that still brings
a daily minimum (20 a day) at the project's recent traffic. After any change a fresh window
must pass before the next step down, so each step is earned by evidence gathered at the rate
it trims. An admin's pinned rate is left alone, and an unknown calibration holds the rate.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

OK = "ok"
BELOW_BAR = "below_bar"
TOO_FEW = "too_few"

DEFAULT_WINDOW_DAYS = 30
DEFAULT_STEP = 0.8
DEFAULT_FLOOR_RATE = 0.01
DEFAULT_FLOOR_PER_DAY = 20


class ControllerSettings(BaseModel):
    """`Queue.budget_controller`, validated. `judge` and `criterion` name the calibration the
    queue follows; `base_rate` is where it starts and returns to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    judge: str = Field(default="", max_length=100)
    criterion: str = Field(default="", max_length=100)
    base_rate: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
    window_days: int = Field(default=DEFAULT_WINDOW_DAYS, ge=1, le=365)
    step: float = Field(default=DEFAULT_STEP, gt=0, lt=1, allow_inf_nan=False)
    floor_rate: float = Field(default=DEFAULT_FLOOR_RATE, gt=0, le=1, allow_inf_nan=False)
    floor_per_day: int = Field(default=DEFAULT_FLOOR_PER_DAY, ge=0, le=10**9)
    pinned_rate: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _judge_named(self) -> ControllerSettings:
        if self.enabled and not self.judge:
            raise ValueError("judge: name the judge whose calibration the controller follows")
        return self


def settings_parse(data: Any) -> ControllerSettings:
    """Raises pydantic.ValidationError on bad input; {} or None is a controller switched off."""
    return ControllerSettings.model_validate(data or {})


@dataclass(frozen=True)
class CalibrationPoint:
    """One calibration reading of the judge: its status, the lower bound of the agreement
    interval and the bar it is held to (None when unknown), for one judge version."""

    at: dt.datetime
    status: str  # ok | below_bar | too_few
    lower: float | None
    bar: float | None
    judge_version: str

    @property
    def trusted(self) -> bool:
        return self.status == OK and self.lower is not None and self.bar is not None and self.lower > self.bar


@dataclass(frozen=True)
class ControllerInput:
    now: dt.datetime
    settings: ControllerSettings
    current_rate: float
    # None: no calibration is available (the evaluation app is absent): hold.
    history: Sequence[CalibrationPoint] | None
    known_version: str = ""  # the judge version the current rate was decided under
    last_change_at: dt.datetime | None = None
    daily_volume: float = 0.0  # the project's conversations a day, recently


@dataclass(frozen=True)
class Decision:
    rate: float
    reason: str
    judge_version: str
    changed: bool


def share_limit(daily_items: int, share: float | None) -> int:
    """A queue's daily limit under the project budget: its share of it, or all of it when it
    has none. A share too small to be worth one item a day still gets one: never zero."""
    return daily_items if share is None else max(1, math.floor(daily_items * share))


def floor_rate(settings: ControllerSettings, daily_volume: float) -> float:
    """The lowest rate allowed: the floor rate, or the rate that still samples floor_per_day
    at this traffic if that is higher; never above the base rate."""
    rate = settings.floor_rate
    if settings.floor_per_day and daily_volume > 0:
        rate = max(rate, settings.floor_per_day / daily_volume)
    return min(settings.base_rate, rate)


def decide(inp: ControllerInput) -> Decision:
    s, current = inp.settings, inp.current_rate

    def hold(reason: str, version: str = inp.known_version) -> Decision:
        return Decision(current, reason, version, changed=False)

    def to(rate: float, reason: str, version: str) -> Decision:
        rate = round(rate, 6)
        return Decision(rate, reason, version, changed=rate != current)

    if s.pinned_rate is not None:
        return hold(f"pinned at {s.pinned_rate:g} by an admin")
    if inp.history is None:
        return hold("calibration unknown: holding the rate")
    points = sorted(inp.history, key=lambda p: p.at)
    points = [p for p in points if p.at <= inp.now]
    if not points:
        return hold("no calibration yet: holding the rate")
    latest = points[-1]
    if inp.known_version and latest.judge_version != inp.known_version:
        return to(
            s.base_rate,
            f"judge version changed ({inp.known_version} to {latest.judge_version}): back to the base rate",
            latest.judge_version,
        )
    version = latest.judge_version
    if latest.status == BELOW_BAR:
        return to(s.base_rate, "agreement below the bar: back to the base rate", version)
    floor = floor_rate(s, inp.daily_volume)
    if current < floor:
        return to(floor, f"raised to the floor ({floor:g})", version)
    window_start = inp.now - dt.timedelta(days=s.window_days)
    if inp.last_change_at is not None and inp.last_change_at > window_start:
        return hold(f"waiting for a full {s.window_days}-day window since the last change", version)
    # The reading in force when the window began, and every one since, must be trusted and of
    # this judge version: a window only partly covered by readings proves nothing.
    before = [p for p in points if p.at <= window_start]
    if not before:
        return hold(f"calibration history shorter than the {s.window_days}-day window", version)
    window = [before[-1], *(p for p in points if p.at > window_start)]
    if any(p.judge_version != version for p in window):
        return hold("judge version changed within the window", version)
    if not all(p.trusted for p in window):
        return hold("judge not ok above the bar for the whole window", version)
    new = max(floor, current * s.step)
    if new >= current:
        return hold(f"at the floor ({floor:g})", version)
    return to(new, f"judge ok above the bar for {s.window_days} days: stepped down", version)


__all__ = [
    "BELOW_BAR",
    "OK",
    "TOO_FEW",
    "CalibrationPoint",
    "ControllerInput",
    "ControllerSettings",
    "Decision",
    "decide",
    "floor_rate",
    "settings_parse",
    "share_limit",
]
