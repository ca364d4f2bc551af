"""Pairwise queues: two outputs side by side, answered A better / B better / equivalent / both bad.

Pure: no ORM, tested without a database.

A pairwise question is an ordinary `single_choice` question with the fixed options below, so
overlap, agreement, review and the statistics snapshot treat it like any other option-valued
question, and the labeling page's keys pick them (digits 1-4 by position, Enter submits). "A"
and "B" are the left and right sides as displayed. Which side holds the candidate is drawn per
item from a seeded RNG (`candidate_side`) and stored with the item, so the answer is mapped back
to baseline/candidate (`outcome`) however the sides fell.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

A_BETTER = "A better"
B_BETTER = "B better"
EQUIVALENT = "Equivalent"
BOTH_BAD = "Both bad"
OPTIONS = (A_BETTER, B_BETTER, EQUIVALENT, BOTH_BAD)

LEFT = "left"
RIGHT = "right"

# What an answer means once the shuffle is undone.
CANDIDATE = "candidate"
BASELINE = "baseline"
OUTCOME_EQUIVALENT = "equivalent"
OUTCOME_BOTH_BAD = "both_bad"
OUTCOMES = (CANDIDATE, BASELINE, OUTCOME_EQUIVALENT, OUTCOME_BOTH_BAD)

DEFAULT_QUESTION = {"key": "overall", "label": "Which answer is better overall?"}
MAX_QUESTIONS = 10
# One side's output as stored: big enough for a long answer with tool calls, small enough that a
# page of two stays quick to render (the transcript renderer bounds its own time as well).
MAX_OUTPUT_CHARS = 200_000
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def question(key: str, label: str, help_text: str = "", *, required: bool = True) -> dict[str, Any]:
    """A rubric question (labeling/rubric.py's shape) asking which side is better."""
    return {
        "key": key,
        "type": "single_choice",
        "label": label,
        "help": help_text,
        "required": required,
        "options": list(OPTIONS),
    }


# Why a rubric is refused for a pairwise queue, by queue creation and by a new rubric version.
RUBRIC_RULE = (
    f"A pairwise queue's rubric asks only pairwise questions (single choice of {', '.join(repr(o) for o in OPTIONS)})."
)


def is_pairwise_question(q: dict[str, Any]) -> bool:
    return q.get("type") == "single_choice" and list(q.get("options") or []) == list(OPTIONS)


def non_pairwise_fields(questions: list[dict[str, Any]]) -> list[str]:
    """Where a rubric's questions fall short of a pairwise queue's, as error paths in the
    rubric's own terms: each question that is not pairwise by the field to change
    (`questions[1].type` when it is not single choice, else `questions[1].options`), or
    `questions` when there is none. Empty when the rubric suits a pairwise queue."""
    if not questions:
        return ["questions"]
    return [
        f"questions[{i}].{'options' if q.get('type') == 'single_choice' else 'type'}"
        for i, q in enumerate(questions)
        if not is_pairwise_question(q)
    ]


def candidate_side(seed: int, key: str) -> str:
    """Where the candidate goes for the item `key` under `seed`: a fair coin, the same on every
    machine and Python (random.Random seeded with a string hashes it with SHA-512), so a queue's
    sides can be redrawn from its seed to check them."""
    return LEFT if random.Random(f"{seed}:{key}").random() < 0.5 else RIGHT


def outcome(answer: Any, side_of_candidate: str) -> str | None:
    """The answer with the shuffle undone: A and B are the left and right sides as shown.
    None for anything that is not one of the options (an unanswered question)."""
    if answer == EQUIVALENT:
        return OUTCOME_EQUIVALENT
    if answer == BOTH_BAD:
        return OUTCOME_BOTH_BAD
    if answer not in (A_BETTER, B_BETTER):
        return None
    chosen = LEFT if answer == A_BETTER else RIGHT
    return CANDIDATE if chosen == side_of_candidate else BASELINE


def output_messages(output: Any) -> list[dict[str, Any]]:
    """An output as messages the transcript renderer shows: text is one assistant turn, a message
    or a list of messages is kept, `{"messages": [...]}` is unwrapped, anything else is shown as
    its JSON in an assistant turn."""
    if isinstance(output, dict) and isinstance(output.get("messages"), list):
        output = output["messages"]
    if isinstance(output, str):
        return [{"role": "assistant", "content": output}]
    if _is_message(output):
        return [output]
    if isinstance(output, list) and all(_is_message(m) for m in output):
        return list(output)
    if output is None:
        return []
    return [{"role": "assistant", "content": json.dumps(output, ensure_ascii=False, sort_keys=True)}]


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and value.get("role") in _ROLES


def common_prefix(left: list[Any], right: list[Any]) -> int:
    """How many leading messages two conversations share: their common input."""
    n = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        n += 1
    return n


def output_size(messages: list[dict[str, Any]]) -> int:
    return len(json.dumps(messages, ensure_ascii=False))


def pair_key(*parts: str) -> str:
    """A key for a pair that has none (two conversations): stable, 16 hex digits."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
