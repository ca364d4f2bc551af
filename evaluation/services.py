"""Calibration pairs follow final labels, late judge scores and people's decisions on escalated
actions; the per-project bar. Pairs are derived rows: every sync recomputes them from their
sources and writes them with one INSERT … ON CONFLICT DO UPDATE per batch, so a redelivered or
repeated task leaves the same rows."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from typing import Any
from urllib.parse import urlencode

import numpy as np
import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from evaluation import selectors, stats
from evaluation.models import CalibrationBar, CalibrationPair, CalibrationSnapshot, CalibrationStatus, PairKind
from labeling import rubric
from labeling import services as labeling_services
from labeling.models import ItemStatus, Queue, QueueItem
from reviewapp import enqueue, hooks, outbound, validation
from reviewapp import services as core_services
from reviewapp.models import JudgeScore, Project

logger = logging.getLogger(__name__)

_BATCH = 1000
_UPDATE_FIELDS = [
    "organization",
    "project",
    "kind",
    "conversation",
    "question_key",
    "judge_score",
    "judge_label",
    "judge_confidence",
    "judge_pass",
    "human_pass",
    "human_answer",
    "human_score",
    "inclusion_probability",
    "agent_version",
    "labeled_at",
    "updated_at",
]


def pairs_sync_items(*, item_ids: list[int]) -> int:
    """Recompute the judge pairs of these labeling items: pairs for the final ones, none for
    the rest (an edit reopened it). Returns the number of pairs written."""
    return _pairs_sync(Q(pk__in=item_ids), item_ids=item_ids)


def pairs_sync_conversations(*, conversation_ids: list[int]) -> int:
    """A judge score arrived for stored conversations: pair it with the final items of those
    conversations (a late score). Items not yet final get their pairs when they become final."""
    return _pairs_sync(Q(conversation_id__in=conversation_ids, status=ItemStatus.COMPLETED), item_ids=None)


def _pairs_sync(where: Q, *, item_ids: list[int] | None) -> int:
    items = list(
        QueueItem.objects.filter(where, is_gold=False).values_list(
            "id",
            "organization_id",
            "queue__project_id",
            "conversation_id",
            "status",
            "final_answers",
            "inclusion_probability",
            "completed_at",
            "queue_id",
            "queue__schema__latest_version__questions",
            "conversation__agent_version",
        )
    )
    final = [row for row in items if row[4] == ItemStatus.COMPLETED and row[5] is not None]
    scores: dict[int, list[tuple[Any, ...]]] = {}
    if final:
        for row in JudgeScore.objects.filter(conversation_id__in={r[3] for r in final}).values_list(
            "conversation_id", "judge", "judge_version", "criterion", "score", "label", "confidence"
        ):
            scores.setdefault(row[0], []).append(row)
    by_criterion_of_queue: dict[int, dict[str, rubric.Question]] = {}
    now = timezone.now()
    pairs: list[CalibrationPair] = []
    for item_id, org_id, project_id, conv_id, _status, answers, p, completed_at, queue_id, questions, agent in final:
        if queue_id not in by_criterion_of_queue:
            by_criterion_of_queue[queue_id] = _questions_by_criterion(questions or [])
        by_criterion = by_criterion_of_queue[queue_id]
        for _conv, judge, judge_version, criterion, score, label, confidence in scores.get(conv_id, []):
            question = by_criterion.get(criterion)
            if question is None:
                continue
            answer = answers.get(question.key)
            human = rubric.human_passes(question, answer)
            if human is None:
                continue
            pairs.append(
                CalibrationPair(
                    organization_id=org_id,
                    project_id=project_id,
                    kind=PairKind.JUDGE,
                    conversation_id=conv_id,
                    queue_item_id=item_id,
                    judge=judge,
                    judge_version=judge_version,
                    criterion=criterion,
                    question_key=question.key,
                    judge_score=score,
                    judge_label=label,
                    judge_confidence=confidence,
                    judge_pass=rubric.judge_passes(question, score=score, label=label),
                    human_pass=human,
                    human_answer=answer,
                    human_score=float(answer) if question.type == "rating" else None,
                    inclusion_probability=p,
                    agent_version=agent,
                    labeled_at=completed_at or now,
                    updated_at=now,
                )
            )
    stale = [row[0] for row in items if row not in final]
    if item_ids is not None:
        # Ids the query no longer finds (deleted items) cascade their pairs away by themselves.
        stale += [i for i in item_ids if i not in {row[0] for row in items}]
    with transaction.atomic():
        if stale:
            CalibrationPair.objects.filter(kind=PairKind.JUDGE, queue_item_id__in=stale).delete()
        _upsert(pairs, unique_fields=["queue_item", "judge", "judge_version", "criterion"])
    return len(pairs)


def _questions_by_criterion(questions: list[dict[str, Any]]) -> dict[str, rubric.Question]:
    out: dict[str, rubric.Question] = {}
    for question in rubric.questions_from_json(questions):
        if question.judge_criterion and question.judge_criterion not in out:
            out[question.judge_criterion] = question
    return out


def _upsert(pairs: list[CalibrationPair], *, unique_fields: list[str]) -> None:
    for start in range(0, len(pairs), _BATCH):
        CalibrationPair.objects.bulk_create(
            pairs[start : start + _BATCH],
            update_conflicts=True,
            unique_fields=unique_fields,
            update_fields=_UPDATE_FIELDS,
        )


def pairs_sync_actions(*, action_ids: list[int]) -> int:
    """A person's decision (approve or reject) on an escalated action is a pair for the agent's
    own confidence; decisions by the policy or a timeout are not human judgements and make none."""
    facts = hooks.action_facts(action_ids)
    now = timezone.now()
    pairs = [
        CalibrationPair(
            organization_id=row["organization_id"],
            project_id=row["project_id"],
            kind=PairKind.AGENT_ACTION,
            conversation_id=row["conversation_id"],
            action_id=row["id"],
            judge="agent",
            judge_version=row["agent_version"] or "",
            criterion=row["action"],
            judge_confidence=row["confidence"],
            human_pass=row["status"] == "approved",
            human_answer=row["status"],
            agent_version=row["agent_version"] or "",
            labeled_at=row["decided_at"],
            updated_at=now,
        )
        for row in facts
        if row["decided_by"] == "person" and row["status"] in ("approved", "rejected")
    ]
    kept = {pair.action_id for pair in pairs}
    with transaction.atomic():
        gone = [i for i in action_ids if i not in kept]
        if gone:
            CalibrationPair.objects.filter(kind=PairKind.AGENT_ACTION, action_id__in=gone).delete()
        _upsert(pairs, unique_fields=["action_id"])
    return len(pairs)


def pairs_items_enqueue(*, item_ids: list[int]) -> None:
    from evaluation import tasks

    enqueue.delay_on_commit(tasks.pairs_sync_items, item_ids)


def pairs_conversations_enqueue(*, conversation_ids: list[int]) -> None:
    from evaluation import tasks

    enqueue.delay_on_commit(tasks.pairs_sync_conversations, conversation_ids)


def pairs_action_enqueue(*, action_id: int) -> None:
    from evaluation import tasks

    enqueue.delay_on_commit(tasks.pairs_sync_actions, [action_id])


# --- the bar -----------------------------------------------------------------------------------

_BAR_FIELDS = ("kappa", "tpr", "tnr")


def bar_set(*, project: Project, values: dict[str, Any], actor: AbstractBaseUser | None = None) -> CalibrationBar:
    """Set the project's bar (any of kappa, tpr, tnr in 0..1, webhook_url); audited."""
    clean: dict[str, Any] = {}
    for name in _BAR_FIELDS:
        if name in values:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise validation.InputError("A number from 0 to 1.", name)
            clean[name] = float(value)
    if "webhook_url" in values:
        url = values["webhook_url"]
        if not isinstance(url, str) or len(url) > 2000 or (url and not url.startswith(("https://", "http://"))):
            raise validation.InputError("An http(s) URL of at most 2000 characters, or empty.", "webhook_url")
        clean["webhook_url"] = url
    with transaction.atomic():
        bar, _ = CalibrationBar.objects.select_for_update().get_or_create(
            project=project, defaults={"organization_id": project.organization_id}
        )
        before = {name: getattr(bar, name) for name in (*_BAR_FIELDS, "webhook_url")}
        for name, value in clean.items():
            setattr(bar, name, value)
        bar.updated_by = actor if getattr(actor, "pk", None) else None
        bar.updated_at = timezone.now()
        bar.save()
        core_services.audit_event_record(
            organization=project.organization,
            kind="calibration.bar_set",
            user=actor,
            subject=bar,
            data={"before": before, "after": {name: getattr(bar, name) for name in before}},
        )
    return bar


