"""Golden datasets: create and edit datasets, promote final labels into their working set (by
hand or by rule), edit and remove items, freeze numbered versions and tag them.

What an item holds, its key, split and hashes are decided in evaluation/dataset_items.py (pure);
this module reads the labeling rows, writes the dataset rows and owns the transactions. Frozen
version items are written once, by dataset_version_freeze, and never updated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from evaluation import dataset_items, lock_objects
from evaluation.models import Dataset, DatasetItem, DatasetVersion, DatasetVersionItem, GateMode, Split
from labeling.models import ItemStatus, Label, Queue, QueueItem
from reviewapp import enqueue, validation
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project

NAME_MAX = 200
DESCRIPTION_MAX = 10_000
NOTE_MAX = 2_000
ITEMS_PER_REQUEST = 500
# Rule promotion reads a queue's final items this many at a time.
_PROMOTE_BATCH = 500
_RATES = ("gate_pass_rate", "gate_critical_pass_rate")


def _user(actor: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor if getattr(actor, "pk", None) else None  # an agent's key stands for no user


def _text(value: Any, *, field: str, max_chars: int, required: bool = False) -> str:
    if not isinstance(value, str):
        raise validation.InputError("Send text.", field)
    value = value.strip() if required else value
    if required and not value:
        raise validation.InputError("This field may not be blank.", field)
    if len(value) > max_chars:
        raise validation.InputError(f"At most {max_chars} characters.", field)
    validation.check_text(value, field=field)
    return value


def _rate(value: Any, *, field: str, open_interval: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise validation.InputError("A number from 0 to 1.", field)
    if open_interval and not 0 < value < 1:
        raise validation.InputError("A number strictly between 0 and 1.", field)
    if not 0 <= value <= 1:
        raise validation.InputError("A number from 0 to 1.", field)
    return float(value)


def _clean_settings(project: Project, values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = _text(values["name"], field="name", max_chars=NAME_MAX, required=True)
    if "description" in values:
        clean["description"] = _text(values["description"], field="description", max_chars=DESCRIPTION_MAX)
    for name in _RATES:
        if name in values:
            clean[name] = _rate(values[name], field=name)
    if "gate_confidence" in values:
        clean["gate_confidence"] = _rate(values["gate_confidence"], field="gate_confidence", open_interval=True)
    if "gate_mode" in values:
        if values["gate_mode"] not in GateMode.values:
            raise validation.InputError(f"One of: {', '.join(GateMode.values)}.", "gate_mode")
        clean["gate_mode"] = values["gate_mode"]
    if "gate_require_not_worse" in values:
        if not isinstance(values["gate_require_not_worse"], bool):
            raise validation.InputError("Send true or false.", "gate_require_not_worse")
        clean["gate_require_not_worse"] = values["gate_require_not_worse"]
    if "promotion_rules" in values:
        clean["promotion_rules"] = _clean_rules(project, values["promotion_rules"])
    return clean


def _clean_rules(project: Project, value: Any) -> list[dict[str, Any]]:
    rules, errors = dataset_items.rules_parse(value)
    if errors:
        raise ValidationFailed("Invalid promotion rules.", errors=errors)
    known = set(Queue.objects.filter(project=project, name__in={r.queue for r in rules}).values_list("name", flat=True))
    unknown = {
        f"promotion_rules[{i}].queue": ["No queue of that name in this project."]
        for i, r in enumerate(rules)
        if r.queue not in known
    }
    if unknown:
        raise ValidationFailed("Invalid promotion rules.", errors=unknown)
    return [r.as_json() for r in rules]


def dataset_create(*, project: Project, values: dict[str, Any], actor: AbstractBaseUser | None = None) -> Dataset:
    """A dataset of `project`: `name` (unique in the project), optional description, gate
    thresholds (0..1), gate_mode, gate_confidence (strictly 0..1), gate_require_not_worse and
    promotion_rules."""
    if "name" not in values:
        raise validation.InputError("This field is required.", "name")
    clean = _clean_settings(project, values)
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                organization_id=project.organization_id, project=project, created_by=_user(actor), **clean
            )
    except IntegrityError:
        raise validation.InputError("A dataset of this name exists in the project.", "name") from None


def dataset_update(*, dataset: Dataset, values: dict[str, Any]) -> Dataset:
    """Change any of the settings dataset_create takes; the items and versions stay."""
    clean = _clean_settings(dataset.project, values)
    if not clean:
        return dataset
    for name, value in clean.items():
        setattr(dataset, name, value)
    dataset.updated_at = timezone.now()
    try:
        with transaction.atomic():
            dataset.save(update_fields=[*clean, "updated_at"])
    except IntegrityError:
        raise validation.InputError("A dataset of this name exists in the project.", "name") from None
    return dataset


# --- Items ------------------------------------------------------------------------------------


@dataclass
class ItemEntry:
    """One item to promote: a final queue item, whether it is critical, its tags, and
    optionally its key (else the conversation's, see dataset_items.key_for_conversation)."""

    queue_item: int
    critical: bool = False
    tags: list[str] = field(default_factory=list)
    key: str | None = None


@dataclass
class AddResult:
    added: list[DatasetItem]
    existing: list[DatasetItem]


def _questions(item: QueueItem) -> list[dict[str, Any]]:
    version = item.queue.schema.latest_version
    return list(version.questions) if version is not None else []


def _item_fields(
    item: QueueItem, labels: Sequence[Label], *, key: str, critical: bool, tags: list[str]
) -> dict[str, Any]:
    """The working-set columns of an item promoted from a final queue item."""
    questions = _questions(item)
    answers = item.final_answers or {}
    turn = dataset_items.turn_under_test(
        item.conversation.messages or [],
        answers,
        turn_questions=[q["key"] for q in questions if q.get("type") == "turn"],
        text_questions=[q["key"] for q in questions if q.get("type") == "text"],
    )
    schema_version = max((label.schema_version for label in labels), key=lambda v: v.version, default=None)
    schema_version = schema_version or item.queue.schema.latest_version
    lineage = {
        "queue": item.queue.name,
        "queue_id": item.queue_id,
        "queue_item": item.pk,
        "conversation_id": item.conversation_id,
        "external_id": item.conversation.external_id,
        "agent_version": item.conversation.agent_version,
        "label_ids": [label.pk for label in labels],
        "annotators": [label.user.get_username() for label in labels],
        "reviewer": item.reviewed_by.get_username() if item.reviewed_by_id else None,
        "final_source": item.final_source,
        # Labels are written by people; judges score conversations but never make a final label.
        "made_by": "human",
        "rubric": {"name": item.queue.schema.name, "version": schema_version.version if schema_version else None},
        "reference": turn.reference_source,
        "completed_at": item.completed_at.isoformat() if item.completed_at else None,
    }
    fields = {
        "input_messages": turn.input_messages,
        "reference_output": turn.reference_output,
        "expected_labels": answers,
        "critical": critical,
        "tags": tags,
        "split": dataset_items.split_for(key),
    }
    return {
        **fields,
        "key": key,
        "conversation_id": item.conversation_id,
        "queue_item_id": item.pk,
        "lineage": lineage,
        "content_hash": dataset_items.content_hash(key, fields),
    }


def _queue_items(dataset: Dataset, ids: Iterable[int]) -> dict[int, QueueItem]:
    rows = (
        QueueItem.objects.filter(
            organization_id=dataset.organization_id, queue__project_id=dataset.project_id, pk__in=set(ids)
        )
        .select_related("queue", "queue__schema", "queue__schema__latest_version", "conversation", "reviewed_by")
        .order_by("pk")
    )
    return {row.pk: row for row in rows}


def _labels_of(item_ids: Iterable[int]) -> dict[int, list[Label]]:
    out: dict[int, list[Label]] = {}
    for label in (
        Label.objects.filter(item_id__in=set(item_ids)).select_related("user", "schema_version").order_by("id")
    ):
        out.setdefault(label.item_id, []).append(label)
    return out


def _is_final(item: QueueItem) -> bool:
    return item.final_answers is not None and item.status == ItemStatus.COMPLETED


def _insert(dataset: Dataset, wanted: list[tuple[QueueItem, ItemEntry]], actor: AbstractBaseUser | None) -> AddResult:
    """Insert the items not yet in the dataset (by queue item or by key). The caller holds the
    dataset's lock, so two requests cannot both report the same item as added."""
    labels = _labels_of(qi.pk for qi, _ in wanted)
    rows: list[dict[str, Any]] = []
    for qi, entry in wanted:
        key = entry.key or dataset_items.key_for_conversation(qi.conversation.external_id)
        rows.append(_item_fields(qi, labels.get(qi.pk, []), key=key, critical=entry.critical, tags=entry.tags))
    present = {row.key: row for row in DatasetItem.objects.filter(dataset=dataset, key__in=[r["key"] for r in rows])}
    by_queue_item = {
        row.queue_item_id: row
        for row in DatasetItem.objects.filter(dataset=dataset, queue_item_id__in=[r["queue_item_id"] for r in rows])
    }
    now = timezone.now()
    new: list[DatasetItem] = []
    existing: list[DatasetItem] = []
    for row in rows:
        there = present.get(row["key"]) or by_queue_item.get(row["queue_item_id"])
        if there is not None:
            # Named twice in one request: added once, and not "already there" either.
            if there.pk is not None and all(there is not e for e in existing):
                existing.append(there)
            continue
        item = DatasetItem(
            organization_id=dataset.organization_id,
            dataset=dataset,
            added_by=_user(actor),
            added_at=now,
            updated_at=now,
            **row,
        )
        present[row["key"]] = by_queue_item[row["queue_item_id"]] = item
        new.append(item)
    DatasetItem.objects.bulk_create(new)
    if new:
        Dataset.objects.filter(pk=dataset.pk).update(updated_at=now)
    return AddResult(added=new, existing=existing)


def dataset_items_add(
    *, dataset: Dataset, entries: Sequence[ItemEntry], actor: AbstractBaseUser | None = None
) -> AddResult:
    """Promote final queue items of the dataset's project into its working set. A queue item
    that is unknown or not final refuses the whole request (400 naming `items[i].queue_item`);
    one already in the dataset (by queue item or by key) is reported in `existing`."""
    if len(entries) > ITEMS_PER_REQUEST:
        raise validation.InputError(f"At most {ITEMS_PER_REQUEST} items per request.", "items")
    errors: dict[str, list[str]] = {}
    clean: list[ItemEntry] = []
    for i, entry in enumerate(entries):
        tags, problem = dataset_items.clean_tags(entry.tags)
        if problem:
            errors[f"items[{i}].tags"] = [problem]
        if entry.key is not None and not dataset_items.KEY_PATTERN.match(entry.key):
            errors[f"items[{i}].key"] = [
                "1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit."
            ]
        if not validation.is_id(entry.queue_item):
            errors[f"items[{i}].queue_item"] = ["No such item in this project."]
        clean.append(ItemEntry(queue_item=entry.queue_item, critical=bool(entry.critical), tags=tags, key=entry.key))
    found = _queue_items(dataset, [e.queue_item for e in clean if validation.is_id(e.queue_item)])
    for i, entry in enumerate(clean):
        qi = found.get(entry.queue_item)
        if f"items[{i}].queue_item" in errors:
            continue
        if qi is None:
            errors[f"items[{i}].queue_item"] = ["No such item in this project."]
        elif not _is_final(qi):
            errors[f"items[{i}].queue_item"] = ["This item has no final label yet."]
    if errors:
        raise ValidationFailed("Some items cannot be added.", errors=errors)
    with transaction.atomic():
        lock_objects.dataset_lock(dataset_id=dataset.pk)
        return _insert(dataset, [(found[e.queue_item], e) for e in clean], actor)


def dataset_item_update(*, item: DatasetItem, values: dict[str, Any]) -> DatasetItem:
    """Change a working item's `critical`, `tags` or `split`; its content hash follows. Frozen
    copies of it are other rows and do not change."""
    changed: list[str] = []
    if "critical" in values:
        if not isinstance(values["critical"], bool):
            raise validation.InputError("Send true or false.", "critical")
        item.critical = values["critical"]
        changed.append("critical")
    if "tags" in values:
        tags, problem = dataset_items.clean_tags(values["tags"])
        if problem:
            raise validation.InputError(problem, "tags")
        item.tags = tags
        changed.append("tags")
    if "split" in values:
        if values["split"] not in Split.values:
            raise validation.InputError(f"One of: {', '.join(Split.values)}.", "split")
        item.split = values["split"]
        changed.append("split")
    if not changed:
        return item
    item.content_hash = dataset_items.content_hash(
        item.key, {f: getattr(item, f) for f in dataset_items.CONTENT_FIELDS}
    )
    item.updated_at = timezone.now()
    item.save(update_fields=[*changed, "content_hash", "updated_at"])
    return item


def dataset_item_remove(*, item: DatasetItem) -> None:
    item.delete()


# --- Promotion rules --------------------------------------------------------------------------


@dataclass
class PromoteResult:
    matched: int = 0
    added: list[DatasetItem] = field(default_factory=list)
    existing: int = 0


def _promote(dataset: Dataset, items: Sequence[QueueItem], actor: AbstractBaseUser | None) -> PromoteResult:
    """Apply the dataset's rules to these queue items (of its project); the first rule naming an
    item's queue whose condition holds decides critical and tags."""
    result = PromoteResult()
    rules, _errors = dataset_items.rules_parse(dataset.promotion_rules)  # stored rules were validated
    final = [qi for qi in items if _is_final(qi) and not qi.is_gold and qi.queue.project_id == dataset.project_id]
    if not rules or not final:
        return result
    labels = _labels_of(qi.pk for qi in final)
    wanted: list[tuple[QueueItem, ItemEntry]] = []
    for qi in final:
        for rule in rules:
            if rule.queue != qi.queue.name:
                continue
            if dataset_items.rule_matches(
                rule, final_answers=qi.final_answers or {}, label_answers=[lb.answers for lb in labels.get(qi.pk, [])]
            ):
                wanted.append((qi, ItemEntry(queue_item=qi.pk, critical=rule.critical, tags=list(rule.tags))))
                break
    result.matched = len(wanted)
    if wanted:
        with transaction.atomic():
            lock_objects.dataset_lock(dataset_id=dataset.pk)
            added = _insert(dataset, wanted, actor)
        result.added, result.existing = added.added, len(added.existing)
    return result


def dataset_promote(*, dataset: Dataset, actor: AbstractBaseUser | None = None) -> PromoteResult:
    """Apply the dataset's promotion rules to every final item of the queues they name, now.
    Items already in the dataset are counted in `existing`, never added twice."""
    rules, _errors = dataset_items.rules_parse(dataset.promotion_rules)
    queue_ids = list(
        Queue.objects.filter(project_id=dataset.project_id, name__in={r.queue for r in rules}).values_list(
            "pk", flat=True
        )
    )
    total = PromoteResult()
    base = (
        QueueItem.objects.filter(
            queue_id__in=queue_ids, status=ItemStatus.COMPLETED, final_answers__isnull=False, is_gold=False
        )
        .select_related("queue", "queue__schema", "queue__schema__latest_version", "conversation", "reviewed_by")
        .order_by("pk")
    )
    after = 0
    while queue_ids:
        batch = list(base.filter(pk__gt=after)[:_PROMOTE_BATCH])
        if not batch:
            break
        after = batch[-1].pk
        part = _promote(dataset, batch, actor)
        total.matched += part.matched
        total.added += part.added
        total.existing += part.existing
    return total


def dataset_rules_enqueue(*, item_ids: list[int]) -> None:
    """Items just became final (or changed): apply promotion rules to them after commit. No
    query here: the label path's statement count is pinned (reviewapp.hooks.items_finalized)."""
    from evaluation import tasks

    enqueue.delay_on_commit(tasks.dataset_rules_apply, item_ids)


def dataset_rules_apply(*, item_ids: list[int]) -> int:
    """Apply every rule-bearing dataset of the items' projects to these items; idempotent (an
    item already in a dataset stays as it is). Returns the number of items added."""
    items = list(
        QueueItem.objects.filter(
            pk__in=item_ids, status=ItemStatus.COMPLETED, final_answers__isnull=False, is_gold=False
        )
        .select_related("queue", "queue__schema", "queue__schema__latest_version", "conversation", "reviewed_by")
        .order_by("pk")
    )
    if not items:
        return 0
    datasets = Dataset.objects.filter(project_id__in={qi.queue.project_id for qi in items}).exclude(promotion_rules=[])
    added = 0
    for dataset in datasets.order_by("pk"):
        added += len(_promote(dataset, [qi for qi in items if qi.queue.project_id == dataset.project_id], None).added)
    return added


# --- Versions ---------------------------------------------------------------------------------


def dataset_version_freeze(
    *, dataset: Dataset, note: str = "", actor: AbstractBaseUser | None = None
) -> DatasetVersion:
    """Copy the working set into the next numbered, immutable version. Holds the dataset's lock
    so concurrent freezes get distinct numbers and each sees a whole working set."""
    note = _text(note, field="note", max_chars=NOTE_MAX)
    with transaction.atomic():
        lock_objects.dataset_lock(dataset_id=dataset.pk)
        items = list(DatasetItem.objects.filter(dataset=dataset).order_by("key"))
        if not items:
            raise validation.InputError("The dataset has no items to freeze.", "items")
        last = DatasetVersion.objects.filter(dataset=dataset).aggregate(n=Max("number"))["n"] or 0
        version = DatasetVersion.objects.create(
            organization_id=dataset.organization_id,
            dataset=dataset,
            number=last + 1,
            content_hash=dataset_items.version_hash((i.key, i.content_hash) for i in items),
            item_count=len(items),
            critical_count=sum(1 for i in items if i.critical),
            note=note,
            created_by=_user(actor),
        )
        copied = ["key", "conversation_id", "queue_item_id", "lineage", "content_hash", *dataset_items.CONTENT_FIELDS]
        DatasetVersionItem.objects.bulk_create(
            [DatasetVersionItem(version=version, **{f: getattr(i, f) for f in copied}) for i in items], batch_size=1000
        )
    return version


def dataset_version_tag(*, version: DatasetVersion, tags: Any, replace: bool = False) -> DatasetVersion:
    """Put tags on a version (`replace`: the version's tags become exactly these). A tag names
    at most one version of a dataset: taking it here removes it from the others."""
    clean, problem = dataset_items.clean_tags(tags)
    if problem:
        raise validation.InputError(problem, "tags")
    with transaction.atomic():
        lock_objects.dataset_lock(dataset_id=version.dataset_id)
        for other in DatasetVersion.objects.filter(dataset_id=version.dataset_id).exclude(pk=version.pk).order_by("pk"):
            kept = [t for t in other.tags if t not in clean]
            if kept != other.tags:
                other.tags = kept
                other.save(update_fields=["tags"])
        version.refresh_from_db(fields=["tags"])
        merged = clean if replace else [*version.tags, *[t for t in clean if t not in version.tags]]
        if len(merged) > dataset_items.TAGS_MAX:
            raise validation.InputError(f"A version carries at most {dataset_items.TAGS_MAX} tags.", "tags")
        version.tags = merged
        version.save(update_fields=["tags"])
    return version
