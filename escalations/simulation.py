"""Dry run of a draft policy over past actions: what the draft would have decided, against what
really happened (the policy's outcome then, and the humans' decision). Pure: no ORM, no Django;
the selector loads the rows, this module replays them.

Velocity at the action's own time. A velocity window counts the earlier actions that were
approved or still pending when the action was decided (the live query counts statuses approved
and pending). Replayed long after, an action rejected or expired since was pending at the time,
so `History` counts an earlier action at time t when it was approved, is still pending, or was
decided (rejected or expired) after t: `counted_until` is its decision time, or infinity for
approved and pending ones. "Earlier" is (created_at, id) order, so the action itself and later
ones never count. The statuses are the ones that really happened, not the draft's: a draft that
would have rejected a refund still sees it in the next refund's window if it was approved. That
is the honest reading of the history; replaying the draft's own outcomes into the windows would
need every action since the start of the longest window replayed, not just the last N.

Cost: the rows are loaded once (two queries in the selector, never one per action). Rows are
grouped by the key a window uses (end user, agent version, the project) and by the action names
it counts, sorted by (created_at, id); approved and pending rows get prefix sums (a window's
total is two bisections), and the few decided-later rows in a window are scanned. So a replay of
N actions costs O(N x distinct windows x log H) plus the rejected rows inside the windows.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from itertools import accumulate
from typing import Any

from escalations.policies import ActionFacts, Policy, VelocityWindow, Verdict, arg_lookup, policy_evaluate

OUTCOMES = ("approve", "reject", "escalate")
# What the people did with an action the policy escalated (or with any action a person decided).
HUMAN_OUTCOMES = ("approved", "edited", "rejected", "expired", "pending")
NO_RULE = "(no rule matched: default ladder)"
# The ids listed for the key figures; the counts are always whole.
LISTED_MAX = 1000
EVALUATION_FAILED = "Policy could not be evaluated"


@dataclass(frozen=True)
class PastAction:
    """One action as it happened. `created_at` and `decided_at` are POSIX seconds.
    `human` is what people did: "approved", "edited" (approved with changed args), "rejected",
    "expired" (nobody decided in time), "pending", or "" when the policy decided it."""

    id: int
    action: str
    args: dict
    confidence: float | None
    risk_tags: tuple[str, ...]
    agent_version: str
    end_user_id: str
    created_at: float
    status: str
    policy_outcome: str  # "approve" | "reject" | "escalate" | "" (unknown)
    matched_rule: str
    human: str

    def facts(self) -> ActionFacts:
        return ActionFacts(
            action=self.action,
            args=self.args if isinstance(self.args, dict) else {},
            confidence=self.confidence,
            risk_tags=tuple(self.risk_tags),
            agent_version=self.agent_version,
            end_user_id=self.end_user_id,
        )


@dataclass(frozen=True)
class HistoryRow:
    """An earlier action as a velocity window sees it. `counted_until`: the time it stopped
    counting (a rejection's or expiry's decision time), infinity while approved or pending.
    `numbers`: the number each summed path adds (what `_number_at` finds), when the loader
    read only those paths; else `args`, when a window sums a path (None otherwise: not
    loaded)."""

    id: int
    created_at: float
    action: str
    end_user_id: str
    agent_version: str
    counted_until: float
    args: dict | None = None
    numbers: Mapping[str, float] | None = None

    def number_at(self, path: str) -> float:
        if self.numbers is not None:
            return self.numbers.get(path, 0.0)
        return _number_at(self.args, path)


def counted_until(*, status: str, decided_at: float | None) -> float:
    """When an action stops counting in velocity windows: never while approved or pending; a
    rejected or expired one counted until its decision (it was pending before)."""
    if status in ("approved", "pending") or decided_at is None:
        return math.inf
    return decided_at


def number_in(value: Any) -> float:
    """What a sum adds for the value found at its path: a JSON number (not a boolean), else 0.
    Integers past a float's range count as unbounded, like the live query's total."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _number_at(args: dict | None, path: str) -> float:
    """The args value a sum adds: a JSON number (not a boolean), else 0. Integers past a float's
    range count as unbounded, like the live query's total."""
    if not isinstance(args, dict):
        return 0.0
    found, value = arg_lookup(args, path)
    if not found or isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


