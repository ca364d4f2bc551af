"""Applying a project configuration document: create what is missing, make a new version of
what changed, update settings that changed, leave everything else alone.

Every write goes through the owning app's service (rubric, ladder and policy versions, queue
creation, settings and sampling, budgets, the calibration bar), so each is validated, audited
and followed up (a backfill under new sampling rules) exactly as through that app's own API.
The whole apply is one transaction; a dry run is the same apply, rolled back at the end, so the
diff it answers is the one an apply would make, validation by the services included.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_slug
from django.db import transaction

from escalations import selectors as escalation_selectors
from escalations import services as escalation_services
from evaluation import selectors as evaluation_selectors
from evaluation import services as evaluation_services
from labeling import services as labeling_services
from labeling.models import LabelSchema, ProjectBudget, Queue, QueueKind
from provisioning import document
from provisioning.document import Document, path_join
from reviewapp import derived_signals
from reviewapp import services as core_services
from reviewapp.errors import ApplicationError, ValidationFailed
from reviewapp.models import Organization, Project
from reviewapp.principal import Principal

CREATED = "created"
NEW_VERSION = "new_version"
CHANGED = "changed"
UNCHANGED = "unchanged"


@dataclass
class Change:
    """What an apply did (or, in a dry run, would do) to one object of the document."""

    path: str  # where in the document: `queues[2]`
    object: str  # project | rubric | queue | ladder | policy | budget | calibration_bar
    name: str
    change: str  # created | new_version | changed | unchanged
    fields: list[str] = field(default_factory=list)


@dataclass
class ApplyResult:
    project: str
    dry_run: bool
    changes: list[Change]

    @property
    def summary(self) -> dict[str, int]:
        counts = {CREATED: 0, NEW_VERSION: 0, CHANGED: 0, UNCHANGED: 0}
        for c in self.changes:
            counts[c.change] += 1
        return counts

    @property
    def changed(self) -> bool:
        return any(c.change != UNCHANGED for c in self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "dry_run": self.dry_run,
            "summary": self.summary,
            "changes": [asdict(c) for c in self.changes],
        }


class _DryRun(Exception):
    """Raised at the end of a dry run to roll its transaction back."""

    def __init__(self, changes: list[Change]):
        super().__init__("dry run")
        self.changes = changes


@contextmanager
def _at(prefix: str) -> Iterator[None]:
    """A service's 400 names a field of its own input (`rules[1].ladder`); the document's
    reader needs its place in the document (`policy.rules[1].ladder`)."""
    try:
        yield
    except ApplicationError as exc:
        if exc.status_code != 400:
            raise
        errors = {path_join(prefix, str(key)): value for key, value in (exc.errors or {"body": [exc.message]}).items()}
        raise ValidationFailed(exc.message, errors=errors) from exc


def project_config_apply(
    *, principal: Principal | None, project: Project, data: Any, dry_run: bool = False
) -> ApplyResult:
    """Apply a configuration document (provisioning/document.py) to `project`. A 400 names the
    place in the document; nothing is written then, nor in a dry run."""
    return _apply_parsed(principal=principal, project=project, doc=document.document_parse(data), dry_run=dry_run)


def _apply_parsed(*, principal: Principal | None, project: Project, doc: Document, dry_run: bool) -> ApplyResult:
    principal = principal or Principal(organization=project.organization, role="admin")
    try:
        with transaction.atomic():
            changes = _apply(principal=principal, project=project, doc=doc)
            if dry_run:
                raise _DryRun(changes)
    except _DryRun as done:
        project.refresh_from_db()
        return ApplyResult(project=project.slug, dry_run=True, changes=done.changes)
    return ApplyResult(project=project.slug, dry_run=False, changes=changes)


def project_create_from_config(
    *,
    principal: Principal | None,
    organization: Organization,
    slug: str,
    name: str,
    data: Any,
    dry_run: bool = False,
) -> tuple[Project | None, ApplyResult]:
    """A new project configured by a document, in one transaction: if the document is refused,
    no project is left behind. A dry run answers the diff against an empty project."""
    if Project.objects.filter(organization=organization, slug=slug).exists():
        raise ValidationFailed("Project exists.", errors={"slug": [f"A project '{slug}' exists already."]})
    doc = document.document_parse(data)  # refuse a bad document before making anything
    try:
        validate_slug(slug)
    except DjangoValidationError as exc:
        raise ValidationFailed("Invalid slug.", errors={"slug": list(exc.messages)}) from exc
    if len(slug) > 64 or len(name) > 200 or "\x00" in name:
        raise ValidationFailed("Too long.", errors={"slug" if len(slug) > 64 else "name": ["Too long, or holds NUL."]})
    with transaction.atomic():
        project = core_services.project_create_new(organization=organization, slug=slug, name=name or slug)
        result = _apply_parsed(principal=principal, project=project, doc=doc, dry_run=dry_run)
        if dry_run:
            transaction.set_rollback(True)
            return None, result
    return project, result


def _apply(*, principal: Principal, project: Project, doc: Document) -> list[Change]:
    changes: list[Change] = []
    if doc.project is not None:
        changes.append(_apply_project(principal, project, doc.project))
    rubrics = _rubrics_existing(project)
    if doc.rubrics is not None:
        changes.extend(_apply_rubrics(principal, project, doc.rubrics, rubrics))
    if doc.ladders is not None:
        changes.extend(_apply_ladders(principal, project, doc.ladders))
    if doc.policy is not None:
        changes.append(_apply_policy(principal, project, doc.policy))
    queues: dict[str, Queue] = {}
    if doc.queues is not None:
        changes.extend(_apply_queues(principal, project, doc.queues, rubrics, queues))
    if doc.budget is not None:
        changes.append(_apply_budget(principal, project, doc.budget))
    if doc.calibration_bar is not None:
        changes.append(_apply_bar(principal, project, doc.calibration_bar))
    return changes


def _actor(principal: Principal) -> AbstractBaseUser | None:
    return principal.user


def _apply_project(principal: Principal, project: Project, wanted: dict[str, Any]) -> Change:
    fields = []
    if "timezone" in wanted and wanted["timezone"] != project.timezone:
        with _at("project"):
            core_services.project_timezone_set(project=project, time_zone=wanted["timezone"], actor=_actor(principal))
        fields.append("timezone")
    if "frustration_terms" in wanted:
        terms = wanted["frustration_terms"]
        same = all(isinstance(t, str) for t in terms) and derived_signals.terms_normalise(terms) == list(
            project.frustration_terms or []
        )
        if not same:
            with _at("project"):
                core_services.project_frustration_terms_set(project=project, terms=terms, actor=_actor(principal))
            fields.append("frustration_terms")
    return Change("project", "project", project.slug, CHANGED if fields else UNCHANGED, fields)


def _by_name(rows: list[Any], path: str, section: str) -> dict[str, Any]:
    """Existing objects by name. Two of one name cannot be told apart by a document: refused."""
    out: dict[str, Any] = {}
    for row in rows:
        if row.name in out:
            raise ValidationFailed(
                f"Two {section} of this project are named {row.name!r}.",
                errors={path: [f"Two {section} of the target project are named {row.name!r}; rename one first."]},
            )
        out[row.name] = row
    return out


def _apply_rubrics(
    principal: Principal, project: Project, wanted: list[document.RubricDoc], out: dict[str, LabelSchema]
) -> list[Change]:
    rows = list(LabelSchema.objects.filter(project=project).select_related("latest_version"))
    existing: dict[str, list[LabelSchema]] = {}
    for row in rows:
        existing.setdefault(row.name, []).append(row)
    changes = []
    for index, r in enumerate(wanted):
        path = f"rubrics[{index}]"
        found = existing.get(r.name, [])
        if len(found) > 1:
            raise ValidationFailed(
                "Ambiguous rubric.", errors={f"{path}.name": [f"Two rubrics of the project are named {r.name!r}."]}
            )
        with _at(path):
            if not found:
                out[r.name] = labeling_services.label_schema_create(
                    project=project, rubric_in=r.rubric, user=_actor(principal)
                )
                changes.append(Change(path, "rubric", r.name, CREATED))
                continue
            schema = found[0]
            out[r.name] = schema
            current = schema.latest_version
            fields = [
                name
                for name, have, want in (
                    ("instructions", current.instructions if current else None, r.instructions),
                    ("questions", current.questions if current else None, r.questions),
                )
                if have != want
            ]
            if fields:
                labeling_services.label_schema_version_create(schema=schema, rubric_in=r.rubric, user=_actor(principal))
                changes.append(Change(path, "rubric", r.name, NEW_VERSION, fields))
            else:
                changes.append(Change(path, "rubric", r.name, UNCHANGED))
    return changes


def _rubrics_existing(project: Project) -> dict[str, LabelSchema]:
    """The project's rubrics a queue may name: those whose name is their own."""
    by_name: dict[str, list[LabelSchema]] = {}
    for row in LabelSchema.objects.filter(project=project):
        by_name.setdefault(row.name, []).append(row)
    return {name: rows[0] for name, rows in by_name.items() if len(rows) == 1}


