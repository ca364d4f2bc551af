"""Golden dataset items, pure (no ORM): keys, splits, content hashes, the turn under test, the
promotion rules and version comparison. Everything that decides what an item *is* lives here so
the hashes, the splits and the rule matching are tested without a database.

Hashes (documented in README "Golden datasets"):
- an item's `key` is the first 16 hex digits of SHA-256("conversation:" + external id), unless
  the caller names one: the same conversation is the same item in every dataset and version,
  and a key says nothing about row ids;
- an item's `content_hash` is SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of
  {key, input_messages, reference_output, expected_labels, critical, tags, split}; lineage,
  ids and times are left out, so two items that would test the same thing hash the same;
- a version's `content_hash` is SHA-256 of the lines "<key> <content_hash>\\n", in key order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
TAGS_MAX = 20
TAG_MAX_CHARS = 64
RULES_MAX = 50
RULE_ANSWERS_MAX = 20
# The fields a content hash covers and a comparison reports on, in that order.
CONTENT_FIELDS = ("input_messages", "reference_output", "expected_labels", "critical", "tags", "split")
# A text question with one of these keys holds a person's corrected answer: when answered, it
# replaces the agent's turn as the reference.
CORRECTION_KEYS = ("corrected_answer", "correction", "reference_output", "reference")
AGREEMENTS = ("any", "unanimous")
# Splits by the first 32 bits of a hash of the key: 80% train, 10% dev, 10% test.
_SPLIT_BOUNDS = ((80, "train"), (90, "dev"), (100, "test"))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def canonical(value: Any) -> bytes:
    """The one JSON spelling hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_for_conversation(external_id: str) -> str:
    return sha256(b"conversation:" + external_id.encode())[:16]


def split_for(key: str) -> str:
    bucket = int(sha256(b"split:" + key.encode())[:8], 16) % 100
    return next(name for bound, name in _SPLIT_BOUNDS if bucket < bound)


def content_hash(key: str, fields: Mapping[str, Any]) -> str:
    return sha256(canonical({"key": key, **{name: fields.get(name) for name in CONTENT_FIELDS}}))


def version_hash(items: Iterable[tuple[str, str]]) -> str:
    """Over (key, content_hash) pairs in key order, whatever order they come in."""
    digest = hashlib.sha256()
    for key, item_hash in sorted(items):
        digest.update(f"{key} {item_hash}\n".encode())
    return digest.hexdigest()


def clean_tags(value: Any) -> tuple[list[str], str | None]:
    """Tags as stored: strings of 1..64 printable characters, at most 20, duplicates dropped
    (first kept). Returns (tags, problem)."""
    if not isinstance(value, list):
        return [], "Send a list of strings."
    if len(value) > TAGS_MAX:
        return [], f"At most {TAGS_MAX} tags."
    tags: list[str] = []
    for tag in value:
        if not isinstance(tag, str) or not tag.strip():
            return [], "Each tag is a non-empty string."
        if len(tag) > TAG_MAX_CHARS:
            return [], f"A tag has at most {TAG_MAX_CHARS} characters."
        if _CONTROL.search(tag):
            return [], "Tags hold no control characters."
        if tag not in tags:
            tags.append(tag)
    return tags, None


# --- What an item holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    input_messages: list[dict[str, Any]]
    reference_output: dict[str, Any] | None
    reference_source: str  # "agent" (the accepted turn), "correction" (a person's), "none"


def _turn_index(messages: list[Any], answers: Mapping[str, Any], turn_questions: Iterable[str]) -> int | None:
    """The assistant turn under test: the one a `turn` question's final answer points at, else
    the last assistant message."""
    for key in turn_questions:
        index = answers.get(key)
        if (
            isinstance(index, int)
            and not isinstance(index, bool)
            and 0 <= index < len(messages)
            and isinstance(messages[index], dict)
            and messages[index].get("role") == "assistant"
        ):
            return index
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], dict) and messages[index].get("role") == "assistant":
            return index
    return None


def turn_under_test(
    messages: list[Any],
    answers: Mapping[str, Any],
    *,
    turn_questions: Iterable[str] = (),
    text_questions: Iterable[str] = (),
) -> Turn:
    """Input: the conversation before the turn under test. Reference: a person's correction
    when a text question named in CORRECTION_KEYS holds one, else the turn itself."""
    index = _turn_index(messages, answers, turn_questions)
    before = messages if index is None else messages[:index]
    text_keys = set(text_questions)
    for key in CORRECTION_KEYS:
        corrected = answers.get(key)
        if key in text_keys and isinstance(corrected, str) and corrected.strip():
            return Turn(list(before), {"role": "assistant", "content": corrected}, "correction")
    if index is None:
        return Turn(list(before), None, "none")
    return Turn(list(before), dict(messages[index]), "agent")