@dataclass
class _Series:
    """Rows of one group in (created_at, id) order: the always-counted ones with prefix sums,
    and the ones that stopped counting at their decision."""

    keys: list[tuple[float, int]] = field(default_factory=list)
    sums: dict[str | None, list[float]] = field(default_factory=dict)  # path (None: count) -> prefix
    later_keys: list[tuple[float, int]] = field(default_factory=list)
    later_rows: list[HistoryRow] = field(default_factory=list)
    always_rows: list[HistoryRow] = field(default_factory=list)

    def prefix(self, path: str | None) -> list[float]:
        prefix = self.sums.get(path)
        if prefix is None:
            values = (1.0 if path is None else row.number_at(path) for row in self.always_rows)
            prefix = self.sums[path] = [0.0, *accumulate(values)]
        return prefix

    def total(self, path: str | None, start: float, at: float, before_id: int) -> float:
        """Count (path None) or sum of `path` over rows created in [start, at) (ties at `at`
        with a smaller id count too) that still counted at `at`."""
        low, high = (start, -1), (at, before_id)
        prefix = self.prefix(path)
        total = prefix[bisect_left(self.keys, high)] - prefix[bisect_left(self.keys, low)]
        i, end = bisect_left(self.later_keys, low), bisect_left(self.later_keys, high)
        for row in self.later_rows[i:end]:
            if row.counted_until > at:
                total += 1.0 if path is None else row.number_at(path)
        return total


class History:
    """Earlier actions indexed for velocity windows at any past time (see the module docstring)."""

    def __init__(self, rows: Iterable[HistoryRow]):
        self._rows = sorted(rows, key=lambda r: (r.created_at, r.id))
        self._by_key: dict[str, dict[str, list[HistoryRow]]] = {}
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._matches: dict[tuple[str, str], bool] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def _keyed(self, by: str, value: str) -> list[HistoryRow]:
        if by == "project":
            return self._rows
        groups = self._by_key.get(by)
        if groups is None:
            # One pass per kind of key, not one per customer: rows stay in time order.
            groups = self._by_key[by] = {}
            for row in self._rows:
                groups.setdefault(getattr(row, by), []).append(row)
        return groups.get(value, [])

    def _name_matches(self, name: str, pattern: str, kind: str) -> bool:
        if kind == "name":
            return name == pattern
        hit = self._matches.get((name, pattern))
        if hit is None:
            hit = self._matches[(name, pattern)] = fnmatchcase(name, pattern)
        return hit

    def _series_for(self, window: VelocityWindow, facts: ActionFacts) -> _Series:
        value = "" if window.by == "project" else getattr(facts, window.by)
        kind, pattern = ("glob", window.action) if window.action is not None else ("name", facts.action)
        key = (window.by, value, kind, pattern)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
            for row in self._keyed(window.by, value):
                if not self._name_matches(row.action, pattern, kind):
                    continue
                if math.isinf(row.counted_until):
                    series.keys.append((row.created_at, row.id))
                    series.always_rows.append(row)
                else:
                    series.later_keys.append((row.created_at, row.id))
                    series.later_rows.append(row)
        return series

    def velocity_at(self, *, at: float, action_id: int) -> Callable[[VelocityWindow, ActionFacts], float]:
        """The velocity callback `policy_evaluate` takes, answering as of `at` for the action
        `action_id` (which, and anything after it, is not counted)."""

        def velocity(window: VelocityWindow, facts: ActionFacts) -> float:
            series = self._series_for(window, facts)
            path = window.path if window.of == "sum" else None
            return series.total(path, at - window.seconds, at, action_id)

        return velocity


# --- The report -------------------------------------------------------------------------------


def _outcome_counts() -> dict[str, int]:
    return dict.fromkeys(OUTCOMES, 0)


def _human_counts() -> dict[str, int]:
    return dict.fromkeys(HUMAN_OUTCOMES, 0)


@dataclass
class _Tally:
    n: int = 0
    draft: dict[str, int] = field(default_factory=_outcome_counts)
    actual: dict[str, int] = field(default_factory=_outcome_counts)
    humans: dict[str, int] = field(default_factory=_human_counts)
    changed: int = 0  # the draft's outcome differs from the policy's then
    overrides_approved: int = 0  # humans rejected or edited; the draft would approve

    def add(self, past: PastAction, outcome: str) -> None:
        self.n += 1
        self.draft[outcome] += 1
        if past.policy_outcome in self.actual:
            self.actual[past.policy_outcome] += 1
        if past.human in self.humans:
            self.humans[past.human] += 1
        if past.policy_outcome and past.policy_outcome != outcome:
            self.changed += 1
        if outcome == "approve" and past.human in ("rejected", "edited"):
            self.overrides_approved += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "draft": dict(self.draft),
            "actual": dict(self.actual),
            "humans": dict(self.humans),
            "changed": self.changed,
            "human_overrides_auto_approved": self.overrides_approved,
        }


@dataclass
class _Listed:
    count: int = 0
    ids: list[int] = field(default_factory=list)

    def add(self, action_id: int) -> None:
        self.count += 1
        if len(self.ids) < LISTED_MAX:
            self.ids.append(action_id)

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "ids": list(self.ids), "ids_truncated": self.count > len(self.ids)}


@dataclass(frozen=True)
class Replayed:
    action_id: int
    verdict: Verdict
    failed: bool