# --- daily snapshots and the below-bar alert ---------------------------------------------------

# A snapshot figures the pairs labelled in the week ending with its day: a day alone holds too
# few pairs for a bar of 0.9 (35 passes and 35 fails at least), a longer window would answer
# a drop late.
SNAPSHOT_WINDOW_DAYS = 7
# An alert claimed by a sender that died is claimed again after this long: longer than one
# bounded send (outbound.TOTAL_TIMEOUT_SECONDS), so two senders never overlap.
ALERT_LEASE = dt.timedelta(minutes=5)
ALERT_MAX_ATTEMPTS = 5
BELOW_BAR = "below_bar"  # stats.bar_status's word for a figure under its bar
_FIGURES = (("cohen_kappa", "kappa"), ("tpr", "tpr"), ("tnr", "tnr"))


def _figure(estimate: stats.Estimate) -> dict[str, float | None]:
    interval = estimate.interval
    return {
        "value": stats.jsonable(estimate.value),
        "low": stats.jsonable(interval.low) if interval else None,
        "high": stats.jsonable(interval.high) if interval else None,
    }


def _tightest(result: dict[str, Any], bar: CalibrationBar) -> tuple[float | None, float | None]:
    """The checked figure closest to (or furthest under) its bar: its interval's lower bound
    and that bar, what the budget controller compares. (None, None) when a bound is unknown."""
    best: tuple[float, float] | None = None
    for figure, bar_name in _FIGURES:
        interval = result[figure].interval
        if interval is None:
            return None, None
        threshold = getattr(bar, bar_name)
        if best is None or interval.low - threshold < best[0] - best[1]:
            best = (float(interval.low), float(threshold))
    return best if best is not None else (None, None)


