"""Uncertainty-weighted sampling: a rule whose rate rises as the judge's confidence falls, mixed
with a uniform share, recorded as each item's inclusion probability so Horvitz-Thompson
estimates stay unbiased."""

from __future__ import annotations

import numpy as np
import pytest

from labeling import sampling, services
from labeling.models import QueueItem
from reviewapp.errors import ValidationFailed
from tests.evaluation.factories import score
from tests.factories import ConversationFactory
from tests.labeling.factories import make_queue

RULE = {"if": {"judge": "x"}, "rate": 0.1, "strategy": "uncertainty", "uniform_share": 0.2, "mean_uncertainty": 0.25}


def _facts(i: int, confidence: float | None, judge: str = "x") -> sampling.ConversationFacts:
    return sampling.ConversationFacts(
        id=i, external_id=f"c{i}", judge_scores=(sampling.JudgeFact(judge, "correctness", None, confidence),)
    )


def _formula(confidence: float, rate: float = 0.1, s: float = 0.2, m: float = 0.25) -> float:
    return min(1.0, rate * (s + (1 - s) * (1 - confidence) / m))


def test_the_recorded_probability_is_the_formula_and_decides_with_the_shared_hash():
    rules = sampling.rules_parse([RULE])
    assert rules[0].strategy() == "uncertainty"
    seen, expected = 0, 0.0
    for i in range(4000):
        confidence = (i % 20) / 20
        p = _formula(confidence)
        expected += p
        u = sampling.sample_hash(3, f"c{i}")
        candidate = sampling.candidate_for(3, rules, _facts(i, confidence))
        assert (candidate is not None) == (u < p)
        if candidate is not None:
            seen += 1
            assert candidate.inclusion_probability == pytest.approx(p)
            assert candidate.u == u
    # As many as the probabilities promise (about 750: these confidences are less sure than the
    # rule's mean_uncertainty of 0.25 says, so more than the rate of 0.1 is sampled).
    assert abs(seen - expected) < 80
    # Unsure: rate x (0.2 + 0.8 x 0.9 / 0.25) = 0.308; sure: never under the uniform share.
    assert rules[0].rate_for(_facts(1, 0.1)) == pytest.approx(0.308)
    assert rules[0].rate_for(_facts(1, 1.0)) == pytest.approx(0.02)
    # Unknown confidence counts as the mean: the rule's rate. Another judge's score: no match.
    assert rules[0].rate_for(_facts(1, None)) == pytest.approx(0.1)
    assert sampling.candidate_for(3, rules, _facts(1, 0.0, judge="other")) is None


def test_a_uniform_rule_beside_it_takes_the_larger_probability():
    rules = sampling.rules_parse([RULE, {"rate": 0.05}])
    for i in range(2000):
        confidence = 0.99 if i % 2 else 0.2
        candidate = sampling.candidate_for(3, rules, _facts(i, confidence))
        if candidate is not None:
            assert candidate.inclusion_probability == pytest.approx(max(0.05, _formula(confidence)))


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"rate": 0.1, "strategy": "uncertainty"}, "sampling[0].strategy"),
        ({"rate": 0.1, "if": {"tags_any": ["a"]}, "strategy": "uncertainty"}, "sampling[0].strategy"),
        ({"rate": 0.1, "uniform_share": 0.2}, "sampling[0].uniform_share"),
        ({**RULE, "uniform_share": 0}, "sampling[0].uniform_share"),
        ({**RULE, "uniform_share": 1.5}, "sampling[0].uniform_share"),
        ({**RULE, "mean_uncertainty": -1}, "sampling[0].mean_uncertainty"),
        ({**RULE, "strategy": "thompson"}, "sampling[0].strategy"),
    ],
)
@pytest.mark.django_db
def test_bad_uncertainty_rules_are_refused_naming_the_field(project, rule, field):
    queue = make_queue(project, sampling=({"rate": 0.3},), backfill_days=0)
    with pytest.raises(ValidationFailed) as caught:
        services.queue_sampling_update(queue=queue, rules=[rule], max_per_day=None)
    assert field in caught.value.errors
    queue.refresh_from_db()
    assert queue.sampling == [{"rate": 0.3}]


def test_horvitz_thompson_estimates_stay_unbiased_under_uncertainty_sampling():
    """A judge wrong more often where it is unsure: the sample over-represents failures, the
    raw sample mean is biased, and weighting by 1/p recovers the true failure rate."""
    rng = np.random.default_rng(7)
    rule = sampling.rules_parse([{**RULE, "rate": 0.2}])[0]
    n = 20_000
    confidence = rng.uniform(0.5, 1.0, n)
    failed = rng.random(n) < (1 - confidence) * 0.8  # failures where the judge is unsure
    truth = failed.mean()
    estimates, naive = [], []
    for trial in range(40):
        p = np.array([rule.rate_for(_facts(i, float(c))) for i, c in enumerate(confidence)])
        u = np.array([sampling.sample_hash(1000 + trial, f"c{i}") for i in range(n)])
        chosen = u < p
        estimates.append(np.sum(failed[chosen] / p[chosen]) / n)
        naive.append(failed[chosen].mean())
    assert abs(np.mean(estimates) - truth) < 0.004
    assert np.mean(naive) - truth > 0.03  # what the weights correct


@pytest.mark.django_db
def test_the_sampler_records_the_probability_on_the_item(project):
    queue = make_queue(
        project, sampling=({**RULE, "rate": 0.5, "mean_uncertainty": 0.3},), backfill_days=0, name="unsure"
    )
    confidences = {}
    for i in range(60):
        conversation = ConversationFactory(project=project, external_id=f"conv-{i}")
        confidences[conversation.pk] = 0.4 if i % 2 else 0.95
        score(
            project,
            conversation,
            judge="x",
            criterion="correctness",
            score=0.5,
            confidence=confidences[conversation.pk],
        )
    services.conversations_sample(project_id=project.pk, conversation_ids=list(confidences))
    items = {
        item.conversation_id: item for item in QueueItem.objects.filter(queue=queue).select_related("conversation")
    }
    expected = {
        cid
        for cid, c in confidences.items()
        if sampling.sample_hash(queue.pk, f"conv-{list(confidences).index(cid)}") < _formula(c, 0.5, 0.2, 0.3)
    }
    assert set(items) == expected and expected
    for cid, item in items.items():
        assert item.inclusion_probability == pytest.approx(_formula(confidences[cid], 0.5, 0.2, 0.3))
        assert item.sampling_strategy == "uncertainty"
