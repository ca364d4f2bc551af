"""Queues: creating them, their settings and sampling rules, and adding items by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from labeling import lock_objects, pairwise, sampling
from labeling.models import ItemEvent, LabelSchema, LabelSchemaVersion, Queue, QueueItem, QueueKind, SkipPolicy
from labeling.services._common import _user
from labeling.services.backfill import _enqueue_backfill
from reviewapp import validation
from reviewapp.errors import ValidationFailed
from reviewapp.ingest_schemas import errors_from_pydantic
from reviewapp.models import Membership, Project


@dataclass(frozen=True)
class QueueSpec:
    name: str
    schema: LabelSchema
    description: str = ""
    annotations_per_item: int = 1
    max_extra_annotations: int = 0
    priority: int = 0
    lease_seconds: int = 600
    assignee_role: str = "annotator"
    assignee_ids: tuple[int, ...] = ()
    show_judge_scores: bool = False
    skip_policy: str = SkipPolicy.OTHERS
    sampling: tuple[dict[str, Any], ...] = ()
    max_per_day: int | None = None
    backfill_days: int = 30
    gold_rate: float = 0.0
    is_active: bool = True
    kind: str = QueueKind.LABEL


def _assignees_check(*, organization_id: int, assignee_ids: tuple[int, ...] | list[int]) -> None:
    """Only members of the queue's organization may be named: anyone else would see this
    tenant's conversations in their claims."""
    ids = set(assignee_ids)
    if not ids:
        return
    members = set(
        Membership.objects.filter(organization_id=organization_id, user_id__in=ids).values_list("user_id", flat=True)
    )
    if ids - members:
        raise ValidationFailed(
            "Unknown assignees.", errors={"assignees": ["Assignees must be members of the queue's organization."]}
        )


def _queue_spec_check(spec: QueueSpec) -> None:
    """What the serializer bounds, bounded again for every other caller (admin, demo)."""
    validation.check_text(spec.name, field="name")
    validation.check_text(spec.description, field="description")
    validation.check_int(spec.priority, field="priority", bounds=validation.INTEGER)
    validation.check_int(spec.lease_seconds, field="lease_seconds", bounds=validation.POSITIVE)
    validation.check_int(spec.backfill_days, field="backfill_days", bounds=validation.POSITIVE)
    for name in ("annotations_per_item", "max_extra_annotations"):
        validation.check_int(getattr(spec, name), field=name, bounds=validation.POSITIVE_SMALL)
    _max_per_day_check(spec.max_per_day)
    if not (isinstance(spec.gold_rate, int | float) and 0 <= spec.gold_rate <= 1):  # NaN fails too
        raise validation.InputError("Must be from 0 to 1.", "gold_rate")


def _kind_check(spec: QueueSpec) -> None:
    """A kind labeling knows; a pairwise queue's rubric asks pairwise questions only, since its
    items are read back as comparisons (pairwise_queue_create builds its rubric so)."""
    if spec.kind not in QueueKind.values:
        raise validation.InputError(f"One of {', '.join(QueueKind.values)}.", "kind")
    if spec.kind == QueueKind.PAIRWISE:
        _pairwise_rubric_check(spec.schema.latest_version)


def _pairwise_rubric_check(version: LabelSchemaVersion | None) -> None:
    if pairwise.non_pairwise_fields(version.questions if version is not None else []):
        raise validation.InputError(pairwise.RUBRIC_RULE, "kind")


def _max_per_day_check(max_per_day: int | None) -> None:
    if max_per_day is not None:
        validation.check_int(max_per_day, field="max_per_day", bounds=(1, sampling.MAX_PER_DAY))


def _rules_parse(rules: list[dict[str, Any]]) -> list[sampling.SamplingRule]:
    """Parse rules from a client: bounded JSON (depth, NUL, finite), then the rule model."""
    validation.check_json(rules, path="sampling")
    parsed, errors = [], {}
    for index, rule in enumerate(rules):
        try:
            parsed.append(sampling.SamplingRule.model_validate(rule))
        except PydanticValidationError as exc:
            errors.update(errors_from_pydantic(exc, prefix=("sampling", index)))
    if errors:
        raise ValidationFailed("Invalid sampling rules.", errors=errors)
    return parsed


