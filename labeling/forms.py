"""Form parsing and presentation for the labeling pages, pure: no request, no query.

The rubric becomes a form (`question_views`), posted fields become typed answers
(`answers_from_post`), and stored answers and statistics become the text a page shows. Views
pass what they read (the POST data, the snapshot's payload, the labels); tests call these
directly, without a request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from labeling import rubric
from labeling.models import ItemStatus
from reviewapp import validation
from reviewapp.transcript import TurnView

if TYPE_CHECKING:
    from labeling.models import Label, QueueItem


class FormData(Protocol):
    """Posted form fields: Django's QueryDict (request.POST, or a PUT body parsed into one) or
    any mapping of lists with the same two methods."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[str]: ...


# Digits pick options; "0" is the tenth. Options past the tenth are picked by mouse or Tab.
_DIGITS = [*"123456789", "0"]


def label_editable(item: QueueItem) -> bool:
    """Whether its annotators may still change their labels (label_submit's rule): until a
    reviewer has ruled on the item or it was dropped."""
    return item.status != ItemStatus.DROPPED and item.final_source != "review"


@dataclass
class ChoiceView:
    value: str
    text: str
    checked: bool
    kbd: str = ""
    detail: str = ""


@dataclass
class QuestionView:
    number: int
    key: str
    type: str
    label: str
    help: str
    required: bool
    choices: list[ChoiceView] = field(default_factory=list)
    text: str = ""
    errors: list[str] = field(default_factory=list)
    # Why the answer shown is already chosen (the review page pre-fills from the labels).
    note: str = ""

    @property
    def field_name(self) -> str:
        return f"a-{self.key}"

    @property
    def multiple(self) -> bool:
        return self.type == "multi_choice"


def _choice_values(q: rubric.Question, turns: list[TurnView]) -> list[tuple[str, str, str]]:
    """(value, text, detail) of each option, in order."""
    if q.type in ("single_choice", "multi_choice"):
        return [(o, o, "") for o in q.options]
    if q.type == "rating":
        return [(str(v), str(v), "") for v in range(q.min or 0, (q.max or 0) + 1)]
    if q.type == "boolean":
        return [("yes", "Yes", ""), ("no", "No", "")]
    if q.type == "turn":
        roles = set(q.roles or ["assistant"])
        out = []
        for t in turns:
            if t.role not in roles:
                continue
            preview = t.text or ", ".join(f"calls {c.name}" for c in t.tool_calls)
            out.append((str(t.index), f"#{t.index} {t.role}", preview[:90] + ("…" if len(preview) > 90 else "")))
        return out
    return []


def _kbd_for(q: rubric.Question, position: int, value: str) -> str:
    # A 1-5 or 0-9 scale is picked by its own digit; everything else by position.
    if q.type == "rating" and (q.min or 0) >= 0 and (q.max or 0) <= 9:
        return value
    return _DIGITS[position] if position < len(_DIGITS) else ""


def _as_strings(value: Any) -> set[str]:
    if value is True:
        return {"yes"}
    if value is False:
        return {"no"}
    if isinstance(value, list):
        return {str(v) for v in value}
    return set() if value is None else {str(value)}


