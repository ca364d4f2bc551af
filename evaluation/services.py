"""Calibration pairs follow final labels, late judge scores and people's decisions on escalated
actions; the per-project bar. Pairs are derived rows: every sync recomputes them from their
sources and writes them with one INSERT … ON CONFLICT DO UPDATE per batch, so a redelivered or
repeated task leaves the same rows."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evaluation.models import CalibrationBar, CalibrationPair, PairKind
from labeling import rubric
from labeling import services as labeling_services
from labeling.models import ItemStatus, Queue, QueueItem
from reviewapp import enqueue, hooks, validation
from reviewapp import services as core_services
from reviewapp.models import JudgeScore, Project

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
    "pairs_action_enqueue",
    "pairs_conversations_enqueue",
    "pairs_items_enqueue",
    "pairs_sync_actions",
    "pairs_sync_conversations",
    "pairs_sync_items",
    "queue_trust_rule_add",
    "trust_rule",
]
