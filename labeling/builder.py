"""The engineer's builders in the browser, pure: no request, no query.

A rubric is edited as a plain form (one row of fields per question, `q-<i>-<field>`) that
becomes the same JSON document the API takes, checked by the same `rubric.Rubric` model; the
errors it reports (`questions[2].options`) are mapped back to the form field beside which they
are shown (`q-2-options`). Sampling rules are edited the same way (`r-<i>-<field>`, checked by
`sampling.SamplingRule`). Add, move and remove are form buttons (`op`), applied here to the
rows as posted, so the builder works without a script and by keyboard. Also: the difference
between two rubric versions, and the daily budgets applied to a sampling preview."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError as PydanticValidationError

from labeling import rubric, sampling
from reviewapp import validation
from reviewapp.ingest_schemas import errors_from_pydantic


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[str]: ...


# --- rubric ------------------------------------------------------------------------------------

# Rows past the rubric's own maximum are never read: a post cannot make the page build more.
MAX_QUESTIONS = 50
MAX_RULES = 100
QUESTION_TEXT_FIELDS = ("key", "type", "label", "help", "judge_criterion")
QUESTION_LIST_FIELDS = ("options", "judge_pass_labels", "passing_options")
QUESTION_INT_FIELDS = ("min", "max", "passing_min")
ROLES = ("system", "developer", "user", "assistant", "tool")
TYPE_CHOICES = (
    ("single_choice", "One choice"),
    ("multi_choice", "Several choices"),
    ("rating", "Rating scale"),
    ("boolean", "Yes / no"),
    ("text", "Free text"),
    ("turn", "Point at a turn"),
)


def blank_question() -> dict[str, Any]:
    return {
        "key": "",
        "type": "single_choice",
        "label": "",
        "help": "",
        "required": True,
        "options": "",
        "min": "",
        "max": "",
        "roles": [],
        "judge_criterion": "",
        "judge_pass_labels": "",
        "judge_pass_threshold": "",
        "passing_options": "",
        "passing_min": "",
    }


def question_row_from_json(q: Mapping[str, Any]) -> dict[str, Any]:
    """A stored question as the strings its form row shows (lists one per line)."""
    row = blank_question()
    for name in QUESTION_TEXT_FIELDS:
        row[name] = str(q.get(name) or "")
    for name in QUESTION_LIST_FIELDS:
        row[name] = "\n".join(str(v) for v in q.get(name) or [])
    for name in (*QUESTION_INT_FIELDS, "judge_pass_threshold"):
        row[name] = "" if q.get(name) is None else str(q[name])
    row["required"] = bool(q.get("required", True))
    row["roles"] = [r for r in q.get("roles") or [] if r in ROLES]
    return row


def _count(data: FormData, name: str, limit: int) -> int:
    try:
        return max(0, min(limit, int(data.get(name) or 0)))
    except ValueError:
        return 0


def question_rows_from_post(data: FormData) -> list[dict[str, Any]]:
    rows = []
    for i in range(_count(data, "q-count", MAX_QUESTIONS)):
        prefix = f"q-{i}-"
        row = blank_question()
        for name in (*QUESTION_TEXT_FIELDS, *QUESTION_LIST_FIELDS, *QUESTION_INT_FIELDS, "judge_pass_threshold"):
            row[name] = str(data.get(prefix + name, "") or "")
        row["required"] = bool(data.get(prefix + "required"))
        row["roles"] = [r for r in data.getlist(prefix + "roles") if r in ROLES]
        rows.append(row)
    return rows


def _lines(text: str, *, commas: bool = False) -> list[str]:
    parts = re.split(r"[\n,]" if commas else r"\n", text)
    return [p.strip() for p in parts if p.strip()]


def _number(raw: str, *, whole: bool, name: str, errors: dict[str, list[str]]) -> int | float | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        if whole:
            low, high = validation.INTEGER
            return validation.parse_int(raw, field=name, min=low, max=high)
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError(raw)
        return value
    except (ValueError, validation.InputError):
        errors[name] = ["Enter a whole number." if whole else "Enter a number."]
        return None


def _nul_errors(values: Mapping[str, Any]) -> dict[str, list[str]]:
    # A NUL would pass the model and be refused by PostgreSQL in the service: say so here.
    return {
        name: ["Remove the NUL character."]
        for name, value in values.items()
        if isinstance(value, str) and "\x00" in value
    }


def rubric_document(
    name: str, instructions: str, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The rows as the API's rubric document, and the errors found before the model runs
    (unreadable numbers, NUL), keyed by form field."""
    errors: dict[str, list[str]] = _nul_errors({"name": name, "instructions": instructions})
    questions = []
    for i, row in enumerate(rows):
        prefix = f"q-{i}-"
        errors.update(_nul_errors({prefix + k: v for k, v in row.items()}))
        q: dict[str, Any] = {
            "key": row["key"].strip(),
            "type": row["type"],
            "label": row["label"].strip(),
            "required": bool(row["required"]),
        }
        if row["help"].strip():
            q["help"] = row["help"].strip()
        for list_name in QUESTION_LIST_FIELDS:
            values = _lines(row[list_name], commas=list_name == "judge_pass_labels")
            if values:
                q[list_name] = values
        for int_name in QUESTION_INT_FIELDS:
            number = _number(row[int_name], whole=True, name=prefix + int_name, errors=errors)
            if number is not None:
                q[int_name] = number
        threshold = _number(
            row["judge_pass_threshold"], whole=False, name=prefix + "judge_pass_threshold", errors=errors
        )
        if threshold is not None:
            q["judge_pass_threshold"] = threshold
        if row["roles"] and row["type"] == "turn":
            q["roles"] = list(row["roles"])
        if row["judge_criterion"].strip():
            q["judge_criterion"] = row["judge_criterion"].strip()
        questions.append(q)
    return {"name": name.strip(), "instructions": instructions, "questions": questions}, errors


