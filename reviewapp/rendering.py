"""Untrusted text to HTML: what agents and end users wrote, shown as sent, in time linear in its
size and at a bounded cost per page.

- Markdown goes through markdown-it-py (CommonMark, linear-time by design) with raw HTML off and
  single newlines kept as line breaks, then through nh3's allow-list. Python-Markdown, used
  before, is super-linear on runs of `[` (8 KB of them took 25 s).
- markdown-it-py is linear but its constant is large on markup characters: tens of µs for
  each `[`, `*`, `_` or line, against 0.03 µs for a letter (`bench/RESULTS.md`). So a text is
  parsed as markdown only while its markup characters fit a per-text limit and the page's
  budget; otherwise it is shown escaped as plain text with its whitespace kept (`.as-sent`).
- Text over `TEXT_CAP` characters is never parsed: the first `PREVIEW_CHARS` are shown escaped,
  and a `<details>` "show all" holds the whole text, escaped (no JavaScript needed).
- JSON (tool arguments and results) is pretty-printed only when it parses within
  `JSON_MAX_DEPTH` levels; deeper or invalid JSON is shown as the text it was. Nothing here
  recurses on the input's nesting.

Pure module: no ORM. Templates get `SafeString`s built here from escaped or sanitised parts.
"""

from __future__ import annotations

import json
import re
from typing import Any

import nh3
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# Above this many characters a text is not parsed at all (markdown or JSON): 64 KB is well past
# any answer a person reads as prose (a long system prompt is 10-20 KB), while escaping it costs
# well under a millisecond.
TEXT_CAP = 64 * 1024
# What a capped text shows before "show all": about a screen and a half.
PREVIEW_CHARS = 4_000
# Characters that make markdown-it-py emit tokens or try a rule: line ends and the inline rules'
# terminators. Letters cost next to nothing (0.03 µs each); each of these costs up to ~40 µs on
# an idle 2-core VM and ~110 µs on one loaded six times over (runs of "[", lists of links;
# bench/RESULTS.md). 2,000 per text and 6,000 per page keep a page's parsing near 0.2 s idle and
# under 0.7 s loaded. An agent's answer has tens to a few hundred; a text over the limit, or
# past the page's budget, is still shown in full, as plain text.
MARKUP_CHARS = "\n\r!#$%&*+-:<=>@[\\]^_`{}~|"
MARKDOWN_MAX_MARKS = 2_000
PAGE_MARKS_BUDGET = 6_000
# Pretty-printing recurses once per level (json.dumps with indent is pure Python), inside a
# template render that is already a few hundred frames deep; indentation also grows the output
# by up to two spaces per level per line. Tool payloads nest a handful of levels.
JSON_MAX_DEPTH = 32
# A pretty-printed JSON text larger than this is shown compact, as sent, instead.
PRETTY_MAX_CHARS = 4 * TEXT_CAP

_md = (
    MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "typographer": False})
    .enable(["table", "strikethrough"])
    # An image is a remote request from the reviewer's browser (a tracking pixel); without the
    # rule `![alt](url)` reads as "!" and a link, so the reviewer still sees what was sent.
    .disable(["image", "html_block", "html_inline"])
)
# Paragraphs keep their runs of spaces (`white-space: pre-wrap` in app.css), so a line break
# must not also leave a newline character behind it.
_md.add_render_rule("softbreak", lambda self, tokens, idx, options, env: "<br>")
_md.add_render_rule("hardbreak", lambda self, tokens, idx, options, env: "<br>")
_LINK_SCHEMES = ("http:", "https:", "mailto:")
# Anything else (javascript:, data:, a relative path into this app) stays literal text, so the
# reviewer reads where it pointed; nh3 below would only have dropped the href.
_md.validateLink = lambda url: url.strip().lower().startswith(_LINK_SCHEMES)  # type: ignore[method-assign]

_ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "s",
}  # fmt: skip


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # The same rule as validateLink, again, in case markdown-it lets something through.
    if tag == "a" and attribute == "href" and not value.strip().lower().startswith(_LINK_SCHEMES):
        return None
    return value


_cleaner = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    attribute_filter=_keep_attribute,
)


class MarkdownBudget:
    """How many markup characters one page may still parse as markdown. Shared by every text of
    a transcript so that many hostile messages cannot add up to a slow page."""

    def __init__(self, marks: int = PAGE_MARKS_BUDGET) -> None:
        self.marks = marks

    def take(self, marks: int) -> bool:
        if marks > self.marks:
            return False
        self.marks -= marks
        return True


_MARKUP_BYTES = MARKUP_CHARS.encode()