def queue_create(*, project: Project, spec: QueueSpec, user: AbstractBaseUser | None) -> Queue:
    _queue_spec_check(spec)
    _kind_check(spec)
    rules = _rules_parse(list(spec.sampling))  # validated by the caller; parse again to be sure
    if spec.schema.organization_id != project.organization_id or spec.schema.project_id != project.pk:
        raise ValidationFailed("Unknown schema.", errors={"schema": ["No such label schema in this project."]})
    _assignees_check(organization_id=project.organization_id, assignee_ids=spec.assignee_ids)
    with transaction.atomic():
        if spec.kind == QueueKind.PAIRWISE:
            # Checked again under the rubric's lock, which a new rubric version takes too (it
            # refuses a version a pairwise queue of the rubric cannot use): neither misses the other.
            _pairwise_rubric_check(lock_objects.label_schema_lock(schema_id=spec.schema.pk).latest_version)
        queue = Queue.objects.create(
            organization_id=project.organization_id,
            project=project,
            schema=spec.schema,
            name=spec.name,
            description=spec.description,
            kind=spec.kind,
            annotations_per_item=spec.annotations_per_item,
            max_extra_annotations=spec.max_extra_annotations,
            priority=spec.priority,
            lease_seconds=spec.lease_seconds,
            assignee_role=spec.assignee_role,
            show_judge_scores=spec.show_judge_scores,
            skip_policy=spec.skip_policy,
            sampling=[r.model_dump(by_alias=True, exclude_none=True) for r in rules],
            max_per_day=spec.max_per_day,
            backfill_days=spec.backfill_days,
            backfill_done_at=None if rules else timezone.now(),
            backfill_heartbeat_at=timezone.now() if rules else None,
            gold_rate=spec.gold_rate,
            is_active=spec.is_active,
            created_by=_user(user),
        )
        if spec.assignee_ids:
            queue.assignees.set(spec.assignee_ids)
        if rules:
            _enqueue_backfill(queue.pk, queue.backfill_generation)
    return queue


def queue_sampling_update(*, queue: Queue, rules: list[dict[str, Any]], max_per_day: int | None) -> Queue:
    """Replace a queue's sampling rules and backfill again under the new rules (items already
    sampled stay: a conversation is never in a queue twice)."""
    _max_per_day_check(max_per_day)
    parsed = _rules_parse(rules)
    now = timezone.now()
    with transaction.atomic():
        # A new generation: a backfill step still running under the old rules can no longer
        # write its cursor (queue_backfill_step compares and sets it), and its chain ends.
        Queue.objects.filter(pk=queue.pk).update(
            sampling=[r.model_dump(by_alias=True, exclude_none=True) for r in parsed],
            max_per_day=max_per_day,
            backfill_cursor=None,
            backfill_done_at=None if parsed else now,
            backfill_generation=F("backfill_generation") + 1,
            backfill_heartbeat_at=now if parsed else None,
        )
        queue.refresh_from_db()
        if parsed:
            _enqueue_backfill(queue.pk, queue.backfill_generation)
    return queue


# What queue_settings_update may change. The project and rubric are fixed once a queue exists
# (its labels point at the rubric's versions); sampling goes through queue_sampling_update so
# the backfill restarts.
QUEUE_SETTINGS = frozenset(
    {
        "name",
        "description",
        "annotations_per_item",
        "max_extra_annotations",
        "priority",
        "lease_seconds",
        "assignee_role",
        "show_judge_scores",
        "skip_policy",
        "backfill_days",
        "gold_rate",
        "is_active",
    }
)


def queue_settings_update(
    *, queue: Queue, changes: dict[str, Any], assignee_ids: tuple[int, ...] | None = None
) -> Queue:
    """Change a queue's settings (`QUEUE_SETTINGS`) and, when given, its named assignees.
    Items already in the queue keep the number of labels they were created with."""
    unknown = sorted(set(changes) - QUEUE_SETTINGS)
    if unknown:
        raise ValidationFailed("Not a queue setting.", errors={name: ["Cannot be changed here."] for name in unknown})
    if assignee_ids is not None:
        _assignees_check(organization_id=queue.organization_id, assignee_ids=assignee_ids)
    with transaction.atomic():
        if changes:
            Queue.objects.filter(pk=queue.pk).update(**changes)
        if assignee_ids is not None:
            queue.assignees.set(assignee_ids)
    queue.refresh_from_db()
    return queue


@dataclass(frozen=True)
class ItemAddResult:
    conversation_id: int
    item_id: int
    status: str  # created | duplicate


def queue_items_add(
    *, queue: Queue, conversation_ids: list[int], user: AbstractBaseUser | None, source: str = "manual"
) -> list[ItemAddResult]:
    """Add conversations by hand. A conversation already in the queue is a duplicate, whichever
    way it got there."""
    with transaction.atomic():
        existing = dict(
            QueueItem.objects.filter(queue=queue, conversation_id__in=conversation_ids).values_list(
                "conversation_id", "pk"
            )
        )
        new = [cid for cid in dict.fromkeys(conversation_ids) if cid not in existing]
        now = timezone.now()
        QueueItem.objects.bulk_create(
            [
                QueueItem(
                    organization_id=queue.organization_id,
                    queue=queue,
                    conversation_id=cid,
                    priority=queue.priority,
                    labels_needed=queue.annotations_per_item,
                    source=source,
                    sampling_strategy="manual",
                    created_at=now,
                )
                for cid in new
            ],
            ignore_conflicts=True,
        )
        ids = dict(QueueItem.objects.filter(queue=queue, conversation_id__in=new).values_list("conversation_id", "pk"))
        ItemEvent.objects.bulk_create(
            [
                ItemEvent(
                    organization_id=queue.organization_id,
                    item_id=ids[cid],
                    user=_user(user),
                    kind="added",
                    data={"source": source},
                )
                for cid in new
                if cid in ids
            ]
        )
    created = set(new)
    results = []
    seen: set[int] = set()
    for cid in conversation_ids:
        status = "created" if cid in created and cid not in seen else "duplicate"
        seen.add(cid)
        results.append(ItemAddResult(cid, existing.get(cid) or ids[cid], status))
    return results