def calibration_snapshots_take(*, day: dt.date | None = None, project_ids: list[int] | None = None) -> int:
    """Write the day's snapshot (yesterday's, UTC, by default) for every (project, judge,
    criterion, version) with pairs in the week ending that day, and record each status change
    (the alert of a drop below the bar is enqueued on commit). Rerunning a day rewrites the same
    rows and sends nothing twice. Returns the number of snapshots written."""
    now = timezone.now()
    day = day or now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    end = selectors.snapshot_reading_at(day)
    start = end - dt.timedelta(days=SNAPSHOT_WINDOW_DAYS)
    pairs = CalibrationPair.objects.filter(
        kind=PairKind.JUDGE, labeled_at__gte=start, labeled_at__lt=end, judge_pass__isnull=False
    )
    if project_ids is not None:
        pairs = pairs.filter(project_id__in=project_ids)
    rows = pairs.order_by("project_id", "judge", "criterion", "judge_version", "id").values_list(
        "organization_id",
        "project_id",
        "judge",
        "criterion",
        "judge_version",
        "judge_pass",
        "human_pass",
        "inclusion_probability",
        "labeled_at",
    )
    # Alerts owed from earlier runs first; this run's changes enqueue their own on commit.
    calibration_alerts_sweep()
    bars: dict[int, CalibrationBar] = {}
    written = 0
    for (org_id, project_id, judge, criterion, version), group in itertools.groupby(
        rows.iterator(chunk_size=10_000), key=lambda r: r[:5]
    ):
        items = list(group)
        if project_id not in bars:
            bars[project_id] = CalibrationBar.objects.filter(project_id=project_id).first() or CalibrationBar(
                organization_id=org_id, project_id=project_id
            )
        bar = bars[project_id]
        result = stats.binary_agreement(
            np.array([r[5] for r in items], dtype=bool),
            np.array([r[6] for r in items], dtype=bool),
            selectors.pair_weights([r[7] for r in items]),
        )
        checked = {"kappa_bar": bar.kappa, "tpr_bar": bar.tpr, "tnr_bar": bar.tnr}
        status = stats.bar_status(result, **checked)
        lower, lower_bar = _tightest(result, bar)
        with transaction.atomic():
            snapshot, _ = CalibrationSnapshot.objects.update_or_create(
                project_id=project_id,
                judge=judge,
                criterion=criterion,
                judge_version=version,
                day=day,
                defaults={
                    "organization_id": org_id,
                    "n": len(items),
                    "status": status,
                    "cleared": stats.bar_cleared(result, **checked),
                    "figures": {
                        name: _figure(result[name]) for name in ("accuracy", "cohen_kappa", "tpr", "tnr", "prevalence")
                    },
                    "bar": {"kappa": bar.kappa, "tpr": bar.tpr, "tnr": bar.tnr},
                    "lower": lower,
                    "lower_bar": lower_bar,
                    "last_labeled_at": max(r[8] for r in items),
                    "computed_at": now,
                },
            )
            calibration_status_record(snapshot=snapshot, webhook_url=bar.webhook_url)
        written += 1
    return written


