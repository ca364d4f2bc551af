"""Policy and ladder versions: validated data, never edited, numbered per project (and per
ladder name). A change is a new version; actions record the versions that handled them.

Version numbers are race-safe through the unique constraints (project, version) and (project,
name, version): two saves at once compute the same next number, the second insert waits for
the first to commit, fails on the index, and is retried with the next number."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from django.db import IntegrityError, transaction

from escalations import policies, selectors
from escalations.models import LadderVersion, Outcome, PolicyVersion
from reviewapp import services as core_services
from reviewapp import validation
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project
from reviewapp.principal import Principal

logger = logging.getLogger(__name__)

DEFAULT_LADDER = policies.DEFAULT_LADDER
# The ladder a project gets on first need: any approver, within an hour, else rejected.
DEFAULT_LADDER_SPEC: dict[str, Any] = {
    "name": DEFAULT_LADDER,
    "tiers": [{"role": "approver", "timeout_seconds": 3600, "approvals_required": 1}],
    "timeout_outcome": "reject",
}
NOTE_MAX = 500
# More than a few collisions in a row would mean something other than a race is wrong.
_VERSION_ATTEMPTS = 5


def _invalid(exc: policies.PolicyInvalid) -> ValidationFailed:
    return ValidationFailed(exc.message, errors={exc.field or "body": [exc.message]})


def _note(data: dict[str, Any]) -> str:
    note = data.get("note", "")
    if note is None:
        return ""
    if not isinstance(note, str):
        raise validation.InputError("Must be text.", "note")
    if len(note) > NOTE_MAX:
        raise validation.InputError(f"At most {NOTE_MAX} characters.", "note")
    return note


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise validation.InputError("Send a JSON object.", "body")
    validation.check_json(data)
    return {k: v for k, v in data.items() if k not in ("project", "note")}


def _next_version(qs: Any) -> int:
    latest = qs.order_by("-version").values_list("version", flat=True).first()
    return (latest or 0) + 1


def _with_version_retry(create: Any) -> Any:
    for attempt in range(_VERSION_ATTEMPTS):
        try:
            with transaction.atomic():
                return create()
        except IntegrityError:
            if attempt == _VERSION_ATTEMPTS - 1:
                raise
            logger.info("version number taken by a concurrent save; retrying")
    raise AssertionError("unreachable")


# --- ladders ---------------------------------------------------------------------------------


def ladder_version_create(*, principal: Principal | None, project: Project, data: Any) -> LadderVersion:
    """Validate a ladder (`{"name", "tiers", "timeout_outcome", "notify_webhook_url"}`) and store
    it as the next version of that name. 400 naming the field (`tiers[1].timeout_seconds`)."""
    body = _body(data)
    try:
        ladder = policies.ladder_validate(body)
    except policies.PolicyInvalid as exc:
        raise _invalid(exc) from exc
    stored = policies.ladder_to_json(ladder)

    def create() -> LadderVersion:
        version = LadderVersion.objects.create(
            organization_id=project.organization_id,
            project=project,
            name=ladder.name,
            version=_next_version(LadderVersion.objects.filter(project=project, name=ladder.name)),
            tiers=stored["tiers"],
            timeout_outcome=ladder.timeout_outcome,
            notify_webhook_url=ladder.notify_webhook_url,
            created_by=principal.user if principal is not None else None,
        )
        core_services.audit_event_record(
            organization=project.organization,
            kind="ladder_version.created",
            principal=principal,
            subject=version,
            data={"project": project.slug, "name": version.name, "version": version.version},
        )
        return version

    return _with_version_retry(create)


def ladder_default_ensure(*, project: Project) -> LadderVersion:
    """The latest version of the project's "default" ladder, created (version 1: one tier, any
    approver, one hour, one approval, rejected on timeout) if the project has none. Safe inside
    the caller's transaction and against a concurrent first need: the losing insert rolls back
    to its savepoint and the winner's row is read."""
    existing = LadderVersion.objects.filter(project=project, name=DEFAULT_LADDER).order_by("-version").first()
    if existing is not None:
        return existing
    ladder = policies.ladder_validate(DEFAULT_LADDER_SPEC)
    stored = policies.ladder_to_json(ladder)
    try:
        with transaction.atomic():
            return LadderVersion.objects.create(
                organization_id=project.organization_id,
                project=project,
                name=DEFAULT_LADDER,
                version=1,
                tiers=stored["tiers"],
                timeout_outcome=ladder.timeout_outcome,
                notify_webhook_url=ladder.notify_webhook_url,
            )
    except IntegrityError:
        return LadderVersion.objects.filter(project=project, name=DEFAULT_LADDER).order_by("-version").first()