def _ladder_stored(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "tiers": v.tiers,
        "timeout_outcome": v.timeout_outcome,
        "notify_webhook_url": v.notify_webhook_url,
    }


def _apply_ladders(principal: Principal, project: Project, wanted: list[dict[str, Any]]) -> list[Change]:
    latest = {
        v.name: v for v in escalation_selectors.ladder_list_latest(organization=project.organization, project=project)
    }
    changes = []
    for index, ladder in enumerate(wanted):
        path = f"ladders[{index}]"
        current = latest.get(ladder["name"])
        if current is not None:
            have = _ladder_stored(current)
            fields = [k for k in ("tiers", "timeout_outcome", "notify_webhook_url") if have[k] != ladder[k]]
            if not fields:
                changes.append(Change(path, "ladder", ladder["name"], UNCHANGED))
                continue
        with _at(path):
            escalation_services.ladder_version_create(principal=principal, project=project, data=ladder)
        if current is None:
            changes.append(Change(path, "ladder", ladder["name"], CREATED))
        else:
            changes.append(Change(path, "ladder", ladder["name"], NEW_VERSION, fields))
    return changes


def _apply_policy(principal: Principal, project: Project, wanted: dict[str, Any]) -> Change:
    current = escalation_selectors.policy_version_current(organization=project.organization, project=project)
    if current is not None:
        fields = [
            k for k, have in (("rules", current.rules), ("default_ladder", current.default_ladder)) if have != wanted[k]
        ]
        if not fields:
            return Change("policy", "policy", "policy", UNCHANGED)
    with _at("policy"):
        escalation_services.policy_version_create(principal=principal, project=project, data=dict(wanted))
    if current is None:
        return Change("policy", "policy", "policy", CREATED)
    return Change("policy", "policy", "policy", NEW_VERSION, fields)