def calibration_status_record(*, snapshot: CalibrationSnapshot, webhook_url: str) -> CalibrationStatus | None:
    """Record the snapshot's status as the last seen for its judge version, unless a newer
    day's snapshot already spoke (a rerun of an old day changes nothing). A change resets the
    alert; a change to below_bar with a webhook set enqueues it on commit. The caller holds a
    transaction."""
    newer = CalibrationSnapshot.objects.filter(
        project_id=snapshot.project_id,
        judge=snapshot.judge,
        criterion=snapshot.criterion,
        judge_version=snapshot.judge_version,
        day__gt=snapshot.day,
    ).exists()
    if newer:
        return None
    now = timezone.now()
    row, created = CalibrationStatus.objects.select_for_update().get_or_create(
        project_id=snapshot.project_id,
        judge=snapshot.judge,
        judge_version=snapshot.judge_version,
        criterion=snapshot.criterion,
        defaults={"organization_id": snapshot.organization_id, "status": snapshot.status, "changed_at": now},
    )
    if not created:
        if row.status == snapshot.status:
            return row
        row.status = snapshot.status
        row.changed_at = now
        row.notified_at = None
        row.alert_claimed_at = None
        row.alert_attempts = 0
        row.alert_error = ""
        row.save(
            update_fields=[
                "status",
                "changed_at",
                "notified_at",
                "alert_claimed_at",
                "alert_attempts",
                "alert_error",
            ]
        )
    if row.status == BELOW_BAR and webhook_url:
        calibration_alert_enqueue(status_id=row.pk)
    return row


def calibration_alert_enqueue(*, status_id: int) -> None:
    from evaluation import tasks

    enqueue.delay_on_commit(tasks.calibration_alert_send, status_id)


def _alert_due() -> Q:
    return Q(status=BELOW_BAR, notified_at__isnull=True, alert_attempts__lt=ALERT_MAX_ATTEMPTS) & (
        Q(alert_claimed_at__isnull=True) | Q(alert_claimed_at__lt=timezone.now() - ALERT_LEASE)
    )


def calibration_alert_send(*, status_id: int) -> outbound.PostResult | None:
    """POST the below-bar alert of this status change to the project's webhook, at most once
    per change: the row is claimed (a compare-and-set with a lease) before the send and marked
    sent after a 2xx, so concurrent or redelivered tasks do not send it again. None when there
    is nothing to send (sent already, no longer below the bar, claimed by another sender, or no
    webhook). No transaction is open during the POST."""
    now = timezone.now()
    claimed = CalibrationStatus.objects.filter(_alert_due(), pk=status_id).update(
        alert_claimed_at=now, alert_attempts=F("alert_attempts") + 1
    )
    if claimed != 1:
        return None
    row = CalibrationStatus.objects.select_related("project").get(pk=status_id)
    bar = CalibrationBar.objects.filter(project_id=row.project_id).first()
    if bar is None or not bar.webhook_url:
        CalibrationStatus.objects.filter(pk=status_id).update(alert_claimed_at=None, alert_error="no webhook set")
        return None
    snapshot = (
        CalibrationSnapshot.objects.filter(
            project_id=row.project_id, judge=row.judge, criterion=row.criterion, judge_version=row.judge_version
        )
        .order_by("-day")
        .first()
    )
    body = orjson.dumps(_alert_payload(row, snapshot))
    result = outbound.post(
        bar.webhook_url,
        body=body,
        headers={"X-Reviewapp-Event": "calibration.below_bar"},
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE_HOSTS,
    )
    if result.ok:
        CalibrationStatus.objects.filter(pk=status_id, alert_claimed_at=now).update(
            notified_at=timezone.now(), alert_claimed_at=None, alert_error=""
        )
    else:
        logger.warning("calibration alert %s failed: %s", status_id, result.error)
        CalibrationStatus.objects.filter(pk=status_id, alert_claimed_at=now).update(
            alert_claimed_at=None, alert_error=result.error[:500]
        )
    return result