def ladder_version_for(*, project: Project, name: str) -> LadderVersion | None:
    """The latest version of ladder `name`; the default ladder is created on first need."""
    if name == DEFAULT_LADDER:
        return ladder_default_ensure(project=project)
    return LadderVersion.objects.filter(project=project, name=name).order_by("-version").first()


# --- policy ----------------------------------------------------------------------------------


def policy_version_create(*, principal: Principal | None, project: Project, data: Any) -> PolicyVersion:
    """Validate a policy (`{"rules": [...], "default_ladder": ..., "note": ...}`) and store it as
    the project's next version. Every ladder it names must exist for the project (400 naming
    `rules[i].ladder` or `default_ladder`), except "default", which is created if missing."""
    note = _note(data) if isinstance(data, dict) else ""
    body = _body(data)
    try:
        policy = policies.policy_validate(body)
    except policies.PolicyInvalid as exc:
        raise _invalid(exc) from exc
    named: list[tuple[str, str]] = [
        (f"rules[{rule.index}].ladder", rule.ladder)
        for rule in policy.rules
        if rule.outcome == Outcome.ESCALATE and rule.ladder
    ]
    named.append(("default_ladder", policy.default_ladder))
    stored = policies.policy_to_json(policy)

    def create() -> PolicyVersion:
        existing = selectors.ladder_names_existing(project=project, names={name for _, name in named})
        for field, name in named:
            if name not in existing and name != DEFAULT_LADDER:
                raise ValidationFailed(
                    f"No ladder named '{name}' in this project.",
                    errors={field: [f"No ladder named '{name}' in this project; create it first."]},
                )
        if any(name == DEFAULT_LADDER for _, name in named) and DEFAULT_LADDER not in existing:
            ladder_default_ensure(project=project)
        version = PolicyVersion.objects.create(
            organization_id=project.organization_id,
            project=project,
            version=_next_version(PolicyVersion.objects.filter(project=project)),
            rules=stored["rules"],
            default_ladder=policy.default_ladder,
            note=note,
            created_by=principal.user if principal is not None else None,
        )
        core_services.audit_event_record(
            organization=project.organization,
            kind="policy_version.created",
            principal=principal,
            subject=version,
            data={"project": project.slug, "version": version.version, "rules": len(policy.rules)},
        )
        return version

    return _with_version_retry(create)


@functools.lru_cache(maxsize=256)
def policy_parsed(rules_json: str, default_ladder: str) -> policies.Policy:
    """A stored policy (its rules as the stored JSON text) as the pure module's Policy, parsed
    once per process: keyed by the stored content itself, so a new version (or another
    project's) is another key and nothing can be stale. Policy is immutable (frozen, tuples),
    so sharing one between requests is safe."""
    return policies.policy_from_json({"rules": json.loads(rules_json), "default_ladder": default_ladder})


def policy_of(version: PolicyVersion | None) -> policies.Policy:
    """The stored policy as the pure module's Policy; no version yet: no rules, so everything
    escalates to the default ladder."""
    if version is None:
        return policies.Policy(rules=(), default_ladder=DEFAULT_LADDER)
    return policies.policy_from_json({"rules": version.rules, "default_ladder": version.default_ladder})


__all__ = [
    "DEFAULT_LADDER",
    "ladder_default_ensure",
    "ladder_version_create",
    "ladder_version_for",
    "policy_of",
    "policy_parsed",
    "policy_version_create",
]