def replay(policy: Policy, actions: Iterable[PastAction], history: History) -> list[Replayed]:
    """The draft's verdict on each action, with velocity windows as of the action's time.
    An evaluation error escalates (as the live path fails closed) and is marked `failed`."""
    out = []
    for past in actions:
        velocity = history.velocity_at(at=past.created_at, action_id=past.id)
        try:
            verdict = policy_evaluate(policy, past.facts(), velocity)
            failed = False
        except Exception:  # mirrors the live path: an error never approves
            verdict = Verdict(
                outcome="escalate",
                ladder=policy.default_ladder,
                rule_index=None,
                rule_name="",
                reason=EVALUATION_FAILED,
                explanation=(),
            )
            failed = True
        out.append(Replayed(action_id=past.id, verdict=verdict, failed=failed))
    return out


def simulate(policy: Policy, actions: list[PastAction], history: History) -> dict[str, Any]:
    """The dry-run report (JSON-ready):

    - `draft` / `actual`: approve / reject / escalate counts under the draft and under the
      policy in force then; `humans`: what people did (approved, edited, rejected, expired,
      pending); `transitions[actual][draft]`: how outcomes move.
    - `by_action` (per action name) and `by_rule` (every draft rule in order, used or not, then
      the default ladder) with the same counts; `changed` is how many would be decided otherwise.
    - `human_overrides_auto_approved`: actions people rejected or edited that the draft would
      approve, the figure that matters (count, and ids, at most LISTED_MAX);
      `human_rejected_auto_approved` and `human_edited_auto_approved` split it;
      `human_approved_auto_rejected`: approved by people, rejected by the draft.
    """
    results = replay(policy, actions, history)
    total = _Tally()
    by_action: dict[str, _Tally] = {}
    by_rule: dict[int | None, _Tally] = {rule.index: _Tally() for rule in policy.rules}
    by_rule[None] = _Tally()
    transitions = {actual: _outcome_counts() for actual in OUTCOMES}
    overrides, rejected, edited, approved_rejected = _Listed(), _Listed(), _Listed(), _Listed()
    failures = 0
    for past, result in zip(actions, results, strict=True):
        outcome = result.verdict.outcome
        failures += result.failed
        total.add(past, outcome)
        by_action.setdefault(past.action, _Tally()).add(past, outcome)
        by_rule[result.verdict.rule_index].add(past, outcome)
        if past.policy_outcome in transitions:
            transitions[past.policy_outcome][outcome] += 1
        if outcome == "approve" and past.human in ("rejected", "edited"):
            overrides.add(past.id)
            (rejected if past.human == "rejected" else edited).add(past.id)
        if outcome == "reject" and past.human in ("approved", "edited"):
            approved_rejected.add(past.id)
    rules_out = []
    for rule in policy.rules:
        rules_out.append(
            {"rule_index": rule.index, "rule": rule.name, "then": rule.outcome, **by_rule[rule.index].as_json()}
        )
    rules_out.append({"rule_index": None, "rule": NO_RULE, "then": "escalate", **by_rule[None].as_json()})
    summary = total.as_json()
    return {
        "replayed": summary.pop("n"),
        **summary,
        "transitions": transitions,
        "evaluation_errors": failures,
        "by_action": [{"action": name, **t.as_json()} for name, t in sorted(by_action.items(), key=_busiest)],
        "by_rule": rules_out,
        "human_overrides_auto_approved": overrides.as_json(),
        "human_rejected_auto_approved": rejected.as_json(),
        "human_edited_auto_approved": edited.as_json(),
        "human_approved_auto_rejected": approved_rejected.as_json(),
    }


def _busiest(item: tuple[str, _Tally]) -> tuple[int, str]:
    return (-item[1].n, item[0])


def history_span(actions: Iterable[PastAction], windows: Iterable[VelocityWindow]) -> tuple[float, float] | None:
    """The time range of earlier actions the windows can reach for these actions: from the
    earliest action minus the longest window, to the latest action. None: nothing to load."""
    longest = max((w.seconds for w in windows), default=None)
    times = [a.created_at for a in actions]
    if longest is None or not times:
        return None
    return min(times) - longest, max(times)


def window_keys(actions: Iterable[PastAction], windows: Iterable[VelocityWindow]) -> dict[str, set[str]] | None:
    """Which end users / agent versions the windows look up for these actions, so the selector
    loads only their rows; None when a window counts the whole project (load every row)."""
    bys = {w.by for w in windows}
    if "project" in bys:
        return None
    keys: dict[str, set[str]] = {by: set() for by in bys}
    for past in actions:
        for by in bys:
            value = getattr(past, by)
            # An unknown customer's window is unbounded without a query (policies.py).
            if value or by != "end_user_id":
                keys[by].add(value)
    return keys


__all__ = [
    "HUMAN_OUTCOMES",
    "LISTED_MAX",
    "NO_RULE",
    "OUTCOMES",
    "History",
    "HistoryRow",
    "PastAction",
    "Replayed",
    "counted_until",
    "history_span",
    "replay",
    "simulate",
    "window_keys",
]
