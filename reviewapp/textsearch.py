"""Conversation search text, without the ORM: what is searched, how a query is read, and the
highlighted snippet shown in results.

A query is words and "quoted phrases", all of which must appear; nothing else is syntax. The
user's text never reaches a database's query parser as syntax: PostgreSQL gets each clause
through `phraseto_tsquery` (which cannot fail on any text) and SQLite each clause as an FTS5
string literal (`fts5_match`), so AND/OR/NEAR, `*`, `^`, parentheses and stray quotes are
plain characters on both databases.

`searchable_text` must say the same as the index does (reviewapp/migrations/0007 and
reviewapp.sql.CONVERSATION_SEARCH_DOCUMENT): the content of every turn but the system and
developer prompts, strings and the text of content parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# A query longer than this is refused (400): a search box needs far less, and every clause
# costs an index probe.
MAX_QUERY_CHARS = 200
MAX_CLAUSES = 16
SNIPPET_CHARS = 180
# The snippet looks at no more than this much of a conversation's text: a hostile transcript
# of megabytes must not make a results page slow.
_SNIPPET_SCAN_CHARS = 50_000
_NOT_SEARCHED_ROLES = frozenset({"system", "developer"})
_CLAUSE = re.compile(r'"([^"]*)"|([^\s"]+)')
# Word characters as both databases' tokenizers see them: letters and digits (not "_").
_WORD = re.compile(r"[^\W_]+")


def parse(q: str, *, limit: int | None = MAX_CLAUSES) -> list[str]:
    """The clauses of a query: each word or quoted phrase with at least one letter or digit,
    duplicates dropped, the first `limit` (the API refuses queries with more)."""
    clauses: list[str] = []
    seen: set[str] = set()
    for phrase, word in _CLAUSE.findall(q.replace("\x00", " ")):
        clause = " ".join((phrase or word).split())
        if _WORD.search(clause) and clause.lower() not in seen:
            seen.add(clause.lower())
            clauses.append(clause)
    return clauses if limit is None else clauses[:limit]


def fts5_match(clauses: list[str]) -> str:
    """An FTS5 MATCH expression requiring every clause as a phrase. Each clause is an FTS5
    string (double quotes, inner quotes doubled), inside which no character is an operator.
    Only the clauses' words are kept, so a clause FTS5 would tokenize to nothing cannot make
    an empty phrase."""
    phrases = [" ".join(_WORD.findall(clause)) for clause in clauses]
    return " AND ".join('"' + p.replace('"', '""') + '"' for p in phrases if p)


def words(clauses: list[str]) -> list[str]:
    """The distinct words of the clauses, lower-cased, for highlighting."""
    seen: dict[str, None] = {}
    for clause in clauses:
        for word in _WORD.findall(clause.lower()):
            seen.setdefault(word, None)
    return list(seen)


def searchable_turns(messages: Any) -> list[tuple[int, str, str]]:
    """(index in messages, role, text) of each searched turn, as the index reads them."""
    turns: list[tuple[int, str, str]] = []
    if not isinstance(messages, list):
        return turns
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") in _NOT_SEARCHED_ROLES:
            continue
        role = str(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, str):
            turns.append((index, role, content))
        elif isinstance(content, list):
            texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
            if texts:
                turns.append((index, role, " ".join(texts)))
    return turns


@dataclass(frozen=True)
class Snippet:
    """Where a result matched: the turn's role and index in `messages`, and the text around the first match
    as (text, is_match) segments. Segments are raw text: templates escape them."""

    role: str
    turn: int
    segments: list[tuple[str, bool]]
    clipped_start: bool
    clipped_end: bool


def _pattern(words: list[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    # Longest first, so "refunds" is marked whole rather than as "refund" plus "s".
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def snippet(messages: Any, clauses: list[str]) -> Snippet | None:
    """The first searched turn with a query word in it, cut to about SNIPPET_CHARS around the
    first match, every query word marked. None when no word is found (the index can match
    what a plain word scan misses, such as an e-mail address split differently)."""
    pattern = _pattern(words(clauses))
    if pattern is None:
        return None
    for index, role, text in searchable_turns(messages):
        scanned = text[:_SNIPPET_SCAN_CHARS]
        first = pattern.search(scanned)
        if first is None:
            continue
        start = max(0, first.start() - SNIPPET_CHARS // 3)
        end = min(len(scanned), start + SNIPPET_CHARS)
        # Do not cut a word in two at either end.
        if start > 0:
            space = scanned.find(" ", start, first.start())
            start = space + 1 if space != -1 else start
        if end < len(scanned):
            space = scanned.rfind(" ", first.end(), end)
            end = space if space != -1 else end
        window = scanned[start:end]
        segments: list[tuple[str, bool]] = []
        position = 0
        for match in pattern.finditer(window):
            if match.start() > position:
                segments.append((window[position : match.start()], False))
            segments.append((match.group(0), True))
            position = match.end()
        if position < len(window):
            segments.append((window[position:], False))
        return Snippet(role, index, segments, start > 0, end < len(text))
    return None
