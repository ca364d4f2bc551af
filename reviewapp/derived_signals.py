"""Implicit feedback derived from a transcript: the user rephrased, was frustrated, asked for a
human, or gave up. Pure (no ORM, no Django): ingestion calls it for every new conversation and
stores what it finds (`ConversationSignal`, source "derived") next to what the agent sent.

Many agents send no thumbs; these signals let sampling rules (`{"if": {"signal": ...}}`) send
such conversations to humans first. They are heuristics, not verdicts: each finding carries the
turn and a short evidence snippet so a reviewer sees why it fired.

Bounded work. Ingestion is hot and transcripts are untrusted, so the work per conversation has
fixed caps whatever arrives (a 2 MB message, 10,000 turns):

- only the last `MAX_TURNS` messages are examined (a user who gives up or gets angry does so
  near the end; the first turns of a very long transcript are not looked at);
- of each message only the first `MAX_TEXT_CHARS` characters of text are read (and at most
  `MAX_PARTS` content parts), so matching costs at most MAX_TURNS x MAX_TEXT_CHARS characters;
- the per-project term list is bounded where it is set (`MAX_TERMS` terms of `MAX_TERM_CHARS`).

Every pattern is a regular expression without nested unbounded repetition over overlapping
classes, so each runs in time linear in its (capped) input; hostile text is only matched, never
interpreted, and evidence is plain text the templates escape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

REPHRASED = "rephrased"
FRUSTRATION = "frustration"
ASKED_FOR_HUMAN = "asked_for_human"
GAVE_UP = "gave_up"
KINDS: tuple[str, ...] = (REPHRASED, FRUSTRATION, ASKED_FOR_HUMAN, GAVE_UP)

# The caps described in the module docstring. 200 turns x 2,000 characters is 400 kB of text
# at most per conversation; a typical support transcript (10-30 turns of a few hundred
# characters) is nowhere near either cap.
MAX_TURNS = 200
MAX_TEXT_CHARS = 2_000
MAX_PARTS = 50
EVIDENCE_CHARS = 80
# A project's own frustration terms: enough for a product's slang, small enough that the one
# alternation built from them stays cheap on every ingest.
MAX_TERMS = 100
MAX_TERM_CHARS = 60

# rapidfuzz's token_set_ratio (0-100) at or above which two consecutive user turns say the same
# thing. token_set_ratio ignores word order and duplicated words and scores a turn that repeats
# the earlier one with words added ("I want a refund" / "I want a refund for my order") at 100;
# 85 still admits a typo or two and a swapped word, while two different questions of the same
# length share far fewer tokens.
REPHRASE_THRESHOLD = 85
# A turn of fewer words carries too little to call a repeat ("ok", "yes please", "no").
REPHRASE_MIN_WORDS = 3
# Shouting: a run of upper-case words with at least this many letters ("THIS IS USELESS" has 13).
# Short acronyms ("PIN", "ATM", "NASA API") stay below it.
SHOUT_MIN_LETTERS = 10

# Turns that acknowledge or close rather than ask: never a rephrase, and a last turn of this kind
# left unanswered is a goodbye, not giving up.
_TRIVIAL = frozenset(
    {
        "ok",
        "okay",
        "k",
        "yes",
        "yeah",
        "yep",
        "no",
        "nope",
        "sure",
        "thanks",
        "thank you",
        "thank you very much",
        "thanks a lot",
        "thx",
        "ty",
        "great",
        "cool",
        "perfect",
        "got it",
        "bye",
        "goodbye",
        "ok thanks",
        "ok thank you",
        "okay thanks",
        "yes please",
        "no thanks",
        "no thank you",
        "done",
        "fine",
        "hello",
        "hi",
    }
)

# Default frustration phrases, matched case-insensitively on word boundaries. A project adds its
# own (Project.frustration_terms).
DEFAULT_FRUSTRATION_TERMS: tuple[str, ...] = (
    "useless",
    "this is useless",
    "not helpful",
    "unhelpful",
    "not helping",
    "waste of time",
    "ridiculous",
    "terrible",
    "awful",
    "stupid",
    "pathetic",
    "annoying",
    "frustrating",
    "frustrated",
    "you're not listening",
    "you are not listening",
    "you don't understand",
    "you do not understand",
    "that's not what i asked",
    "that is not what i asked",
    "i already told you",
    "i already said",
    "for the last time",
    "wtf",
    "damn",
    "crap",
    "shit",
    "bullshit",
    "fuck",
    "fucking",
)

_SHOUT = re.compile(r"\b[A-Z]+(?:[^\w\n]+[A-Z]+)*\b")
_REPEATED_PUNCTUATION = re.compile(r"[!?]{3,}")
# "talk to a human", "speak with a real person", "connect me to an agent", "transfer me to a
# representative": a verb, then within 40 characters of the same sentence, someone human.
_HUMAN_NOUNS = r"(?:human|humans|person|agent|representative|rep|operator|manager|supervisor|somebody|someone)"
_ASKED_FOR_HUMAN = re.compile(
    r"\b(?:talk|speak|chat|connect|transfer|put|get)\b[^.!?\n]{0,40}?\b" + _HUMAN_NOUNS + r"\b"
    r"|\b(?:real|live|actual)\s+(?:human|person|people|agent)\b"
    r"|\bhuman\s+(?:being|agent|support|please)\b"
    r"|\brepresentative\b"
    r"|\bcustomer\s+(?:service|support)\s+(?:agent|representative|person)\b",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Finding:
    """One derived signal: the kind, the index of the message it was seen in (an index into the
    conversation's messages, as the transcript numbers them) and a short evidence snippet."""

    kind: str
    turn: int
    evidence: str


def text_of(message: Any) -> str:
    """A message's text, at most MAX_TEXT_CHARS of it (content as a string, or its text parts)."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content[:MAX_TEXT_CHARS]
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    room = MAX_TEXT_CHARS
    for part in content[:MAX_PARTS]:
        if room <= 0:
            break
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            text = part["text"][:room]
            texts.append(text)
            room -= len(text) + 1
    return "\n".join(texts)[:MAX_TEXT_CHARS]


def evidence_of(text: str) -> str:
    """Plain text for showing: whitespace collapsed, control characters (NUL, which PostgreSQL
    cannot store, among them) dropped, cut to EVIDENCE_CHARS."""
    cleaned = _SPACE.sub(" ", _CONTROL.sub("", text[: EVIDENCE_CHARS * 4])).strip()
    return cleaned if len(cleaned) <= EVIDENCE_CHARS else cleaned[: EVIDENCE_CHARS - 1] + "…"


def _snippet(text: str, start: int, end: int) -> str:
    """The match with a little context around it."""
    pad = max(0, (EVIDENCE_CHARS - (end - start)) // 2)
    return evidence_of(text[max(0, start - pad) : end + pad])


def terms_normalise(terms: Iterable[str]) -> list[str]:
    """A project's terms as stored: stripped, whitespace collapsed, lower-cased, deduplicated,
    empties dropped. Bounds are checked by the caller (services), which names the field."""
    seen: dict[str, None] = {}
    for term in terms:
        cleaned = _SPACE.sub(" ", _CONTROL.sub("", term)).strip().lower()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def _trie_pattern(node: dict[str, Any]) -> str:
    """The alternation below `node` of a character trie, prefixes factored out: at each
    position the engine then tries one branch per distinct next character instead of every
    term (seven times faster with a hundred terms), and a term that is a prefix of another
    ("fuck", "fucking") is the shorter branch of an optional group."""
    parts = [
        (r"\s+" if ch == " " else re.escape(ch)) + _trie_pattern(child) for ch, child in sorted(node.items()) if ch
    ]
    if not parts:
        return ""
    if "" in node:
        return "(?:" + "|".join(parts) + ")?"
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


@lru_cache(maxsize=256)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for the default and the project's terms. Each term is text, never a pattern
    (every character escaped); its spaces match any whitespace, and lookarounds put the
    boundaries at words' edges even for terms that begin or end with punctuation. Greedy, so
    the evidence shows "this is useless" rather than "this is" when both are terms."""
    root: dict[str, Any] = {}
    for term in terms:
        node = root
        for ch in _SPACE.sub(" ", term.lower()).strip():
            node = node.setdefault(ch, {})
        if node is not root:
            node[""] = {}
    return re.compile(rf"(?<!\w)(?:{_trie_pattern(root)})(?!\w)", re.IGNORECASE)


def _is_trivial(text: str) -> bool:
    processed = default_process(text)
    return processed in _TRIVIAL or len(processed.split()) < REPHRASE_MIN_WORDS


def _frustration_in(text: str, pattern: re.Pattern[str]) -> tuple[int, int] | None:
    """The first sign of frustration in a turn, as a span, or None."""
    found = pattern.search(text)
    best = (found.start(), found.end()) if found else None
    for match in _SHOUT.finditer(text):
        if sum(c.isalpha() for c in match.group()) >= SHOUT_MIN_LETTERS:
            if best is None or match.start() < best[0]:
                best = (match.start(), match.end())
            break
    punctuation = _REPEATED_PUNCTUATION.search(text)
    if punctuation and (best is None or punctuation.start() < best[0]):
        best = (punctuation.start(), punctuation.end())
    return best


def derive(
    messages: Sequence[Any], *, frustration_terms: Sequence[str] = (), skip: Iterable[str] = ()
) -> list[Finding]:
    """The signals in a transcript (OpenAI-format message dicts), at most one per kind: the
    first turn where it shows (gave_up: the last user turn). Kinds in `skip` (the agent sent
    them itself) are not looked for. Only the last MAX_TURNS messages and the first
    MAX_TEXT_CHARS of each are read."""
    wanted = set(KINDS) - set(skip)
    if not wanted or not messages:
        return []
    start = max(0, len(messages) - MAX_TURNS)
    # (index, text) of the user turns in the window, in order.
    user_turns = [
        (index, text_of(message))
        for index, message in enumerate(messages[start:], start)
        if isinstance(message, dict) and message.get("role") == "user"
    ]
    findings: dict[str, Finding] = {}

    if REPHRASED in wanted:
        previous: tuple[int, str] | None = None
        for index, text in user_turns:
            if _is_trivial(text):
                continue  # "ok" between two asks does not break the repeat
            if previous is not None:
                score = fuzz.token_set_ratio(previous[1], text, processor=default_process)
                if score >= REPHRASE_THRESHOLD:
                    findings[REPHRASED] = Finding(REPHRASED, index, evidence_of(text))
                    break
            previous = (index, text)

    if FRUSTRATION in wanted:
        pattern = _terms_pattern(tuple(DEFAULT_FRUSTRATION_TERMS) + tuple(frustration_terms))
        for index, text in user_turns:
            span = _frustration_in(text, pattern)
            if span is not None:
                findings[FRUSTRATION] = Finding(FRUSTRATION, index, _snippet(text, *span))
                break

    if ASKED_FOR_HUMAN in wanted:
        for index, text in user_turns:
            match = _ASKED_FOR_HUMAN.search(text)
            if match is not None:
                findings[ASKED_FOR_HUMAN] = Finding(ASKED_FOR_HUMAN, index, _snippet(text, *match.span()))
                break

    if GAVE_UP in wanted and user_turns:
        last_index, last_text = user_turns[-1]
        answered = any(
            isinstance(m, dict) and m.get("role") == "assistant" and text_of(m).strip()
            for m in messages[last_index + 1 :]
        )
        if not answered and last_text.strip() and default_process(last_text) not in _TRIVIAL:
            findings[GAVE_UP] = Finding(GAVE_UP, last_index, evidence_of(last_text))

    return [findings[kind] for kind in KINDS if kind in findings]


__all__ = [
    "ASKED_FOR_HUMAN",
    "DEFAULT_FRUSTRATION_TERMS",
    "EVIDENCE_CHARS",
    "FRUSTRATION",
    "GAVE_UP",
    "KINDS",
    "MAX_TERMS",
    "MAX_TERM_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TURNS",
    "REPHRASED",
    "REPHRASE_THRESHOLD",
    "Finding",
    "derive",
    "evidence_of",
    "terms_normalise",
    "text_of",
]