def _alert_payload(row: CalibrationStatus, snapshot: CalibrationSnapshot | None) -> dict[str, Any]:
    query = urlencode(
        {
            "project": row.project.slug,
            "judge": row.judge,
            "criterion": row.criterion,
            "judge_version": row.judge_version,
        }
    )
    return {
        "event": "calibration.below_bar",
        "project": row.project.slug,
        "judge": row.judge,
        "criterion": row.criterion,
        "judge_version": row.judge_version,
        "status": row.status,
        "changed_at": row.changed_at.isoformat(),
        "day": snapshot.day.isoformat() if snapshot else None,
        "n": snapshot.n if snapshot else None,
        "figures": snapshot.figures if snapshot else {},
        "bar": snapshot.bar if snapshot else {},
        "link": f"{settings.SITE_URL.rstrip('/')}/api/v1/calibration?{query}",
    }


def calibration_alerts_sweep() -> int:
    """Re-enqueue alerts still owed (below the bar, not sent, not claimed, attempts left) whose
    project has a webhook: a lost enqueue or a failed send is retried by the daily job."""
    ids = list(
        CalibrationStatus.objects.filter(_alert_due())
        .filter(project_id__in=CalibrationBar.objects.exclude(webhook_url="").values("project_id"))
        .values_list("pk", flat=True)[:1000]
    )
    for status_id in ids:
        calibration_alert_enqueue(status_id=status_id)
    return len(ids)


# A queue holds at most this many rules (the queue API's bound); a preset never pushes it past.
MAX_QUEUE_RULES = 100


def trust_rule(*, judge: str, criterion: str | None, threshold: float, rate: float = 1.0) -> dict[str, Any]:
    """The sampling rule "send humans what the judge is unsure of": conversations this judge
    scored on this criterion with a confidence under its trust threshold, at `rate`. Pure."""
    if not judge or len(judge) > 100 or (criterion is not None and (not criterion or len(criterion) > 100)):
        raise validation.InputError("A judge and criterion of 1 to 100 characters.", "judge")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise validation.InputError("A confidence above 0 and at most 1.", "threshold")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise validation.InputError("A rate above 0 and at most 1.", "rate")
    condition: dict[str, Any] = {"judge": judge}
    if criterion is not None:
        condition["criterion"] = criterion
    condition["confidence_below"] = float(threshold)
    return {"name": "judge unsure", "rate": float(rate), "if": condition}


def queue_trust_rule_add(
    *,
    queue: Queue,
    judge: str,
    criterion: str | None,
    threshold: float,
    rate: float = 1.0,
    actor: AbstractBaseUser | None = None,
) -> Queue:
    """Append the trust preset to a queue's sampling rules through labeling's
    queue_sampling_update (so the rules are validated there and the backfill restarts under
    them); audited as calibration.trust_rule_added. The same rule twice is refused (400)."""
    rule = trust_rule(judge=judge, criterion=criterion, threshold=threshold, rate=rate)
    rules = list(queue.sampling or [])
    if rule in rules or any(
        r.get("if") == rule["if"] and r.get("rate") == rule["rate"] for r in rules if isinstance(r, dict)
    ):
        raise validation.InputError("This queue already has this rule.", "queue")
    if len(rules) >= MAX_QUEUE_RULES:
        raise validation.InputError(f"A queue has at most {MAX_QUEUE_RULES} rules.", "queue")
    with transaction.atomic():
        queue = labeling_services.queue_sampling_update(
            queue=queue, rules=[*rules, rule], max_per_day=queue.max_per_day
        )
        core_services.audit_event_record(
            organization=queue.organization,
            kind="calibration.trust_rule_added",
            user=actor,
            subject=queue,
            data={"rule": rule},
        )
    return queue


__all__ = [
    "bar_set",
    "calibration_alert_send",
    "calibration_alerts_sweep",
    "calibration_snapshots_take",
    "calibration_status_record",
    "pairs_action_enqueue",
    "pairs_conversations_enqueue",
    "pairs_items_enqueue",
    "pairs_sync_actions",
    "pairs_sync_conversations",
    "pairs_sync_items",
    "queue_trust_rule_add",
    "trust_rule",
]
