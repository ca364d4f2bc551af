"""Budgets that follow trust: the project's daily labeling budget across its queues, and the
budget controller that moves a queue's sampling rate with its judge's calibration.

Labeling may not import evaluation, which owns calibration. Evaluation registers a provider
here from its AppConfig.ready (`calibration_provider_register`); until one is registered the
history is unknown and the controller holds every rate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from labeling import budget_controller, rubric, sampling
from labeling.models import LabelSchema, ProjectBudget, Queue, RateChange
from reviewapp import services as core_services
from reviewapp.errors import ValidationFailed
from reviewapp.ingest_schemas import errors_from_pydantic
from reviewapp.models import Conversation, Project

if TYPE_CHECKING:
    from reviewapp.principal import Principal

# --- calibration provider -----------------------------------------------------------------

# provider(project_id=, judge=, criterion=, since=, until=) -> readings, oldest first, or None
# when it cannot tell (the controller then holds the rate).
CalibrationProvider = Callable[..., Sequence[budget_controller.CalibrationPoint] | None]
_providers: list[CalibrationProvider] = []


def calibration_provider_register(provider: CalibrationProvider) -> CalibrationProvider:
    """Install the calibration provider (the last registered wins: one source of truth)."""
    _providers[:] = [provider]
    return provider


def calibration_provider_clear() -> None:
    _providers.clear()


def calibration_history(
    *, project_id: int, judge: str, criterion: str, since: dt.datetime, until: dt.datetime
) -> Sequence[budget_controller.CalibrationPoint] | None:
    if not _providers:
        return None
    return _providers[-1](project_id=project_id, judge=judge, criterion=criterion, since=since, until=until)


# --- the project's daily budget -------------------------------------------------------------


@dataclass(frozen=True)
class ProjectLimit:
    """What the project budget allows one queue a day: the project total and the queue's share
    of it (the total itself when the queue has no share)."""

    total: int
    share: int


def project_limit_for(queue: Queue) -> ProjectLimit | None:
    """The project budget as it applies to this queue, or None when the project has none."""
    budget = ProjectBudget.objects.filter(project_id=queue.project_id).values_list("daily_items", "shares").first()
    if budget is None:
        return None
    daily_items, shares = budget
    share = (shares or {}).get(str(queue.pk))
    return ProjectLimit(total=daily_items, share=budget_controller.share_limit(daily_items, share))


def project_budget_set(
    *, principal: Principal, project: Project, daily_items: int | None, shares: dict[str, float]
) -> ProjectBudget | None:
    """Set (or, with daily_items None, remove) the project's daily labeling budget. Shares name
    queues of this project by id; each is in (0, 1] and together they are at most 1. Audited."""
    errors: dict[str, list[str]] = {}
    if daily_items is not None and not 1 <= daily_items <= sampling.MAX_PER_DAY:
        errors["daily_items"] = [f"Between 1 and {sampling.MAX_PER_DAY}."]
    queue_ids = set(Queue.objects.filter(project=project).values_list("pk", flat=True))
    clean: dict[str, float] = {}
    for key, value in shares.items():
        if not key.isdigit() or int(key) not in queue_ids:
            errors[f"shares.{key}"[:120]] = ["No such queue in this project."]
        elif not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
            errors[f"shares.{key}"] = ["A fraction above 0 and at most 1."]
        else:
            clean[str(int(key))] = float(value)
    if not errors and sum(clean.values()) > 1 + 1e-9:
        errors["shares"] = ["The shares add up to more than 1."]
    if clean and daily_items is None and not errors:
        errors["daily_items"] = ["Shares need a daily budget."]
    if errors:
        raise ValidationFailed("Invalid budget.", errors=errors)
    with transaction.atomic():
        previous = ProjectBudget.objects.select_for_update().filter(project=project).first()
        before = {"daily_items": previous.daily_items, "shares": previous.shares} if previous else None
        budget: ProjectBudget | None
        if daily_items is None:
            ProjectBudget.objects.filter(project=project).delete()
            budget = None
        else:
            budget, _ = ProjectBudget.objects.update_or_create(
                project=project,
                defaults={
                    "organization_id": project.organization_id,
                    "daily_items": daily_items,
                    "shares": clean,
                    "updated_at": timezone.now(),
                },
            )
        after = {"daily_items": daily_items, "shares": clean} if daily_items is not None else None
        if before != after:
            core_services.audit_event_record(
                organization=project.organization,
                kind="project.budget_set",
                principal=principal,
                subject=project,
                data={"from": before, "to": after},
            )
    return budget


# --- the controller -------------------------------------------------------------------------


def rules_in_force(queue: Queue, rules: list[sampling.SamplingRule]) -> list[sampling.SamplingRule]:
    """The rules with the controller's rate in place of each uniform rule's (rules with a
    condition, the targeted signals, keep theirs). The sampler records the rate in force as
    the inclusion probability, so estimates stay unbiased through every change."""
    rate = queue_rate_in_force(queue)
    if rate is None:
        return rules
    return [r.model_copy(update={"rate": rate}) if r.condition is None else r for r in rules]


def _settings_of(queue: Queue) -> budget_controller.ControllerSettings | None:
    try:
        settings = budget_controller.settings_parse(queue.budget_controller)
    except PydanticValidationError:
        return None  # only a hand-edited row: the controller is off rather than guessing
    return settings if settings.enabled else None


def queue_rate_in_force(queue: Queue) -> float | None:
    """The rate the controller sets for the queue's uniform rules, or None when it is off."""
    settings = _settings_of(queue)
    if settings is None:
        return None
    if settings.pinned_rate is not None:
        return settings.pinned_rate
    return queue.controlled_rate if queue.controlled_rate is not None else settings.base_rate