def _apply_queues(
    principal: Principal,
    project: Project,
    wanted: list[document.QueueDoc],
    rubrics: dict[str, LabelSchema],
    out: dict[str, Queue],
) -> list[Change]:
    existing = _by_name(list(Queue.objects.filter(project=project).select_related("schema")), "queues", "queues")
    changes = []
    for index, q in enumerate(wanted):
        path = f"queues[{index}]"
        schema = rubrics.get(q.rubric)
        if schema is None:
            raise ValidationFailed(
                "Unknown rubric.",
                errors={f"{path}.rubric": [f"No rubric named {q.rubric!r} in the document or project."]},
            )
        queue = existing.get(q.name)
        with _at(path):
            if queue is None:
                queue = labeling_services.queue_create(
                    project=project,
                    spec=labeling_services.QueueSpec(
                        name=q.name,
                        schema=schema,
                        sampling=tuple(q.sampling),
                        max_per_day=q.max_per_day,
                        kind=q.kind or QueueKind.LABEL,
                        **q.settings,
                    ),
                    user=_actor(principal),
                )
                if q.budget_controller:
                    labeling_services.queue_budget_controller_set(
                        principal=principal, queue=queue, data=q.budget_controller
                    )
                out[q.name] = queue
                changes.append(Change(path, "queue", q.name, CREATED))
                continue
            out[q.name] = queue
            if queue.schema_id != schema.pk:
                raise ValidationFailed(
                    "A queue's rubric is fixed.",
                    errors={
                        "rubric": [
                            f"This queue labels with {queue.schema.name!r}; its labels point at that rubric. "
                            "Name a new queue to label with another."
                        ]
                    },
                )
            if q.kind is not None and q.kind != queue.kind:
                _kind_change(queue, q.kind)
            settings = {k: v for k, v in q.settings.items() if getattr(queue, k) != v}
            fields = sorted(settings)
            fields += [
                k
                for k, have, want in (
                    ("sampling", queue.sampling, q.sampling),
                    ("max_per_day", queue.max_per_day, q.max_per_day),
                )
                if have != want
            ]
            controller_changed = (queue.budget_controller or {}) != q.budget_controller
            if settings:
                labeling_services.queue_settings_update(queue=queue, changes=settings)
            if "sampling" in fields or "max_per_day" in fields:
                labeling_services.queue_sampling_update(queue=queue, rules=q.sampling, max_per_day=q.max_per_day)
            if controller_changed:
                labeling_services.queue_budget_controller_set(
                    principal=principal, queue=queue, data=q.budget_controller
                )
                fields.append("budget_controller")
            changes.append(Change(path, "queue", q.name, CHANGED if fields else UNCHANGED, fields))
    return changes