def markup_count(text: str) -> int:
    # UTF-8 writes every non-ASCII character with bytes >= 0x80, so the ASCII markup bytes are
    # the markup characters; bytes.translate is one C pass whatever the text holds.
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, _MARKUP_BYTES))


def markdown_html(text: str) -> str:
    """Markdown to sanitised HTML, unbounded: callers check the size and markup first."""
    return _cleaner.clean(_md.render(text))


def _plain(text: str, *, mono: bool) -> SafeString:
    tag = "pre" if mono else "div"
    return format_html('<{} class="as-sent">{}</{}>', tag, text, tag)


def _capped(text: str, *, mono: bool) -> SafeString:
    tag = "pre" if mono else "div"
    return format_html(
        '<div class="capped"><{tag} class="as-sent preview">{head}</{tag}>'
        '<details class="show-all"><summary>Show all {count} characters</summary>'
        '<{tag} class="as-sent">{full}</{tag}></details></div>',
        tag=tag,
        head=text[:PREVIEW_CHARS] + "…",
        count=f"{len(text):,}",
        full=text,
    )


def text_html(text: str, *, budget: MarkdownBudget | None = None) -> SafeString:
    """A message's text: markdown while it is small and the page can afford it, else the text
    as sent, escaped; over `TEXT_CAP`, a preview and "show all"."""
    if not isinstance(text, str) or not text:
        return mark_safe("")
    if len(text) > TEXT_CAP:
        return _capped(text, mono=False)
    marks = markup_count(text)
    if marks > MARKDOWN_MAX_MARKS or (budget is not None and not budget.take(marks)):
        return _plain(text, mono=False)
    return format_html('<div class="md">{}</div>', mark_safe(markdown_html(text)))  # noqa: S308 - nh3 above


# --- JSON ------------------------------------------------------------------------------------

# A string, or everything after an opening quote that is never closed. The optional closing quote
# means a match never fails, so there is no backtracking and no rescanning from later quotes.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_text_depth(text: str, *, limit: int = JSON_MAX_DEPTH) -> int:
    """How deep a JSON text's arrays and objects nest, counted without parsing or recursing;
    stops counting past `limit`. Brackets inside strings are skipped."""
    brackets = _BRACKETS.sub("", _JSON_STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _object_depth(value: Any, *, limit: int = JSON_MAX_DEPTH) -> int:
    """How deep decoded JSON (dicts and lists) nests, without recursing; stops past `limit`."""
    if not isinstance(value, dict | list | tuple):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return deepest


def json_text(value: Any) -> str:
    """Decoded JSON (tool arguments sent as an object rather than a string) back to compact text;
    text stays as it is."""
    if isinstance(value, str):
        return value
    if _object_depth(value) <= JSON_MAX_DEPTH:
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # keys json.dumps refuses (a tuple); not from the database
            pass
    return compact_json(value)


class _Raw(str):
    """A piece of output already encoded, on compact_json's stack among values still to go."""


def compact_json(value: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, default=str)` for any depth: an explicit stack
    instead of recursion. Slower than json.dumps; only for values nested past JSON_MAX_DEPTH."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Raw:
            out.append(item)
        elif isinstance(item, dict):
            todo: list[Any] = [_Raw("{")]
            for n, (key, child) in enumerate(item.items()):
                key_text = key if isinstance(key, str) else json.dumps(key, default=str)
                todo += [_Raw((", " if n else "") + json.dumps(key_text, ensure_ascii=False) + ": "), child]
            todo.append(_Raw("}"))
            stack.extend(reversed(todo))
        elif isinstance(item, list | tuple):
            todo = [_Raw("[")]
            for n, child in enumerate(item):
                todo += [_Raw(", "), child] if n else [child]
            todo.append(_Raw("]"))
            stack.extend(reversed(todo))
        else:
            out.append(json.dumps(item, ensure_ascii=False, default=str))
    return "".join(out)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Pretty-printing would drop all but the last; the reviewer must see every one.
        raise ValueError("duplicate key")
    return result


def pretty_json(value: Any) -> str:
    """Indented JSON when `value` is (or is text of) an array or object nested at most
    `JSON_MAX_DEPTH` deep; otherwise the text as sent. Keys keep their order. Never raises."""
    text = json_text(value)
    if len(text) > TEXT_CAP or json_text_depth(text) > JSON_MAX_DEPTH:
        return text
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError):
        return text
    if not isinstance(parsed, dict | list):
        return text
    pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
    return pretty if len(pretty) <= PRETTY_MAX_CHARS else text


def json_html(value: Any) -> SafeString:
    """A tool call's arguments or a tool's result, in a `<pre>`: pretty JSON, or the text."""
    text = json_text(value)
    if len(text) > TEXT_CAP:
        return _capped(text, mono=True)
    return _plain(pretty_json(text), mono=True)
