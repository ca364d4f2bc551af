"""A project's configuration as one document: its shape, its validation and its normal form.

No ORM here. `document_parse` checks a document a client sent with the validators the
per-object APIs use (the rubric and sampling-rule models, the policy module, the queue
settings serializer, the budget controller's settings) and answers it in normal form, the
form the services store; every error names its place in the document
(`queues[2].sampling[0].rate`). Comparing normal forms is how an apply knows that nothing
changed, so applying a document twice makes nothing new.

Everything is keyed by name, never by database id, so a document read from one project
applies to any other. People are left out (a queue's named assignees, who belong to one
organization); a ladder tier naming users is kept as written and checked where it applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from escalations import policies
from labeling import budget_controller, rubric, sampling
from labeling.models import QueueKind
from labeling.serializers import QueueSettingsSerializer
from reviewapp import derived_signals, validation
from reviewapp.errors import ValidationFailed
from reviewapp.ingest_schemas import errors_from_pydantic, loc_to_path

KIND = "reviewapp/project-config"
VERSION = 1
MAX_RUBRICS = 100
MAX_QUEUES = 100
MAX_LADDERS = 50
# The top-level keys; any other is refused (a misspelt section would be a silent no-op).
SECTIONS = ("kind", "version", "project", "rubrics", "queues", "ladders", "policy", "budget", "calibration_bar")
PROJECT_FIELDS = ("timezone", "frustration_terms")
BAR_FIELDS = ("kappa", "tpr", "tnr", "webhook_url")
# The queue settings a document carries besides its name, rubric, sampling and controller:
# the ones labeling's queue_settings_update may change afterwards.
QUEUE_FIELDS = (
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
)
# A queue's kind (labeling's QueueKind) is set when the queue is made and never changes.
QUEUE_KINDS = tuple(QueueKind.values)


@dataclass
class RubricDoc:
    name: str
    instructions: str
    questions: list[dict[str, Any]]
    rubric: rubric.Rubric


@dataclass
class QueueDoc:
    name: str
    rubric: str
    # None when the document leaves it out: an existing queue keeps its own, a new one is a
    # "label" queue (documents written before queues had kinds still apply unchanged).
    kind: str | None
    settings: dict[str, Any]  # QUEUE_FIELDS
    sampling: list[dict[str, Any]]  # as stored: by alias, no None
    max_per_day: int | None
    budget_controller: dict[str, Any]  # as stored: {} when off


@dataclass
class Document:
    """A parsed document. A section left out is None: the apply leaves it alone."""

    project: dict[str, Any] | None = None
    rubrics: list[RubricDoc] | None = None
    queues: list[QueueDoc] | None = None
    ladders: list[dict[str, Any]] | None = None  # policies.ladder_to_json form
    policy: dict[str, Any] | None = None  # policies.policy_to_json form
    budget: dict[str, Any] | None = None  # {"daily_items": int, "shares": {queue name: fraction}}
    calibration_bar: dict[str, Any] | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


def _add(errors: dict[str, list[str]], path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def _list(doc: dict[str, Any], key: str, errors: dict[str, list[str]], max_items: int) -> list[Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        _add(errors, key, "Expected a list.")
        return None
    if len(value) > max_items:
        _add(errors, key, f"At most {max_items}.")
        return None
    return value


def _object(value: Any, path: str, errors: dict[str, list[str]], allowed: tuple[str, ...]) -> bool:
    if not isinstance(value, dict):
        _add(errors, path, "Expected an object.")
        return False
    for key in sorted(set(value) - set(allowed))[:5]:
        _add(errors, f"{path}.{str(key)[:50]}", "Unknown field.")
    return not (set(value) - set(allowed))


def _names_unique(items: list[Any], section: str, errors: dict[str, list[str]]) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        name = getattr(item, "name", None) if not isinstance(item, dict) else item.get("name")
        if name in seen:
            _add(errors, f"{section}[{index}].name", f"Another {section[:-1]} of this document is named {name!r}.")
        seen.add(name)


def rubric_normal(rubric_in: rubric.Rubric) -> tuple[str, list[dict[str, Any]]]:
    """Instructions and questions as labeling's rubric service stores them."""
    return rubric_in.instructions, [q.model_dump(exclude_none=True) for q in rubric_in.questions]