def _kind_change(queue: Queue, kind: str) -> None:
    """Refused: labeling sets a queue's kind when it makes the queue and has no service that
    changes it (`kind` is not among its QUEUE_SETTINGS): a pairwise queue's items and labels
    only mean something as comparisons. Raised inside the queue's `_at`, so the 400 names
    `queues[i].kind`."""
    raise ValidationFailed(
        "A queue's kind is fixed.",
        errors={
            "kind": [
                f"This queue is a {queue.kind!r} queue; it cannot become a {kind!r} one. "
                "Name a new queue to get one of that kind."
            ]
        },
    )


def _apply_budget(principal: Principal, project: Project, wanted: dict[str, Any]) -> Change:
    queues = {q.name: q.pk for q in Queue.objects.filter(project=project)}
    shares: dict[str, Any] = {}
    for name, value in wanted["shares"].items():
        if name not in queues:
            raise ValidationFailed(
                "Unknown queue.", errors={f"budget.shares.{str(name)[:100]}": ["No queue of that name."]}
            )
        shares[str(queues[name])] = value
    current = ProjectBudget.objects.filter(project=project).first()
    have = {"daily_items": current.daily_items, "shares": current.shares} if current else None
    want_shares = {k: float(v) for k, v in shares.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if have is not None and have == {"daily_items": wanted["daily_items"], "shares": want_shares}:
        return Change("budget", "budget", "budget", UNCHANGED)
    with _at("budget"):
        labeling_services.project_budget_set(
            principal=principal, project=project, daily_items=wanted["daily_items"], shares=shares
        )
    if have is None:
        return Change("budget", "budget", "budget", CREATED)
    fields = [
        k
        for k in ("daily_items", "shares")
        if have[k] != {"daily_items": wanted["daily_items"], "shares": want_shares}[k]
    ]
    return Change("budget", "budget", "budget", CHANGED, fields)


def _apply_bar(principal: Principal, project: Project, wanted: dict[str, Any]) -> Change:
    bar = evaluation_selectors.bar_get(organization=project.organization, project=project)
    fields = [k for k, v in wanted.items() if getattr(bar, k) != v]
    if not fields:
        return Change("calibration_bar", "calibration_bar", "calibration_bar", UNCHANGED)
    with _at("calibration_bar"):
        evaluation_services.bar_set(project=project, values=wanted, actor=_actor(principal))
    return Change("calibration_bar", "calibration_bar", "calibration_bar", CHANGED, fields)


__all__ = ["ApplyResult", "Change", "project_config_apply", "project_create_from_config"]
