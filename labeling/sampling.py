"""Sampling rules: parsing and the decision for one conversation. Pure (no ORM).

Decisions are deterministic: a hash of (queue id, external_id) gives each conversation a fixed
number u in [0, 1); a rule with rate r samples it when u < r. Every rule of a queue uses the same
u, so "any matching rule samples" happens exactly when u < max(rate of matching rules): that
maximum is the conversation's inclusion probability, recorded for unbiased weighting later.
Re-sending or re-evaluating a conversation can never change the outcome.

An `uncertainty` rule (`"strategy": "uncertainty"`, with `if.judge`) gives each conversation
its own rate from the named judge's confidence (`uncertainty_probability`): higher where the
judge is unsure, never under `uniform_share` of the rule's rate, and on average the rule's
rate. It uses the same u, so the recorded inclusion probability stays the one that decided.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

_HASH_SCALE = float(16**15)
# A daily budget above a billion is no budget; the bound keeps the pacing arithmetic finite
# and every counter (SamplingCounter's PositiveIntegerField) within its column.
MAX_PER_DAY = 10**9


class RuleCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_version: str | list[str] | None = None
    tags_any: list[str] | None = None
    metadata: dict[str, Any] | None = None
    feedback_rating: Literal["up", "down"] | None = None
    user_rephrased: bool | None = None
    escalated_by_user: bool | None = None
    judge: str | None = None
    criterion: str | None = None
    score_below: float | None = Field(default=None, allow_inf_nan=False)
    confidence_below: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    # Implicit feedback (reviewapp.models.ConversationSignal): the kind, from any source unless
    # `signal_source` narrows it to what the agent sent or what was derived from the transcript.
    signal: Literal["rephrased", "frustration", "asked_for_human", "gave_up"] | None = None
    signal_source: Literal["agent", "derived"] | None = None

    @model_validator(mode="after")
    def _source_needs_signal(self) -> RuleCondition:
        if self.signal_source is not None and self.signal is None:
            raise ValueError("signal_source needs a signal")
        return self

    @property
    def uses_judge(self) -> bool:
        return any(v is not None for v in (self.judge, self.criterion, self.score_below, self.confidence_below))


# An uncertainty rule's default share of uniform sampling: one item in five is drawn whatever
# the judge says, so the judge's confident mistakes are still seen.
DEFAULT_UNIFORM_SHARE = 0.2
# The traffic's mean uncertainty when nothing better is known (no recent confidences).
DEFAULT_MEAN_UNCERTAINTY = 0.5


def uncertainty_probability(
    confidence: float | None, *, rate: float, uniform_share: float, mean_uncertainty: float
) -> float:
    """One item's inclusion probability under uncertainty sampling: with u = 1 - confidence and
    m the traffic's mean uncertainty, p = rate (s + (1 - s) u / m), capped at 1. Its mean over
    the traffic is the rate (before the cap) and it is never under rate x s, the uniform share
    s. An unknown confidence counts as the mean (p = rate); m of 0 (a judge always certain)
    samples uniformly. evaluation.stats.uncertainty_sampling_probability uses this rule."""
    if mean_uncertainty <= 0:
        return rate
    u = mean_uncertainty if confidence is None or not math.isfinite(confidence) else 1.0 - confidence
    return min(1.0, rate * (uniform_share + (1.0 - uniform_share) * u / mean_uncertainty))


class SamplingRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str, StringConstraints(max_length=80)] | None = None
    rate: float = Field(ge=0, le=1, allow_inf_nan=False)
    condition: RuleCondition | None = Field(default=None, alias="if")
    max_per_day: int | None = Field(default=None, ge=1, le=MAX_PER_DAY)
    # None: every matching conversation at `rate`. "uncertainty": a rate per conversation.
    weighting: Literal["uncertainty"] | None = Field(default=None, alias="strategy")
    uniform_share: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    # The traffic's usual mean uncertainty (1 - confidence); the sampler fills it from the
    # judge's recent scores when the rule leaves it out.
    mean_uncertainty: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)

    # Field validators, so a 400 names the field (sampling.0.strategy, sampling.0.uniform_share);
    # each sees the fields declared before it.
    @field_validator("weighting")
    @classmethod
    def _uncertainty_needs_a_judge(cls, value: str | None, info: ValidationInfo) -> str | None:
        condition = info.data.get("condition")
        if value == "uncertainty" and (condition is None or condition.judge is None):
            raise ValueError("An uncertainty rule names the judge whose confidence it follows in if.judge.")
        return value

    @field_validator("uniform_share", "mean_uncertainty")
    @classmethod
    def _only_for_uncertainty(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("weighting") != "uncertainty":
            raise ValueError('Only for a rule with "strategy": "uncertainty".')
        return value

    def rate_for(self, facts: ConversationFacts) -> float:
        """This rule's inclusion probability for a conversation it matches."""
        if self.weighting != "uncertainty" or self.condition is None:
            return self.rate
        c = self.condition
        confidences = [s.confidence for s in facts.judge_scores if s.confidence is not None and _judge_matches(c, s)]
        # Several matching scores (criteria, when the rule names none): the least sure decides.
        return uncertainty_probability(
            min(confidences) if confidences else None,
            rate=self.rate,
            uniform_share=self.uniform_share if self.uniform_share is not None else DEFAULT_UNIFORM_SHARE,
            mean_uncertainty=self.mean_uncertainty if self.mean_uncertainty is not None else DEFAULT_MEAN_UNCERTAINTY,
        )

    def strategy(self) -> str:
        c = self.condition
        if self.weighting == "uncertainty":
            return "uncertainty"
        if c is None:
            return "uniform"
        if c.score_below is not None or c.confidence_below is not None:
            return "uncertainty"
        if c.feedback_rating or c.user_rephrased or c.escalated_by_user or c.signal:
            return "signal"
        return "filter"

    def label(self, index: int) -> str:
        return self.name or f"rule{index}"