# --- Promotion rules ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    queue: str
    answers: dict[str, Any] = field(default_factory=dict)
    agreement: str = "any"
    critical: bool = False
    tags: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "if": {"answers": dict(self.answers), "agreement": self.agreement},
            "critical": self.critical,
            "tags": list(self.tags),
        }


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    return value is None or isinstance(value, str | int | bool)


def rules_parse(value: Any) -> tuple[list[Rule], dict[str, list[str]]]:
    """Validate promotion rules; errors are keyed by path (`promotion_rules[0].if.answers`).

    A rule: {"queue": name, "if": {"answers": {question: value}, "agreement": "any" |
    "unanimous"}, "critical": bool, "tags": [...]}. `answers` compares each named final answer
    for equality (a list answer against a list); "unanimous" also asks every label of the item
    to have given the final answer to each named question (all questions when none is named).
    """
    base = "promotion_rules"
    if not isinstance(value, list):
        return [], {base: ["Send a list of rules."]}
    if len(value) > RULES_MAX:
        return [], {base: [f"At most {RULES_MAX} rules."]}
    rules: list[Rule] = []
    errors: dict[str, list[str]] = {}
    for i, raw in enumerate(value):
        at = f"{base}[{i}]"
        if not isinstance(raw, dict):
            errors[at] = ["Send an object."]
            continue
        unknown = sorted(set(raw) - {"queue", "if", "critical", "tags"})
        if unknown:
            errors[at] = [f"Unknown fields: {', '.join(map(str, unknown))[:200]}."]
            continue
        queue = raw.get("queue")
        if not isinstance(queue, str) or not queue.strip() or len(queue) > 200 or "\x00" in queue:
            errors[f"{at}.queue"] = ["Name a queue (1 to 200 characters)."]
        cond = raw.get("if", {})
        answers: dict[str, Any] = {}
        agreement = "any"
        if not isinstance(cond, dict):
            errors[f"{at}.if"] = ["Send an object."]
        else:
            unknown = sorted(set(cond) - {"answers", "agreement"})
            if unknown:
                errors[f"{at}.if"] = [f"Unknown fields: {', '.join(map(str, unknown))[:200]}."]
            answers = cond.get("answers", {})
            if not isinstance(answers, dict) or len(answers) > RULE_ANSWERS_MAX:
                errors[f"{at}.if.answers"] = [f"Send an object of at most {RULE_ANSWERS_MAX} question keys."]
                answers = {}
            else:
                for k, v in answers.items():
                    ok_key = isinstance(k, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,63}", k)
                    ok_value = _scalar(v) or (isinstance(v, list) and len(v) <= 50 and all(_scalar(x) for x in v))
                    if not ok_key or not ok_value or (isinstance(v, str) and (len(v) > 200 or "\x00" in v)):
                        errors[f"{at}.if.answers.{str(k)[:64]}"] = ["A question key and a plain answer value."]
            agreement = cond.get("agreement", "any")
            if agreement not in AGREEMENTS:
                errors[f"{at}.if.agreement"] = [f"One of: {', '.join(AGREEMENTS)}."]
        critical = raw.get("critical", False)
        if not isinstance(critical, bool):
            errors[f"{at}.critical"] = ["Send true or false."]
        tags, problem = clean_tags(raw.get("tags", []))
        if problem:
            errors[f"{at}.tags"] = [problem]
        if not any(path == at or path.startswith(at + ".") for path in errors):
            rules.append(
                Rule(queue=queue.strip(), answers=dict(answers), agreement=agreement, critical=critical, tags=tags)
            )
    return rules, errors


def rule_matches(rule: Rule, *, final_answers: Mapping[str, Any], label_answers: list[Mapping[str, Any]]) -> bool:
    """Whether a final item meets a rule's condition (its queue is matched by the caller)."""
    for key, wanted in rule.answers.items():
        if key not in final_answers or final_answers[key] != wanted:
            return False
    if rule.agreement == "unanimous":
        keys = list(rule.answers) or list(final_answers)
        if not label_answers:
            return False
        for answers in label_answers:
            if any(answers.get(k) != final_answers.get(k) for k in keys):
                return False
    return True


# --- Comparing versions ---------------------------------------------------------------------


def compare(a: Mapping[str, Mapping[str, Any]], b: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Items by key in version a and b (each: the CONTENT_FIELDS and content_hash): the keys
    added in b, removed from a, and changed (with the fields that differ), each in key order."""
    added = sorted(set(b) - set(a))
    removed = sorted(set(a) - set(b))
    changed = []
    for key in sorted(set(a) & set(b)):
        if a[key].get("content_hash") == b[key].get("content_hash"):
            continue
        fields = [name for name in CONTENT_FIELDS if canonical(a[key].get(name)) != canonical(b[key].get(name))]
        changed.append({"key": key, "fields": fields})
    return {"added": added, "removed": removed, "changed": changed}