def controller_normal(data: Any) -> dict[str, Any]:
    """The budget controller's settings as labeling stores them ({} when off and unset)."""
    settings = budget_controller.settings_parse(data)
    return settings.model_dump() if settings.enabled or data else {}


def _parse_rubrics(raw: list[Any], errors: dict[str, list[str]]) -> list[RubricDoc]:
    out: list[RubricDoc] = []
    for index, item in enumerate(raw):
        where = f"rubrics[{index}]"
        if not _object(item, where, errors, ("name", "instructions", "questions")):
            continue
        try:
            parsed = rubric.Rubric.model_validate(item)
        except PydanticValidationError as exc:
            for path, messages in errors_from_pydantic(exc, prefix=("rubrics", index)).items():
                errors.setdefault(path, []).extend(messages)
            continue
        problem = validation.json_problem(parsed.model_dump(exclude_none=True), path=where)
        if problem is not None:
            errors.update(problem.errors)
            continue
        instructions, questions = rubric_normal(parsed)
        out.append(RubricDoc(parsed.name, instructions, questions, parsed))
    _names_unique(out, "rubrics", errors)
    return out


def _parse_queue(item: Any, index: int, errors: dict[str, list[str]]) -> QueueDoc | None:
    where = f"queues[{index}]"
    allowed = ("name", "rubric", "kind", *QUEUE_FIELDS, "sampling", "max_per_day", "budget_controller")
    if not _object(item, where, errors, allowed):
        return None
    before = len(errors)
    if not isinstance(item.get("rubric"), str) or not item["rubric"]:
        _add(errors, f"{where}.rubric", "The name of a rubric of this document or of the project.")
    kind = item.get("kind")
    if kind is not None and kind not in QUEUE_KINDS:
        _add(errors, f"{where}.kind", f"One of {', '.join(QUEUE_KINDS)}.")
    settings = QueueSettingsSerializer(data={k: v for k, v in item.items() if k not in ("rubric", "kind", "is_active")})
    if not settings.is_valid():
        for name, messages in settings.errors.items():
            errors.setdefault(f"{where}.{name}", []).extend(str(m) for m in messages)
    is_active = item.get("is_active", True)
    if not isinstance(is_active, bool):
        _add(errors, f"{where}.is_active", "Must be true or false.")
    rules: list[dict[str, Any]] = []
    for rule_index, rule in enumerate(item.get("sampling") or []):
        try:
            parsed = sampling.SamplingRule.model_validate(rule)
        except PydanticValidationError as exc:
            for path, messages in errors_from_pydantic(exc, prefix=("queues", index, "sampling", rule_index)).items():
                errors.setdefault(path, []).extend(messages)
            continue
        rules.append(parsed.model_dump(by_alias=True, exclude_none=True))
    try:
        controller = controller_normal(item.get("budget_controller"))
    except PydanticValidationError as exc:
        errors.update(errors_from_pydantic(exc, prefix=("queues", index, "budget_controller")))
        controller = {}
    if len(errors) > before:
        return None
    v = dict(settings.validated_data)
    problem = validation.json_problem(v["name"], path=f"{where}.name") or validation.json_problem(
        v["description"], path=f"{where}.description"
    )
    if problem is not None:
        errors.update(problem.errors)
        return None
    return QueueDoc(
        name=v["name"],
        rubric=item["rubric"],
        kind=kind,
        settings={**{k: v[k] for k in QUEUE_FIELDS if k != "is_active"}, "is_active": is_active},
        sampling=rules,
        max_per_day=v["max_per_day"],
        budget_controller=controller,
    )


def _parse_policy_part(
    raw: Any, where: str, errors: dict[str, list[str]], validate: Any, to_json: Any
) -> dict[str, Any] | None:
    try:
        return to_json(validate(raw))
    except policies.PolicyInvalid as exc:
        _add(errors, path_join(where, exc.field or ""), exc.message)
        return None