@dataclass(frozen=True)
class JudgeFact:
    judge: str
    criterion: str
    score: float | None
    confidence: float | None


@dataclass(frozen=True)
class ConversationFacts:
    id: int
    external_id: str
    agent_version: str = ""
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    feedback_rating: str | None = None
    user_rephrased: bool = False
    escalated_by_user: bool = False
    judge_scores: tuple[JudgeFact, ...] = ()
    # (kind, source) pairs of the conversation's signals; loaded only for queues that ask.
    signals: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class RuleMatch:
    index: int
    rule: SamplingRule


@dataclass(frozen=True)
class Candidate:
    """A conversation that passed the rate of at least one matching rule."""

    conversation_id: int
    u: float
    inclusion_probability: float
    passing: tuple[RuleMatch, ...]  # rules it passed, highest rate first
    stratum: str


def sample_hash(queue_id: int, external_id: str) -> float:
    digest = hashlib.sha256(f"{queue_id}:{external_id}".encode()).hexdigest()
    return int(digest[:15], 16) / _HASH_SCALE


def condition_matches(c: RuleCondition | None, f: ConversationFacts) -> bool:
    if c is None:
        return True
    if c.agent_version is not None:
        versions = [c.agent_version] if isinstance(c.agent_version, str) else c.agent_version
        if f.agent_version not in versions:
            return False
    if c.tags_any is not None and not set(c.tags_any) & set(f.tags):
        return False
    if c.metadata is not None and any(f.metadata.get(k) != v for k, v in c.metadata.items()):
        return False
    if c.feedback_rating is not None and f.feedback_rating != c.feedback_rating:
        return False
    if c.user_rephrased is not None and f.user_rephrased != c.user_rephrased:
        return False
    if c.escalated_by_user is not None and f.escalated_by_user != c.escalated_by_user:
        return False
    if c.signal is not None and not any(
        kind == c.signal and (c.signal_source is None or source == c.signal_source) for kind, source in f.signals
    ):
        return False
    if c.uses_judge:
        return any(_judge_matches(c, s) for s in f.judge_scores)
    return True


def rules_use_signals(rules: list[SamplingRule]) -> bool:
    """Whether any rule looks at signals: only then does the sampler load them."""
    return any(r.condition is not None and r.condition.signal is not None for r in rules)


def _judge_matches(c: RuleCondition, s: JudgeFact) -> bool:
    if c.judge is not None and s.judge != c.judge:
        return False
    if c.criterion is not None and s.criterion != c.criterion:
        return False
    if c.score_below is not None and (s.score is None or not s.score < c.score_below):
        return False
    return not (c.confidence_below is not None and (s.confidence is None or not s.confidence < c.confidence_below))


def stratum_of(rule: SamplingRule, index: int, facts: ConversationFacts) -> str:
    c = rule.condition
    if c is not None and c.tags_any:
        for tag in c.tags_any:
            if tag in facts.tags:
                return f"tag:{tag}"[:100]
    return rule.label(index)[:100]


def candidate_for(queue_id: int, rules: list[SamplingRule], facts: ConversationFacts) -> Candidate | None:
    matching = [RuleMatch(i, r) for i, r in enumerate(rules) if condition_matches(r.condition, facts)]
    if not matching:
        return None
    u = sample_hash(queue_id, facts.external_id)
    rates = {m.index: m.rule.rate_for(facts) for m in matching}
    passing = sorted((m for m in matching if u < rates[m.index]), key=lambda m: (-rates[m.index], m.index))
    if not passing:
        return None
    top = passing[0]
    return Candidate(
        conversation_id=facts.id,
        u=u,
        inclusion_probability=max(rates.values()),
        passing=tuple(passing),
        stratum=stratum_of(top.rule, top.index, facts),
    )


def budget_time(now: dt.datetime, zone: str) -> dt.datetime:
    """`now` on the wall clock of the project's time zone: its date is the budget day. An
    unknown zone (validated where it is set, so only a hand-edited row) counts in UTC."""
    try:
        tz: dt.tzinfo = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = dt.UTC
    return now.astimezone(tz)


def zone_valid(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def pacing_allowance(limit: int, now: dt.datetime) -> int:
    """How much of a daily budget may be used by `now` (aware, on the budget's wall clock):
    the budget accrues evenly over the day, plus one hour's worth up front, so a morning burst
    cannot spend the whole day's budget and evening traffic is sampled too. A day is as long
    as it really is (23 or 25 hours when the clocks change)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # Aware datetimes sharing a tzinfo subtract as wall times: measure in UTC instead.
    start = midnight.astimezone(dt.UTC)
    end = (midnight + dt.timedelta(days=1)).astimezone(dt.UTC)
    elapsed = (now.astimezone(dt.UTC) - start).total_seconds() / (end - start).total_seconds()
    burst = max(1, math.ceil(limit / 24))
    return min(limit, math.ceil(limit * elapsed) + burst)


def rules_parse(data: Any) -> list[SamplingRule]:
    if data in (None, ""):
        return []
    return [SamplingRule.model_validate(r) for r in data]


__all__ = [
    "MAX_PER_DAY",
    "Candidate",
    "ConversationFacts",
    "JudgeFact",
    "RuleCondition",
    "SamplingRule",
    "budget_time",
    "candidate_for",
    "condition_matches",
    "pacing_allowance",
    "rules_parse",
    "rules_use_signals",
    "sample_hash",
    "uncertainty_probability",
    "zone_valid",
]
