"""Rubrics: label schemas and their immutable versions."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from labeling import lock_objects, pairwise, rubric
from labeling.models import LabelSchema, LabelSchemaVersion, Queue, QueueKind
from labeling.services._common import _user
from reviewapp import validation
from reviewapp.errors import Conflict, ValidationFailed
from reviewapp.models import Project


def _rubric_check(rubric_in: rubric.Rubric) -> None:
    # NUL in a name or a question would be stored on SQLite and fail on PostgreSQL.
    validation.check_json(rubric_in.model_dump(exclude_none=True))


def label_schema_create(*, project: Project, rubric_in: rubric.Rubric, user: AbstractBaseUser | None) -> LabelSchema:
    _rubric_check(rubric_in)
    with transaction.atomic():
        schema = LabelSchema.objects.create(
            organization_id=project.organization_id, project=project, name=rubric_in.name
        )
        version = LabelSchemaVersion.objects.create(
            schema=schema,
            version=1,
            instructions=rubric_in.instructions,
            questions=[q.model_dump(exclude_none=True) for q in rubric_in.questions],
            created_by=_user(user),
        )
        schema.latest_version = version
        schema.save(update_fields=["latest_version"])
    return schema


def label_schema_version_check(*, schema: LabelSchema, rubric_in: rubric.Rubric) -> None:
    """Refuse (400) a version that a queue of the rubric could not use: a pairwise queue reads
    its answers as comparisons, so its rubric asks only pairwise questions, as queue_create
    requires of a new pairwise queue. The errors name the fields as the rubric's own validation
    does (`questions[1].options`). The admin's form asks before saving; label_schema_version_create
    asks again under the rubric's lock."""
    queues = list(
        Queue.objects.filter(schema_id=schema.pk, kind=QueueKind.PAIRWISE).order_by("pk").values_list("name", flat=True)
    )
    if not queues:
        return
    fields = pairwise.non_pairwise_fields([q.model_dump(exclude_none=True) for q in rubric_in.questions])
    if fields:
        more = f" (and {len(queues) - 1} more)" if len(queues) > 1 else ""
        message = f"{pairwise.RUBRIC_RULE} Used by the pairwise queue {queues[0]!r}{more}."
        raise ValidationFailed("Invalid rubric.", errors={field: [message] for field in fields})


def label_schema_version_create(
    *, schema: LabelSchema, rubric_in: rubric.Rubric, user: AbstractBaseUser | None
) -> LabelSchemaVersion:
    """Editing a rubric adds a version; labels keep pointing at the version they were made with.
    A pairwise queue's rubric stays pairwise (label_schema_version_check)."""
    _rubric_check(rubric_in)
    with transaction.atomic():
        locked = lock_objects.label_schema_lock(schema_id=schema.pk)
        label_schema_version_check(schema=locked, rubric_in=rubric_in)
        number = (locked.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        version = LabelSchemaVersion.objects.create(
            schema=locked,
            version=number,
            instructions=rubric_in.instructions,
            questions=[q.model_dump(exclude_none=True) for q in rubric_in.questions],
            created_by=_user(user),
        )
        locked.name = rubric_in.name
        locked.latest_version = version
        locked.save(update_fields=["name", "latest_version"])
    schema.refresh_from_db()
    return version


def schema_version_resolve(*, queue: Queue, version_id: int | None) -> LabelSchemaVersion:
    """The rubric version answers are made against: the queue's latest when none is named, else
    the named one, which must be a version of the queue's rubric (400 otherwise). The API and
    the browser both ask here, so neither quietly labels against another version."""
    if version_id is not None and not validation.is_id(version_id):
        raise ValidationFailed(
            "Unknown schema version.", errors={"schema_version": ["Not a version of this queue's schema."]}
        )
    version = _schema_version(queue=queue, version_id=version_id)
    if version is None:  # _schema_version raises first; this narrows the type
        raise Conflict("This queue's schema has no version.")
    return version


def _schema_version(*, queue: Queue, version_id: int | None) -> LabelSchemaVersion | None:
    if version_id is None:
        # The selectors load the queue with its rubric's latest version: no query then.
        version = queue.schema.latest_version
    else:
        version = LabelSchemaVersion.objects.filter(pk=version_id, schema_id=queue.schema_id).first()
        if version is None:
            raise ValidationFailed(
                "Unknown schema version.", errors={"schema_version": ["Not a version of this queue's schema."]}
            )
    if version is None:
        raise Conflict("This queue's schema has no version.")
    return version