_ROW_PATH = re.compile(r"^(questions|sampling)\[(\d+)\]\.([a-z_]+)(?:\.([a-z_]+))?")


def form_field_for(path: str) -> str:
    """An error path as the validators report it, to the form field it belongs beside:
    `questions[2].options[1]` -> `q-2-options`, `sampling[0].if.judge` -> `r-0-if_judge`,
    `questions` -> `questions`."""
    match = _ROW_PATH.match(path)
    if match:
        kind, index, name, sub = match.groups()
        letter = "q" if kind == "questions" else "r"
        if name == "if" and sub:
            name = f"if_{sub}"
        return f"{letter}-{index}-{name}"
    return re.split(r"[.\[]", path, maxsplit=1)[0] or "form"


def errors_for_form(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, messages in errors.items():
        out.setdefault(form_field_for(path), []).extend(messages)
    return out


def rubric_validate(document: dict[str, Any]) -> tuple[rubric.Rubric | None, dict[str, list[str]]]:
    """The API's validation of a rubric document; errors keyed by form field."""
    try:
        return rubric.Rubric.model_validate(document), {}
    except PydanticValidationError as exc:
        return None, errors_for_form(errors_from_pydantic(exc))


# --- the difference between two versions ---------------------------------------------------------


@dataclass
class QuestionChange:
    key: str
    label: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (field, before, after)


@dataclass
class RubricDiff:
    instructions_changed: bool = False
    added: list[tuple[str, str]] = field(default_factory=list)  # (key, label)
    removed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[QuestionChange] = field(default_factory=list)
    reordered: bool = False

    @property
    def empty(self) -> bool:
        return not (self.instructions_changed or self.added or self.removed or self.changed or self.reordered)


def _shown(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def rubric_diff(
    old_questions: list[dict[str, Any]],
    new_questions: list[dict[str, Any]],
    *,
    old_instructions: str = "",
    new_instructions: str = "",
) -> RubricDiff:
    """Questions added, removed and changed (field by field) from one version to another,
    matched by key: a renamed key is one question removed and another added, which is what it
    is to the labels made against it."""
    old = {q["key"]: q for q in old_questions}
    new = {q["key"]: q for q in new_questions}
    diff = RubricDiff(instructions_changed=old_instructions != new_instructions)
    diff.added = [(k, str(q.get("label", ""))) for k, q in new.items() if k not in old]
    diff.removed = [(k, str(q.get("label", ""))) for k, q in old.items() if k not in new]
    defaults = rubric.Question.model_construct().model_dump()
    for key, after in new.items():
        before = old.get(key)
        if before is None:
            continue
        change = QuestionChange(key=key, label=str(after.get("label", "")))
        for name in sorted(set(before) | set(after)):
            a = before.get(name, defaults.get(name))
            b = after.get(name, defaults.get(name))
            if a != b:
                change.fields.append((name, _shown(a), _shown(b)))
        if change.fields:
            diff.changed.append(change)
    kept_old = [k for k in old if k in new]
    kept_new = [k for k in new if k in old]
    diff.reordered = kept_old != kept_new
    return diff


# --- sampling rules ------------------------------------------------------------------------------

RULE_FIELDS = (
    "name",
    "rate",
    "strategy",
    "uniform_share",
    "mean_uncertainty",
    "max_per_day",
    "if_agent_version",
    "if_tags_any",
    "if_metadata",
    "if_feedback_rating",
    "if_user_rephrased",
    "if_escalated_by_user",
    "if_judge",
    "if_criterion",
    "if_score_below",
    "if_confidence_below",
    "if_signal",
    "if_signal_source",
)
SIGNALS = ("rephrased", "frustration", "asked_for_human", "gave_up")


def blank_rule() -> dict[str, str]:
    return {name: "" for name in RULE_FIELDS} | {"rate": "0.1"}


def rule_row_from_json(rule: Mapping[str, Any]) -> dict[str, str]:
    row = blank_rule()
    condition = rule.get("if") or {}
    for name in ("name", "rate", "strategy", "uniform_share", "mean_uncertainty", "max_per_day"):
        row[name] = "" if rule.get(name) is None else str(rule[name])
    for name, value in condition.items():
        key = f"if_{name}"
        if key not in row or value is None:
            continue
        if isinstance(value, bool):
            row[key] = "yes" if value else "no"
        elif isinstance(value, list):
            row[key] = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            row[key] = json.dumps(value, ensure_ascii=False)
        else:
            row[key] = str(value)
    return row


def rule_rows_from_post(data: FormData) -> list[dict[str, str]]:
    return [
        {name: str(data.get(f"r-{i}-{name}", "") or "") for name in RULE_FIELDS}
        for i in range(_count(data, "r-count", MAX_RULES))
    ]


def rules_document(rows: list[dict[str, str]]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The rows as the API's list of sampling rules, and the errors found reading them."""
    errors: dict[str, list[str]] = {}
    rules = []
    for i, row in enumerate(rows):
        prefix = f"r-{i}-"
        errors.update(_nul_errors({prefix + k: v for k, v in row.items()}))
        rule: dict[str, Any] = {}
        if row["name"].strip():
            rule["name"] = row["name"].strip()
        rate = _number(row["rate"], whole=False, name=prefix + "rate", errors=errors)
        if rate is not None:
            rule["rate"] = rate
        if row["strategy"]:
            rule["strategy"] = row["strategy"]
        for name in ("uniform_share", "mean_uncertainty"):
            value = _number(row[name], whole=False, name=prefix + name, errors=errors)
            if value is not None:
                rule[name] = value
        per_day = _number(row["max_per_day"], whole=True, name=prefix + "max_per_day", errors=errors)
        if per_day is not None:
            rule["max_per_day"] = per_day
        condition: dict[str, Any] = {}
        versions = _lines(row["if_agent_version"], commas=True)
        if versions:
            condition["agent_version"] = versions[0] if len(versions) == 1 else versions
        tags = _lines(row["if_tags_any"], commas=True)
        if tags:
            condition["tags_any"] = tags
        if row["if_metadata"].strip():
            try:
                metadata = validation.json_loads(row["if_metadata"])
            except (ValueError, validation.InputError):
                metadata = None
            if not isinstance(metadata, dict):
                errors[prefix + "if_metadata"] = ['Enter a JSON object, such as {"plan": "pro"}.']
            else:
                condition["metadata"] = metadata
        for name in ("feedback_rating", "judge", "criterion", "signal", "signal_source"):
            if row[f"if_{name}"].strip():
                condition[name] = row[f"if_{name}"].strip()
        for name in ("user_rephrased", "escalated_by_user"):
            if row[f"if_{name}"] in ("yes", "no"):
                condition[name] = row[f"if_{name}"] == "yes"
        for name in ("score_below", "confidence_below"):
            value = _number(row[f"if_{name}"], whole=False, name=f"{prefix}if_{name}", errors=errors)
            if value is not None:
                condition[name] = value
        if condition:
            rule["if"] = condition
        rules.append(rule)
    return rules, errors


def rules_validate(rules: list[dict[str, Any]]) -> tuple[list[sampling.SamplingRule], dict[str, list[str]]]:
    """The service's validation of sampling rules (queues._rules_parse); errors by form field."""
    parsed, errors = [], {}
    for index, rule in enumerate(rules):
        try:
            parsed.append(sampling.SamplingRule.model_validate(rule))
        except PydanticValidationError as exc:
            errors.update(errors_from_pydantic(exc, prefix=("sampling", index)))
    return parsed, errors_for_form(errors)


def rules_dump(rules: Iterable[sampling.SamplingRule]) -> list[dict[str, Any]]:
    return [r.model_dump(by_alias=True, exclude_none=True) for r in rules]


# --- sampling preview: budgets -------------------------------------------------------------------


def admitted_within_budgets(
    candidates: list[tuple[dt.date, sampling.Candidate]], *, max_per_day: int | None
) -> list[sampling.Candidate]:
    """What the sampler would have admitted of these candidates under the daily budgets (the
    queue's `max_per_day` and each rule's): per day, lowest hash first, as the sampler admits
    a short budget. Pacing over the day is left out: the preview is whole past days."""
    by_day: dict[dt.date, list[sampling.Candidate]] = {}
    for day, candidate in candidates:
        by_day.setdefault(day, []).append(candidate)
    admitted = []
    for day_candidates in by_day.values():
        queue_room = max_per_day
        rule_room: dict[int, int] = {}
        for c in sorted(day_candidates, key=lambda c: c.u):
            if queue_room is not None and queue_room <= 0:
                break
            for m in c.passing:
                cap = m.rule.max_per_day
                if cap and rule_room.get(m.index, cap) <= 0:
                    continue
                if cap:
                    rule_room[m.index] = rule_room.get(m.index, cap) - 1
                if queue_room is not None:
                    queue_room -= 1
                admitted.append(c)
                break
    return admitted