def queue_budget_controller_set(*, principal: Principal, queue: Queue, data: dict[str, Any]) -> Queue:
    """Configure the queue's budget controller (admins). Switching it on starts at the base
    rate; a pin or unpin is recorded as a rate change. Audited."""
    try:
        settings = budget_controller.settings_parse(data)
    except PydanticValidationError as exc:
        raise ValidationFailed("Invalid budget controller.", errors=errors_from_pydantic(exc)) from exc
    now = timezone.now()
    with transaction.atomic():
        locked = Queue.objects.select_for_update().get(pk=queue.pk)
        old_rate = queue_rate_in_force(locked)
        locked.budget_controller = settings.model_dump() if settings.enabled or data else {}
        if not settings.enabled:
            locked.controlled_rate = None
        elif locked.controlled_rate is None:
            locked.controlled_rate = settings.base_rate
        else:
            locked.controlled_rate = min(locked.controlled_rate, settings.base_rate)
        locked.save(update_fields=["budget_controller", "controlled_rate"])
        new_rate = queue_rate_in_force(locked)
        if new_rate is not None and new_rate != old_rate:
            reason = "pinned by an admin" if settings.pinned_rate is not None else "controller settings changed"
            RateChange.objects.create(
                organization_id=locked.organization_id,
                queue=locked,
                old_rate=old_rate,
                new_rate=new_rate,
                reason=reason,
                judge_version=locked.controller_judge_version,
                actor=principal.user if getattr(principal.user, "pk", None) else None,
                at=now,
            )
        core_services.audit_event_record(
            organization=locked.organization,
            kind="queue.budget_controller_set",
            principal=principal,
            subject=locked,
            data={"settings": locked.budget_controller, "rate": new_rate},
        )
    queue.refresh_from_db()
    return queue


# The project's traffic behind the daily floor: the average of this many recent days.
VOLUME_DAYS = 7


def _daily_volume(project_id: int, now: dt.datetime) -> float:
    since = now - dt.timedelta(days=VOLUME_DAYS)
    return Conversation.objects.filter(project_id=project_id, occurred_at__gte=since).count() / VOLUME_DAYS


def queue_judge_criterion(queue: Queue) -> str:
    """The criterion a queue's humans answer for judges: the `judge_criterion` of the first
    question of its rubric that names one ("" when none does). A controller that names no
    criterion follows its judge on this one."""
    schemas = LabelSchema.objects.filter(pk=queue.schema_id)
    questions = schemas.values_list("latest_version__questions", flat=True).first()
    for question in rubric.questions_from_json(questions or []):
        if question.judge_criterion:
            return question.judge_criterion
    return ""


def queue_budget_control(*, queue_id: int, now: dt.datetime | None = None) -> budget_controller.Decision | None:
    """Run the controller once for a queue: read its judge's calibration over the window, decide
    (budget_controller.decide), and record a RateChange when the rate moves. The queue row is
    locked for the decision, so two runs never both step it down. None: the controller is off."""
    now = now or timezone.now()
    queue = Queue.objects.filter(pk=queue_id).first()
    if queue is None:
        return None
    settings = _settings_of(queue)
    if settings is None:
        return None
    # Read outside the lock: the provider may be slow, and the decision re-checks the queue.
    history = calibration_history(
        project_id=queue.project_id,
        judge=settings.judge,
        criterion=settings.criterion or queue_judge_criterion(queue),
        since=now - dt.timedelta(days=settings.window_days * 2),
        until=now,
    )
    volume = _daily_volume(queue.project_id, now)
    with transaction.atomic():
        queue = Queue.objects.select_for_update().get(pk=queue_id)
        settings = _settings_of(queue)
        if settings is None:
            return None
        last = RateChange.objects.filter(queue=queue).order_by("-at", "-id").values_list("at", flat=True).first()
        current = queue.controlled_rate if queue.controlled_rate is not None else settings.base_rate
        decision = budget_controller.decide(
            budget_controller.ControllerInput(
                now=now,
                settings=settings,
                current_rate=current,
                history=history,
                known_version=queue.controller_judge_version,
                last_change_at=last,
                daily_volume=volume,
            )
        )
        if decision.changed:
            RateChange.objects.create(
                organization_id=queue.organization_id,
                queue=queue,
                old_rate=current,
                new_rate=decision.rate,
                reason=decision.reason[:300],
                judge_version=decision.judge_version[:100],
                at=now,
            )
        if decision.changed or decision.judge_version != queue.controller_judge_version:
            Queue.objects.filter(pk=queue.pk).update(
                controlled_rate=decision.rate, controller_judge_version=decision.judge_version[:100]
            )
    return decision


def budget_controller_queue_ids() -> list[int]:
    """Active queues whose controller is switched on."""
    return list(
        Queue.objects.filter(is_active=True, budget_controller__enabled=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
