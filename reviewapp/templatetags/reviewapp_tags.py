"""Template helpers for showing hostile content. Everything from agents and end users passes
through Django's autoescape or through `markdown_safe`, which sanitises with nh3 (ammonia)."""

from __future__ import annotations

import json
from typing import Any

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "b",
    "i",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
}


@register.filter(name="markdown_safe")
def markdown_safe(text: Any) -> SafeString:
    """Markdown to HTML, then an allow-list sanitiser: no scripts, no event handlers, no
    `javascript:` links, no images (a remote image is a tracking pixel in a reviewer's browser)."""
    if not isinstance(text, str) or not text:
        return mark_safe("")
    html = markdown_lib.markdown(text, extensions=["fenced_code", "tables", "sane_lists"], output_format="html")
    cleaned = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3 just above


@register.filter(name="pretty_json")
def pretty_json(value: Any) -> str:
    """Indented JSON as plain text; the template's autoescape makes it safe to show."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