def question_views(
    questions: list[rubric.Question],
    turns: list[TurnView],
    answers: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[QuestionView]:
    answers = answers if isinstance(answers, dict) else {}
    errors = errors or {}
    views = []
    for number, q in enumerate(questions, start=1):
        chosen = _as_strings(answers.get(q.key))
        view = QuestionView(
            number=number,
            key=q.key,
            type=q.type,
            label=q.label,
            help=q.help,
            required=q.required,
            errors=errors.get(f"answers.{q.key}", []),
        )
        if q.type == "text":
            value = answers.get(q.key)
            view.text = value if isinstance(value, str) else ""
        for position, (value, text, detail) in enumerate(_choice_values(q, turns)):
            view.choices.append(ChoiceView(value, text, value in chosen, _kbd_for(q, position, value), detail))
        views.append(view)
    return views


def answers_from_post(questions: list[rubric.Question], data: FormData) -> dict[str, Any]:
    """Form fields (`a-<key>`) to typed answers. Unparseable values are passed on as sent so
    the rubric's validation names the question; empty ones are left out (unanswered)."""
    answers: dict[str, Any] = {}
    for q in questions:
        name = f"a-{q.key}"
        if q.type == "multi_choice":
            picked = [v for v in data.getlist(name) if v]
            if picked:
                answers[q.key] = picked
            continue
        raw = data.get(name, "")
        if q.type == "text":
            raw = raw.strip()
        if not raw:
            continue
        if q.type in ("rating", "turn"):
            try:
                low, high = validation.INTEGER
                answers[q.key] = validation.parse_int(raw, field=name, min=low, max=high)
            except validation.InputError:
                answers[q.key] = raw
        elif q.type == "boolean":
            answers[q.key] = {"yes": True, "no": False}.get(raw, raw)
        else:
            answers[q.key] = raw
    return answers


def id_or_none(value: str | None) -> int | None:
    """An id the page sends back as a hint (`exclude`, `reviewed`): None unless it is one."""
    try:
        return validation.parse_int_or_none(value, field="id", min=validation.ID_MIN, max=validation.ID_MAX)
    except validation.InputError:
        return None


def submit_fields(data: FormData) -> tuple[int | None, int | None, int | None]:
    """schema_version, time_spent_ms and shown of a label submit, parsed before anything is
    saved: a bad one is the client's error (InputError naming it), never a 500 after the save."""
    ids = {"min": validation.ID_MIN, "max": validation.ID_MAX}
    version_id = validation.parse_int_or_none(data.get("schema_version"), field="schema_version", **ids)
    spent = validation.parse_int_or_none(
        data.get("time_spent_ms"), field="time_spent_ms", min=validation.POSITIVE[0], max=validation.POSITIVE[1]
    )
    shown = validation.parse_int_or_none(data.get("shown"), field="shown", **ids)
    return version_id, spent, shown


def answer_text(q: rubric.Question | None, value: Any, turns: list[TurnView]) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if q is not None and q.type == "turn" and isinstance(value, int):
        role = next((t.role for t in turns if t.index == value), "")
        return f"#{value} {role}".strip()
    return str(value)


def pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def num(value: Any, places: int = 2) -> str:
    return "—" if value is None else f"{value:.{places}f}"


def ci(value: Any) -> str:
    if not value or len(value) != 2 or value[0] is None or value[1] is None:
        return ""
    return f"[{value[0]:.2f}, {value[1]:.2f}]"


def category_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- the review page ---------------------------------------------------------------------------


def review_table(
    questions: list[rubric.Question], labels: Sequence[Label], item: QueueItem, turns: list[TurnView]
) -> list[dict[str, Any]]:
    """One row per answer key, the rubric's questions first and then any other key a label
    holds (a label made under an older version): each label's answer, the final and gold
    answers, and whether the labels differ."""
    by_key = {q.key: q for q in questions}
    keys = [q.key for q in questions]
    for label in labels:
        keys += [k for k in (label.answers or {}) if k not in keys]
    return [
        {
            "key": key,
            "label": by_key[key].label if key in by_key else key,
            "cells": [answer_text(by_key.get(key), (label.answers or {}).get(key), turns) for label in labels],
            "final": answer_text(by_key.get(key), (item.final_answers or {}).get(key), turns)
            if item.final_answers
            else "",
            "gold": answer_text(by_key.get(key), (item.gold_answers or {}).get(key), turns)
            if item.gold_answers
            else "",
            "differs": len({repr((label.answers or {}).get(key)) for label in labels}) > 1,
        }
        for key in keys
    ]


def review_prefill(questions: list[rubric.Question], labels: Sequence[Label]) -> tuple[dict[str, Any], dict[str, str]]:
    """The review form's starting answers: each question's unanimous or majority answer among
    the labels (rubric.consensus; ties are left blank), and per pre-filled question a note saying
    so and from how many labels."""
    found = rubric.consensus(questions, [label.answers or {} for label in labels])
    notes = {
        key: f"Pre-filled: all {c.answered} labels agree"
        if c.unanimous
        else f"Pre-filled: the majority, {c.votes} of {c.answered} labels"
        for key, c in found.items()
    }
    return {key: c.value for key, c in found.items()}, notes


def time_spent_texts(labels: Iterable[Label]) -> list[str]:
    return [num(label.time_spent_ms / 1000, 1) + " s" if label.time_spent_ms is not None else "—" for label in labels]


# --- the statistics pages ----------------------------------------------------------------------

# Pairs of annotators listed on the agreement page, those with the most shared items first.
PAIRS_SHOWN = 100
_COEFFICIENTS = (
    ("Fleiss' κ", "fleiss_kappa"),
    ("Krippendorff's α", "krippendorff_alpha"),  # noqa: RUF001 - the letter is meant
    ("Gwet's AC1", "gwet_ac1"),
)


def annotator_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The snapshot's annotator rows with their figures as text."""
    return [
        dict(
            row,
            agreement=pct(row.get("agreement_with_others")),
            gold=pct(row.get("gold_accuracy")),
            median=num(row.get("median_seconds"), 1),
            # A rate from a few hours of work: a decimal would claim precision it does not have.
            per_hour=num(row.get("labels_per_hour"), 0),
        )
        for row in rows
    ]


def agreement_report(
    payload: Mapping[str, Any], questions: list[rubric.Question], chosen: str | None, *, pairs_shown: int = PAIRS_SHOWN
) -> dict[str, Any]:
    """The agreement page's figures as text, from a statistics snapshot's payload: per question
    (order-free coefficients with their intervals, prevalence), annotator pairs (Cohen's kappa,
    weighted for ordinal questions), and the answer pairs of the `chosen` question (the first
    when it names none of them). Keys: questions, pairs, n_pairs, confusion, keys."""
    report = payload.get("agreement") or {}
    questions_by_key = {q.key: q for q in questions}
    labels = {key: q.label for key, q in questions_by_key.items()}
    rows = []
    for key, stats in (report.get("questions") or {}).items():
        prevalence = stats.get("prevalence") or {}
        rows.append(
            {
                "key": key,
                "label": labels.get(key, key),
                "n_items": stats.get("n_items") or 0,
                "percent_agreement": pct(stats.get("percent_agreement")),
                "stats": [(name, num(stats.get(field)), ci(stats.get(f"{field}_ci"))) for name, field in _COEFFICIENTS],
                "prevalence": [(category_text(category), pct(share)) for category, share in prevalence.items()],
            }
        )
    usernames = {row["user_id"]: row["username"] for row in payload.get("annotators") or []}
    all_pairs = sorted(report.get("pairs") or [], key=lambda p: -(p.get("n_items") or 0))
    pairs = [
        {
            "a": usernames.get(p.get("annotator_a"), f"user {p.get('annotator_a')}"),
            "b": usernames.get(p.get("annotator_b"), f"user {p.get('annotator_b')}"),
            "n_items": p.get("n_items") or 0,
            "questions": [
                (
                    labels.get(key, key),
                    (figures or {}).get("n_items") or 0,
                    pct((figures or {}).get("percent_agreement")),
                    num((figures or {}).get("cohen_kappa")),
                    num((figures or {}).get("cohen_kappa_weighted"))
                    if getattr(questions_by_key.get(key), "level", "") == "ordinal"
                    else "",
                )
                for key, figures in (p.get("questions") or {}).items()
            ],
        }
        for p in all_pairs[:pairs_shown]
    ]
    keys = [row["key"] for row in rows]
    chosen = chosen if chosen in keys else (keys[0] if keys else None)
    confusion = None
    table = (report.get("answer_pairs") or {}).get(chosen) if chosen else None
    if table:
        categories = [category_text(c) for c in table.get("categories") or []]
        cells = table.get("rows") or []
        confusion = {
            "key": chosen,
            "label": labels.get(chosen, chosen),
            "categories": categories,
            "rows": [(categories[i], row, sum(row)) for i, row in enumerate(cells)],
            "totals": [sum(row[j] for row in cells) for j in range(len(categories))],
            "n": table.get("n_items") or 0,
        }
    return {"questions": rows, "pairs": pairs, "n_pairs": len(all_pairs), "confusion": confusion, "keys": keys}