def _parse_project(raw: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    if not _object(raw, "project", errors, PROJECT_FIELDS):
        return None
    out: dict[str, Any] = {}
    if "timezone" in raw:
        if not isinstance(raw["timezone"], str) or len(raw["timezone"]) > 64:
            _add(errors, "project.timezone", "An IANA time zone name such as Europe/Paris.")
        else:
            out["timezone"] = raw["timezone"]
    if "frustration_terms" in raw:
        terms = raw["frustration_terms"]
        if not isinstance(terms, list) or len(terms) > derived_signals.MAX_TERMS:
            _add(errors, "project.frustration_terms", f"A list of at most {derived_signals.MAX_TERMS} terms.")
        else:
            # The core's service checks each term (and names it); normalised here to compare.
            out["frustration_terms"] = terms
    return out


def _parse_budget(raw: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    if not _object(raw, "budget", errors, ("daily_items", "shares")):
        return None
    daily = raw.get("daily_items")
    if type(daily) is not int or not 1 <= daily <= sampling.MAX_PER_DAY:
        _add(errors, "budget.daily_items", f"A whole number from 1 to {sampling.MAX_PER_DAY}.")
        return None
    shares = raw.get("shares") or {}
    if not isinstance(shares, dict) or len(shares) > MAX_QUEUES:
        _add(errors, "budget.shares", "An object of queue name to fraction.")
        return None
    return {"daily_items": daily, "shares": shares}


def _parse_bar(raw: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    if not _object(raw, "calibration_bar", errors, BAR_FIELDS):
        return None
    return dict(raw)  # evaluation's bar_set checks the values and names the field


def document_parse(raw: Any) -> Document:
    """The document in normal form; raises ValidationFailed naming every bad place found."""
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, dict):
        raise ValidationFailed("Send a project configuration document.", errors={"body": ["Expected an object."]})
    problem = validation.json_problem(raw)
    if problem is not None:
        raise problem
    for key in sorted(set(raw) - set(SECTIONS))[:10]:
        _add(errors, str(key)[:50], "Unknown section.")
    if raw.get("kind") != KIND:
        _add(errors, "kind", f"Must be {KIND!r}.")
    if raw.get("version") != VERSION:
        _add(errors, "version", f"Must be {VERSION}: the only version of the document so far.")
    doc = Document()
    if raw.get("project") is not None:
        doc.project = _parse_project(raw["project"], errors)
    rubrics_raw = _list(raw, "rubrics", errors, MAX_RUBRICS)
    if rubrics_raw is not None:
        doc.rubrics = _parse_rubrics(rubrics_raw, errors)
    queues_raw = _list(raw, "queues", errors, MAX_QUEUES)
    if queues_raw is not None:
        queues = [_parse_queue(item, index, errors) for index, item in enumerate(queues_raw)]
        doc.queues = [q for q in queues if q is not None]
        _names_unique(doc.queues, "queues", errors)
    ladders_raw = _list(raw, "ladders", errors, MAX_LADDERS)
    if ladders_raw is not None:
        ladders = [
            _parse_policy_part(item, f"ladders[{i}]", errors, policies.ladder_validate, policies.ladder_to_json)
            for i, item in enumerate(ladders_raw)
        ]
        doc.ladders = [ladder for ladder in ladders if ladder is not None]
        _names_unique(doc.ladders, "ladders", errors)
    if raw.get("policy") is not None:
        doc.policy = _parse_policy_part(
            raw["policy"], "policy", errors, policies.policy_validate, policies.policy_to_json
        )
    if raw.get("budget") is not None:
        doc.budget = _parse_budget(raw["budget"], errors)
    if raw.get("calibration_bar") is not None:
        doc.calibration_bar = _parse_bar(raw["calibration_bar"], errors)
    if errors:
        raise ValidationFailed("Invalid project configuration.", errors=dict(list(errors.items())[:50]))
    return doc


def path_join(prefix: str, key: str) -> str:
    """`queues[2]` and `sampling[0].rate` to `queues[2].sampling[0].rate`; `body` is the prefix."""
    if key in ("body", "non_field_errors", ""):
        return prefix
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


__all__ = ["KIND", "VERSION", "Document", "QueueDoc", "RubricDoc", "document_parse", "loc_to_path", "path_join"]
