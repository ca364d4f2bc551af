"""calibration_report counts pairs by pattern in SQL and spreads them back into arrays; these
tests hold it to the pair-by-pair path (the selector's row path, the code it replaced) on
random data: every figure equal, up to the order of floating-point sums."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest

from evaluation import selectors
from evaluation.models import CalibrationPair, PairKind
from reviewapp import services as core_services
from reviewapp.ingest_schemas import JudgeScoreForConversationIn
from tests.evaluation.factories import calibration_queue
from tests.labeling.factories import add_items

# A Monday midnight (UTC): pairs straddle it to the second.
MONDAY = dt.datetime(2025, 3, 10, 0, 0, tzinfo=dt.UTC)


def _pairs(project, items, rng, *, judge: str, criterion: str, version: str, n: int, scores: bool) -> None:
    human = rng.random(n) < 0.75
    right = rng.random(n) < 0.85
    judge_pass = np.where(right, human, ~human)
    confidence = np.round(np.where(right, rng.uniform(0.6, 1.0, n), rng.uniform(0.5, 0.8, n)), 2)
    # Continuous inclusion probabilities (every weight its own), a few shared, some unknown.
    inclusion = np.where(rng.random(n) < 0.3, 0.25, rng.uniform(0.05, 1.0, n))
    offsets = rng.uniform(-20, 20, n) * 86_400
    offsets[:6] = [-1, 0, 1, -86_400 * 7, 0.5, -0.5]  # on and around week boundaries
    CalibrationPair.objects.bulk_create(
        CalibrationPair(
            organization=project.organization,
            project=project,
            kind=PairKind.JUDGE,
            conversation=item.conversation,
            queue_item=item,
            judge=judge,
            judge_version=version,
            criterion=criterion,
            question_key="quality",
            judge_confidence=None if i % 11 == 0 else float(confidence[i]),
            judge_pass=None if i % 17 == 0 else bool(judge_pass[i]),
            human_pass=bool(human[i]),
            judge_score=float(np.round(rng.random(), 2)) if scores and i % 7 else None,
            human_score=float(rng.integers(1, 6)) if scores else None,
            inclusion_probability=None if i % 13 == 0 else float(inclusion[i]),
            labeled_at=MONDAY + dt.timedelta(seconds=float(offsets[i])),
        )
        for i, item in enumerate(items[:n])
    )


@pytest.fixture
def random_pairs(project):
    rng = np.random.default_rng(11)
    queue = calibration_queue(project)
    items = add_items(queue, 260)
    core_services.judge_scores_add(
        project=project,
        scores=[
            JudgeScoreForConversationIn(
                external_id=item.conversation.external_id,
                judge="gpt",
                judge_version="v1",
                criterion="correctness",
                label="pass" if rng.random() < 0.7 else "fail",
                confidence=0.8,
            )
            for item in items
        ],
    )
    _pairs(project, items, rng, judge="gpt", criterion="correctness", version="v1", n=260, scores=False)
    _pairs(project, items, rng, judge="gpt", criterion="correctness", version="v2", n=180, scores=False)
    _pairs(project, items, rng, judge="claude", criterion="helpfulness", version="v1", n=220, scores=True)
    # Under ROWS_BELOW judged pairs: read pair by pair (PPI++ cross-fits in item order).
    _pairs(project, items, rng, judge="tiny", criterion="correctness", version="v1", n=60, scores=False)


def _report(project, **filters: Any) -> dict[str, Any]:
    return selectors.calibration_report(
        organization=project.organization, project=project, filters=selectors.Filters(**filters)
    )


def _assert_same(new: Any, old: Any, where: str = "") -> None:
    if isinstance(old, dict):
        assert isinstance(new, dict) and new.keys() == old.keys(), where
        for key in old:
            _assert_same(new[key], old[key], f"{where}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and not isinstance(new, bool) and isinstance(new, int | float):
        assert math.isclose(new, old, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {new} != {old}"
    else:
        assert new == old, f"{where}: {new!r} != {old!r}"


def test_patterns_give_the_pair_by_pair_figures(project, random_pairs, monkeypatch):
    row_groups: list[tuple[str, str, str]] = []
    row_report = selectors._group_report

    def spy(judge, criterion, version, rows, **kwargs):
        row_groups.append((judge, criterion, version))
        return row_report(judge, criterion, version, rows, **kwargs)

    monkeypatch.setattr(selectors, "_group_report", spy)
    new = _report(project)
    assert row_groups == [("tiny", "correctness", "v1")], "only the small group is read pair by pair"

    monkeypatch.setattr(selectors, "ROWS_BELOW", 10**12)  # every group pair by pair: the old path
    old = _report(project)

    groups = [(g["judge"], g["criterion"], g["judge_version"], g["n"]) for g in new["judges"]]
    assert groups == [
        ("claude", "helpfulness", "v1", 220),
        ("gpt", "correctness", "v1", 260),
        ("gpt", "correctness", "v2", 180),
        ("tiny", "correctness", "v1", 60),
    ]
    gpt = new["judges"][1]
    # The data reaches every branch: weights, scores, confidences, the pass rate, several weeks.
    assert gpt["binary"]["confusion"]["tp"] != int(gpt["binary"]["confusion"]["tp"])  # weighted
    assert gpt["pass_rate"]["n_judged"] == 260 and gpt["pass_rate"]["method_used"] in ("ppi", "human_only")
    assert gpt["confidence"]["ece"]["interval"] is not None
    assert new["judges"][0]["scores"]["kendall"]["interval"] is not None
    assert len(gpt["trend"]) >= 5
    _assert_same(new, old)


def test_patterns_follow_the_filters_like_the_pairs(project, random_pairs):
    since = MONDAY - dt.timedelta(days=3)
    new = _report(project, judge="gpt", since=since, until=MONDAY + dt.timedelta(days=9))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(selectors, "ROWS_BELOW", 10**12)
        old = _report(project, judge="gpt", since=since, until=MONDAY + dt.timedelta(days=9))
    assert [g["judge_version"] for g in new["judges"]] == ["v1", "v2"]
    assert [p["week"] for p in new["judges"][0]["trend"]] == ["2025-03-03", "2025-03-10", "2025-03-17"]
    _assert_same(new, old)
